//! `sluice demo`: a private PostgreSQL with a small sample database, served
//! over stdio, and stopped when the client goes away.
//!
//! The cluster must not outlive sluice even when sluice is killed outright
//! (SIGKILL, a crash), which runs none of its own cleanup: PostgreSQL runs
//! detached from it (`pg_ctl` starts the server in a session of its own), so
//! nothing would stop it or remove its directory. Two things do:
//! - a watchdog, a small shell started beside the cluster that waits for the
//!   end of a pipe only this process holds, and then stops the server and
//!   removes the directory;
//! - should the watchdog have been killed too, the next `sluice demo` stops
//!   and removes what a dead demo left (each demo marks its cluster with its
//!   process id).

use crate::config::{Config, GrantConfig};
use crate::pgcluster::PgCluster;
use anyhow::Context as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The sample schema and data sluice ships (a small bookshop).
pub const SCHEMA_SQL: &str = include_str!("../demo/schema.sql");

/// The demo database's name.
pub const DATABASE: &str = "sluice_demo";

/// The file in a demo cluster's data directory holding the demo's process id.
const OWNER_FILE: &str = "sluice-demo.pid";

/// How the private clusters' directories are named (see [`PgCluster::start`]).
const CLUSTER_DIR_PREFIX: &str = "sluice-pg-";

/// Loads the sample schema into the (empty) database at `url`.
pub async fn load_sample(url: &str) -> anyhow::Result<()> {
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(url).await?;
    sqlx::raw_sql(SCHEMA_SQL).execute(&mut conn).await?;
    conn.close().await?;
    Ok(())
}

/// Runs the demo until the client disconnects or a signal arrives.
pub async fn run(mut config: Config) -> anyhow::Result<()> {
    match tokio::task::spawn_blocking(|| sweep_leftovers(&cluster_bases())).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(clusters = n, "removed what demos that died left behind"),
        Err(e) => tracing::warn!("looking for clusters of demos that died: {e}"),
    }
    let cluster = PgCluster::start()
        .await
        .context("cannot start a private PostgreSQL (install PostgreSQL, or run `sluice serve --database-url …` against your own)")?;
    let watchdog = guard(cluster.data_dir());
    let result = async {
        cluster.create_database(DATABASE).await?;
        let url = cluster.url(DATABASE);
        load_sample(&url)
            .await
            .context("loading the sample schema")?;
        config.database.url = Some(url);
        // The sample data is disposable, so the demo lets the write plugin
        // write to it unless the operator's config says otherwise (and not
        // at all without the first-party plugins: a grant for a plugin
        // that is not loaded would stop the start).
        if config.plugins.first_party {
            config
                .plugins
                .grants
                .entry("sql-write".into())
                .or_insert_with(|| GrantConfig {
                    write: Some(vec!["public.*".into()]),
                    ..GrantConfig::default()
                });
        }
        tracing::info!("demo database ready on port {}", cluster.port());
        let serving = crate::app::start(&config).await?;
        let command = std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "sluice".into());
        eprint!("{}", greeting(cluster.port(), cluster.data_dir(), &command));
        serving.serve_stdio(&config).await
    }
    .await;
    if let Err(e) = cluster.stop().await {
        tracing::warn!("stopping the private PostgreSQL: {e}");
    }
    // Only now: the watchdog would remove what is left when its pipe closes.
    drop(watchdog);
    result
}

/// What the demo says on stderr once it serves: what it is, the Claude
/// Desktop entry that starts it (`command` is this binary) and how to stop.
fn greeting(port: u16, dir: &Path, command: &str) -> String {
    // A JSON string, quoted and escaped.
    let command = serde_json::Value::from(command);
    format!(
        "\n\
         sluice demo: an MCP server over a private PostgreSQL holding a sample bookshop\n\
         (authors, books, customers, orders, reviews), on port {port} with its data in\n\
         {dir}; both go away when the demo stops.\n\
         \n\
         It speaks MCP on stdin and stdout, so an MCP client starts it. For Claude\n\
         Desktop, add this to claude_desktop_config.json (other clients take the same\n\
         command and args):\n\
         \n\
         {{\n  \"mcpServers\": {{\n    \"sluice-demo\": {{\n      \"command\": {command},\n      \
         \"args\": [\"demo\"]\n    }}\n  }}\n}}\n\
         \n\
         To stop it, close its input (Ctrl-D) or press Ctrl-C.\n\
         \n",
        dir = dir.display(),
    )
}

/// The watchdog's script: `$1` is the data directory, and stdin a pipe whose
/// other end only sluice holds, so reading reaches its end when sluice is
/// gone, however it went. A stopped demo has removed the directory already;
/// otherwise the postmaster is shut down (SIGQUIT, PostgreSQL's immediate
/// shutdown) and the directory removed. The pid file is only believed when
/// that process runs in the data directory, so a stale file never gets
/// another process signalled.
const WATCHDOG: &str = r#"
trap '' HUP INT
dir=$1
cat >/dev/null
[ -d "$dir" ] || exit 0
real=$(cd "$dir" 2>/dev/null && pwd -P) || exit 0
pid=$(head -n 1 "$dir/postmaster.pid" 2>/dev/null)
case "$pid" in ''|*[!0-9]*) pid= ;; esac
if [ -n "$pid" ] && [ "$pid" -gt 1 ] && [ -d /proc ] \
    && [ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" != "$real" ]; then
    pid=
fi
# Running, and not a zombie (which init may never reap).
running() {
    kill -0 "$1" 2>/dev/null || return 1
    [ -r "/proc/$1/stat" ] || return 0
    case "$(sed 's/.*) //' "/proc/$1/stat")" in Z*|X*) return 1 ;; esac
}
if [ -n "$pid" ] && [ "$pid" -gt 1 ] && kill -QUIT "$pid" 2>/dev/null; then
    i=0
    while running "$pid" && [ "$i" -lt 100 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    kill -KILL "$pid" 2>/dev/null
fi
rm -rf "$dir"
"#;

/// Keeps the watchdog waiting; dropping it (or this process ending) lets it
/// clean up.
struct Watchdog {
    _pipe: std::process::ChildStdin,
}

/// Starts the watchdog of the cluster in `dir` and marks the directory as
/// this demo's. Neither is essential to serving, so failures are logged.
fn guard(dir: &Path) -> Option<Watchdog> {
    if let Err(e) = std::fs::write(dir.join(OWNER_FILE), std::process::id().to_string()) {
        tracing::warn!("cannot mark {} as this demo's: {e}", dir.display());
    }
    match start_watchdog(dir) {
        Ok(watchdog) => Some(watchdog),
        Err(e) => {
            tracing::warn!(
                "cannot start the watchdog that stops the private PostgreSQL should sluice be \
                 killed: {e}; the next `sluice demo` will stop it then"
            );
            None
        }
    }
}

fn start_watchdog(dir: &Path) -> std::io::Result<Watchdog> {
    use std::os::unix::process::CommandExt as _;
    use std::process::{Command, Stdio};
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(WATCHDOG)
        .arg("sluice-demo-watchdog")
        .arg(dir)
        .current_dir("/")
        .stdin(Stdio::piped())
        // stdout is the MCP protocol: the watchdog must not hold it open.
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Out of sluice's process group, so what is sent to the group (a
        // terminal's Ctrl-C, a host killing the group) leaves it running.
        .process_group(0)
        .spawn()?;
    let pipe = child
        .stdin
        .take()
        .ok_or_else(|| std::io::Error::other("the watchdog has no stdin"))?;
    // Not waited for: it exits after this process does.
    Ok(Watchdog { _pipe: pipe })
}

/// Where private clusters are created: the temporary directory, and `/tmp`
/// (used instead when running as root).
fn cluster_bases() -> Vec<PathBuf> {
    let mut bases = vec![std::env::temp_dir(), PathBuf::from("/tmp")];
    bases.dedup();
    bases
}

/// Stops and removes the clusters, under `bases`, of demos whose process is
/// gone; returns how many. Clusters of running demos, and those without a
/// demo's mark (the tests' clusters), are left alone.
fn sweep_leftovers(bases: &[PathBuf]) -> usize {
    let mut removed = 0;
    for base in bases {
        let Ok(entries) = std::fs::read_dir(base) else {
            continue;
        };
        for entry in entries.flatten() {
            let dir = entry.path();
            let named = entry
                .file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(CLUSTER_DIR_PREFIX));
            if !named || !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let Some(owner) = read_pid(&dir.join(OWNER_FILE)) else {
                continue;
            };
            if alive(owner) {
                continue;
            }
            if let Some(postmaster) = read_pid(&dir.join("postmaster.pid"))
                && runs_in(postmaster, &dir)
                && !shut_down(postmaster)
            {
                tracing::warn!(
                    pid = postmaster,
                    "cannot stop the PostgreSQL a dead demo left in {}",
                    dir.display()
                );
                continue;
            }
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => {
                    tracing::info!("removed {}, left by a demo that died", dir.display());
                    removed += 1;
                }
                Err(e) => tracing::warn!("cannot remove {}: {e}", dir.display()),
            }
        }
    }
    removed
}

/// The process id on the first line of `file`, if it names a process that
/// may be signalled alone (not 0, 1 or a group).
fn read_pid(file: &Path) -> Option<libc::pid_t> {
    let text = std::fs::read_to_string(file).ok()?;
    let pid: libc::pid_t = text.lines().next()?.trim().parse().ok()?;
    (pid > 1).then_some(pid)
}

/// Whether process `pid` runs (someone else's counts). A zombie, dead but
/// not yet reaped (for ever, where the init process does not reap), does not.
fn alive(pid: libc::pid_t) -> bool {
    if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // `pid (comm) state …`; comm may hold anything, so look after its `)`.
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next());
        return !matches!(state, Some('Z' | 'X'));
    }
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    let result = unsafe { libc::kill(pid, 0) };
    result == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Whether `pid` is a process running in `dir`, as a postmaster runs in its
/// data directory; where that cannot be seen (no `/proc`), whether it runs.
fn runs_in(pid: libc::pid_t, dir: &Path) -> bool {
    if !Path::new("/proc/self/cwd").exists() {
        return alive(pid);
    }
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd"));
    matches!((cwd, std::fs::canonicalize(dir)), (Ok(cwd), Ok(dir)) if cwd == dir)
}

/// Shuts the postmaster `pid` down at once (SIGQUIT, then SIGKILL); whether
/// it is gone.
fn shut_down(pid: libc::pid_t) -> bool {
    for (signal, wait) in [(libc::SIGQUIT, 100), (libc::SIGKILL, 50)] {
        // SAFETY: `pid` is above 1 (see `read_pid`), so this signals one process.
        unsafe { libc::kill(pid, signal) };
        for _ in 0..wait {
            if !alive(pid) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    !alive(pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A process id that was in use a moment ago and is no longer.
    fn dead_pid() -> libc::pid_t {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        libc::pid_t::try_from(pid).unwrap()
    }

    #[test]
    fn sweeping_removes_only_what_dead_demos_left() {
        let base = tempfile::tempdir().unwrap();
        let make = |name: &str, owner: Option<String>| {
            let dir = base.path().join(name);
            std::fs::create_dir(&dir).unwrap();
            std::fs::write(dir.join("PG_VERSION"), "15\n").unwrap();
            if let Some(owner) = owner {
                std::fs::write(dir.join(OWNER_FILE), owner).unwrap();
            }
            dir
        };
        let dead = make("sluice-pg-dead", Some(dead_pid().to_string()));
        let running = make("sluice-pg-running", Some(std::process::id().to_string()));
        let unmarked = make("sluice-pg-test", None);
        let garbled = make("sluice-pg-garbled", Some("-1".into()));
        let other = make("elsewhere", Some(dead_pid().to_string()));

        assert_eq!(sweep_leftovers(&[base.path().to_path_buf()]), 1);
        assert!(!dead.exists());
        for kept in [running, unmarked, garbled, other] {
            assert!(kept.exists(), "{} was removed", kept.display());
        }
    }

    #[test]
    fn the_greeting_holds_a_valid_desktop_entry() {
        let text = greeting(
            5433,
            Path::new("/tmp/sluice-pg-x"),
            "/opt/my \"odd\" dir/sluice",
        );
        assert!(
            text.contains("port 5433") && text.contains("/tmp/sluice-pg-x"),
            "{text}"
        );
        let start = text.find("\n{\n").expect("the entry starts a line") + 1;
        let end = text.find("\n}\n").expect("the entry ends a line") + 2;
        let entry: serde_json::Value = serde_json::from_str(&text[start..end]).expect("valid JSON");
        assert_eq!(
            entry,
            serde_json::json!({"mcpServers": {"sluice-demo": {
                "command": "/opt/my \"odd\" dir/sluice",
                "args": ["demo"]
            }}})
        );
    }

    #[test]
    fn pid_files_must_name_one_process() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pid");
        for (text, pid) in [
            ("4242\n/tmp/x\n", Some(4242)),
            ("0", None),
            ("1", None),
            ("-7", None),
            ("", None),
            ("x", None),
        ] {
            std::fs::write(&file, text).unwrap();
            assert_eq!(read_pid(&file), pid, "{text:?}");
        }
    }
}
