//! The database going away: calls fail fast and say so, the log says it once
//! per outage, `/readyz` reports it, and the pool comes back by itself.

use std::time::{Duration, Instant};

use serde_json::json;
use sluice::pgcluster::ClusterSetup;

use crate::support::pg::{Sluice, demo_database, private_cluster};
use crate::support::{ServerLog, fresh_db, spawn, spawn_http, structured, text_of};

/// Well above the ~2 s a call may take to find the database gone, and well
/// below the 5 s call deadline that used to answer instead.
const FAIL_FAST: Duration = Duration::from_secs(4);

/// The ERROR lines saying the database is unreachable.
fn outage_errors(log: &ServerLog) -> Vec<String> {
    log.lines_with("database unreachable")
        .into_iter()
        .filter(|line| line.contains("ERROR"))
        .collect()
}

async fn readyz(base: &str) -> (u16, String) {
    let answer = crate::support::http_client()
        .get(format!("{base}/readyz"))
        .send()
        .await
        .expect("GET /readyz");
    let status = answer.status().as_u16();
    (status, answer.text().await.unwrap_or_default())
}

/// Polls until `what` holds, for up to 30 s.
async fn eventually<F: Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(Instant::now() < deadline, "{what}: not within 30 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_stopped_database_fails_calls_fast_and_the_pool_recovers_on_restart() {
    let Some(mut cluster) = private_cluster(&ClusterSetup::default()).await else {
        return;
    };
    demo_database(&cluster, "shop").await;
    let home = tempfile::tempdir().unwrap();
    let (server, log) = Sluice::serve("", home.path())
        .database_url(&cluster.url("shop"))
        .start()
        .await;
    let http = spawn_http(&cluster.url("shop"), "", "", false).await;
    let count = json!({"sql": "SELECT count(*) AS n FROM books"});
    let ok = server.call("query", count.clone()).await;
    assert_eq!(ok.is_error, Some(false), "{}", text_of(&ok));
    assert_eq!(readyz(&http.base).await.0, 200);

    for outage in 1..=2 {
        cluster.stop_server().await.expect("stopping the server");
        for _ in 0..3 {
            let started = Instant::now();
            let r = server.call("query", count.clone()).await;
            let took = started.elapsed();
            let text = text_of(&r);
            assert_eq!(r.is_error, Some(true), "{text}");
            assert!(text.contains("database unreachable: "), "{text}");
            assert!(text.contains("refused"), "{text}");
            assert!(!text.contains("timeout_ms"), "{text}");
            assert!(took < FAIL_FAST, "took {took:?}: {text}");
        }
        let (status, body) = readyz(&http.base).await;
        assert_eq!(status, 503, "{body}");
        assert!(body.contains("database unreachable"), "{body}");
        // Once per outage, however many calls failed.
        assert_eq!(
            outage_errors(&log).len(),
            outage,
            "{:?}",
            outage_errors(&log)
        );

        cluster.restart().await.expect("restarting the server");
        // No restart of sluice: the very next call connects again.
        let r = server.call("query", count.clone()).await;
        assert_eq!(r.is_error, Some(false), "{}", text_of(&r));
        assert_eq!(structured(&r)["rows"][0]["n"], json!(20));
        let back = log.lines_with("database reachable again");
        assert_eq!(back.len(), outage, "{back:?}");
        assert!(
            back.iter()
                .all(|line| line.contains("INFO") || line.contains("WARN")),
            "{back:?}"
        );
        eventually("/readyz answers 200 again", || async {
            readyz(&http.base).await.0 == 200
        })
        .await;
    }
    server.shutdown().await;
    cluster.stop().await.expect("stopping the cluster");
}

#[tokio::test]
async fn a_port_nothing_listens_on_is_a_refused_connection_not_a_timeout() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let url = format!("postgresql://app:Sup3rS3cret@127.0.0.1:{port}/shop");
    let home = tempfile::tempdir().unwrap();
    let (status, log, took) = Sluice::serve("", home.path())
        .database_url(&url)
        .run_to_exit()
        .await;
    assert!(!status.success());
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(log.contains("database unreachable: "), "{log}");
    assert!(log.contains("connection refused"), "{log}");
    assert!(log.contains(&format!("127.0.0.1:{port}")), "{log}");
    assert!(!log.contains("Sup3rS3cret"), "{log}");
}

#[tokio::test]
async fn all_connections_in_use_is_a_busy_pool_not_an_outage() {
    let db = fresh_db().await;
    let config = "[database]\nmin_connections = 1\nmax_connections = 1\nacquire_timeout_s = 1\n\
                  [plugins.grants.sql-read]\ntimeout_ms = 4000\n";
    let server = spawn(&db, config, None).await;
    let slow = server.call(
        "query",
        json!({"sql": "SELECT count(*) FROM generate_series(1, 1000000000)"}),
    );
    let waiting = async {
        // Inside the slow call's four seconds, which hold the one connection.
        tokio::time::sleep(Duration::from_millis(500)).await;
        server
            .call("query", json!({"sql": "SELECT 1 AS one"}))
            .await
    };
    let (_, waiting) = tokio::join!(slow, waiting);
    let text = text_of(&waiting);
    assert_eq!(waiting.is_error, Some(true), "{text}");
    assert!(text.contains("in use"), "{text}");
    assert!(text.contains("acquire_timeout_s"), "{text}");
    assert!(!text.contains("unreachable"), "{text}");
    server.shutdown().await;
}

#[tokio::test]
async fn a_server_that_never_answers_is_unreachable_after_connect_timeout() {
    // Connections complete in the kernel's backlog, and then nothing is ever
    // said on them: a hung host, as far as a client can tell.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("a listener");
    let port = silent.local_addr().expect("its address").port();
    let home = tempfile::tempdir().unwrap();
    let (status, log, took) = Sluice::serve("", home.path())
        .database_url(&format!("host=127.0.0.1 port={port} user=app dbname=shop"))
        .run_to_exit()
        .await;
    assert!(!status.success());
    assert!(log.contains("database unreachable: "), "{log}");
    assert!(
        log.contains(&format!(
            "no answer from 127.0.0.1:{port} within 2 s (connect_timeout)"
        )),
        "{log}"
    );
    // The default connect_timeout is 2 s; the bound is generous.
    assert!(took < Duration::from_secs(15), "took {took:?}");
    drop(silent);
}

/// A tools file saved while the database is down cannot be checked: the
/// previous version keeps serving, the file is tried again by itself
/// (logged at error once), and served once the database is back, with no
/// change of the file.
#[tokio::test]
async fn a_tools_file_the_database_could_not_check_is_served_once_it_is_back() {
    let Some(mut cluster) = private_cluster(&ClusterSetup::default()).await else {
        return;
    };
    demo_database(&cluster, "shop").await;
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let one = "[[tools]]\nname = \"book_count\"\ndescription = \"How many books.\"\n\
               sql = \"SELECT count(*) AS n FROM books\"\n";
    let two = format!("{one}\n{}", one.replace("book_count", "book_total"));
    let file = dir.path().join("shelf.tools.toml");
    std::fs::write(&file, one).unwrap();
    let config = format!(
        "[plugins]\ndir = {:?}\n\n[plugins.grants.shelf]\nread = [\"public.books\"]\n",
        dir.path().display().to_string()
    );
    let (server, log) = Sluice::serve(&config, home.path())
        .database_url(&cluster.url("shop"))
        .start()
        .await;
    cluster.stop_server().await.expect("stopping the server");
    let seen = server.tool_list_changes();
    let tmp = dir.path().join(".shelf.part");
    std::fs::write(&tmp, &two).unwrap();
    std::fs::rename(&tmp, &file).unwrap();
    // Tried again without the file changing: the first failure at error,
    // the next ones quietly.
    eventually("two checks after the first", || async {
        log.lines_with("plugin still not checked").len() >= 2
    })
    .await;
    let unchecked: Vec<String> = log
        .lines_with("could not be checked against the database")
        .into_iter()
        .filter(|line| line.contains("ERROR"))
        .collect();
    assert_eq!(unchecked.len(), 1, "{unchecked:?}");
    assert!(
        unchecked[0].contains("database unreachable"),
        "{unchecked:?}"
    );
    assert!(
        unchecked[0].contains("previous version keeps serving"),
        "{unchecked:?}"
    );
    let names = || async {
        server
            .list_tools()
            .await
            .iter()
            .map(|t| t.name.to_string())
            .collect::<Vec<_>>()
    };
    let before = names().await;
    assert!(before.contains(&"book_count".to_string()), "{before:?}");
    assert!(!before.contains(&"book_total".to_string()), "{before:?}");

    cluster.restart().await.expect("restarting the server");
    server.wait_tool_list_changed(seen).await;
    let out = structured(&server.call("book_total", json!({})).await);
    assert_eq!(out["rows"][0]["n"], json!(20), "{out}");
    server.shutdown().await;
    cluster.stop().await.expect("stopping the cluster");
}
