//! A plugin that must compile first never holds up the start: clients are
//! answered at once, it joins when it is ready (with `list_changed`), the
//! log says what compiles and how long it took, and `sluice plugins
//! compile` fills the cache ahead of time.

use crate::support::raw::RawServer;
use crate::support::{fresh_db, plugin_dir_with};
use serde_json::{Value, json};
use std::process::Stdio;
use std::time::Duration;

/// The tool names a `tools/list` answer holds.
fn tool_names(answer: &Value) -> Vec<String> {
    answer["result"]["tools"]
        .as_array()
        .map(|tools| {
            tools
                .iter()
                .filter_map(|t| t["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Lists tools until `done` holds for them (the server adds plugins as they
/// compile); panics after a minute.
async fn tools_until(server: &mut RawServer, done: impl Fn(&[String]) -> bool) -> Vec<String> {
    for attempt in 0..600 {
        let id = json!(format!("list-{attempt}"));
        server
            .send(&json!({"jsonrpc": "2.0", "id": id, "method": "tools/list"}))
            .await;
        let names = tool_names(&server.answer_to(&id).await);
        if done(&names) {
            return names;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the tools never became what the test waits for");
}

fn config_with_cache(cache: &std::path::Path, extra: &str) -> String {
    format!("[plugins.cache]\ndir = \"{}\"\n{extra}", cache.display())
}

#[tokio::test]
async fn a_plugin_that_must_compile_joins_once_it_is_ready() {
    let db = fresh_db().await;
    let dir = plugin_dir_with(&["hello"]);
    let cache = tempfile::tempdir().unwrap();
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut server = RawServer::spawn_cold(
        &db,
        &config_with_cache(cache.path(), ""),
        Some(dir.path()),
        Stdio::from(log.reopen().unwrap()),
    );
    server.initialize().await;
    let first = tools_until(&mut server, |_| true).await;
    assert!(first.contains(&"query".to_string()), "{first:?}");
    tools_until(&mut server, |names| names.contains(&"hello".to_string())).await;
    if !first.contains(&"hello".to_string()) {
        // It joined later: the client was told.
        let mut told = false;
        while let Ok(Some(message)) =
            tokio::time::timeout(Duration::from_millis(500), server.next()).await
        {
            told |= message["method"] == "notifications/tools/list_changed";
        }
        assert!(
            told,
            "hello joined without notifications/tools/list_changed"
        );
    }
    let text = std::fs::read_to_string(log.path()).unwrap();
    let served = text
        .find("sluice ready, more plugins compiling")
        .expect("served before the plugin compiled");
    // `compiling …/hello.wasm (12 KB)…`, then `compiled …/hello.wasm in N ms`.
    let compiling = text
        .find("hello.wasm (")
        .expect("the compile is announced, with its size");
    let compiled = text
        .find("hello.wasm in ")
        .expect("the compile's time is logged");
    assert!(served < compiling && compiling < compiled, "{text}");
    assert!(text.contains("all plugins loaded"), "{text}");
}

#[tokio::test]
async fn plugins_compile_fills_the_cache_ahead_of_time() {
    let db = fresh_db().await;
    let dir = plugin_dir_with(&["hello", "test-looper"]);
    let cache = tempfile::tempdir().unwrap();
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(config.path(), config_with_cache(cache.path(), "")).unwrap();
    let run = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["plugins", "compile", "--config"])
            .arg(config.path())
            .arg("--plugins")
            .arg(dir.path())
            .args(extra)
            .output()
            .unwrap()
    };
    let out = run(&[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("hello.wasm: hello"), "{stdout}");
    assert!(stdout.contains("test-looper"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "compiled plugins are cached in {}",
            cache.path().display()
        )),
        "{stdout}"
    );

    // The next start compiles nothing and serves everything at once.
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut server = RawServer::spawn_cold(
        &db,
        &config_with_cache(cache.path(), ""),
        Some(dir.path()),
        Stdio::from(log.reopen().unwrap()),
    );
    server.initialize().await;
    let names = tools_until(&mut server, |_| true).await;
    assert!(names.contains(&"hello".to_string()), "{names:?}");
    let text = std::fs::read_to_string(log.path()).unwrap();
    assert!(!text.contains("compiling "), "{text}");
    assert!(!text.contains("more plugins compiling"), "{text}");

    // A disabled cache is nothing to fill.
    std::fs::write(config.path(), "[plugins.cache]\nenabled = false\n").unwrap();
    let out = run(&[]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the compiled cache is disabled"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn a_misnamed_grant_found_after_a_late_compile_serves_nothing() {
    let db = fresh_db().await;
    let dir = plugin_dir_with(&["hello"]);
    let cache = tempfile::tempdir().unwrap();
    let log = tempfile::NamedTempFile::new().unwrap();
    // `helo` could have been the late plugin's name; once it has compiled,
    // it is known not to be, and nothing is served without the operator's
    // restriction.
    let config = config_with_cache(
        cache.path(),
        "\n[plugins.grants.helo]\nread = [\"public.books\"]\n",
    );
    let mut server = RawServer::spawn_cold(
        &db,
        &config,
        Some(dir.path()),
        Stdio::from(log.reopen().unwrap()),
    );
    server.initialize().await;
    tools_until(&mut server, |names| names.is_empty()).await;
    let text = std::fs::read_to_string(log.path()).unwrap();
    assert!(
        text.contains("names plugin \"helo\", which is not loaded; did you mean hello?")
            && text.contains("sluice serves no plugin until"),
        "{text}"
    );
}
