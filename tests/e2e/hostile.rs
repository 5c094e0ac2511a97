//! Plugins that loop forever or trap are contained: the client gets an error
//! and the server answers the next call.

use crate::support::{fresh_db, plugin_dir_with, run_sql, spawn, spawn_at, structured, text_of};
use serde_json::json;

#[tokio::test]
async fn a_plugin_that_loops_forever_times_out_and_the_server_carries_on() {
    let db = fresh_db().await;
    let dir = plugin_dir_with(&["test-looper", "hello"]);
    let config = "[plugins.grants.test-looper]\ntimeout_ms = 300\n";
    let server = spawn(&db, config, Some(dir.path())).await;
    for _ in 0..2 {
        let r = server.call("spin", json!({})).await;
        assert_eq!(r.is_error, Some(true));
        assert!(
            text_of(&r).contains("timed out after 300 ms, its timeout_ms limit"),
            "{}",
            text_of(&r)
        );
        let ok = server.call("hello", json!({"name": "Ada"})).await;
        assert_eq!(text_of(&ok), "Hello, Ada!");
        let q = structured(
            &server
                .call("query", json!({"sql": "SELECT 1 AS one"}))
                .await,
        );
        assert_eq!(q["rows"], json!([{"one": 1}]));
    }
    // A spinning plugin does not hold up other calls meanwhile.
    let (spin, query) = tokio::join!(
        server.call("spin", json!({})),
        server.call("query", json!({"sql": "SELECT 3 AS three"}))
    );
    assert_eq!(spin.is_error, Some(true));
    assert_eq!(structured(&query)["rows"], json!([{"three": 3}]));
    server.shutdown().await;
}

#[tokio::test]
async fn a_plugin_that_traps_gives_an_error_and_the_server_carries_on() {
    let db = fresh_db().await;
    let dir = plugin_dir_with(&["test-trapper"]);
    let server = spawn(&db, "", Some(dir.path())).await;
    for _ in 0..2 {
        let r = server.call("boom", json!({})).await;
        assert_eq!(r.is_error, Some(true));
        assert!(
            text_of(&r).contains("plugin test-trapper failed"),
            "{}",
            text_of(&r)
        );
        assert!(text_of(&r).contains("trapped"), "{}", text_of(&r));
        let q = structured(
            &server
                .call("query", json!({"sql": "SELECT 2 AS two"}))
                .await,
        );
        assert_eq!(q["rows"], json!([{"two": 2}]));
    }
    server.shutdown().await;
}

#[tokio::test]
async fn the_example_plugin_loads_from_the_plugin_directory() {
    let db = fresh_db().await;
    let dir = plugin_dir_with(&["hello"]);
    let server = spawn(&db, "", Some(dir.path())).await;
    let tools = crate::support::json(&server.list_tools().await);
    let hello = tools
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "hello")
        .expect("hello is listed");
    assert_eq!(hello["description"], "Greets someone by name.");
    assert_eq!(hello["inputSchema"]["required"], json!(["name"]));
    assert_eq!(
        text_of(&server.call("hello", json!({"name": "Grace"})).await),
        "Hello, Grace!"
    );
    // Arguments that do not match the schema are a tool error, not a crash.
    let bad = server.call("hello", json!({"name": 5})).await;
    assert_eq!(bad.is_error, Some(true));
    assert!(text_of(&bad).contains("invalid input"), "{}", text_of(&bad));
    server.shutdown().await;
}

#[tokio::test]
async fn a_result_larger_than_the_plugin_memory_cap_is_an_error_not_a_crash() {
    let db = fresh_db().await;
    // The result-size limit is raised so that memory is what runs out.
    let config = "[plugins.grants.sql-read]\nmemory_mb = 16\nmax_result_bytes = 100000000\n";
    let server = spawn(&db, config, None).await;
    let r = server
        .call(
            "query",
            json!({"sql": "SELECT repeat('x', 40000000) AS big"}),
        )
        .await;
    assert_eq!(r.is_error, Some(true));
    assert_eq!(
        text_of(&r),
        "plugin sql-read failed: exceeded its memory_mb limit of 16 MiB"
    );
    let q = structured(
        &server
            .call("query", json!({"sql": "SELECT 4 AS four"}))
            .await,
    );
    assert_eq!(q["rows"], json!([{"four": 4}]));
    server.shutdown().await;
}

#[tokio::test]
async fn a_plugin_cannot_leave_its_sandbox() {
    let db = fresh_db().await;
    let secret = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret.path(), "TOPSECRET").unwrap();
    let dir = plugin_dir_with(&["test-escape"]);
    let config =
        "[plugins.grants.test-escape]\nmemory_mb = 32\ntimeout_ms = 5000\nmax_host_calls = 500\n";
    let log = tempfile::NamedTempFile::new().unwrap();
    let server = spawn_at(
        &db.url,
        config,
        Some(dir.path()),
        std::process::Stdio::from(log.reopen().unwrap()),
    )
    .await;
    let answer = |name: &'static str, args: serde_json::Value| {
        let server = &server;
        async move {
            let r = server.call(name, args).await;
            (r.is_error, text_of(&r))
        }
    };

    for path in [
        secret.path().to_str().unwrap(),
        "/etc/passwd",
        "../../etc/passwd",
        ".",
    ] {
        let (is_error, text) = answer("read_file", json!({ "path": path })).await;
        assert_ne!(is_error, Some(true), "{text}");
        assert!(text.starts_with("refused:"), "{path}: {text}");
    }
    assert_eq!(answer("environment", json!({})).await.1, "vars: 0; args: 0");
    // Its builder sent a statement while describing itself: refused, since
    // describe runs with no database access (one naming no relation, which
    // no grant would stop, included).
    let tools = server.list_tools().await;
    let seen = tools
        .iter()
        .find(|t| t.name == "describe_db")
        .and_then(|t| t.description.as_deref());
    assert_eq!(
        seen,
        Some("no database"),
        "{:?}",
        tools.iter().map(|t| &t.name).collect::<Vec<_>>()
    );
    let db_port = db
        .url
        .rsplit(':')
        .next()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    for addr in ["127.0.0.1:22".to_string(), format!("127.0.0.1:{db_port}")] {
        let (_, text) = answer("connect", json!({ "addr": addr })).await;
        assert!(text.starts_with("refused:"), "{addr}: {text}");
    }

    // Output floods are cut at the per-call budget; the call itself succeeds.
    assert_eq!(answer("flood", json!({})).await.1, "flooded");
    let (is_error, text) = answer("host_calls", json!({})).await;
    assert_eq!(is_error, Some(true));
    assert!(
        text.contains("exceeded its max_host_calls limit of 500 host calls"),
        "{text}"
    );
    // Its own refusal reads as its own, never as the host's policy.
    let (is_error, text) = answer("pose_as_policy", json!({})).await;
    assert_eq!(is_error, Some(true));
    assert_eq!(
        text,
        "plugin test-escape refused (read-grant): relation public.film is not in plugin \
         sql-read's read grant"
    );
    let (is_error, text) = answer("grow", json!({})).await;
    assert_eq!(is_error, Some(true));
    assert!(text.contains("memory_mb limit of 32 MiB"), "{text}");
    // The log says which call failed and that the plugin's code was at fault.
    let logged = std::fs::read_to_string(log.path()).unwrap();
    let line = logged
        .lines()
        .find(|l| l.contains("plugin call failed: exceeded its memory_mb limit"))
        .unwrap_or_else(|| panic!("no failure logged:\n{logged}"));
    assert!(
        line.contains("plugin_call{plugin=test-escape tool=grow call=")
            && line.contains("blame=guest"),
        "{line}"
    );

    // And the server still serves.
    let q = structured(
        &server
            .call("query", json!({"sql": "SELECT 5 AS five"}))
            .await,
    );
    assert_eq!(q["rows"], json!([{"five": 5}]));
    server.shutdown().await;
}

/// One host call with an array parameter of 100,000 dimensions used to
/// recurse once per dimension while rendering it and overflow the fiber
/// stack, aborting the whole server.
#[tokio::test]
async fn an_array_of_100000_dimensions_is_refused_and_the_server_carries_on() {
    let db = fresh_db().await;
    let dir = plugin_dir_with(&["test-fuzzer"]);
    // Any grant: a plugin granted nothing it requests is not served.
    let config = "[plugins.grants.test-fuzzer]\nread = [\"public.books\"]\n";
    let server = spawn(&db, config, Some(dir.path())).await;
    for _ in 0..2 {
        let r = server
            .call("probe", json!({"case": "deep-array", "n": 100_000}))
            .await;
        assert_eq!(
            text_of(&r),
            "error: invalid input: invalid host call from plugin test-fuzzer: parameter $1 \
             is an array of 100000 dimensions; PostgreSQL allows at most 6"
        );
        let q = structured(
            &server
                .call("query", json!({"sql": "SELECT 6 AS six"}))
                .await,
        );
        assert_eq!(q["rows"], json!([{"six": 6}]));
    }
    server.shutdown().await;
}

/// Host-call arguments that break PostgreSQL's own limits (or carry a NUL)
/// are refused at the boundary with a message that blames the plugin, and
/// never reach the gate: no audit event, no statement.
#[tokio::test]
async fn malformed_host_call_arguments_are_refused_at_the_boundary() {
    let db = fresh_db().await;
    run_sql(
        &db.url,
        "CREATE TABLE fuzz_scratch (id int PRIMARY KEY, name text)",
    )
    .await;
    let audit = tempfile::tempdir().unwrap();
    let audit_path = audit.path().join("audit.jsonl");
    let config = format!(
        "[audit]\nfile = \"{}\"\n\n[plugins.grants.test-fuzzer]\nread = [\"public.*\"]\n\
         write = [\"public.fuzz_scratch\"]\ncatalog = true\n",
        audit_path.display()
    );
    let dir = plugin_dir_with(&["test-fuzzer"]);
    let server = spawn(&db, &config, Some(dir.path())).await;
    let refused = "error: invalid input: invalid host call from plugin test-fuzzer: ";
    let cases: &[(&str, Option<u32>, &str)] = &[
        (
            "deep-array",
            Some(7),
            "parameter $1 is an array of 7 dimensions; PostgreSQL allows at most 6",
        ),
        (
            "zero-dim",
            None,
            "parameter $1 is an array with items whose dimension 2 has length 0",
        ),
        (
            "short-array",
            None,
            "parameter $1 is an array of dimensions [2, 2], which hold 4 items, but it has 3",
        ),
        (
            "items-without-dims",
            None,
            "parameter $1 is an array of 1 items without dimensions",
        ),
        (
            "too-many-params",
            None,
            "the parameter list has 65536 parameters; PostgreSQL's protocol allows at most 65535",
        ),
        (
            "nul-param",
            None,
            "parameter $1 contains a NUL character (byte 1)",
        ),
        (
            "nul-array-item",
            None,
            "parameter $1 (array item 2) contains a NUL character (byte 1)",
        ),
        (
            "long-table",
            None,
            "the table name is 2000 bytes long; names are at most 1024",
        ),
        (
            "too-many-columns",
            None,
            "the values list has 1601 columns; PostgreSQL allows at most 1600",
        ),
        ("empty-column", None, "column name 1 of the filter is empty"),
        (
            "nul-column",
            None,
            "column name 1 of the filter contains a NUL character (byte 2)",
        ),
        (
            "long-schema",
            None,
            "the schema name is 2000 bytes long; names are at most 1024",
        ),
    ];
    for (case, n, message) in cases {
        let r = server.call("probe", json!({"case": case, "n": n})).await;
        let text = text_of(&r);
        assert!(
            text.starts_with(refused) && text[refused.len()..].starts_with(message),
            "{case}: {text}"
        );
    }
    // A NUL in SQL is the policy's to refuse, by a named rule.
    let r = server.call("probe", json!({"case": "nul-sql"})).await;
    assert!(
        text_of(&r).starts_with("error: denied (parse): the SQL contains a NUL character"),
        "{}",
        text_of(&r)
    );
    // A key no config can hold is simply unset.
    let r = server
        .call("probe", json!({"case": "long-config-key"}))
        .await;
    assert_eq!(text_of(&r), "ok: None");

    // What passes the boundary reaches the gate as before: the SDK's empty
    // array, and a JSON array nested deeper than an array can be, which the
    // codec refuses without walking past six levels.
    let r = server.call("probe", json!({"case": "empty-array"})).await;
    assert_eq!(text_of(&r), "ok: 1 rows");
    let r = server
        .call("probe", json!({"case": "deep-json-array", "n": 100}))
        .await;
    assert_eq!(
        text_of(&r),
        "error: invalid input: parameter $1 (int4[]): JSON array nested more than 6 deep; \
         PostgreSQL arrays have at most 6 dimensions"
    );
    let q = structured(
        &server
            .call("query", json!({"sql": "SELECT 7 AS seven"}))
            .await,
    );
    assert_eq!(q["rows"], json!([{"seven": 7}]));
    server.shutdown().await;

    // Only the calls that passed the boundary were audited (the NUL in SQL
    // as a denial).
    let events: Vec<serde_json::Value> = std::fs::read_to_string(&audit_path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let plugins: Vec<&str> = events
        .iter()
        .map(|e| e["plugin"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        plugins,
        ["test-fuzzer", "test-fuzzer", "test-fuzzer", "sql-read"],
        "{events:#?}"
    );
}
