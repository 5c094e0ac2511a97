//! Command lines of the `sluice` binary under test: its configuration file,
//! `sluice serve`, `sluice plugins compile` and `sluice keys new`.

use std::{path::Path, process::Stdio};

use crate::sluice_bin;

/// A temporary file holding `config_toml`, for `--config` (keep it while
/// the server runs).
pub fn config_file(config_toml: &str) -> tempfile::NamedTempFile {
    let config = tempfile::Builder::new()
        .prefix("sluice-e2e-")
        .suffix(".toml")
        .tempfile()
        .expect("creating the config file");
    std::fs::write(config.path(), config_toml).expect("writing the config file");
    config
}

/// `sluice serve` over stdio against `url`, with `config_toml` written to
/// the returned file (keep it while the child runs), plugins from
/// `plugin_dir`, and `RUST_LOG` at `log` unless the environment sets it.
/// With `warm`, its plugins are compiled into the cache first (see
/// [`precompile`]). The child is killed when the command's child is
/// dropped, so a test that panics does not leave it running.
pub fn serve_command(
    url: &str,
    config_toml: &str,
    plugin_dir: Option<&Path>,
    log: &str,
    warm: bool,
) -> (tokio::process::Command, tempfile::NamedTempFile) {
    let config = config_file(config_toml);
    if warm {
        precompile(config.path(), url, plugin_dir, config_toml);
    }
    let mut command = tokio::process::Command::new(sluice_bin());
    command
        .arg("serve")
        .arg("--config")
        .arg(config.path())
        .arg("--database-url")
        .arg(url);
    if let Some(dir) = plugin_dir {
        command.arg("--plugins").arg(dir);
    }
    if std::env::var_os("RUST_LOG").is_none() {
        command.env("RUST_LOG", log);
    }
    command.kill_on_drop(true);
    (command, config)
}

/// Fills the compiled cache for a server's plugins (`sluice plugins
/// compile`), so that the server loads them all before it answers rather
/// than adding the ones it must compile later: tests expect a plugin's
/// tools from the start. Best effort: a config a test means to fail fails
/// here too, and the server under test then says why.
pub(crate) fn precompile(config: &Path, url: &str, plugin_dir: Option<&Path>, config_toml: &str) {
    if plugin_dir.is_none() && !config_toml.contains("dir =") {
        return;
    }
    let mut command = std::process::Command::new(sluice_bin());
    command
        .args(["plugins", "compile", "--config"])
        .arg(config)
        .arg("--database-url")
        .arg(url)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(dir) = plugin_dir {
        command.arg("--plugins").arg(dir);
    }
    let _ = command.status();
}

/// Makes a key with `sluice keys new`, exactly as an operator would: the key
/// and the `[[http.auth.keys]]` entry for the configuration.
pub fn new_key(id: &str) -> (String, String) {
    let out = std::process::Command::new(sluice_bin())
        .args(["keys", "new", "--id", id])
        .output()
        .unwrap();
    assert!(out.status.success());
    let key = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let stderr = String::from_utf8(out.stderr).unwrap();
    let entry = stderr[stderr
        .find("[[http.auth.keys]]")
        .expect("the entry is printed")..]
        .to_string();
    (key, entry)
}

/// Whether `program --version` runs here: a tool some tests need from
/// outside the workspace. In CI it must (`.ci/run` installs it), so a
/// missing one fails there; elsewhere the caller skips, saying so.
/// `install` says how to get it; `tests` names what is skipped.
pub fn tool_available(program: &str, install: &str, tests: &str) -> bool {
    let found = std::process::Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    needed_here(found, program, install, tests)
}

/// `found`, after saying so when it is not: `what` (not installed) fails
/// the test in CI, where `.ci/run` installs it, and elsewhere skips
/// `tests`, saying how to get it (`install`).
pub fn needed_here(found: bool, what: &str, install: &str, tests: &str) -> bool {
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{what} is not installed ({install})"
        );
        eprintln!("SKIPPED {tests}: {what} is not installed ({install})");
    }
    found
}
