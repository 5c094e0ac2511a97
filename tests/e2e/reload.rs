//! Hot reload: plugins dropped into, replaced in or removed from the plugin
//! directory take effect while sluice serves; clients are told; calls in
//! flight finish on the version they started on; a broken file leaves the
//! previous version serving.

use crate::support::{fresh_db, plugin_wasm, spawn, text_of};
use serde_json::json;
use std::time::Duration;

fn names(tools: &[rmcp::model::Tool]) -> Vec<String> {
    let mut names: Vec<String> = tools.iter().map(|t| t.name.to_string()).collect();
    names.sort();
    names
}

/// Copies a built plugin into `dir` as `file` through a temporary name, as
/// a deploy script would, so the watcher never sees half a file.
fn install(package: &str, dir: &std::path::Path, file: &str) {
    let tmp = dir.join(format!(".{file}.part"));
    std::fs::copy(plugin_wasm(package), &tmp).unwrap();
    std::fs::rename(&tmp, dir.join(file)).unwrap();
}

#[tokio::test]
async fn plugins_come_and_go_while_serving() {
    let db = fresh_db().await;
    let dir = tempfile::tempdir().unwrap();
    install("test-looper", dir.path(), "looper.wasm");
    let server = spawn(&db, "", Some(dir.path())).await;
    assert!(names(&server.list_tools().await).contains(&"nap".to_string()));

    // Added: the client hears of it and can call it.
    let seen = server.tool_list_changes();
    install("hello", dir.path(), "hello.wasm");
    let seen = server.wait_tool_list_changed(seen).await;
    assert!(names(&server.list_tools().await).contains(&"hello".to_string()));
    let hi = server.call("hello", json!({"name": "Ada"})).await;
    assert_eq!(text_of(&hi), "Hello, Ada!");

    // Removed while one of its calls is in flight: the call finishes on the
    // version it started on.
    let nap = server.call("nap", json!({"ms": 1500}));
    let remove = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        std::fs::remove_file(dir.path().join("looper.wasm")).unwrap();
        server.wait_tool_list_changed(seen).await
    };
    let (nap, seen) = tokio::join!(nap, remove);
    assert_eq!(text_of(&nap), "rested 1500 ms");
    let tools = names(&server.list_tools().await);
    assert!(!tools.contains(&"nap".to_string()), "{tools:?}");
    let gone = server.try_call("nap", json!({"ms": 1})).await;
    assert!(gone.is_err(), "a removed tool still answers: {gone:?}");

    // A broken replacement is rejected; the previous version keeps serving.
    // (The trapper arriving in the same change tells us the rescan ran.)
    std::fs::write(dir.path().join("hello.wasm"), b"\0asm broken").unwrap();
    install("test-trapper", dir.path(), "trapper.wasm");
    server.wait_tool_list_changed(seen).await;
    let tools = names(&server.list_tools().await);
    assert!(tools.contains(&"boom".to_string()), "{tools:?}");
    let hi = server.call("hello", json!({"name": "Grace"})).await;
    assert_eq!(text_of(&hi), "Hello, Grace!");
    server.shutdown().await;
}
