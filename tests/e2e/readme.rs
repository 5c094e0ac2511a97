//! The README's desktop-host configs work as written: every stdio server
//! entry in its JSON examples (Claude Desktop's `mcpServers`, VS Code's
//! `servers`) is launched the way its host launches it, and answers.

use crate::support::{REQUEST_TIMEOUT, fresh_db, structured, text_of};
use rmcp::ServiceExt as _;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::TokioChildProcess;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// One stdio server entry of a README example.
#[derive(Debug)]
struct Entry {
    /// Where it is: the example's top-level key and the server's name.
    origin: String,
    command: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

/// The JSON code blocks of a Markdown text.
fn json_blocks(markdown: &str) -> Vec<Value> {
    let mut blocks = Vec::new();
    let mut lines = markdown.lines();
    while let Some(line) = lines.next() {
        if line.trim() != "```json" {
            continue;
        }
        let body: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
        let text = body.join("\n");
        let value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("a JSON block of README.md does not parse ({e}):\n{text}"));
        blocks.push(value);
    }
    blocks
}

/// The entries that a host starts as a command (HTTP entries have a `url`).
fn stdio_entries(blocks: &[Value]) -> Vec<Entry> {
    let mut entries = Vec::new();
    for block in blocks {
        for key in ["mcpServers", "servers"] {
            let Some(servers) = block.get(key).and_then(Value::as_object) else {
                continue;
            };
            for (name, server) in servers {
                let Some(command) = server.get("command") else {
                    continue;
                };
                let strings = |v: Option<&Value>| -> Vec<String> {
                    v.and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .map(|s| s.as_str().expect("args are strings").to_string())
                                .collect()
                        })
                        .unwrap_or_default()
                };
                let env = server
                    .get("env")
                    .and_then(Value::as_object)
                    .map(|o| {
                        o.iter()
                            .map(|(k, v)| {
                                (
                                    k.clone(),
                                    v.as_str().expect("env values are strings").into(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                entries.push(Entry {
                    origin: format!("{key}.{name}"),
                    command: command.as_str().expect("command is a string").to_string(),
                    args: strings(server.get("args")),
                    env,
                });
            }
        }
    }
    entries
}

/// A path of the example, moved into `scratch` so the test touches nothing
/// outside it; anything else as written.
fn local(value: &str, scratch: &Path) -> String {
    let path = Path::new(value);
    if value.starts_with('~') || path.is_absolute() {
        let name = path.file_name().unwrap_or(path.as_os_str());
        scratch.join(name).display().to_string()
    } else {
        value.to_string()
    }
}

#[tokio::test]
async fn the_readme_desktop_configs_start_serve_and_answer() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .expect("reading README.md");
    let entries = stdio_entries(&json_blocks(&readme));
    for expected in ["mcpServers.", "servers."] {
        assert!(
            entries.iter().any(|e| e.origin.starts_with(expected)),
            "README.md has no {expected}… stdio example any more: {entries:?}"
        );
    }

    let db = fresh_db().await;
    let bin_dir = PathBuf::from(env!("CARGO_BIN_EXE_sluice"))
        .parent()
        .expect("the binary is in a directory")
        .to_path_buf();
    let path = std::env::join_paths(std::iter::once(bin_dir).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .expect("a valid PATH");

    for entry in &entries {
        let scratch = tempfile::tempdir().unwrap();
        // As a host does: the command looked up on PATH, in a directory of
        // no importance, with the entry's environment over the host's own.
        let mut command = tokio::process::Command::new(&entry.command);
        command
            .args(entry.args.iter().map(|a| local(a, scratch.path())))
            .current_dir(scratch.path())
            .env("PATH", &path)
            .kill_on_drop(true);
        for var in crate::support::pg::DATABASE_VARS {
            command.env_remove(var);
        }
        for (key, value) in &entry.env {
            let value = if key == "DATABASE_URL" {
                // The example's database stands for the test's.
                db.url.clone()
            } else {
                local(value, scratch.path())
            };
            command.env(key, value);
        }
        if std::env::var_os("RUST_LOG").is_none() {
            command.env("RUST_LOG", "warn");
        }

        let transport = TokioChildProcess::new(command)
            .unwrap_or_else(|e| panic!("{}: cannot start {:?}: {e}", entry.origin, entry.command));
        let Ok(initialized) = tokio::time::timeout(REQUEST_TIMEOUT, ().serve(transport)).await
        else {
            panic!("{}: no answer to initialize", entry.origin)
        };
        let client =
            initialized.unwrap_or_else(|e| panic!("{}: initialize failed: {e}", entry.origin));
        let tools = client.list_all_tools().await.unwrap();
        assert!(
            tools.iter().any(|t| t.name == "query"),
            "{}: no query tool in {tools:?}",
            entry.origin
        );
        let result = client
            .call_tool(
                CallToolRequestParams::new("query").with_arguments(
                    json!({"sql": "SELECT count(*) AS n FROM books"})
                        .as_object()
                        .unwrap()
                        .clone(),
                ),
            )
            .await
            .unwrap();
        assert_eq!(
            structured(&result)["rows"],
            json!([{"n": 20}]),
            "{}: {}",
            entry.origin,
            text_of(&result)
        );
        client.cancel().await.unwrap();
    }
}

#[test]
fn finds_stdio_entries_and_skips_http_ones() {
    let markdown = "text\n```json\n{\"mcpServers\": {\"a\": {\"command\": \"sluice\", \"args\": [\"serve\"], \"env\": {\"DATABASE_URL\": \"postgres://x\"}}}}\n```\n\
                    ```toml\nx = 1\n```\n\
                    ```json\n{\"servers\": {\"b\": {\"type\": \"stdio\", \"command\": \"sluice\", \"args\": [\"demo\"]}, \"c\": {\"type\": \"http\", \"url\": \"https://x/mcp\"}}}\n```\n";
    let entries = stdio_entries(&json_blocks(markdown));
    let origins: Vec<&str> = entries.iter().map(|e| e.origin.as_str()).collect();
    assert_eq!(origins, ["mcpServers.a", "servers.b"]);
    assert_eq!(
        entries[0].env,
        [("DATABASE_URL".into(), "postgres://x".into())]
    );
    assert_eq!(
        local("/etc/sluice/sluice.toml", Path::new("/scratch")),
        "/scratch/sluice.toml"
    );
    assert_eq!(local("serve", Path::new("/scratch")), "serve");
}
