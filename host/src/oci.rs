//! Plugins through OCI registries, in the layout the wasm ecosystem ships
//! components with (the CNCF wasm OCI artifact layout that wasm-pkg-tools
//! uses): one layer of media type `application/wasm` holding the component,
//! and a config of media type `application/vnd.wasm.config.v0+json`.
//!
//! A pull checks the layer against the digest in the manifest (oci-client
//! does, as it streams) and reads at most a bounded number of bytes; what
//! the bytes are worth (their signature) is for [`crate::identity`].

use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use std::pin::Pin;
use std::task::{Context, Poll};

/// The media type of the layer that holds the component.
pub const WASM_LAYER: &str = "application/wasm";
/// The media type of the artifact's config.
pub const WASM_CONFIG: &str = "application/vnd.wasm.config.v0+json";
/// Environment variables with the registry's credentials (HTTP Basic);
/// without them the registry is used anonymously.
pub const USERNAME_VAR: &str = "SLUICE_REGISTRY_USERNAME";
pub const PASSWORD_VAR: &str = "SLUICE_REGISTRY_PASSWORD";

/// The lock file `plugins pull` keeps in the plugin directory.
pub const LOCK_FILE: &str = "plugins.lock";
/// The largest docker config file or lock file read.
const MAX_SMALL_FILE: u64 = 1024 * 1024;

/// Why a push or a pull failed.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error(
        "{reference:?} is not an OCI reference (registry/repository:tag or @sha256:…): {message}"
    )]
    Reference { reference: String, message: String },
    #[error("{0}")]
    Registry(String),
    #[error(
        "{reference} is not a wasm component artifact: {problem} (expected one layer of media type {WASM_LAYER})"
    )]
    NotWasm { reference: String, problem: String },
    #[error("{reference}: the component is {size} bytes, more than the {limit} bytes allowed")]
    TooLarge {
        reference: String,
        size: u64,
        limit: u64,
    },
    #[error(
        "{reference} moved: the lock file has {locked}, the registry now has {now}; \
         pull it without --locked to take the new one (and update the lock file)"
    )]
    Moved {
        reference: String,
        locked: String,
        now: String,
    },
    #[error("{path}: {message}")]
    Lock { path: String, message: String },
}

/// A registry client for one reference.
pub struct Registry {
    client: Client,
    reference: Reference,
    auth: RegistryAuth,
}

impl Registry {
    /// A client for `reference`. Registries on a loopback address, and all
    /// of them with `insecure`, are spoken to over plain HTTP; others over
    /// HTTPS.
    pub fn new(reference: &str, insecure: bool) -> Result<Registry, OciError> {
        let parsed: Reference = reference.parse().map_err(|e| OciError::Reference {
            reference: reference.to_string(),
            message: format!("{e}"),
        })?;
        let protocol = if insecure || is_loopback(parsed.resolve_registry()) {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        };
        // reqwest is built without a crypto provider of its own.
        crate::install_crypto_provider();
        let client = Client::new(ClientConfig {
            protocol,
            ..ClientConfig::default()
        });
        let auth = match (
            std::env::var(USERNAME_VAR).ok(),
            std::env::var(PASSWORD_VAR).ok(),
        ) {
            (Some(user), Some(password)) => RegistryAuth::Basic(user, password),
            _ => docker_config_auth(parsed.resolve_registry()).unwrap_or(RegistryAuth::Anonymous),
        };
        Ok(Registry {
            client,
            reference: parsed,
            auth,
        })
    }

    /// The reference, as parsed (with the default registry and tag filled in).
    pub fn reference(&self) -> String {
        self.reference.whole()
    }

    /// The file name a pulled plugin is written under: the repository's
    /// last path segment, `ghcr.io/acme/geo:1.2` → `geo.wasm`. The
    /// reference grammar keeps it a plain name (lower-case letters,
    /// digits, `.`, `_`, `-`).
    pub fn file_name(&self) -> String {
        let repository = self.reference.repository();
        let name = repository.rsplit('/').next().unwrap_or(repository);
        format!("{name}.wasm")
    }

    /// Publishes `wasm`, whose digest is `digest`; returns the manifest's
    /// URL.
    pub async fn push(&self, wasm: Vec<u8>, digest: &str) -> Result<String, OciError> {
        let layer = ImageLayer::new(wasm, WASM_LAYER.to_string(), None);
        let config = serde_json::json!({
            "architecture": "wasm",
            "os": "wasip2",
            "layerDigests": [digest],
        });
        let config = Config::new(
            serde_json::to_vec(&config).unwrap_or_default(),
            WASM_CONFIG.to_string(),
            None,
        );
        let pushed = self
            .client
            .push(&self.reference, &[layer], config, &self.auth, None)
            .await
            .map_err(|e| OciError::Registry(format!("pushing {}: {e}", self.reference())))?;
        Ok(pushed.manifest_url)
    }

    /// The component at the reference: its one `application/wasm` layer,
    /// at most `limit` bytes, checked against the manifest's digest, and the
    /// manifest's own digest. With `locked`, the manifest must be that one
    /// (the tag has not moved), or nothing is downloaded.
    pub async fn pull(&self, limit: u64, locked: Option<&str>) -> Result<Pulled, OciError> {
        let reference = self.reference();
        let (manifest, manifest_digest) = self
            .client
            .pull_image_manifest(&self.reference, &self.auth)
            .await
            .map_err(|e| OciError::Registry(format!("pulling {reference}: {e}")))?;
        if let Some(locked) = locked
            && locked != manifest_digest
        {
            return Err(OciError::Moved {
                reference,
                locked: locked.to_string(),
                now: manifest_digest,
            });
        }
        let not_wasm = |problem: String| OciError::NotWasm {
            reference: reference.clone(),
            problem,
        };
        let layer = match manifest.layers.as_slice() {
            [layer] if layer.media_type == WASM_LAYER => layer,
            [layer] => return Err(not_wasm(format!("its layer is {}", layer.media_type))),
            layers => return Err(not_wasm(format!("it has {} layers", layers.len()))),
        };
        let size = u64::try_from(layer.size).unwrap_or(u64::MAX);
        if size > limit {
            return Err(OciError::TooLarge {
                reference,
                size,
                limit,
            });
        }
        let mut out = Bounded {
            bytes: Vec::with_capacity(usize::try_from(size).unwrap_or(0)),
            limit,
        };
        self.client
            .pull_blob(&self.reference, layer, &mut out)
            .await
            .map_err(|e| OciError::Registry(format!("pulling {reference}: {e}")))?;
        if out.bytes.len() as u64 != size {
            return Err(not_wasm(format!(
                "its layer is {} bytes, and its manifest says {size}",
                out.bytes.len()
            )));
        }
        Ok(Pulled {
            bytes: out.bytes,
            manifest: manifest_digest,
        })
    }
}

/// A component as pulled.
pub struct Pulled {
    pub bytes: Vec<u8>,
    /// The digest of the manifest the reference resolved to.
    pub manifest: String,
}

/// Credentials for `registry` from the docker config file
/// (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`): its
/// `auths` entry's `auth`, base64 of `user:password`. Credential helpers
/// (`credsStore`, `credHelpers`) are not run.
fn docker_config_auth(registry: &str) -> Option<RegistryAuth> {
    use std::io::Read as _;
    let path = match std::env::var_os("DOCKER_CONFIG") {
        Some(dir) => std::path::PathBuf::from(dir).join("config.json"),
        None => std::path::PathBuf::from(std::env::var_os("HOME")?)
            .join(".docker")
            .join("config.json"),
    };
    let mut text = String::new();
    std::fs::File::open(&path)
        .ok()?
        .take(MAX_SMALL_FILE)
        .read_to_string(&mut text)
        .ok()?;
    auth_in_docker_config(&text, registry)
}

/// `registry`'s credentials in a docker config file's text.
fn auth_in_docker_config(text: &str, registry: &str) -> Option<RegistryAuth> {
    use base64::Engine as _;
    let config: serde_json::Value = serde_json::from_str(text).ok()?;
    let auths = config.get("auths")?.as_object()?;
    let entry = auths.iter().find_map(|(key, value)| {
        let host = key
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap_or_default();
        (host == registry).then_some(value)
    })?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(entry.get("auth")?.as_str()?)
        .ok()?;
    let (user, password) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
    Some(RegistryAuth::Basic(user.to_string(), password.to_string()))
}

/// What `plugins pull` fetched, by reference, so that `pull --locked`
/// reproduces it: `plugins.lock` in the plugin directory.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lock {
    #[serde(default, rename = "plugin")]
    pub entries: Vec<Locked>,
}

/// One reference as last pulled.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Locked {
    /// The reference, as resolved (registry, repository and tag).
    pub reference: String,
    /// The digest of the manifest it resolved to.
    pub manifest: String,
    /// The digest of the component (as a grant's `digest` names it).
    pub digest: String,
    /// The file it was written to, in the plugin directory.
    pub file: String,
}

impl Lock {
    /// The lock file of `dir`; empty when there is none.
    pub fn read(dir: &std::path::Path) -> Result<Lock, OciError> {
        use std::io::Read as _;
        let path = dir.join(LOCK_FILE);
        let error = |message: String| OciError::Lock {
            path: path.display().to_string(),
            message,
        };
        let file = match std::fs::File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Lock::default()),
            Err(e) => return Err(error(e.to_string())),
        };
        let mut text = String::new();
        file.take(MAX_SMALL_FILE)
            .read_to_string(&mut text)
            .map_err(|e| error(e.to_string()))?;
        let lock: Lock = toml::from_str(&text).map_err(|e| error(e.to_string()))?;
        // The file names are joined to the plugin directory: a hand-edited
        // lock file must not write anywhere else.
        if let Some(bad) = lock.entries.iter().find(|e| !plain_wasm_name(&e.file)) {
            return Err(error(format!(
                "file {:?} is not a plain *.wasm file name",
                bad.file
            )));
        }
        Ok(lock)
    }

    /// The entry for `reference` (as [`Registry::reference`] spells it).
    pub fn get(&self, reference: &str) -> Option<&Locked> {
        self.entries.iter().find(|e| e.reference == reference)
    }

    /// Records `entry`, replacing the one for its reference.
    pub fn record(&mut self, entry: Locked) {
        self.entries.retain(|e| e.reference != entry.reference);
        self.entries.push(entry);
        self.entries.sort_by(|a, b| a.reference.cmp(&b.reference));
    }

    /// The lock file's text.
    pub fn render(&self) -> Result<String, OciError> {
        let body = toml::to_string(self).map_err(|e| OciError::Lock {
            path: LOCK_FILE.to_string(),
            message: e.to_string(),
        })?;
        Ok(format!(
            "# Written by `sluice plugins pull`: each reference and what it resolved to.\n\
             # `sluice plugins pull --locked` fetches exactly these, or refuses.\n\n{body}"
        ))
    }
}

/// A file name with no directory part that the plugin directory's scan
/// reads: `name.wasm`, not hidden.
fn plain_wasm_name(name: &str) -> bool {
    name.strip_suffix(".wasm").is_some_and(|stem| {
        !stem.is_empty()
            && !stem.starts_with('.')
            && stem
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    })
}

fn is_loopback(registry: &str) -> bool {
    let host = match registry.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => registry,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A buffer that refuses to grow past `limit`: a registry that sends more
/// than the manifest said gets an error, not our memory.
struct Bounded {
    bytes: Vec<u8>,
    limit: u64,
}

impl tokio::io::AsyncWrite for Bounded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if (self.bytes.len() + buf.len()) as u64 > self.limit {
            return Poll::Ready(Err(std::io::Error::other(format!(
                "the registry sent more than {} bytes",
                self.limit
            ))));
        }
        self.bytes.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_registries_and_file_names() {
        assert!(is_loopback("localhost:5000"));
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("[::1]:5000"));
        assert!(!is_loopback("ghcr.io"));
        assert!(!is_loopback("registry.example:5000"));
        let file_name = |reference| Registry::new(reference, false).map(|r| r.file_name());
        assert_eq!(file_name("ghcr.io/acme/geo:1.2").unwrap(), "geo.wasm");
        assert_eq!(
            file_name("127.0.0.1:5000/plugins/sql-stats@sha256:0000000000000000000000000000000000000000000000000000000000000000").unwrap(),
            "sql-stats.wasm"
        );
        assert!(file_name("UPPER/Case").is_err());
    }

    #[test]
    fn credentials_come_from_the_docker_config_entry_of_the_registry() {
        let config = r#"{"auths": {
            "https://index.docker.io/v1/": {"auth": "aHViOmh1YnB3"},
            "127.0.0.1:5000": {"auth": "dXNlcjpwYTpzcw=="},
            "broken.example": {"auth": "***"}
        }}"#;
        // Debug redacts the password, so compare the values themselves.
        let found = |registry| match auth_in_docker_config(config, registry) {
            Some(RegistryAuth::Basic(user, password)) => Some((user, password)),
            _ => None,
        };
        let pair = |u: &str, p: &str| Some((u.to_string(), p.to_string()));
        assert_eq!(found("127.0.0.1:5000"), pair("user", "pa:ss"));
        assert_eq!(found("index.docker.io"), pair("hub", "hubpw"));
        assert_eq!(found("ghcr.io"), None);
        assert_eq!(found("broken.example"), None);
        assert!(auth_in_docker_config("not json", "ghcr.io").is_none());
    }

    #[test]
    fn the_lock_file_round_trips_and_keeps_one_entry_per_reference() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Lock::read(dir.path()).unwrap().entries.is_empty());
        let entry = |reference: &str, manifest: &str| Locked {
            reference: reference.to_string(),
            manifest: manifest.to_string(),
            digest: "sha256:00".to_string(),
            file: "geo.wasm".to_string(),
        };
        let mut lock = Lock::default();
        lock.record(entry("r/geo:1", "sha256:aa"));
        lock.record(entry("r/a:1", "sha256:bb"));
        lock.record(entry("r/geo:1", "sha256:cc"));
        std::fs::write(dir.path().join(LOCK_FILE), lock.render().unwrap()).unwrap();
        let read = Lock::read(dir.path()).unwrap();
        assert_eq!(read.entries.len(), 2);
        assert_eq!(read.get("r/geo:1").unwrap().manifest, "sha256:cc");
        assert_eq!(read.entries[0].reference, "r/a:1");
        std::fs::write(dir.path().join(LOCK_FILE), "[[plugin]]\nreference = 1\n").unwrap();
        assert!(Lock::read(dir.path()).is_err());
        let escaping = "[[plugin]]\nreference = \"r/x:1\"\nmanifest = \"m\"\ndigest = \"d\"\nfile = \"../x.wasm\"\n";
        std::fs::write(dir.path().join(LOCK_FILE), escaping).unwrap();
        let error = Lock::read(dir.path()).unwrap_err().to_string();
        assert!(error.contains("not a plain *.wasm file name"), "{error}");
    }
}
