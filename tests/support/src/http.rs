//! `sluice serve --http` children on a free loopback port.

use std::process::Stdio;

use rmcp::{
    RoleClient, ServiceExt as _,
    service::RunningService,
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};

use crate::{REQUEST_TIMEOUT, ServerLog, command::precompile, config_file, new_key, sluice_bin};

/// A `sluice serve --http` child on a free loopback port, with one key.
pub struct HttpServer {
    pub child: tokio::process::Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// The bearer key its configuration holds.
    pub key: String,
    _config: tempfile::NamedTempFile,
}

impl HttpServer {
    /// An initialized MCP session over HTTP, authenticated with `key`.
    pub async fn client(&self, key: &str) -> RunningService<RoleClient, ()> {
        let transport = StreamableHttpClientTransport::with_client(
            http_client(),
            StreamableHttpClientTransportConfig::with_uri(format!("{}/mcp", self.base))
                .auth_header(key),
        );
        tokio::time::timeout(REQUEST_TIMEOUT, ().serve(transport))
            .await
            .expect("initialize timed out")
            .expect("initialize failed")
    }
}

/// Starts `sluice serve --http` against `url` with `config_toml` and a new
/// key, whose entry ends with `key_settings` (its own rate limit, say). The
/// child's log is echoed to stderr when `echo_log`, else discarded.
pub async fn spawn_http(
    url: &str,
    config_toml: &str,
    key_settings: &str,
    echo_log: bool,
) -> HttpServer {
    start_http(url, config_toml, key_settings, echo_log, false)
        .await
        .0
}

/// As [`spawn_http`], keeping the child's log (and echoing it to stderr) so
/// a test can count what it logged.
pub async fn spawn_http_logged(
    url: &str,
    config_toml: &str,
    key_settings: &str,
) -> (HttpServer, ServerLog) {
    start_http(url, config_toml, key_settings, true, true).await
}

/// As [`spawn_http_logged`], listening on `addr` (`127.0.0.1:PORT`): for a
/// config that has to name the server's own URL.
pub async fn spawn_http_logged_at(
    url: &str,
    config_toml: &str,
    key_settings: &str,
    addr: &str,
) -> (HttpServer, ServerLog) {
    start_http_at(url, config_toml, key_settings, true, true, addr).await
}

/// A loopback port free now, for a server that must know its address
/// before it starts.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding a free loopback port")
        .port()
}

/// Starts the server, echoing its log when `echo_log` and keeping it when
/// `keep_log` (a long run would otherwise pile up its lines); see
/// [`spawn_http`].
async fn start_http(
    url: &str,
    config_toml: &str,
    key_settings: &str,
    echo_log: bool,
    keep_log: bool,
) -> (HttpServer, ServerLog) {
    start_http_at(
        url,
        config_toml,
        key_settings,
        echo_log,
        keep_log,
        "127.0.0.1:0",
    )
    .await
}

async fn start_http_at(
    url: &str,
    config_toml: &str,
    key_settings: &str,
    echo_log: bool,
    keep_log: bool,
    addr: &str,
) -> (HttpServer, ServerLog) {
    use tokio::io::{AsyncBufReadExt as _, BufReader};
    // The tests' reqwest clients share sluice's build of reqwest, which has
    // no crypto provider of its own.
    sluice::install_crypto_provider();
    let (key, entry) = new_key("client");
    let config = config_file(&format!("{config_toml}\n{entry}{key_settings}"));
    precompile(config.path(), url, None, config_toml);
    let mut child = tokio::process::Command::new(sluice_bin())
        .args(["serve", "--http", addr, "--config"])
        .arg(config.path())
        .arg("--database-url")
        .arg(url)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let log = ServerLog::default();
    let keep = |line: String| {
        if echo_log {
            eprintln!("{line}");
        }
        if keep_log {
            log.push(line);
        }
    };
    // The log says which port was bound.
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = tokio::time::timeout(REQUEST_TIMEOUT, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let addr = line
                .contains("serving MCP over HTTP")
                .then(|| line.split("addr=").nth(1))
                .flatten()
                .and_then(|rest| rest.split_whitespace().next())
                .map(str::to_string);
            keep(line);
            if let Some(addr) = addr {
                return addr;
            }
        }
        panic!("sluice exited before serving HTTP");
    })
    .await
    .expect("sluice did not start serving HTTP in time");
    // Keep reading the log: a full pipe would stall the server.
    let rest = log.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            if echo_log {
                eprintln!("{line}");
            }
            if keep_log {
                rest.push(line);
            }
        }
    });
    let server = HttpServer {
        child,
        base: format!("http://{addr}"),
        key,
        _config: config,
    };
    (server, log)
}

/// A new HTTP client. reqwest, as sluice's build of it is configured, loads
/// the system's trust roots for every client it makes (tens of
/// milliseconds each); the tests speak plain HTTP, so every client shares
/// one TLS config, made once. Each call is still a client of its own, with
/// its own connections.
pub fn http_client() -> reqwest::Client {
    static TLS: std::sync::OnceLock<rustls::ClientConfig> = std::sync::OnceLock::new();
    let tls = TLS
        .get_or_init(|| {
            rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default TLS versions")
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth()
        })
        .clone();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .build()
        .expect("building an HTTP client")
}
