//! API keys: bearer tokens checked against SHA-256 hashes in the config,
//! so the config never holds a usable key.

use crate::config::{ApiKeyConfig, RateLimitConfig};
use crate::registry::model::Scope;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use sha2::{Digest, Sha256};
use std::num::NonZeroU32;
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
    /// Requests per minute and burst, for this key alone.
    limiter: Arc<DefaultDirectRateLimiter>,
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
    /// Keys from `[[http.auth.keys]]`: ids unique, hashes `sha256:<64 hex>`,
    /// each with its rate limit (its own, else `defaults`).
    pub fn from_config(
        entries: &[ApiKeyConfig],
        defaults: &RateLimitConfig,
    ) -> Result<ApiKeys, String> {
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
            let per_minute = NonZeroU32::new(entry.per_minute.unwrap_or(defaults.per_minute));
            let burst = NonZeroU32::new(entry.burst.unwrap_or(defaults.burst));
            let (Some(per_minute), Some(burst)) = (per_minute, burst) else {
                return Err(format!(
                    "[[http.auth.keys]] {}: per_minute and burst must be at least 1",
                    entry.id
                ));
            };
            keys.push(Key {
                id: Arc::from(entry.id.as_str()),
                hash,
                scope,
                limiter: Arc::new(RateLimiter::direct(
                    Quota::per_minute(per_minute).allow_burst(burst),
                )),
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
        self.find(token).map(|k| (k.id.clone(), k.scope.clone()))
    }

    fn find(&self, token: &str) -> Option<&Key> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for key in &self.keys {
            if bool::from(key.hash.ct_eq(&digest)) {
                found = Some(key);
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
/// Bearer` key within its rate limit (recording the key and its scope in
/// the request's extensions). Otherwise it answers 401 with
/// `WWW-Authenticate`, or 429 with `Retry-After`, before anything reaches
/// MCP or a plugin.
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
    match keys.find(token) {
        Some(key) => {
            if let Err(not_until) = key.limiter.check() {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                tracing::info!(key = %key.id, "rate limit reached");
                return too_many_requests(wait);
            }
            request.extensions_mut().insert(KeyId(key.id.clone()));
            request.extensions_mut().insert(key.scope.clone());
            next.run(request).await
        }
        None => {
            tracing::warn!("HTTP request with an invalid API key refused");
            unauthorized(Some("invalid_token"), "the API key is not valid")
        }
    }
}

fn too_many_requests(wait: std::time::Duration) -> Response {
    // Whole seconds, rounded up: a client that waits that long gets in.
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut response = (
        StatusCode::TOO_MANY_REQUESTS,
        axum::Json(serde_json::json!({ "error": "rate limit reached for this API key" })),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    response
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
        let keys =
            ApiKeys::from_config(&config.http.auth.keys, &RateLimitConfig::default()).unwrap();
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
            per_minute: None,
            burst: None,
        };
        assert!(ApiKeys::from_config(&[bad], &RateLimitConfig::default()).is_err());
    }
}
