//! Several `sluice serve --http` replicas on loopback, sharing one config
//! and one database, behind a real haproxy: what a team runs for
//! availability and rolling upgrades.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{RoleClient, ServiceExt as _};

use crate::command::precompile;
use crate::{
    REQUEST_TIMEOUT, Recorder, config_file, free_port, http_client, needed_here, new_key,
    sluice_bin,
};

/// How long a replica may take to answer `/readyz` after it starts.
const START_LIMIT: Duration = Duration::from_secs(60);

/// haproxy's configuration: round robin over the replicas, health-checked
/// on `/readyz` every 200 ms (one failure takes a replica out), sessions of
/// the 2025 protocol kept to the replica that made them by their
/// `Mcp-Session-Id`, and a request whose connection failed or got no answer
/// tried again elsewhere.
fn haproxy_config(front: u16, stats: u16, replicas: &[u16]) -> String {
    let servers: String = replicas
        .iter()
        .enumerate()
        .map(|(i, port)| format!("    server r{} 127.0.0.1:{port} check\n", i + 1))
        .collect();
    format!(
        "global
    maxconn 2000

defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 10s
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response response-timeout

frontend mcp
    bind 127.0.0.1:{front}
    default_backend sluice

backend sluice
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 200ms fall 1 rise 2
    stick-table type string len 64 size 100k expire 30m
    stick on req.hdr(mcp-session-id)
    stick store-response res.hdr(mcp-session-id)
{servers}
listen stats
    bind 127.0.0.1:{stats}
    stats enable
    stats uri /stats
"
    )
}

/// One replica: its port, and its process while it runs.
struct Replica {
    port: u16,
    child: Option<tokio::process::Child>,
}

/// Replicas behind haproxy. Dropping it kills them all.
pub struct Balanced {
    /// `http://127.0.0.1:PORT` of haproxy's front end.
    pub base: String,
    /// The bearer key every replica accepts.
    pub key: String,
    url: String,
    replicas: Vec<Replica>,
    stats: u16,
    /// haproxy, and its configuration file.
    _haproxy: Option<(tokio::process::Child, tempfile::NamedTempFile)>,
    config: tempfile::NamedTempFile,
    logs: tempfile::TempDir,
}

impl Balanced {
    /// `count` replicas against `url`, each with `config_toml` and one
    /// shared bearer key (its entry ending with `key_settings`), behind
    /// haproxy; `None` (the test skipped) when haproxy is not installed
    /// outside CI.
    pub async fn start(
        url: &str,
        config_toml: &str,
        key_settings: &str,
        count: usize,
    ) -> Option<Balanced> {
        // haproxy says its version to `-v` (`--version` exits 1).
        let found = std::process::Command::new("haproxy")
            .arg("-v")
            .output()
            .is_ok_and(|o| o.status.success());
        if !needed_here(
            found,
            "haproxy",
            "apt-get install haproxy",
            "the replica tests behind a load balancer",
        ) {
            return None;
        }
        sluice::install_crypto_provider();
        let (key, entry) = new_key("client");
        let config_toml = format!("{config_toml}\n{entry}{key_settings}");
        let config = config_file(&config_toml);
        precompile(config.path(), url, None, &config_toml);
        let logs = tempfile::tempdir().unwrap();
        let mut balanced = Balanced {
            base: String::new(),
            key,
            url: url.to_string(),
            replicas: (0..count)
                .map(|_| Replica {
                    port: free_port(),
                    child: None,
                })
                .collect(),
            stats: free_port(),
            _haproxy: None,
            config,
            logs,
        };
        for i in 0..count {
            balanced.launch(i).await;
        }
        let front = free_port();
        let ports: Vec<u16> = balanced.replicas.iter().map(|r| r.port).collect();
        let haproxy_config = config_file(&haproxy_config(front, balanced.stats, &ports));
        let haproxy = tokio::process::Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(haproxy_config.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("starting haproxy");
        balanced._haproxy = Some((haproxy, haproxy_config));
        balanced.base = format!("http://127.0.0.1:{front}");
        for i in 0..count {
            balanced.wait_in_rotation(i).await;
        }
        Some(balanced)
    }

    /// An MCP session through the balancer (the 2025 protocol), whose
    /// handler counts `notifications/tools/list_changed`.
    pub async fn client(&self) -> RunningService<RoleClient, Recorder> {
        let transport = StreamableHttpClientTransport::with_client(
            http_client(),
            StreamableHttpClientTransportConfig::with_uri(format!("{}/mcp", self.base))
                .auth_header(self.key.clone()),
        );
        tokio::time::timeout(REQUEST_TIMEOUT, Recorder::default().serve(transport))
            .await
            .expect("initialize timed out")
            .expect("initialize failed")
    }

    /// `http://127.0.0.1:PORT` of replica `i` itself, past the balancer.
    pub fn replica(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.replicas[i].port)
    }

    /// Replica `i`'s log so far.
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.log_path(i)).unwrap_or_default()
    }

    fn log_path(&self, i: usize) -> PathBuf {
        self.logs.path().join(format!("replica-{}.log", i + 1))
    }

    /// Starts replica `i` on its port and waits until it is ready.
    async fn launch(&mut self, i: usize) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(i))
            .unwrap();
        let child = tokio::process::Command::new(sluice_bin())
            .arg("serve")
            .arg("--http")
            .arg(format!("127.0.0.1:{}", self.replicas[i].port))
            .arg("--config")
            .arg(self.config.path())
            .arg("--database-url")
            .arg(&self.url)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .expect("starting a replica");
        self.replicas[i].child = Some(child);
        let ready = format!("{}/readyz", self.replica(i));
        let started = Instant::now();
        loop {
            if let Ok(answer) = http_client().get(&ready).send().await
                && answer.status() == 200
            {
                return;
            }
            if let Some(Ok(Some(status))) = self.replicas[i].child.as_mut().map(|c| c.try_wait()) {
                panic!("replica {} exited ({status}):\n{}", i + 1, self.log(i));
            }
            assert!(
                started.elapsed() < START_LIMIT,
                "replica {} not ready in time:\n{}",
                i + 1,
                self.log(i)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends SIGTERM to replica `i` and waits for it to exit; its exit
    /// status.
    pub async fn terminate(&mut self, i: usize) -> std::process::ExitStatus {
        let mut child = self.replicas[i].child.take().expect("replica running");
        let pid = child.id().expect("replica pid") as i32;
        // SAFETY: a plain kill(2) of our own child.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        tokio::time::timeout(Duration::from_secs(60), child.wait())
            .await
            .expect("replica did not exit within 60 s of SIGTERM")
            .unwrap()
    }

    /// A rolling restart's step: replica `i` terminated, started again on
    /// the same port, and back in haproxy's rotation.
    pub async fn restart(&mut self, i: usize) {
        let status = self.terminate(i).await;
        assert!(status.success(), "replica {} exited with {status}", i + 1);
        self.launch(i).await;
        self.wait_in_rotation(i).await;
    }

    /// Waits until haproxy's health check has replica `i` up.
    pub async fn wait_in_rotation(&self, i: usize) {
        let started = Instant::now();
        loop {
            if let Some(row) = self.stats().await.get(i)
                && row.up
            {
                return;
            }
            assert!(
                started.elapsed() < START_LIMIT,
                "haproxy never saw replica {} up",
                i + 1
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// haproxy's view of each replica, in order.
    pub async fn stats(&self) -> Vec<ServerStats> {
        let Ok(answer) = http_client()
            .get(format!("http://127.0.0.1:{}/stats;csv", self.stats))
            .send()
            .await
        else {
            return Vec::new();
        };
        let text = answer.text().await.unwrap_or_default();
        let mut lines = text.lines();
        let Some(header) = lines.next() else {
            return Vec::new();
        };
        let columns: Vec<&str> = header.trim_start_matches("# ").split(',').collect();
        let column = |name: &str| columns.iter().position(|c| *c == name);
        let (Some(px), Some(sv), Some(status), Some(ok)) = (
            column("pxname"),
            column("svname"),
            column("status"),
            column("hrsp_2xx"),
        ) else {
            return Vec::new();
        };
        let mut rows: Vec<(usize, ServerStats)> = lines
            .map(|l| l.split(',').collect::<Vec<_>>())
            .filter(|f| f.get(px) == Some(&"sluice"))
            .filter_map(|f| {
                let n = f.get(sv)?.strip_prefix('r')?.parse::<usize>().ok()?;
                Some((
                    n,
                    ServerStats {
                        up: f.get(status)?.starts_with("UP"),
                        answered_2xx: f.get(ok)?.parse().unwrap_or(0),
                    },
                ))
            })
            .collect();
        rows.sort_by_key(|(n, _)| *n);
        rows.into_iter().map(|(_, s)| s).collect()
    }
}

/// One replica as haproxy sees it.
#[derive(Debug, Clone, Copy)]
pub struct ServerStats {
    /// Its health check passes.
    pub up: bool,
    /// Answers with a 2xx status it gave through haproxy.
    pub answered_2xx: u64,
}
