//! API keys: bearer tokens checked against SHA-256 hashes in the config,
//! so the config never holds a usable key.

use crate::config::ApiKeyConfig;
use crate::registry::model::Scope;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// Prefix of every key sluice makes, so a leaked one is recognisable.
const KEY_PREFIX: &str = "sluice_";

/// The configured keys.
#[derive(Debug, Default)]
pub struct ApiKeys {
    keys: Vec<Key>,
}

#[derive(Debug)]
struct Key {
    id: Arc<str>,
    hash: [u8; 32],
    scope: Scope,
}

/// The key a request authenticated with; in the request's extensions,
/// beside the key's [`Scope`].
#[derive(Debug, Clone)]
pub struct KeyId(pub Arc<str>);

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

impl ApiKeys {
    /// Keys from `[[http.auth.keys]]`: ids unique, hashes `sha256:<64 hex>`.
    pub fn from_config(entries: &[ApiKeyConfig]) -> Result<ApiKeys, String> {
        let mut keys: Vec<Key> = Vec::with_capacity(entries.len());
        for entry in entries {
            let hash = entry
                .hash
                .strip_prefix("sha256:")
                .and_then(unhex)
                .ok_or_else(|| {
                    format!(
                        "[[http.auth.keys]] {}: hash must be `sha256:` and 64 hex digits (see `sluice keys new`)",
                        entry.id
                    )
                })?;
            if keys.iter().any(|k| *k.id == *entry.id) {
                return Err(format!("[[http.auth.keys]] id {} is used twice", entry.id));
            }
            let scope = match &entry.plugins {
                Some(names) => Scope::Only(names.iter().cloned().collect()),
                None => Scope::All,
            };
            keys.push(Key {
                id: Arc::from(entry.id.as_str()),
                hash,
                scope,
            });
        }
        Ok(ApiKeys { keys })
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The id and scope of the key `token` is. Every stored hash is
    /// compared, in constant time, so timing tells nothing about which or
    /// how close.
    pub fn verify(&self, token: &str) -> Option<(Arc<str>, Scope)> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for key in &self.keys {
            if bool::from(key.hash.ct_eq(&digest)) {
                found = Some((key.id.clone(), key.scope.clone()));
            }
        }
        found
    }
}

/// A new random key and the config entry that accepts it.
pub fn new_key(id: &str) -> Result<(String, String), String> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| format!("no randomness: {e}"))?;
    let key = format!("{KEY_PREFIX}{}", hex(&secret));
    let hash = hex(&Sha256::digest(key.as_bytes()));
    let entry = format!("[[http.auth.keys]]\nid = {id:?}\nhash = \"sha256:{hash}\"\n");
    Ok((key, entry))
}

/// Axum middleware: lets a request through with a valid `Authorization:
/// Bearer` key (recording which in its extensions), else answers 401 with
/// `WWW-Authenticate`, before anything reaches MCP or a plugin.
pub async fn require_key(
    State(keys): State<Arc<ApiKeys>>,
    mut request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    let Some(token) = presented else {
        return unauthorized(None, "an API key is required: Authorization: Bearer <key>");
    };
    match keys.verify(token) {
        Some((id, scope)) => {
            request.extensions_mut().insert(KeyId(id));
            request.extensions_mut().insert(scope);
            next.run(request).await
        }
        None => {
            tracing::warn!("HTTP request with an invalid API key refused");
            unauthorized(Some("invalid_token"), "the API key is not valid")
        }
    }
}

fn unauthorized(error: Option<&str>, message: &str) -> Response {
    let challenge = match error {
        Some(error) => format!("Bearer realm=\"sluice\", error=\"{error}\""),
        None => "Bearer realm=\"sluice\"".to_string(),
    };
    let mut response = (
        StatusCode::UNAUTHORIZED,
        axum::Json(serde_json::json!({ "error": message })),
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_key_verifies_against_its_entry_only() {
        let (key, entry) = new_key("analyst").unwrap();
        assert!(key.starts_with(KEY_PREFIX));
        // The printed entry is a config file on its own.
        let config =
            crate::config::Config::parse(&entry, std::path::Path::new("sluice.toml")).unwrap();
        let keys = ApiKeys::from_config(&config.http.auth.keys).unwrap();
        assert_eq!(keys.verify(&key).map(|k| k.0).as_deref(), Some("analyst"));
        assert!(keys.verify("sluice_wrong").is_none());
        assert!(keys.verify("").is_none());
        let (other, _) = new_key("x").unwrap();
        assert_ne!(key, other);
    }

    #[test]
    fn malformed_entries_are_refused() {
        let bad = ApiKeyConfig {
            id: "a".into(),
            hash: "md5:00".into(),
            plugins: None,
        };
        assert!(ApiKeys::from_config(&[bad]).is_err());
    }
}
