//! Manifests and grants: `sluice plugins list/check` show requested, granted
//! and effective access, exit non-zero when a plugin fails to load (or,
//! with `--strict`, is short of what it asked for), report idle plugins
//! with the config that would serve them, and a served plugin gets only
//! what both its manifest and the operator allow.

use crate::support::{fresh_db, plugin_dir_with, spawn, spawn_at, text_of};
use serde_json::json;
use std::path::Path;
use std::process::{Command, Stdio};

/// Runs `sluice plugins <sub>` with `config` and `dir`; (exit code, stdout).
fn plugins(sub: &str, config: &str, dir: Option<&Path>) -> (i32, String) {
    let (code, stdout, _) = plugins_logged(sub, config, dir);
    (code, stdout)
}

/// As [`plugins`], with stderr (the log) too.
fn plugins_logged(sub: &str, config: &str, dir: Option<&Path>) -> (i32, String, String) {
    plugins_with(&[sub], Some(config), dir)
}

/// Runs `sluice plugins <args…>` in an empty directory, with `config` as
/// its `sluice.toml` (none at all when `None`); (exit code, stdout, stderr).
fn plugins_with(args: &[&str], config: Option<&str>, dir: Option<&Path>) -> (i32, String, String) {
    let work = tempfile::tempdir().unwrap();
    if let Some(config) = config {
        std::fs::write(work.path().join("sluice.toml"), config).unwrap();
    }
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
    cmd.arg("plugins")
        .args(args)
        .current_dir(work.path())
        .stdin(Stdio::null())
        .env_remove("DATABASE_URL");
    if let Some(dir) = dir {
        cmd.arg("--plugins").arg(dir);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The block of `check` output about one plugin.
fn block<'a>(text: &'a str, plugin: &str) -> &'a str {
    let start = text
        .find(&format!("{plugin} "))
        .unwrap_or_else(|| panic!("no {plugin} in:\n{text}"));
    let rest = &text[start..];
    &rest[..rest.find("\n\n").unwrap_or(rest.len())]
}

#[test]
fn check_shows_requested_granted_and_effective_and_how_to_serve_idle_plugins() {
    let dir = plugin_dir_with(&["test-reporter", "hello"]);
    // Defaults: sql-write asks to write and the reporter to read two
    // tables; nothing grants them any of it, so both are idle: reported
    // with the config that would serve them, and no failure.
    let (code, text) = plugins("check", "", Some(dir.path()));
    assert_eq!(code, 0, "{text}");
    let reporter = block(&text, "test-reporter");
    assert!(reporter.starts_with("test-reporter 1.2.3 ("), "{reporter}");
    assert!(
        reporter.contains(
            "read      requested: public.books, public.authors granted: -              effective: -"
        ),
        "{reporter}"
    );
    assert!(reporter.contains("tools     count_rows"), "{reporter}");
    assert!(
        reporter.ends_with(
            "  status    idle: nothing grants what it requests (read public.books, read public.authors, \
             catalog), so it is not served; to serve it, add:\n\
             \x20             [plugins.grants.test-reporter]\n\
             \x20             read = [\"public.books\", \"public.authors\"]\n\
             \x20             catalog = true"
        ),
        "{reporter}"
    );
    let write = block(&text, "sql-write");
    assert!(
        write.ends_with(
            "  status    idle: nothing grants what it requests (write *.*), so it is not served; \
             to serve it, add:\n\
             \x20             [plugins.grants.sql-write]\n\
             \x20             write = [\"public.*\"]"
        ),
        "{write}"
    );
    assert!(
        write.contains("tools     insert_record, update_records, delete_records"),
        "{write}"
    );
    assert!(block(&text, "hello").contains("status    ok"));

    // Granted what they ask (more, for the reporter): narrowed.
    let config = "[plugins]\ndisabled = [\"sql-write\"]\n\n\
                  [plugins.grants.test-reporter]\nread = [\"public.*\"]\ncatalog = true\ntimeout_ms = 60000\n";
    let (code, text) = plugins("check", config, Some(dir.path()));
    assert_eq!(code, 0, "{text}");
    let reporter = block(&text, "test-reporter");
    assert!(
        reporter.contains("effective: public.books, public.authors"),
        "{reporter}"
    );
    assert!(reporter.contains("timeout_ms 30000,"), "{reporter}");
    assert!(block(&text, "sql-write").contains("status    disabled"));

    // The short form says the same in one line each.
    let (code, text) = plugins("list", config, Some(dir.path()));
    assert_eq!(code, 0, "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("test-reporter") && l.contains("1 tool") && l.ends_with("ok")),
        "{text}"
    );
}

#[test]
fn a_default_install_passes_its_own_check_and_lists_sql_write_as_idle() {
    // No config file, no plugin directory: what a first run sees.
    for sub in ["check", "list"] {
        let (code, text, log) = plugins_with(&[sub], None, None);
        assert_eq!(code, 0, "plugins {sub}:\n{text}\n{log}");
        assert!(!log.contains("WARN"), "plugins {sub} warned:\n{log}");
        assert!(!log.contains("sluice: "), "plugins {sub} failed:\n{log}");
        assert!(
            text.contains("[plugins.grants.sql-write]\n")
                && text.contains("write = [\"public.*\"]\n"),
            "plugins {sub} does not say how to serve sql-write:\n{text}"
        );
    }
    let (_, text, _) = plugins_with(&["list"], None, None);
    assert!(
        text.lines()
            .any(|l| l.starts_with("sql-write ") && l.ends_with(" idle")),
        "{text}"
    );
    assert!(
        text.contains(
            "\nsql-write is idle: nothing grants what it requests (write *.*), so it is not served; \
             to serve it, add:\n  [plugins.grants.sql-write]\n  write = [\"public.*\"]\n"
        ),
        "{text}"
    );
    // With --strict too: an idle plugin is the operator's choice.
    let (code, text, log) = plugins_with(&["check", "--strict"], None, None);
    assert_eq!(code, 0, "{text}\n{log}");
}

#[test]
fn strict_fails_a_served_plugin_short_of_what_it_requests() {
    let dir = plugin_dir_with(&["test-reporter"]);
    // One of its two tables, and a shorter timeout than it asks for.
    let config = "[plugins.grants.test-reporter]\nread = [\"public.books\"]\ncatalog = true\n";
    let (code, text, log) = plugins_with(&["check"], Some(config), Some(dir.path()));
    assert_eq!(code, 0, "{text}\n{log}");
    let status = "status    NOT GRANTED: read public.authors; timeout_ms 30000 (granted 5000)";
    assert!(block(&text, "test-reporter").contains(status), "{text}");
    assert!(
        log.contains("WARN") && log.contains("requested but not granted: read public.authors"),
        "{log}"
    );

    for sub in ["check", "list"] {
        let (code, text, log) = plugins_with(&[sub, "--strict"], Some(config), Some(dir.path()));
        assert_eq!(code, 1, "plugins {sub} --strict:\n{text}\n{log}");
        let verdict: Vec<&str> = log.lines().filter(|l| l.starts_with("sluice: ")).collect();
        assert_eq!(
            verdict,
            ["sluice: 1 plugin not granted everything requested (--strict)"],
            "{log}"
        );
    }
}

#[tokio::test]
async fn a_default_install_offers_no_write_tools_and_warns_of_nothing() {
    let db = fresh_db().await;
    let tool_names = |tools: Vec<rmcp::model::Tool>| -> Vec<String> {
        tools.into_iter().map(|t| t.name.to_string()).collect()
    };
    let writes = ["insert_record", "update_records", "delete_records"];

    // No grant: sql-write (and sql-insight) are idle, their tools are not
    // offered, and the log says so once each, at info, with the config that
    // would serve it.
    let log = tempfile::NamedTempFile::new().unwrap();
    let server = spawn_at(&db.url, "", None, Stdio::from(log.reopen().unwrap())).await;
    let names = tool_names(server.list_tools().await);
    assert!(names.contains(&"query".to_string()), "{names:?}");
    assert!(
        !names.iter().any(|n| writes.contains(&n.as_str())),
        "{names:?}"
    );
    // The start is logged before the server answers; read it before the
    // call below, whose refusal rmcp logs as a warning.
    let text = std::fs::read_to_string(log.path()).unwrap();
    let gone = server
        .try_call("insert_record", json!({"table": "authors", "data": {}}))
        .await;
    assert!(gone.is_err(), "an idle plugin's tool answered: {gone:?}");
    server.shutdown().await;
    let warnings: Vec<&str> = text.lines().filter(|l| l.contains("WARN")).collect();
    assert!(warnings.is_empty(), "{warnings:#?}");
    let idle: Vec<&str> = text.lines().filter(|l| l.contains("idle:")).collect();
    assert_eq!(idle.len(), 2, "{text}");
    assert!(
        idle[0].contains(
            "INFO sluice::registry::load: idle: nothing grants what it requests (write *.*), so its \
             tools, resources and prompts are not offered; to serve it, grant it: \
             [plugins.grants.sql-write] write = [\"public.*\"] plugin=sql-write"
        ),
        "{}",
        idle[0]
    );
    assert!(
        idle[1].contains(
            "to serve it, grant it: [plugins.grants.sql-insight] read = [\"pg_catalog.*\", \
             \"public.pg_stat_statements\", \"public.*\"] plugin=sql-insight"
        ),
        "{}",
        idle[1]
    );

    // Granted: the write tools appear.
    let granted = "[plugins.grants.sql-write]\nwrite = [\"public.*\"]\n";
    let server = spawn(&db, granted, None).await;
    let names = tool_names(server.list_tools().await);
    for name in writes {
        assert!(names.contains(&name.to_string()), "{names:?}");
    }
    server.shutdown().await;

    // Disabled: not a word about their grants.
    let log = tempfile::NamedTempFile::new().unwrap();
    let disabled = "[plugins]\ndisabled = [\"sql-write\", \"sql-insight\"]\n";
    let server = spawn_at(&db.url, disabled, None, Stdio::from(log.reopen().unwrap())).await;
    let names = tool_names(server.list_tools().await);
    assert!(
        !names.iter().any(|n| writes.contains(&n.as_str())),
        "{names:?}"
    );
    server.shutdown().await;
    let text = std::fs::read_to_string(log.path()).unwrap();
    let about: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("idle:") || l.contains("not granted"))
        .collect();
    assert!(about.is_empty(), "{about:#?}");
}

#[test]
fn a_broken_plugin_fails_the_check_and_the_others_are_still_listed() {
    let dir = plugin_dir_with(&["hello"]);
    std::fs::write(dir.path().join("broken.wasm"), b"\0asm not really").unwrap();
    let (code, text) = plugins(
        "list",
        "[plugins]\ndisabled = [\"sql-write\"]\n",
        Some(dir.path()),
    );
    assert_eq!(code, 1, "{text}");
    assert!(
        text.lines().any(
            |l| l.contains("broken.wasm") && l.contains("FAILED: not a valid sluice component")
        ),
        "{text}"
    );
    assert!(text.lines().any(|l| l.starts_with("hello ")), "{text}");
}

#[tokio::test]
async fn a_served_plugin_reads_only_what_both_manifest_and_operator_allow() {
    let db = fresh_db().await;
    let dir = plugin_dir_with(&["test-reporter"]);
    // The operator grants all of public; the plugin asked for two tables.
    let config = "[plugins.grants.test-reporter]\nread = [\"public.*\"]\n";
    let server = spawn(&db, config, Some(dir.path())).await;
    let books = server.call("count_rows", json!({"table": "books"})).await;
    assert_eq!(books.is_error, Some(false), "{}", text_of(&books));
    let customers = server
        .call("count_rows", json!({"table": "customers"}))
        .await;
    assert_eq!(customers.is_error, Some(true));
    assert!(
        text_of(&customers).starts_with("denied (read-grant): relation public.customers"),
        "{}",
        text_of(&customers)
    );
    server.shutdown().await;
}

#[test]
fn a_second_start_compiles_nothing() {
    let dir = plugin_dir_with(&["hello", "test-reporter"]);
    let cache = tempfile::tempdir().unwrap();
    let config = format!(
        "[plugins]\ndisabled = [\"sql-write\"]\n\n[plugins.cache]\ndir = \"{}\"\n",
        cache.path().display()
    );
    let compiled = |log: &str| log.matches("(now cached)").count();
    let cached = |log: &str| log.matches("loaded compiled plugin from the cache").count();

    let (_, _, cold) = plugins_logged("list", &config, Some(dir.path()));
    assert_eq!((compiled(&cold), cached(&cold)), (5, 0), "{cold}");
    let (_, _, warm) = plugins_logged("list", &config, Some(dir.path()));
    assert_eq!((compiled(&warm), cached(&warm)), (0, 5), "{warm}");

    // A changed plugin misses; the others still hit.
    std::fs::copy(
        crate::support::plugin_wasm("test-looper"),
        dir.path().join("hello.wasm"),
    )
    .unwrap();
    let (_, _, changed) = plugins_logged("list", &config, Some(dir.path()));
    assert_eq!((compiled(&changed), cached(&changed)), (1, 4), "{changed}");
}

#[tokio::test]
async fn a_clash_is_refused_until_a_prefix_resolves_it() {
    let db = fresh_db().await;
    let dir = plugin_dir_with(&["test-clash", "hello"]);

    // Unresolved: the clashing plugin is not loaded; the others work.
    let (code, text) = plugins("list", "", Some(dir.path()));
    assert_eq!(code, 1, "{text}");
    let line = text
        .lines()
        .find(|l| l.contains("test-clash.wasm"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        line.contains(
            "FAILED: plugin test-clash offers tool query, which plugin sql-read already offers"
        ),
        "{line}"
    );
    assert!(line.contains("prefix"), "{line}");
    let server = spawn(&db, "", Some(dir.path())).await;
    let q = server
        .call("query", json!({"sql": "SELECT 1 AS one"}))
        .await;
    assert_eq!(q.is_error, Some(false), "{}", text_of(&q));
    assert_eq!(
        text_of(&server.call("hello", json!({"name": "Ada"})).await),
        "Hello, Ada!"
    );
    server.shutdown().await;

    // Resolved by a prefix; its config value comes from the environment
    // and shows in no listing or log.
    // SAFETY: the variable is read by the child process only.
    unsafe { std::env::set_var("SLUICE_E2E_CLASH_TOKEN", "tok-51f7") };
    let config = "[plugins.grants.test-clash]\nprefix = \"clash_\"\n\n\
                  [plugins.config.test-clash]\ntoken = \"${SLUICE_E2E_CLASH_TOKEN}\"\n";
    let (_, text, log) = plugins_logged("check", config, Some(dir.path()));
    let clash = block(&text, "test-clash");
    assert!(clash.contains("tools     clash_query"), "{clash}");
    assert!(clash.contains("prompts   clash_analyze_table"), "{clash}");
    assert!(
        clash.contains("config    token (values not shown)"),
        "{clash}"
    );
    assert!(!text.contains("tok-51f7") && !log.contains("tok-51f7"));
    let server = spawn(&db, config, Some(dir.path())).await;
    let r = server.call("clash_query", json!({})).await;
    assert_eq!(text_of(&r), "shadow query; token=tok-51f7");
    let q = server
        .call("query", json!({"sql": "SELECT 2 AS two"}))
        .await;
    assert_eq!(q.is_error, Some(false), "{}", text_of(&q));
    let prompt = server.get_prompt("clash_analyze_table", &[]).await.unwrap();
    assert_eq!(prompt.messages.len(), 1);
    server.shutdown().await;

    // An unset variable keeps the plugin from loading, naming the variable.
    let unset = "[plugins.grants.test-clash]\nprefix = \"clash_\"\n\n\
                 [plugins.config.test-clash]\ntoken = \"${SLUICE_E2E_NOT_SET_ANYWHERE}\"\n";
    let (code, text) = plugins("list", unset, Some(dir.path()));
    assert_eq!(code, 1);
    assert!(
        text.contains("[plugins.config.test-clash] token references ${SLUICE_E2E_NOT_SET_ANYWHERE}, which is not set"),
        "{text}"
    );
}
