//! The command line: configuration mistakes give one line that says what to
//! fix and a non-zero exit, and `sluice demo` serves its private database and
//! stops it on exit.

use crate::support::{self, REQUEST_TIMEOUT, structured};
use rmcp::ServiceExt;
use rmcp::transport::TokioChildProcess;
use serde_json::json;
use std::process::{Command, Stdio};
use tokio::io::{AsyncBufReadExt, BufReader};

/// Runs `sluice args…` in an empty directory with no database settings in the
/// environment; returns (exit success, the `sluice:` error line).
fn run_failing(args: &[&str], config: Option<&str>) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
    cmd.args(args).current_dir(dir.path()).stdin(Stdio::null());
    if let Some(text) = config {
        std::fs::write(dir.path().join("sluice.toml"), text).unwrap();
    }
    for var in crate::support::pg::DATABASE_VARS {
        cmd.env_remove(var);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.stdout.is_empty(),
        "stdout is for the protocol only: {:?}",
        out.stdout
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("sluice: "))
        .collect();
    assert_eq!(errors.len(), 1, "expected one error line in {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    (out.status.success(), errors[0].to_string())
}

#[test]
fn configuration_mistakes_are_one_line_errors() {
    let (ok, line) = run_failing(&["serve"], Some("[database]\nurll = \"x\"\n"));
    assert!(!ok);
    assert!(
        line.contains("sluice.toml is invalid") && line.contains("url"),
        "{line}"
    );

    let (ok, line) = run_failing(&["serve"], None);
    assert!(!ok);
    assert!(
        line.contains("no database configured") && line.contains("--database-url"),
        "{line}"
    );

    let (ok, line) = run_failing(&["serve", "--config", "missing.toml"], None);
    assert!(!ok);
    assert!(
        line.contains("cannot read config file missing.toml"),
        "{line}"
    );

    let (ok, line) = run_failing(
        &[
            "serve",
            "--database-url",
            "postgres://nobody:hunter2@127.0.0.1:1/none",
        ],
        None,
    );
    assert!(!ok);
    assert!(
        line.contains("cannot connect to the database at postgres://nobody@127.0.0.1:1/none"),
        "{line}"
    );
    assert!(!line.contains("hunter2"), "the password leaked: {line}");

    let (ok, line) = run_failing(&["serve", "--database-url", "mysql://x"], None);
    assert!(!ok);
    assert!(line.contains("invalid database URL"), "{line}");
}

#[tokio::test]
async fn demo_serves_the_sample_database_and_stops_it_on_exit() {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_sluice"));
    command.arg("demo").kill_on_drop(true);
    if std::env::var_os("RUST_LOG").is_none() {
        command.env("RUST_LOG", "info");
    }
    let (transport, stderr) = TokioChildProcess::builder(command)
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning sluice demo");
    // The cluster's port is in the log; keep echoing it for failing tests.
    let (port_tx, port_rx) = tokio::sync::oneshot::channel::<u16>();
    let mut lines = BufReader::new(stderr.expect("stderr is piped")).lines();
    let echo = tokio::spawn(async move {
        let mut port_tx = Some(port_tx);
        while let Ok(Some(line)) = lines.next_line().await {
            eprintln!("{line}");
            if let Some(rest) = line.split("demo database ready on port ").nth(1)
                && let (Some(tx), Ok(port)) = (port_tx.take(), rest.trim().parse())
            {
                let _ = tx.send(port);
            }
        }
    });
    let client = tokio::time::timeout(REQUEST_TIMEOUT, ().serve(transport))
        .await
        .expect("demo did not start in time")
        .expect("MCP initialization with the demo failed");
    let port = port_rx.await.expect("the demo logs its port");

    let result = client
        .call_tool(
            rmcp::model::CallToolRequestParams::new("query").with_arguments(
                json!({"sql": "SELECT count(*) AS n FROM books"})
                    .as_object()
                    .unwrap()
                    .clone(),
            ),
        )
        .await
        .unwrap();
    assert_eq!(structured(&result)["rows"], json!([{"n": 20}]));
    // The demo lets sql-write insert into its disposable data.
    let inserted = client
        .call_tool(
            rmcp::model::CallToolRequestParams::new("insert_record").with_arguments(
                json!({"table": "authors", "data": {"full_name": "Demo Author", "birth_year": 1970, "country_code": "GB"}})
                    .as_object()
                    .unwrap()
                    .clone(),
            ),
        )
        .await
        .unwrap();
    assert_eq!(
        structured(&inserted)["row"]["author_id"],
        100,
        "{}",
        support::text_of(&inserted)
    );

    client.cancel().await.unwrap();
    echo.await.unwrap();
    let refused = tokio::net::TcpStream::connect(("127.0.0.1", port)).await;
    assert!(
        refused.is_err(),
        "the private PostgreSQL on port {port} is still running"
    );
}
