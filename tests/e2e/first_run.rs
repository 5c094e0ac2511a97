//! The first hour: `sluice config init` writes a file `plugins check`
//! passes, mistakes are one loud line, and `sluice demo` greets and leaves
//! nothing behind, even when killed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt as _, BufReader};

/// How long a killed demo's cluster may take to go.
const CLEANUP_BOUND: Duration = Duration::from_secs(30);

/// Runs `sluice args…` in `dir` with no database settings in the environment.
fn sluice_in(dir: &Path, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
    command.args(args).current_dir(dir).stdin(Stdio::null());
    for var in ["DATABASE_URL", "DB_HOST", "DB_NAME"] {
        command.env_remove(var);
    }
    command.output().expect("running sluice")
}

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The `sluice: …` lines of a run.
fn error_lines(output: &Output) -> Vec<String> {
    stderr_of(output)
        .lines()
        .filter(|l| l.starts_with("sluice: "))
        .map(str::to_string)
        .collect()
}

#[test]
fn config_init_writes_a_file_that_plugins_check_passes() {
    let dir = tempfile::tempdir().unwrap();
    let init = sluice_in(dir.path(), &["config", "init"]);
    assert!(init.status.success(), "{}", stderr_of(&init));
    let written = dir.path().join("sluice.toml");
    let text = std::fs::read_to_string(&written).expect("./sluice.toml was written");
    assert!(
        text.contains("[plugins.grants.sql-read]") && text.contains("[plugins.grants.sql-write]")
    );

    let check = sluice_in(dir.path(), &["plugins", "check", "--config", "sluice.toml"]);
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{report}{}", stderr_of(&check));
    assert!(
        report.contains("sql-read") && report.contains("sql-write"),
        "{report}"
    );

    // It is not overwritten by accident, and is with --force.
    std::fs::write(&written, "# mine\n").unwrap();
    let again = sluice_in(dir.path(), &["config", "init"]);
    assert!(!again.status.success());
    let lines = error_lines(&again);
    assert_eq!(lines.len(), 1, "{}", stderr_of(&again));
    assert!(
        lines[0].contains("already exists") && lines[0].contains("--force"),
        "{lines:?}"
    );
    assert_eq!(std::fs::read_to_string(&written).unwrap(), "# mine\n");

    let elsewhere = dir.path().join("etc/sluice.toml");
    let forced = sluice_in(
        dir.path(),
        &["config", "init", "--force", elsewhere.to_str().unwrap()],
    );
    assert!(forced.status.success(), "{}", stderr_of(&forced));
    assert_eq!(std::fs::read_to_string(&elsewhere).unwrap(), text);
    let forced = sluice_in(dir.path(), &["config", "init", "--force"]);
    assert!(forced.status.success(), "{}", stderr_of(&forced));
    assert_eq!(std::fs::read_to_string(&written).unwrap(), text);
}

#[test]
fn a_missing_config_file_says_why_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = sluice_in(
        dir.path(),
        &["serve", "--config", "/nonexistent/sluice.toml"],
    );
    assert!(!out.status.success());
    let lines = error_lines(&out);
    assert_eq!(lines.len(), 1, "{}", stderr_of(&out));
    assert!(
        lines[0].contains("cannot read config file /nonexistent/sluice.toml"),
        "{lines:?}"
    );
    assert_eq!(
        lines[0].matches("No such file or directory").count(),
        1,
        "the cause is printed more than once: {lines:?}"
    );
}

#[test]
fn new_plugin_refuses_first_party_names() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["sql-read", "sql-write"] {
        let out = sluice_in(dir.path(), &["new", "plugin", name]);
        assert!(!out.status.success(), "{name} was accepted");
        let lines = error_lines(&out);
        assert_eq!(lines.len(), 1, "{}", stderr_of(&out));
        assert!(
            lines[0].contains(name) && lines[0].contains("first-party"),
            "{lines:?}"
        );
        assert!(!dir.path().join(name).exists());
    }
}

/// A `sluice demo` child whose stdin is kept open (so it keeps serving) and
/// whose stderr is read for its greeting.
struct Demo {
    child: tokio::process::Child,
    /// The private cluster's data directory.
    dir: PathBuf,
    /// Its greeting.
    greeting: String,
}

impl Demo {
    async fn start() -> Demo {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_sluice"));
        command
            .arg("demo")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if std::env::var_os("RUST_LOG").is_none() {
            command.env("RUST_LOG", "info");
        }
        let mut child = command.spawn().expect("spawning sluice demo");
        let mut lines = BufReader::new(child.stderr.take().expect("piped stderr")).lines();
        let mut greeting = String::new();
        let mut dir = None;
        let read = async {
            while let Some(line) = lines.next_line().await.expect("reading stderr") {
                eprintln!("{line}");
                if line.starts_with("sluice demo:") {
                    greeting.clear();
                }
                greeting.push_str(&line);
                greeting.push('\n');
                // The greeting names the data directory (the log may name
                // others: leftovers of dead demos it removed).
                if dir.is_none() && greeting.starts_with("sluice demo:") {
                    dir = line
                        .split([' ', ';'])
                        .find(|w| w.contains("/sluice-pg-"))
                        .map(PathBuf::from);
                }
                if line.starts_with("To stop it") {
                    return true;
                }
            }
            false
        };
        let greeted = tokio::time::timeout(Duration::from_secs(120), read)
            .await
            .expect("the demo did not greet within 120 s");
        assert!(greeted, "the demo exited before greeting:\n{greeting}");
        // Keep echoing its log, so a failing test shows it.
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("{line}");
            }
        });
        let dir = dir.unwrap_or_else(|| panic!("no data directory in:\n{greeting}"));
        assert!(dir.is_dir(), "{} is not a directory", dir.display());
        Demo {
            child,
            dir,
            greeting,
        }
    }

    fn pid(&self) -> i32 {
        i32::try_from(self.child.id().expect("running")).unwrap()
    }
}

/// The pid in the cluster's `postmaster.pid`.
fn postmaster_pid(dir: &Path) -> i32 {
    let text = std::fs::read_to_string(dir.join("postmaster.pid")).expect("postmaster.pid");
    text.lines().next().unwrap().trim().parse().unwrap()
}

/// The processes running in `dir` (a postmaster and its children run in
/// their data directory), from `/proc`.
fn processes_in(dir: &Path) -> Vec<i32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        if let Ok(cwd) = std::fs::read_link(entry.path().join("cwd"))
            && cwd.starts_with(dir)
        {
            found.push(pid);
        }
    }
    found
}

/// Whether `pid` runs: it exists and is not a zombie (this machine's init
/// may never reap the orphans it inherits).
fn running(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !matches!(
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next()),
            Some('Z' | 'X')
        )
    })
}

/// The children of `pid`, from `/proc/*/stat`.
fn children_of(pid: i32) -> Vec<i32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid …; comm may hold spaces, so split after ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<i32>().ok());
        if ppid == Some(pid) && running(child) {
            found.push(child);
        }
    }
    found
}

fn sigkill(pid: i32) {
    let status = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -KILL {pid}");
}

/// Waits until neither `dir` nor any process running in it is left.
async fn assert_gone_within(dir: &Path, postmaster: i32, bound: Duration) {
    let started = Instant::now();
    loop {
        let processes = processes_in(dir);
        let postmaster_alive = running(postmaster);
        if !dir.exists() && processes.is_empty() && !postmaster_alive {
            return;
        }
        assert!(
            started.elapsed() < bound,
            "after {bound:?}: directory {} exists: {}, processes in it: {processes:?}, \
             postmaster {postmaster} alive: {postmaster_alive}",
            dir.display(),
            dir.exists()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn demo_greets_and_a_sigkill_leaves_no_cluster_behind() {
    let mut demo = Demo::start().await;
    for expected in [
        "sluice demo:",
        "\"mcpServers\"",
        "\"args\": [",
        "\"demo\"",
        "Ctrl-C",
    ] {
        assert!(
            demo.greeting.contains(expected),
            "the greeting lacks {expected}:\n{}",
            demo.greeting
        );
    }
    let postmaster = postmaster_pid(&demo.dir);
    assert!(!processes_in(&demo.dir).is_empty());

    demo.child.start_kill().expect("SIGKILL");
    demo.child.wait().await.unwrap();
    assert_gone_within(&demo.dir, postmaster, CLEANUP_BOUND).await;

    // Nothing was ever written to stdout, the protocol's channel.
    let mut stdout = demo.child.stdout.take().unwrap();
    let mut bytes = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut stdout, &mut bytes)
        .await
        .unwrap();
    assert!(
        bytes.is_empty(),
        "stdout: {}",
        String::from_utf8_lossy(&bytes)
    );
}

#[tokio::test]
async fn the_next_demo_removes_what_a_killed_demo_and_its_watchdog_left() {
    let mut first = Demo::start().await;
    let postmaster = postmaster_pid(&first.dir);
    // The watchdog is the demo's only child by now (pg_ctl has exited).
    let children = children_of(first.pid());
    assert_eq!(children.len(), 1, "children of the demo: {children:?}");
    sigkill(children[0]);
    first.child.start_kill().expect("SIGKILL");
    first.child.wait().await.unwrap();
    // Nothing cleaned up: the cluster runs on.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(first.dir.is_dir() && running(postmaster));

    let mut second = Demo::start().await;
    // By the time it greets, the leftover is gone.
    assert_gone_within(&first.dir, postmaster, Duration::ZERO).await;
    assert!(second.dir.is_dir());

    // Closing its input stops it, and it removes its own cluster.
    let second_postmaster = postmaster_pid(&second.dir);
    drop(second.child.stdin.take());
    let status = tokio::time::timeout(Duration::from_secs(60), second.child.wait())
        .await
        .expect("the demo did not stop after its input closed")
        .unwrap();
    assert!(status.success(), "{status}");
    assert_gone_within(&second.dir, second_postmaster, Duration::from_secs(5)).await;
}
