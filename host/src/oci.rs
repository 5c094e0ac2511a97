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
        // reqwest is built without a crypto provider of its own; sluice's
        // is ring's, as for PostgreSQL. Installing it twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = Client::new(ClientConfig {
            protocol,
            ..ClientConfig::default()
        });
        let auth = match (
            std::env::var(USERNAME_VAR).ok(),
            std::env::var(PASSWORD_VAR).ok(),
        ) {
            (Some(user), Some(password)) => RegistryAuth::Basic(user, password),
            _ => RegistryAuth::Anonymous,
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

    /// Publishes `wasm`; returns the manifest's URL.
    pub async fn push(&self, wasm: Vec<u8>) -> Result<String, OciError> {
        let digest = crate::identity::digest(&wasm);
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
    /// at most `limit` bytes, checked against the manifest's digest.
    pub async fn pull(&self, limit: u64) -> Result<Vec<u8>, OciError> {
        let reference = self.reference();
        let (manifest, _) = self
            .client
            .pull_image_manifest(&self.reference, &self.auth)
            .await
            .map_err(|e| OciError::Registry(format!("pulling {reference}: {e}")))?;
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
        Ok(out.bytes)
    }
}

/// The file name a pulled plugin is written under: the repository's last
/// path segment, `ghcr.io/acme/geo:1.2` → `geo.wasm`.
pub fn file_name(reference: &str) -> Result<String, OciError> {
    let parsed: Reference = reference.parse().map_err(|e| OciError::Reference {
        reference: reference.to_string(),
        message: format!("{e}"),
    })?;
    let name = parsed
        .repository()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    Ok(format!("{name}.wasm"))
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
        assert_eq!(
            file_name("ghcr.io/acme/geo:1.2").unwrap(),
            "geo.wasm".to_string()
        );
        assert_eq!(
            file_name("127.0.0.1:5000/plugins/sql-stats@sha256:0000000000000000000000000000000000000000000000000000000000000000").unwrap(),
            "sql-stats.wasm".to_string()
        );
        assert!(file_name("UPPER/Case").is_err());
    }
}
