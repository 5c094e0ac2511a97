//! Config mistakes are loud: a grant, config table, `disabled` entry or key
//! scope naming a plugin that is not loaded stops `serve` and fails
//! `plugins check`, with the closest loaded name; a plugin that may arrive
//! later is named in `[plugins] expected`; a plugin change that orphans a
//! name is logged while serving goes on; a TOML error shows its line with
//! a caret under the column.

use crate::support::{REQUEST_TIMEOUT, fresh_db, plugin_wasm, spawn_at, structured};
use serde_json::json;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `sluice args…` in an empty directory with `config` as `sluice.toml`
/// and no database settings in the environment; (exit code, stdout, stderr).
fn sluice(args: &[&str], config: &str, dir: Option<&Path>) -> (i32, String, String) {
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("sluice.toml"), config).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
    cmd.args(args).current_dir(work.path()).stdin(Stdio::null());
    if let Some(dir) = dir {
        cmd.arg("--plugins").arg(dir);
    }
    for var in ["DATABASE_URL", "DB_HOST", "DB_NAME"] {
        cmd.env_remove(var);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The `sluice: ` lines of a log.
fn error_lines(log: &str) -> Vec<&str> {
    log.lines().filter(|l| l.starts_with("sluice: ")).collect()
}

#[tokio::test]
async fn a_misnamed_plugin_anywhere_in_the_config_stops_serve_and_fails_check() {
    let db = fresh_db().await;
    let dir = crate::support::plugin_dir_with(&["hello"]);
    // Compiled ahead: a plugin still compiling defers the name check until
    // it is loaded, and `serve` below has no client to wait that long.
    let (code, out, log) = sluice(&["plugins", "compile"], "", Some(dir.path()));
    assert_eq!(code, 0, "{out}{log}");
    let (_, key_entry) = crate::support::new_key("ci");
    let cases = [
        // The operator's restriction would silently not apply: sql-read
        // would keep reading all of public.
        (
            "[plugins.grants.sql_read]\nread = [\"public.film\"]\n".to_string(),
            "[plugins.grants.sql_read] names plugin \"sql_read\", which is not loaded; \
             did you mean sql-read?",
        ),
        (
            "[plugins.config.helo]\ngreeting = \"hi\"\n".to_string(),
            "[plugins.config.helo] names plugin \"helo\", which is not loaded; did you mean hello?",
        ),
        (
            "[plugins]\ndisabled = [\"sql-writer\"]\n".to_string(),
            "[plugins] disabled names plugin \"sql-writer\", which is not loaded; \
             did you mean sql-write?",
        ),
        (
            format!("{key_entry}plugins = [\"sql_read\"]\n"),
            "[[http.auth.keys]] \"ci\" plugins names plugin \"sql_read\", which is not loaded; \
             did you mean sql-read?",
        ),
        (
            "[plugins.grants.geo]\nread = [\"public.*\"]\n".to_string(),
            "[plugins.grants.geo] names plugin \"geo\", which is not loaded; loaded plugins: \
             hello, sql-insight, sql-read, sql-write (a plugin that may be absent, to arrive later by hot \
             reload, must be listed in [plugins] expected)",
        ),
    ];
    for (config, message) in &cases {
        let (code, stdout, log) = sluice(
            &["serve", "--database-url", &db.url],
            config,
            Some(dir.path()),
        );
        assert_ne!(code, 0, "serve started with:\n{config}\n{log}");
        assert!(stdout.is_empty(), "{stdout}");
        assert_eq!(error_lines(&log), [format!("sluice: {message}")], "{log}");

        for sub in ["check", "list"] {
            let (code, stdout, log) = sluice(&["plugins", sub], config, Some(dir.path()));
            assert_eq!(code, 1, "plugins {sub} passed:\n{config}\n{stdout}");
            assert!(
                stdout.contains(&format!("config errors:\n  {message}\n")),
                "plugins {sub}:\n{stdout}"
            );
            assert_eq!(
                error_lines(&log),
                ["sluice: 1 config entry names a plugin that is not loaded"],
                "{log}"
            );
        }
    }

    // Over HTTP too: the key's scope is checked before anything is served.
    let (code, _, log) = sluice(
        &["serve", "--http", "127.0.0.1:0", "--database-url", &db.url],
        &cases[3].0,
        Some(dir.path()),
    );
    assert_ne!(code, 0, "{log}");
    assert_eq!(
        error_lines(&log),
        [format!("sluice: {}", cases[3].1)],
        "{log}"
    );

    // Several at once: all of them, one per line.
    let (code, _, log) = sluice(
        &["serve", "--database-url", &db.url],
        &format!("{}\n{}", cases[0].0, cases[2].0),
        Some(dir.path()),
    );
    assert_ne!(code, 0, "{log}");
    let at = log.find("sluice: ").expect("an error");
    assert_eq!(
        log[at..].trim_end(),
        format!(
            "sluice: 2 config entries name plugins that are not loaded:\n  {}\n  {}",
            cases[0].1, cases[2].1
        )
    );
}

#[tokio::test]
async fn an_expected_plugin_may_arrive_later_and_gets_its_grant() {
    let db = fresh_db().await;
    let dir = tempfile::tempdir().unwrap();
    let grant = "[plugins.grants.test-reporter]\nread = [\"public.*\"]\ncatalog = true\n\
                 timeout_ms = 60000\n";
    let config = format!("[plugins]\nexpected = [\"test-reporter\"]\n\n{grant}");

    // Without the opt-in, a grant for an absent plugin is a mistake.
    let (code, stdout, _) = sluice(&["plugins", "check"], grant, Some(dir.path()));
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains(
            "[plugins.grants.test-reporter] names plugin \"test-reporter\", which is not loaded"
        ),
        "{stdout}"
    );

    // With it, check passes and says what it waits for.
    let (code, stdout, log) = sluice(&["plugins", "check"], &config, Some(dir.path()));
    assert_eq!(code, 0, "{stdout}\n{log}");
    assert!(
        stdout.contains("expected, not loaded yet ([plugins] expected): test-reporter\n"),
        "{stdout}"
    );

    // serve starts, says so in its log, and the plugin dropped in later
    // is served under its grant.
    let log = tempfile::NamedTempFile::new().unwrap();
    let server = spawn_at(
        &db.url,
        &config,
        Some(dir.path()),
        Stdio::from(log.reopen().unwrap()),
    )
    .await;
    let text = std::fs::read_to_string(log.path()).unwrap();
    assert!(
        text.lines().any(|l| l.contains(
            "INFO sluice::registry::names: expected plugin is not loaded yet; its grant and \
             config apply when it arrives plugin=test-reporter"
        )),
        "{text}"
    );
    let seen = server.tool_list_changes();
    let tmp = dir.path().join(".reporter.part");
    std::fs::copy(plugin_wasm("test-reporter"), &tmp).unwrap();
    std::fs::rename(&tmp, dir.path().join("reporter.wasm")).unwrap();
    server.wait_tool_list_changed(seen).await;
    let counted = server.call("count_rows", json!({"table": "books"})).await;
    assert_eq!(
        counted.is_error,
        Some(false),
        "{}",
        crate::support::text_of(&counted)
    );
    assert_eq!(crate::support::text_of(&counted), "20");
    server.shutdown().await;
}

#[tokio::test]
async fn a_plugin_change_that_orphans_a_config_name_is_logged_and_serving_goes_on() {
    let db = fresh_db().await;
    let dir = crate::support::plugin_dir_with(&["hello"]);
    let config = "[plugins.config.hello]\ngreeting = \"hi\"\n";
    let log = tempfile::NamedTempFile::new().unwrap();
    let server = spawn_at(
        &db.url,
        config,
        Some(dir.path()),
        Stdio::from(log.reopen().unwrap()),
    )
    .await;
    let seen = server.tool_list_changes();
    std::fs::remove_file(dir.path().join("hello.wasm")).unwrap();
    server.wait_tool_list_changed(seen).await;

    let wanted = "ERROR sluice::registry::live: after the plugin change: [plugins.config.hello] \
                  names plugin \"hello\", which is not loaded; loaded plugins: sql-insight, sql-read, \
                  sql-write";
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    loop {
        let text = std::fs::read_to_string(log.path()).unwrap();
        if text.lines().any(|l| l.contains(wanted)) {
            break;
        }
        assert!(Instant::now() < deadline, "no {wanted:?} in:\n{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let q = server
        .call("query", json!({"sql": "SELECT 1 AS one"}))
        .await;
    assert_eq!(structured(&q)["rows"], json!([{"one": 1}]));
    server.shutdown().await;
}

#[test]
fn a_toml_error_shows_its_line_with_the_caret_under_the_column() {
    let (code, stdout, log) = sluice(&["serve"], "[database]\nurl = postgres://x\n", None);
    assert_ne!(code, 0);
    assert!(stdout.is_empty(), "{stdout}");
    let at = log.find("sluice: ").expect("an error");
    let lines: Vec<&str> = log[at..].lines().collect();
    assert_eq!(
        lines[0],
        "sluice: config file sluice.toml is invalid: string values must be quoted, expected \
         literal string",
        "{log}"
    );
    assert_eq!(lines[1], " --> sluice.toml:2:7", "{log}");
    let source = lines
        .iter()
        .position(|l| l.starts_with("2 | "))
        .unwrap_or_else(|| panic!("no source line in:\n{log}"));
    assert_eq!(lines[source], "2 | url = postgres://x");
    let caret = lines[source + 1]
        .find('^')
        .unwrap_or_else(|| panic!("no caret in:\n{log}"));
    assert_eq!(
        lines[source].get(caret..caret + 1),
        Some("p"),
        "the caret is not under the value:\n{log}"
    );

    // An unknown key says which, first, then where.
    let (_, _, log) = sluice(&["serve"], "[plugins]\ndir = \"p\"\ndisabeld = []\n", None);
    let at = log.find("sluice: ").expect("an error");
    let lines: Vec<&str> = log[at..].lines().collect();
    assert!(
        lines[0].starts_with(
            "sluice: config file sluice.toml is invalid: unknown field `disabeld`, expected one of"
        ),
        "{log}"
    );
    assert_eq!(lines[1], " --> sluice.toml:3:1", "{log}");
    assert_eq!(lines[4], "  | ^^^^^^^^", "{log}");
}

#[test]
fn an_error_and_its_cause_are_each_printed_once() {
    let (code, _, log) = sluice(&["serve", "--config", "missing.toml"], "", None);
    assert_ne!(code, 0);
    assert_eq!(
        error_lines(&log),
        ["sluice: cannot read config file missing.toml: No such file or directory (os error 2)"],
        "{log}"
    );
}
