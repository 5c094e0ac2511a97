//! A real OAuth 2.1 / OIDC authorization server for the OAuth tests:
//! npm's `oidc-provider`, run by `tests/oidc/provider.mjs` on loopback. It
//! issues client-credentials JWT access tokens for one resource server
//! (sluice), signed by a key it generates at each start.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, BufReader};

use crate::{http_client, needed_here, tool_available};

/// How long the provider may take to start (node loads a few hundred
/// modules on a small machine).
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Where `provider.mjs` and its `node_modules` are.
fn oidc_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../oidc"))
}

/// A client registered with the provider, for the client-credentials grant.
#[derive(Clone, Debug)]
pub struct OidcClient {
    pub id: String,
    pub secret: String,
    /// Extra claims (an object) for its access tokens, e.g.
    /// `{"groups": ["analysts"], "email": "alice@example.com"}`. The
    /// standard claims (`iss`, `sub`, `aud`, `scope`, ...) win a clash.
    pub claims: Value,
}

impl OidcClient {
    /// A client `id` with the secret `<id>-secret` and `claims`.
    pub fn new(id: &str, claims: Value) -> Self {
        Self {
            id: id.to_string(),
            secret: format!("{id}-secret"),
            claims,
        }
    }
}

/// A key the provider signs tokens with, as `provider.mjs` writes it.
#[derive(Clone, Debug, Deserialize)]
pub struct SigningKey {
    pub kid: String,
    /// `ES256` or `RS256`.
    pub alg: String,
    /// PKCS#8 PEM.
    pub private_pem: String,
    /// With `kid`, `alg` and `use: "sig"`, as the JWKS serves it.
    pub public_jwk: Value,
}

/// What [`OidcProvider::start_with`] may change.
#[derive(Clone, Debug)]
pub struct Options {
    /// `ES256` or `RS256`.
    pub alg: String,
    /// Access token lifetime.
    pub ttl: Duration,
    /// Opaque access tokens (checked by introspection) instead of JWTs.
    pub opaque: bool,
    /// People who may sign in at the provider's development login page
    /// (any password), each with the extra claims of their tokens, as
    /// `{"alice": {"groups": [...]}}`. With any, the provider also offers
    /// the authorization-code grant and dynamic client registration.
    pub accounts: Value,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            alg: "ES256".to_string(),
            ttl: Duration::from_secs(300),
            opaque: false,
            accounts: json!({}),
        }
    }
}

/// A running `oidc-provider`, killed when dropped.
///
/// Its discovery document is at `{issuer}/.well-known/openid-configuration`.
/// Token requests authenticate with `client_secret_post` (the provider
/// takes `client_secret_basic` too). Requested scopes outside the
/// configured ones are dropped from the token, not refused; a resource
/// other than the configured one is refused (`invalid_target`).
pub struct OidcProvider {
    /// `http://127.0.0.1:PORT`, the `iss` of its tokens.
    pub issuer: String,
    child: tokio::process::Child,
    /// Holds `config.json` and the key file.
    dir: tempfile::TempDir,
    resource: String,
    clients: Vec<OidcClient>,
    key: SigningKey,
}

impl OidcProvider {
    /// Starts a provider for the resource server `resource` (the `aud` of
    /// its tokens) accepting `scopes`, with `clients`, and ES256 tokens
    /// that live 5 minutes. `None`, after saying why on stderr, when node
    /// or oidc-provider is not installed here; in CI (where `.ci/run`
    /// installs them) that fails instead.
    pub async fn start(
        resource: &str,
        scopes: &[&str],
        clients: Vec<OidcClient>,
    ) -> Option<OidcProvider> {
        Self::start_with(resource, scopes, clients, Options::default()).await
    }

    /// As [`start`](Self::start), with another algorithm or token lifetime.
    pub async fn start_with(
        resource: &str,
        scopes: &[&str],
        clients: Vec<OidcClient>,
        options: Options,
    ) -> Option<OidcProvider> {
        if !installed() {
            return None;
        }
        // The tests' reqwest clients share sluice's build of reqwest, which
        // has no crypto provider of its own.
        sluice::install_crypto_provider();
        let dir = tempfile::Builder::new()
            .prefix("sluice-oidc-")
            .tempdir()
            .expect("creating the provider's directory");
        let config = json!({
            "port": 0,
            "resource": resource,
            "scopes": scopes,
            "clients": clients.iter().map(|c| json!({
                "client_id": c.id,
                "client_secret": c.secret,
                "claims": c.claims,
            })).collect::<Vec<_>>(),
            "keys_file": dir.path().join("key.json"),
            "alg": options.alg,
            "ttl": options.ttl.as_secs(),
            "format": if options.opaque { "opaque" } else { "jwt" },
            "accounts": options.accounts,
        });
        let (child, issuer, key) = launch(dir.path(), config).await;
        Some(OidcProvider {
            issuer,
            child,
            dir,
            resource: resource.to_string(),
            clients,
            key,
        })
    }

    /// A client-credentials access token for `client_id` with `scope`
    /// (space-separated; may be empty) for the configured resource. Panics
    /// with the provider's answer when it gives none.
    pub async fn token(&self, client_id: &str, scope: &str) -> String {
        let (status, body) = self
            .token_response(client_id, scope, Some(&self.resource))
            .await;
        match body["access_token"].as_str() {
            Some(token) if status == 200 => token.to_string(),
            _ => panic!("no token for {client_id} with scope {scope:?}: {status} {body}"),
        }
    }

    /// The token endpoint's answer, status and JSON body (a string if it is
    /// not JSON), to a client-credentials request by `client_id` for
    /// `scope` (space-separated; omitted when empty) and `resource`
    /// (omitted when `None`: the provider then defaults to the configured
    /// resource).
    pub async fn token_response(
        &self,
        client_id: &str,
        scope: &str,
        resource: Option<&str>,
    ) -> (u16, Value) {
        let client = self
            .clients
            .iter()
            .find(|c| c.id == client_id)
            .unwrap_or_else(|| panic!("no client {client_id} was registered"));
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("client_id", client.id.as_str()),
            ("client_secret", client.secret.as_str()),
        ];
        if !scope.is_empty() {
            form.push(("scope", scope));
        }
        if let Some(resource) = resource {
            form.push(("resource", resource));
        }
        let response = http_client()
            .post(format!("{}/token", self.issuer))
            .form(&form)
            .timeout(crate::REQUEST_TIMEOUT)
            .send()
            .await
            .expect("sending the token request");
        let status = response.status().as_u16();
        let bytes = response.bytes().await.expect("reading the token answer");
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, body)
    }

    /// The key signing tokens now (tests forge tokens with it).
    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// Rotates the signing key: stops the provider and starts it again on
    /// the same port (so the same issuer) with a new key, alone in its
    /// JWKS. Tokens it issued before are no longer verifiable with its
    /// JWKS, and it has forgotten any other state.
    pub async fn rotate(&mut self) {
        // Waits for the exit, so the port is free again.
        self.child
            .kill()
            .await
            .expect("stopping the provider to rotate its key");
        let config_path = self.dir.path().join("config.json");
        let mut config: Value = serde_json::from_slice(
            &std::fs::read(&config_path).expect("reading the provider's config"),
        )
        .expect("the provider's config is JSON");
        let port = self
            .issuer
            .rsplit(':')
            .next()
            .and_then(|port| port.parse::<u16>().ok())
            .expect("the issuer ends with its port");
        config["port"] = port.into();
        let (child, issuer, key) = launch(self.dir.path(), config).await;
        assert_eq!(issuer, self.issuer, "the provider restarted elsewhere");
        assert_ne!(key.kid, self.key.kid, "the provider kept its key");
        self.child = child;
        self.key = key;
    }
}

/// Whether node and oidc-provider are here (in CI they must be).
fn installed() -> bool {
    const INSTALL: &str = "npm ci --prefix tests/oidc";
    const TESTS: &str = "the OAuth tests";
    if !tool_available("node", &format!("Node.js 20, then {INSTALL}"), TESTS) {
        return false;
    }
    let found = oidc_dir()
        .join("node_modules/oidc-provider/package.json")
        .is_file();
    needed_here(found, "oidc-provider", INSTALL, TESTS)
}

/// Writes `config` to `dir` and starts `provider.mjs` on it: the child,
/// the issuer it printed when ready, and the key it generated. Its stderr
/// is echoed to the test's, line by line.
async fn launch(dir: &Path, config: Value) -> (tokio::process::Child, String, SigningKey) {
    let config_path = dir.join("config.json");
    std::fs::write(&config_path, config.to_string()).expect("writing the provider's config");
    let mut child = tokio::process::Command::new("node")
        .arg(oidc_dir().join("provider.mjs"))
        .arg(&config_path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("starting node");
    let mut stderr = BufReader::new(child.stderr.take().expect("piped stderr")).lines();
    let echo = tokio::spawn(async move {
        while let Ok(Some(line)) = stderr.next_line().await {
            eprintln!("oidc-provider: {line}");
        }
    });
    let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    let ready = tokio::time::timeout(START_TIMEOUT, async {
        while let Some(line) = stdout
            .next_line()
            .await
            .expect("reading the provider's stdout")
        {
            if let Some(issuer) = line.strip_prefix("READY ") {
                return Some(issuer.to_string());
            }
            eprintln!("oidc-provider: {line}");
        }
        None
    })
    .await
    .expect("oidc-provider did not get ready in time");
    let Some(issuer) = ready else {
        // Let its last words reach the test's stderr before failing.
        let _ = tokio::time::timeout(Duration::from_secs(5), echo).await;
        let status = child.wait().await;
        panic!("oidc-provider exited before it was ready ({status:?}; its stderr is above)");
    };
    // Nothing else is meant for stdout, but a full pipe would stall it.
    tokio::spawn(async move {
        while let Ok(Some(line)) = stdout.next_line().await {
            eprintln!("oidc-provider: {line}");
        }
    });
    let key = serde_json::from_slice(
        &std::fs::read(config["keys_file"].as_str().expect("keys_file is a path"))
            .expect("reading the provider's key file"),
    )
    .expect("the provider's key file holds a key");
    (child, issuer, key)
}
