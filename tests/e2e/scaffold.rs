//! `sluice new plugin`: the generated projects build as generated and the
//! result loads and serves.

use crate::support::{TestDb, fresh_db, spawn, structured, text_of};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Variables of the outer `cargo test` that would leak into a nested build.
const CLEAR: &[&str] = &[
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "RUSTFLAGS",
    "RUSTC",
    "RUSTC_WORKSPACE_WRAPPER",
    "RUSTC_WRAPPER",
    "RUSTDOC",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "CARGO_BUILD_TARGET_DIR",
];

fn sluice(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// A target directory kept between runs, so re-runs build incrementally.
fn shared_target(what: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/scaffold-test")
        .join(what)
}

/// Serves `wasm` as the only extra plugin and counts `books` through it.
async fn count_books_through(db: &TestDb, name: &str, wasm: &Path, tool: &str) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(wasm, dir.path().join(format!("{name}.wasm"))).unwrap();
    let config = format!("[plugins.grants.{name}]\nread = [\"public.*\"]\ncatalog = true\n");
    let server = spawn(db, &config, Some(dir.path())).await;
    let r = server.call(tool, json!({"table": "books"})).await;
    assert_eq!(r.is_error, Some(false), "{}", text_of(&r));
    let expected = structured(
        &server
            .call("query", json!({"sql": "SELECT count(*) AS n FROM books"}))
            .await,
    )["rows"][0]["n"]
        .clone();
    assert_eq!(structured(&r)["rows"], expected, "{}", text_of(&r));
    let denied = server
        .call(tool, json!({"table": "pg_catalog.pg_authid"}))
        .await;
    assert_eq!(denied.is_error, Some(true));
    server.shutdown().await;
}

#[tokio::test]
async fn a_new_rust_plugin_builds_as_generated_and_serves() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().to_str().unwrap();
    let (ok, out) = sluice(&["new", "plugin", "film-stats", "--dir", dir]);
    assert!(ok, "{out}");
    let root = work.path().join("film-stats");
    let (ok, out) = sluice(&["new", "plugin", "film-stats", "--dir", dir]);
    assert!(!ok && out.contains("already exists"), "{out}");

    let target = shared_target("rust");
    let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cargo
        .args(["build", "--release", "--target-dir"])
        .arg(&target)
        .current_dir(&root);
    for var in CLEAR {
        cargo.env_remove(var);
    }
    let built = cargo.output().unwrap();
    assert!(
        built.status.success(),
        "the generated project does not build:\n{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let wasm = target.join("wasm32-wasip2/release/film_stats.wasm");
    assert!(wasm.is_file(), "{} missing", wasm.display());

    let db = fresh_db().await;
    count_books_through(&db, "film-stats", &wasm, "count_rows").await;
}

/// Whether componentize-py can run here (in CI it must).
fn have_componentize_py() -> bool {
    crate::support::tool_available(
        "componentize-py",
        "pip install componentize-py==0.25.1",
        "the Python plugin tests",
    )
}

/// Runs a project's `build.sh` into `out` and returns the built `.wasm`.
fn build_python(script: &Path, out: &Path, name: &str) -> PathBuf {
    let built = Command::new("bash").arg(script).arg(out).output().unwrap();
    assert!(
        built.status.success(),
        "{} failed:\n{}",
        script.display(),
        String::from_utf8_lossy(&built.stderr)
    );
    out.join(format!("{name}.wasm"))
}

#[tokio::test]
async fn python_plugins_build_load_and_serve_beside_rust_ones() {
    if !have_componentize_py() {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let example =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/examples/python-hello/build.sh");
    let wasm = build_python(&example, out.path(), "python-hello");

    // The example, beside a Rust plugin and the first-party ones.
    let db = fresh_db().await;
    let dir = crate::support::plugin_dir_with(&["hello"]);
    std::fs::copy(&wasm, dir.path().join("python-hello.wasm")).unwrap();
    let config = "[plugins.grants.python-hello]\nread = [\"public.*\"]\ncatalog = true\n";
    let server = spawn(&db, config, Some(dir.path())).await;
    let greet = server.call("py_greet", json!({"name": "Ada"})).await;
    assert_eq!(text_of(&greet), "Hello from Python, Ada!");
    assert_eq!(
        structured(&greet),
        json!({"greeting": "Hello from Python, Ada!"})
    );
    let hi = server.call("hello", json!({"name": "Ada"})).await;
    assert_eq!(text_of(&hi), "Hello, Ada!");
    server.shutdown().await;
    count_books_through(&db, "python-hello", &wasm, "py_count_rows").await;

    // A new Python project builds as generated and loads under its name.
    let work = tempfile::tempdir().unwrap();
    let (ok, text) = sluice(&[
        "new",
        "plugin",
        "py-stats",
        "--lang",
        "python",
        "--dir",
        work.path().to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    let script = work.path().join("py-stats/build.sh");
    let wasm = build_python(&script, out.path(), "py-stats");
    let plugins = tempfile::tempdir().unwrap();
    std::fs::copy(&wasm, plugins.path().join("py-stats.wasm")).unwrap();
    let cfg = plugins.path().join("sluice.toml");
    std::fs::write(
        &cfg,
        "[plugins]\ndisabled = [\"sql-write\"]\n\n[plugins.grants.py-stats]\nread = [\"public.*\"]\ncatalog = true\n",
    )
    .unwrap();
    let (ok, text) = sluice(&[
        "plugins",
        "list",
        "--config",
        cfg.to_str().unwrap(),
        "--plugins",
        plugins.path().to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("py-stats") && l.contains("2 tools") && l.ends_with("ok")),
        "{text}"
    );
}
