//! A private, throwaway PostgreSQL cluster built from the local installation.
//!
//! `sluice demo` and the end-to-end tests use [`PgCluster`] when no database
//! URL is given: it runs `initdb` into a fresh temporary directory, starts the
//! server on a free port of 127.0.0.1 with durability switched off (the data
//! is disposable), and stops the server and removes the directory again when
//! [`PgCluster::stop`] is called or the value is dropped.
//!
//! PostgreSQL refuses to run as root, so when this process is root every
//! PostgreSQL program runs as the `postgres` OS user instead, and the data
//! directory is handed to that user.
//!
//! Nothing here writes to stdout (it belongs to the MCP protocol): the output
//! of the PostgreSQL programs is captured or sent to the server log, and
//! progress is reported through `tracing`.

use std::ffi::OsStr;
use std::fmt;
use std::io::{self, Read, Seek, SeekFrom};
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Output, Stdio};
use std::time::Duration;

use sqlx::Connection as _;

/// How long `initdb` may take.
const INITDB_TIMEOUT: Duration = Duration::from_secs(120);
/// How long `pg_ctl start` waits for the server to accept connections.
const START_TIMEOUT_SECS: u64 = 60;
/// How long `pg_ctl stop` waits for the server to shut down.
const STOP_TIMEOUT_SECS: u64 = 30;
/// How long connecting to the cluster (for [`PgCluster::create_database`]) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How many ports are tried when the chosen one was taken in the meantime.
const PORT_ATTEMPTS: usize = 3;
/// How many lines of `server.log` an error quotes.
const LOG_TAIL_LINES: usize = 30;
/// Longest Unix socket path the kernel accepts (`sun_path` less its NUL).
const MAX_SOCKET_PATH: usize = 107;
/// Where Debian-style installations keep one `bin` directory per major version.
const PG_LIB_DIR: &str = "/usr/lib/postgresql";

/// Settings appended to the new cluster's `postgresql.conf`. The cluster is
/// throwaway, so durability is traded for speed.
const SETTINGS: &str = "\
# Added by sluice: a private, throwaway cluster.
listen_addresses = '127.0.0.1'
fsync = off
synchronous_commit = off
full_page_writes = off
max_wal_senders = 0
wal_level = minimal
log_destination = 'stderr'
logging_collector = off
timezone = 'UTC'
log_timezone = 'UTC'
";

/// Why a private cluster could not be started, used or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The PostgreSQL server programs are not installed where we look.
    #[error(
        "PostgreSQL server programs (initdb, pg_ctl, postgres) were not found on PATH \
         or under {PG_LIB_DIR}/*/bin; install PostgreSQL (e.g. `apt-get install postgresql`) \
         or pass a database URL instead"
    )]
    NotInstalled,

    /// This process is root, which PostgreSQL refuses, and there is no
    /// `postgres` OS user to run it as instead.
    #[error(
        "PostgreSQL refuses to run as root and there is no `postgres` OS user to run it as; \
         run as a normal user, create a `postgres` user, or pass a database URL instead"
    )]
    NoPostgresUser,

    /// The `postgres` OS user cannot reach the data directory.
    #[error(
        "the `postgres` OS user cannot reach {}: {reason}; choose a directory it can \
         traverse (e.g. under /tmp) or pass a database URL instead",
        path.display()
    )]
    Inaccessible {
        /// The directory that is out of reach.
        path: PathBuf,
        /// Which ancestor blocks the way.
        reason: String,
    },

    /// A file system operation or spawning a program failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// A PostgreSQL program exited unsuccessfully.
    #[error("`{program}` failed ({status}): {output}")]
    Command {
        /// The program's name, e.g. `initdb`.
        program: String,
        /// How it exited.
        status: ExitStatus,
        /// What it wrote to stdout and stderr, trimmed.
        output: String,
    },

    /// The server did not start; `log` is the end of its `server.log`.
    #[error("PostgreSQL did not start on port {port}: {reason}\n--- end of server.log ---\n{log}")]
    StartFailed {
        /// The port it was asked to listen on.
        port: u16,
        /// What `pg_ctl` reported.
        reason: String,
        /// The last lines of the server log.
        log: String,
    },

    /// A PostgreSQL program did not finish in time.
    #[error("`{program}` did not finish within {} s", timeout.as_secs())]
    Timeout {
        /// The program's name.
        program: String,
        /// How long it was given.
        timeout: Duration,
    },

    /// A setting for the cluster is unusable (a file name with a path in it).
    #[error("invalid cluster setup: {0}")]
    Setup(String),

    /// Talking SQL to the cluster failed.
    #[error("SQL on the private cluster failed: {0}")]
    Sql(#[from] sqlx::Error),
}

impl ClusterError {
    fn io(context: impl Into<String>, source: io::Error) -> Self {
        ClusterError::Io {
            context: context.into(),
            source,
        }
    }
}

/// The directory holding the PostgreSQL server programs.
#[derive(Debug, Clone)]
struct PgBin {
    dir: PathBuf,
}

impl PgBin {
    fn program(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Finds a directory holding `initdb`, `pg_ctl` and `postgres`: first
    /// through `initdb` on PATH (following symlinks, so that the programs come
    /// from one installation), then the highest version under
    /// `/usr/lib/postgresql/*/bin`.
    fn find() -> Result<PgBin, ClusterError> {
        let path_var = std::env::var_os("PATH").unwrap_or_default();
        Self::find_in(&path_var, Path::new(PG_LIB_DIR))
    }

    fn find_in(path_var: &OsStr, lib_dir: &Path) -> Result<PgBin, ClusterError> {
        for entry in std::env::split_paths(path_var) {
            if entry.as_os_str().is_empty() {
                continue;
            }
            let initdb = entry.join("initdb");
            if !is_executable(&initdb) {
                continue;
            }
            let Ok(real) = std::fs::canonicalize(&initdb) else {
                continue;
            };
            if let Some(dir) = real.parent()
                && is_server_bin_dir(dir)
            {
                return Ok(PgBin {
                    dir: dir.to_path_buf(),
                });
            }
        }

        let mut versions: Vec<(Vec<u64>, PathBuf)> = Vec::new();
        if let Ok(entries) = std::fs::read_dir(lib_dir) {
            for entry in entries.flatten() {
                let name = entry.file_name();
                let Some(version) = parse_version(&name) else {
                    continue;
                };
                let dir = entry.path().join("bin");
                if is_server_bin_dir(&dir) {
                    versions.push((version, dir));
                }
            }
        }
        versions.sort();
        versions
            .pop()
            .map(|(_, dir)| PgBin { dir })
            .ok_or(ClusterError::NotInstalled)
    }
}

/// A program of the PostgreSQL installation clusters are started from
/// (`pgbench`, `psql`, ...), when that installation has it.
pub fn find_program(name: &str) -> Result<PathBuf, ClusterError> {
    let path = PgBin::find()?.program(name);
    if is_executable(&path) {
        Ok(path)
    } else {
        Err(ClusterError::NotInstalled)
    }
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn is_server_bin_dir(dir: &Path) -> bool {
    ["initdb", "pg_ctl", "postgres"]
        .iter()
        .all(|name| is_executable(&dir.join(name)))
}

/// Parses a version directory name such as `15` or `9.6`.
fn parse_version(name: &OsStr) -> Option<Vec<u64>> {
    name.to_str()?
        .split('.')
        .map(|part| part.parse().ok())
        .collect()
}

/// Which OS user the PostgreSQL programs run as.
#[derive(Debug, Clone, Copy)]
enum RunAs {
    /// This process's own user.
    Myself,
    /// Another user (`postgres`, because this process is root).
    User { uid: u32, gid: u32 },
}

impl RunAs {
    fn detect() -> Result<RunAs, ClusterError> {
        if effective_uid() != Some(0) {
            return Ok(RunAs::Myself);
        }
        let (uid, gid) = lookup_user("postgres").ok_or(ClusterError::NoPostgresUser)?;
        if uid == 0 {
            return Err(ClusterError::NoPostgresUser);
        }
        Ok(RunAs::User { uid, gid })
    }

    fn apply_std(self, command: &mut std::process::Command) {
        if let RunAs::User { uid, gid } = self {
            command.uid(uid).gid(gid);
        }
    }

    fn apply_tokio(self, command: &mut tokio::process::Command) {
        if let RunAs::User { uid, gid } = self {
            command.uid(uid).gid(gid);
        }
    }

    /// Hands `path` to the user the programs run as.
    fn give(self, path: &Path) -> Result<(), ClusterError> {
        if let RunAs::User { uid, gid } = self {
            std::os::unix::fs::chown(path, Some(uid), Some(gid)).map_err(|e| {
                ClusterError::io(format!("cannot hand {} to `postgres`", path.display()), e)
            })?;
        }
        Ok(())
    }

    /// Checks that the user can traverse every ancestor of `dir` (the
    /// directory itself is handed to them). Mode bits only: ACLs and
    /// supplementary groups are not considered.
    fn check_reachable(self, dir: &Path) -> Result<(), ClusterError> {
        let RunAs::User { uid, gid } = self else {
            return Ok(());
        };
        for ancestor in dir.ancestors().skip(1) {
            if ancestor.as_os_str().is_empty() {
                continue;
            }
            let meta = std::fs::metadata(ancestor).map_err(|e| {
                ClusterError::io(format!("cannot inspect {}", ancestor.display()), e)
            })?;
            let mode = meta.mode();
            let can = if meta.uid() == uid {
                mode & 0o100 != 0
            } else if meta.gid() == gid {
                mode & 0o010 != 0
            } else {
                mode & 0o001 != 0
            };
            if !can {
                return Err(ClusterError::Inaccessible {
                    path: dir.to_path_buf(),
                    reason: format!(
                        "{} (mode {:o}) is not searchable by it",
                        ancestor.display(),
                        mode & 0o7777
                    ),
                });
            }
        }
        Ok(())
    }
}

/// The effective uid of this process, from `/proc/self/status` or `id -u`.
fn effective_uid() -> Option<u32> {
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        let uid = status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            .and_then(|id| id.parse().ok());
        if uid.is_some() {
            return uid;
        }
    }
    id_command(&["-u"])
}

/// Looks up a user's uid and primary gid in `/etc/passwd`, then through `id`
/// (which also consults NSS).
fn lookup_user(name: &str) -> Option<(u32, u32)> {
    if let Ok(passwd) = std::fs::read_to_string("/etc/passwd") {
        for line in passwd.lines() {
            let mut fields = line.split(':');
            if fields.next() != Some(name) {
                continue;
            }
            let _password = fields.next();
            let uid = fields.next().and_then(|f| f.parse().ok());
            let gid = fields.next().and_then(|f| f.parse().ok());
            if let (Some(uid), Some(gid)) = (uid, gid) {
                return Some((uid, gid));
            }
        }
    }
    Some((id_command(&["-u", name])?, id_command(&["-g", name])?))
}

fn id_command(args: &[&str]) -> Option<u32> {
    let output = std::process::Command::new("id")
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    String::from_utf8_lossy(&output.stdout).trim().parse().ok()
}

/// A private PostgreSQL server started from the local installation, reachable
/// over TCP on 127.0.0.1 as the superuser `postgres` without a password.
///
/// Stop it with [`PgCluster::stop`]; dropping it also stops it (immediately,
/// synchronously, best effort) so that a panicking test does not leak a
/// server.
pub struct PgCluster {
    bin: PgBin,
    run_as: RunAs,
    /// The data directory.
    dir: PathBuf,
    /// Owns the data directory; `None` once stopped (and removed).
    data: Option<tempfile::TempDir>,
    port: u16,
    /// Whether a server may be running (pg_ctl start was attempted).
    running: bool,
}

impl fmt::Debug for PgCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgCluster")
            .field("bin", &self.bin.dir)
            .field("data_dir", &self.dir)
            .field("port", &self.port)
            .field("running", &self.running)
            .finish()
    }
}

/// What a cluster gets beyond the defaults (for tests of connection
/// handling: TLS, authentication methods).
#[derive(Debug, Clone, Default)]
pub struct ClusterSetup {
    /// Lines appended to `postgresql.conf` after sluice's own settings.
    pub settings: Vec<String>,
    /// The whole `pg_hba.conf`, replacing initdb's (which trusts every
    /// local connection).
    pub hba: Option<String>,
    /// Files written into the data directory, readable by the server's OS
    /// user only (TLS certificates and keys): `(file name, contents)`.
    pub files: Vec<(String, Vec<u8>)>,
}

impl PgCluster {
    /// Starts a new private cluster in a fresh temporary directory (under
    /// `$TMPDIR`, or `/tmp` when running as root and the `postgres` user
    /// cannot reach `$TMPDIR`). The directory is removed when the cluster is
    /// stopped or dropped.
    pub async fn start() -> Result<PgCluster, ClusterError> {
        Self::start_configured(&ClusterSetup::default()).await
    }

    /// As [`PgCluster::start`], with `setup` applied before the server first
    /// starts.
    pub async fn start_configured(setup: &ClusterSetup) -> Result<PgCluster, ClusterError> {
        let bin = PgBin::find()?;
        let run_as = RunAs::detect()?;
        let mut base = std::env::temp_dir();
        if run_as.check_reachable(&base.join("x")).is_err() {
            base = PathBuf::from("/tmp");
        }
        let dir = tempfile::Builder::new()
            .prefix("sluice-pg-")
            .tempdir_in(&base)
            .map_err(|e| {
                ClusterError::io(
                    format!("cannot create a temporary directory in {}", base.display()),
                    e,
                )
            })?;
        Self::start_with(bin, run_as, dir, setup).await
    }

    async fn start_with(
        bin: PgBin,
        run_as: RunAs,
        data: tempfile::TempDir,
        setup: &ClusterSetup,
    ) -> Result<PgCluster, ClusterError> {
        let dir = data.path().to_path_buf();
        run_as.check_reachable(&dir)?;
        run_as.give(&dir)?;

        // From here on, dropping `cluster` (on any error) cleans up.
        let mut cluster = PgCluster {
            bin,
            run_as,
            dir: dir.clone(),
            data: Some(data),
            port: 0,
            running: false,
        };
        tracing::info!(bin = %cluster.bin.dir.display(), data_dir = %dir.display(), "creating a private PostgreSQL cluster");
        cluster.initdb(&dir).await?;
        cluster.configure(&dir, setup)?;

        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = free_port()?;
            cluster.port = port;
            match cluster.pg_ctl_start(&dir, port).await {
                Ok(()) => break,
                Err(ClusterError::StartFailed { log, .. })
                    if attempt < PORT_ATTEMPTS && port_was_taken(&log) =>
                {
                    tracing::debug!(port, "port was taken meanwhile; trying another");
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        tracing::info!(port = cluster.port, "private PostgreSQL cluster is running");
        Ok(cluster)
    }

    /// Runs `initdb`, with the C.UTF-8 locale where the system has it (so
    /// that `lower()` and friends handle non-ASCII letters) and plain C
    /// otherwise.
    async fn initdb(&self, dir: &Path) -> Result<(), ClusterError> {
        let mut result = Ok(());
        for locale in ["C.UTF-8", "C"] {
            let mut command = self.command("initdb");
            command
                .arg("-D")
                .arg(dir)
                .args(["-U", "postgres", "--auth=trust", "-E", "UTF8"])
                .arg(format!("--locale={locale}"))
                .args(["--no-sync", "--no-instructions"]);
            let output = run(command, "initdb", INITDB_TIMEOUT).await?;
            let text = output_text(&output);
            tracing::debug!(output = %text, locale, "initdb finished");
            if output.status.success() {
                return Ok(());
            }
            // initdb checks the locale before writing anything, so trying the
            // next one in the same directory is safe. (Its messages are in
            // English: LC_ALL=C.)
            let locale_rejected = text.contains("invalid locale");
            result = Err(ClusterError::Command {
                program: "initdb".into(),
                status: output.status,
                output: text,
            });
            if !locale_rejected {
                break;
            }
        }
        result
    }

    /// Appends our settings (and `setup`'s) to `postgresql.conf`, and writes
    /// `setup`'s `pg_hba.conf` and files.
    fn configure(&self, dir: &Path, setup: &ClusterSetup) -> Result<(), ClusterError> {
        for (name, contents) in &setup.files {
            if name.is_empty() || name.contains('/') || name.starts_with('.') {
                return Err(ClusterError::Setup(format!(
                    "{name:?} is not a plain file name"
                )));
            }
            self.write_private(&dir.join(name), contents)?;
        }
        if let Some(hba) = &setup.hba {
            self.write_private(&dir.join("pg_hba.conf"), hba.as_bytes())?;
        }
        let conf = dir.join("postgresql.conf");
        let mut settings = String::from(SETTINGS);
        settings.push_str(&format!(
            "unix_socket_directories = '{}'\n",
            socket_directory(dir)
        ));
        for line in &setup.settings {
            settings.push_str(line);
            settings.push('\n');
        }
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&conf)
            .map_err(|e| ClusterError::io(format!("cannot open {}", conf.display()), e))?;
        io::Write::write_all(&mut file, settings.as_bytes())
            .map_err(|e| ClusterError::io(format!("cannot write {}", conf.display()), e))
    }

    /// Writes `path` readable by the server's OS user only (PostgreSQL
    /// refuses a private key others can read).
    fn write_private(&self, path: &Path, contents: &[u8]) -> Result<(), ClusterError> {
        std::fs::write(path, contents)
            .map_err(|e| ClusterError::io(format!("cannot write {}", path.display()), e))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| ClusterError::io(format!("cannot restrict {}", path.display()), e))?;
        self.run_as.give(path)
    }

    /// Stops the server (`pg_ctl stop -m fast`) but keeps the cluster, so
    /// that [`PgCluster::restart`] can start it again on the same port.
    pub async fn stop_server(&mut self) -> Result<(), ClusterError> {
        if !self.running {
            return Ok(());
        }
        let Some(dir) = self.data.as_ref().map(|d| d.path().to_path_buf()) else {
            return Ok(());
        };
        self.pg_ctl_stop(&dir).await?;
        self.running = false;
        tracing::info!(
            port = self.port,
            "private PostgreSQL server stopped (cluster kept)"
        );
        Ok(())
    }

    /// Starts the server again after [`PgCluster::stop_server`], on the same
    /// port and data directory.
    pub async fn restart(&mut self) -> Result<(), ClusterError> {
        if self.running {
            return Ok(());
        }
        let Some(dir) = self.data.as_ref().map(|d| d.path().to_path_buf()) else {
            return Err(ClusterError::Setup("the cluster was removed".into()));
        };
        let port = self.port;
        self.pg_ctl_start(&dir, port).await?;
        tracing::info!(port, "private PostgreSQL server restarted");
        Ok(())
    }

    async fn pg_ctl_stop(&self, dir: &Path) -> Result<(), ClusterError> {
        let mut command = self.command("pg_ctl");
        command.arg("stop").arg("-D").arg(dir).args([
            "-m",
            "fast",
            "-w",
            "-t",
            &STOP_TIMEOUT_SECS.to_string(),
        ]);
        let timeout = Duration::from_secs(STOP_TIMEOUT_SECS + 15);
        match run(command, "pg_ctl stop", timeout).await {
            Ok(output) if output.status.success() => Ok(()),
            Ok(output) => Err(ClusterError::Command {
                program: "pg_ctl stop".into(),
                status: output.status,
                output: output_text(&output),
            }),
            Err(e) => Err(e),
        }
    }

    async fn pg_ctl_start(&mut self, dir: &Path, port: u16) -> Result<(), ClusterError> {
        let log = dir.join("server.log");
        let log_offset = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
        let mut command = self.command("pg_ctl");
        command
            .arg("start")
            .arg("-D")
            .arg(dir)
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", &START_TIMEOUT_SECS.to_string()])
            .args(["-o", &format!("-p {port}")]);
        self.running = true;
        let timeout = Duration::from_secs(START_TIMEOUT_SECS + 15);
        let failure = match run(command, "pg_ctl start", timeout).await {
            Ok(output) if output.status.success() => return Ok(()),
            Ok(output) => output_text(&output),
            Err(e) => e.to_string(),
        };
        // Whatever is left of a failed start must not linger into the next
        // attempt (or survive us).
        self.stop_immediately();
        Err(ClusterError::StartFailed {
            port,
            reason: failure,
            log: log_tail(&log, log_offset),
        })
    }

    /// A command for one of the PostgreSQL programs, run as the right user,
    /// with no stdin and captured stdout and stderr.
    fn command(&self, program: &str) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(self.bin.program(program));
        command
            .current_dir("/")
            .env_remove("PGDATA")
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        self.run_as.apply_tokio(&mut command);
        command
    }

    /// The URL of `database` on this cluster, as the superuser `postgres`
    /// without a password: `postgres://postgres@127.0.0.1:PORT/DATABASE`
    /// (the name percent-encoded where needed).
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/{}",
            self.port,
            crate::db::conninfo::percent_encode(database)
        )
    }

    /// The TCP port the server listens on (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory of the server's Unix socket (`.s.PGSQL.PORT`), unless
    /// the data directory's path was unfit for one (TCP only then).
    pub fn socket_dir(&self) -> Option<&Path> {
        (!socket_directory(&self.dir).is_empty()).then_some(self.dir.as_path())
    }

    /// Runs `sql` (one or more statements, simple protocol) as the superuser
    /// in the `postgres` database: to create roles and the like.
    pub async fn execute(&self, sql: &str) -> Result<(), ClusterError> {
        let mut connection = self.superuser_connection().await?;
        let result = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(&mut connection)
            .await;
        let _ = connection.close().await;
        result?;
        Ok(())
    }

    /// A connection to the `postgres` database as the superuser, over TCP
    /// without TLS (whatever `ssl` the cluster was given).
    async fn superuser_connection(&self) -> Result<sqlx::PgConnection, ClusterError> {
        use sqlx::ConnectOptions as _;
        let options = sqlx::postgres::PgConnectOptions::new_without_pgpass()
            .host("127.0.0.1")
            .port(self.port)
            .username("postgres")
            .database("postgres")
            .ssl_mode(sqlx::postgres::PgSslMode::Disable);
        tokio::time::timeout(CONNECT_TIMEOUT, options.connect())
            .await
            .map_err(|_| ClusterError::Timeout {
                program: "connect".into(),
                timeout: CONNECT_TIMEOUT,
            })?
            .map_err(ClusterError::from)
    }

    /// The cluster's data directory; the server log is `server.log` in it.
    pub fn data_dir(&self) -> &Path {
        &self.dir
    }

    /// Creates an empty database called `name` (quoted as an identifier, so
    /// it is taken literally), connecting to the `postgres` database.
    pub async fn create_database(&self, name: &str) -> Result<(), ClusterError> {
        let mut connection = self.superuser_connection().await?;
        let statement = format!("CREATE DATABASE {}", crate::db::quote_ident(name));
        let result = sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
            .execute(&mut connection)
            .await;
        // Closing politely is a nicety; the statement's outcome is what counts.
        let _ = connection.close().await;
        result?;
        tracing::debug!(database = name, "created database");
        Ok(())
    }

    /// Stops the cluster (`pg_ctl stop -m fast`) and removes its data
    /// directory if it is a temporary one.
    pub async fn stop(mut self) -> Result<(), ClusterError> {
        let Some(data) = self.data.take() else {
            return Ok(());
        };
        if self.running {
            if let Err(error) = self.pg_ctl_stop(data.path()).await {
                // Put the data back so that Drop still tries an immediate stop.
                self.data = Some(data);
                return Err(error);
            }
            self.running = false;
        }
        tracing::info!(port = self.port, "private PostgreSQL cluster stopped");
        let path = data.path().to_path_buf();
        data.close()
            .map_err(|e| ClusterError::io(format!("cannot remove {}", path.display()), e))?;
        Ok(())
    }

    /// Synchronously stops the server with `pg_ctl stop -m immediate`, if it
    /// may be running; best effort.
    fn stop_immediately(&mut self) {
        if !self.running {
            return;
        }
        let Some(dir) = self.data.as_ref().map(tempfile::TempDir::path) else {
            return;
        };
        if !dir.join("postmaster.pid").exists() {
            self.running = false;
            return;
        }
        let mut command = std::process::Command::new(self.bin.program("pg_ctl"));
        command
            .arg("stop")
            .arg("-D")
            .arg(dir)
            .args(["-m", "immediate", "-w", "-t", "10"])
            .current_dir("/")
            .env_remove("PGDATA")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.run_as.apply_std(&mut command);
        match command.status() {
            Ok(status) if status.success() => {
                tracing::debug!(
                    port = self.port,
                    "private PostgreSQL cluster stopped (immediate)"
                )
            }
            Ok(status) => {
                tracing::warn!(port = self.port, %status, "pg_ctl stop -m immediate failed")
            }
            Err(error) => tracing::warn!(port = self.port, %error, "cannot run pg_ctl stop"),
        }
        self.running = false;
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        self.stop_immediately();
        // Dropping the temporary directory removes it.
        self.data = None;
    }
}

/// Runs `command` to completion with a deadline, capturing its output.
async fn run(
    mut command: tokio::process::Command,
    program: &str,
    timeout: Duration,
) -> Result<Output, ClusterError> {
    let child = command
        .spawn()
        .map_err(|e| ClusterError::io(format!("cannot run `{program}`"), e))?;
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(result) => result.map_err(|e| ClusterError::io(format!("cannot run `{program}`"), e)),
        // The child is killed when its future is dropped (kill_on_drop).
        Err(_) => Err(ClusterError::Timeout {
            program: program.into(),
            timeout,
        }),
    }
}

fn output_text(output: &Output) -> String {
    let mut text = String::from_utf8_lossy(&output.stdout).trim().to_string();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stderr = stderr.trim();
    if !stderr.is_empty() {
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(stderr);
    }
    text
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
fn free_port() -> Result<u16, ClusterError> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| ClusterError::io("cannot find a free port on 127.0.0.1", e))?;
    let port = listener
        .local_addr()
        .map_err(|e| ClusterError::io("cannot find a free port on 127.0.0.1", e))?
        .port();
    Ok(port)
}

fn port_was_taken(log: &str) -> bool {
    log.contains("Address already in use") || log.contains("could not bind")
}

/// The directory for the server's Unix socket: the data directory when its
/// path is plain and short enough, otherwise none (TCP only).
fn socket_directory(dir: &Path) -> String {
    let Some(path) = dir.to_str() else {
        return String::new();
    };
    let plain = path
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+".contains(c));
    // Room for "/.s.PGSQL.65535.lock".
    if plain && path.len() + 20 <= MAX_SOCKET_PATH {
        path.to_string()
    } else {
        String::new()
    }
}

/// The last lines of the log written after `offset`.
fn log_tail(log: &Path, offset: u64) -> String {
    let read = || -> io::Result<String> {
        let mut file = std::fs::File::open(log)?;
        file.seek(SeekFrom::Start(offset))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    match read() {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            let start = lines.len().saturating_sub(LOG_TAIL_LINES);
            lines[start..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", log.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_highest_version_in_the_lib_dir() {
        let root = tempfile::tempdir().expect("tempdir");
        for version in ["9.6", "15", "13", "notaversion"] {
            let bin = root.path().join(version).join("bin");
            std::fs::create_dir_all(&bin).expect("mkdir");
            for program in ["initdb", "pg_ctl", "postgres"] {
                let path = bin.join(program);
                std::fs::write(&path, "").expect("write");
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                    .expect("chmod");
            }
        }
        // 16 lacks pg_ctl, so it does not count.
        let incomplete = root.path().join("16").join("bin");
        std::fs::create_dir_all(&incomplete).expect("mkdir");
        std::fs::write(incomplete.join("initdb"), "").expect("write");

        let empty = tempfile::tempdir().expect("tempdir");
        let found = PgBin::find_in(empty.path().as_os_str(), root.path()).expect("found");
        assert_eq!(found.dir, root.path().join("15").join("bin"));

        // PATH wins over the lib dir.
        let path_var = root.path().join("13").join("bin");
        let found = PgBin::find_in(path_var.as_os_str(), root.path()).expect("found");
        assert_eq!(found.dir, path_var);

        let missing = PgBin::find_in(empty.path().as_os_str(), empty.path());
        assert!(matches!(missing, Err(ClusterError::NotInstalled)));
    }

    /// Starts a real cluster when PostgreSQL is installed (skips otherwise),
    /// loads the demo schema and checks that stopping removes everything.
    #[tokio::test]
    async fn starts_loads_the_demo_schema_and_stops() {
        let cluster = match PgCluster::start().await {
            Ok(cluster) => cluster,
            Err(error @ (ClusterError::NotInstalled | ClusterError::NoPostgresUser)) => {
                eprintln!("skipped: {error}");
                return;
            }
            Err(error) => panic!("cannot start a cluster: {error}"),
        };
        let dir = cluster.data_dir().to_path_buf();
        assert!(
            cluster
                .url("shop")
                .ends_with(&format!(":{}/shop", cluster.port()))
        );
        cluster
            .create_database("shop")
            .await
            .expect("create database");
        cluster
            .create_database("odd \"name\"")
            .await
            .expect("create database with an odd name");

        let mut connection = sqlx::PgConnection::connect(&cluster.url("shop"))
            .await
            .expect("connect");
        sqlx::raw_sql(include_str!("../demo/schema.sql"))
            .execute(&mut connection)
            .await
            .expect("load the demo schema");
        let (price, tags, status): (String, String, String) = sqlx::query_as(
            "SELECT price::text, tags::text, \
             (SELECT status::text FROM orders WHERE order_id = 1) \
             FROM books WHERE book_id = 1",
        )
        .fetch_one(&mut connection)
        .await
        .expect("query");
        assert_eq!(price, "12.50");
        assert_eq!(tags, "{classic,romance,satire}");
        assert_eq!(status, "shipped");
        connection.close().await.expect("close");

        let odd = sqlx::PgConnection::connect(&cluster.url("odd \"name\""))
            .await
            .expect("connect to the oddly named database");
        odd.close().await.expect("close");

        cluster.stop().await.expect("stop");
        assert!(!dir.exists(), "{} should be gone", dir.display());
    }

    #[test]
    fn parses_versions() {
        assert_eq!(parse_version(OsStr::new("15")), Some(vec![15]));
        assert_eq!(parse_version(OsStr::new("9.6")), Some(vec![9, 6]));
        assert_eq!(parse_version(OsStr::new("x")), None);
        assert!(parse_version(OsStr::new("9.6")) < parse_version(OsStr::new("15")));
    }

    #[test]
    fn socket_directory_falls_back_to_none() {
        assert_eq!(
            socket_directory(Path::new("/tmp/sluice-pg-ab")),
            "/tmp/sluice-pg-ab"
        );
        assert_eq!(socket_directory(Path::new("/tmp/a b")), "");
        assert_eq!(
            socket_directory(&Path::new("/tmp").join("x".repeat(100))),
            ""
        );
    }
}
