//! The authorization server's metadata and signing keys.
//!
//! The metadata (RFC 8414, or OpenID Connect discovery) is read once, and
//! again while it could not be; it names the key set (`jwks_uri`) and the
//! introspection endpoint. The key set is cached. A token signed by a key
//! not in it fetches it again (the issuer rotated its keys), but at most
//! once per `jwks_refresh_s` and one fetch at a time, so a flood of tokens
//! with made-up key ids costs the issuer one request per interval.

use super::fetch::{FetchError, Fetcher};
use jsonwebtoken::jwk::{JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// The most keys a key set may hold; more is not a real issuer's.
const MAX_KEYS: usize = 100;

/// What the issuer's metadata says that sluice uses.
#[derive(Debug, Clone, Default)]
pub struct Metadata {
    pub jwks_uri: Option<String>,
    pub introspection_endpoint: Option<String>,
}

/// One usable signing key.
pub struct Key {
    pub decoding: DecodingKey,
    /// The algorithm the key set pins it to, if any.
    pub algorithm: Option<Algorithm>,
}

/// The key set as last fetched.
struct Cached {
    keys: HashMap<String, Arc<Key>>,
    /// Keys without a `kid`: usable by a token without one.
    anonymous: Vec<Arc<Key>>,
    fetched: Instant,
}

/// Why no key could be found for a token.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key set has no key of that id, even fetched again (or it was
    /// fetched too recently to be asked again).
    #[error("the token's key id {0:?} is not among the issuer's keys")]
    UnknownKid(String),
    /// A token without a key id, and not exactly one key it could mean.
    #[error("the token names no key id, and the issuer has more than one key")]
    NoKid,
    /// The keys could not be fetched at all.
    #[error("the issuer's keys cannot be fetched: {0}")]
    Unavailable(String),
}

/// The issuer's metadata and keys, fetched as needed.
pub struct KeySource {
    issuer: String,
    fetcher: Fetcher,
    /// The configured key set URL, or none to learn it from the metadata.
    jwks_uri: Option<String>,
    metadata: tokio::sync::Mutex<Option<Metadata>>,
    cached: RwLock<Option<Arc<Cached>>>,
    /// One fetch at a time, and when the last one was tried.
    refresh: Arc<tokio::sync::Mutex<Option<Instant>>>,
    min_refresh: Duration,
    max_age: Duration,
}

impl KeySource {
    pub fn new(
        issuer: &str,
        fetcher: Fetcher,
        jwks_uri: Option<String>,
        min_refresh: Duration,
        max_age: Duration,
    ) -> KeySource {
        KeySource {
            issuer: issuer.to_string(),
            fetcher,
            jwks_uri,
            metadata: tokio::sync::Mutex::new(None),
            cached: RwLock::new(None),
            refresh: Arc::new(tokio::sync::Mutex::new(None)),
            min_refresh,
            max_age,
        }
    }

    /// The issuer's metadata, fetched on first use and kept once fetched.
    /// OpenID Connect discovery (`<issuer>/.well-known/openid-configuration`)
    /// is tried first, then RFC 8414 (`/.well-known/oauth-authorization-server`
    /// before the issuer's path); either must name this issuer exactly.
    pub async fn metadata(&self) -> Result<Metadata, FetchError> {
        let mut held = self.metadata.lock().await;
        if let Some(metadata) = &*held {
            return Ok(metadata.clone());
        }
        let mut last = None;
        for url in discovery_urls(&self.issuer) {
            match self.fetcher.get_json(&url).await {
                Ok(document) => {
                    let named = document.get("issuer").and_then(|v| v.as_str());
                    if named != Some(self.issuer.as_str()) {
                        last = Some(FetchError::Failed {
                            url,
                            message: format!(
                                "the metadata names issuer {named:?}, not {:?}",
                                self.issuer
                            ),
                        });
                        continue;
                    }
                    let text = |key: &str| {
                        document
                            .get(key)
                            .and_then(|v| v.as_str())
                            .map(str::to_string)
                    };
                    let metadata = Metadata {
                        jwks_uri: text("jwks_uri"),
                        introspection_endpoint: text("introspection_endpoint"),
                    };
                    *held = Some(metadata.clone());
                    return Ok(metadata);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| FetchError::Failed {
            url: self.issuer.clone(),
            message: "no metadata URL".into(),
        }))
    }

    /// The key `kid` names (or the only key, for a token without one).
    /// A key not in the set fetches it again, within the refresh limits; a
    /// set older than `jwks_max_age_s` is fetched again in the background
    /// while its keys go on serving, so no request waits on the issuer
    /// for a key it already has.
    pub async fn key(self: &Arc<Self>, kid: Option<&str>) -> Result<Arc<Key>, KeyError> {
        let current = self.current();
        if let Some(cached) = &current
            && let Some(key) = lookup(cached, kid)?
        {
            if cached.fetched.elapsed() >= self.max_age {
                self.refresh_in_background();
            }
            return Ok(key);
        }
        let mut last_try = self.refresh.clone().lock_owned().await;
        // Another request may have fetched while this one waited.
        let after_wait = self.current();
        if let Some(cached) = &after_wait
            && let Some(key) = lookup(cached, kid)?
        {
            return Ok(key);
        }
        let unknown = || match kid {
            Some(kid) => KeyError::UnknownKid(kid.to_string()),
            None => KeyError::NoKid,
        };
        if last_try.is_some_and(|at| at.elapsed() < self.min_refresh) {
            // Fetched too recently to ask again: a key it lacks stays
            // unknown until the interval is over.
            return match &after_wait {
                Some(_) => Err(unknown()),
                None => Err(KeyError::Unavailable(
                    "the last attempt failed; retrying shortly".into(),
                )),
            };
        }
        *last_try = Some(Instant::now());
        match self.fetch().await {
            Ok(fresh) => lookup(&self.keep(fresh), kid)?.ok_or_else(unknown),
            Err(e) => {
                tracing::warn!("cannot fetch the OAuth issuer's keys: {e}");
                match &after_wait {
                    // Keys fetched before still serve while the issuer is away.
                    Some(_) => Err(unknown()),
                    None => Err(KeyError::Unavailable(e.to_string())),
                }
            }
        }
    }

    /// Fetches the key set again on a task of its own, unless a fetch is
    /// running or one was tried within `jwks_refresh_s`.
    fn refresh_in_background(self: &Arc<Self>) {
        let Ok(mut last_try) = self.refresh.clone().try_lock_owned() else {
            return;
        };
        if last_try.is_some_and(|at| at.elapsed() < self.min_refresh) {
            return;
        }
        *last_try = Some(Instant::now());
        let source = self.clone();
        tokio::spawn(async move {
            match source.fetch().await {
                Ok(fresh) => {
                    source.keep(fresh);
                }
                Err(e) => tracing::warn!("cannot fetch the OAuth issuer's keys again: {e}"),
            }
            drop(last_try);
        });
    }

    /// Makes `fresh` the key set in use.
    fn keep(&self, fresh: Cached) -> Arc<Cached> {
        let fresh = Arc::new(fresh);
        if let Ok(mut slot) = self.cached.write() {
            *slot = Some(fresh.clone());
        }
        fresh
    }

    /// Fetches the key set now (at start, so that a wrong issuer shows in
    /// the log before the first token): how many signing keys it holds.
    pub async fn prefetch(&self) -> Result<usize, FetchError> {
        let mut last_try = self.refresh.lock().await;
        *last_try = Some(Instant::now());
        let fresh = self.keep(self.fetch().await?);
        Ok(fresh.keys.len() + fresh.anonymous.len())
    }

    fn current(&self) -> Option<Arc<Cached>> {
        self.cached.read().ok().and_then(|c| c.clone())
    }

    async fn fetch(&self) -> Result<Cached, FetchError> {
        let uri = match &self.jwks_uri {
            Some(uri) => uri.clone(),
            None => self
                .metadata()
                .await?
                .jwks_uri
                .ok_or_else(|| FetchError::Failed {
                    url: self.issuer.clone(),
                    message: "the issuer's metadata names no jwks_uri".into(),
                })?,
        };
        super::fetch::check_url(&uri, "jwks_uri").map_err(|message| FetchError::Failed {
            url: uri.clone(),
            message,
        })?;
        let document = self.fetcher.get_json(&uri).await?;
        parse_key_set(document).map_err(|message| FetchError::Failed { url: uri, message })
    }
}

/// The key `kid` names in `cached`: `Ok(None)` when there is none.
fn lookup(cached: &Cached, kid: Option<&str>) -> Result<Option<Arc<Key>>, KeyError> {
    match kid {
        Some(kid) => Ok(cached.keys.get(kid).cloned()),
        None => match (cached.anonymous.as_slice(), cached.keys.len()) {
            ([only], 0) => Ok(Some(only.clone())),
            ([], 1) => Ok(cached.keys.values().next().cloned()),
            ([], 0) => Ok(None),
            _ => Err(KeyError::NoKid),
        },
    }
}

/// The signing keys of a JWKS document. Keys for encryption, of a kind
/// this cannot verify with, or symmetric (a shared secret has no place in
/// a public key set) are left out.
fn parse_key_set(document: serde_json::Value) -> Result<Cached, String> {
    let count = document
        .get("keys")
        .and_then(|k| k.as_array())
        .map(Vec::len)
        .ok_or("the key set has no keys list")?;
    if count > MAX_KEYS {
        return Err(format!("the key set holds {count} keys, over {MAX_KEYS}"));
    }
    // Key by key, so that one of an unknown kind does not spoil the rest.
    let raw: Vec<serde_json::Value> = match document.get("keys") {
        Some(serde_json::Value::Array(keys)) => keys.clone(),
        _ => Vec::new(),
    };
    let mut keys = HashMap::new();
    let mut anonymous = Vec::new();
    for value in raw {
        let Ok(set) = serde_json::from_value::<JwkSet>(serde_json::json!({ "keys": [value] }))
        else {
            continue;
        };
        let Some(jwk) = set.keys.into_iter().next() else {
            continue;
        };
        if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
            continue;
        }
        if matches!(
            jwk.algorithm,
            jsonwebtoken::jwk::AlgorithmParameters::OctetKey(_)
        ) {
            continue;
        }
        let Ok(decoding) = DecodingKey::from_jwk(&jwk) else {
            continue;
        };
        let algorithm = jwk.common.key_algorithm.and_then(signing_algorithm);
        let key = Arc::new(Key {
            decoding,
            algorithm,
        });
        match jwk.common.key_id {
            Some(kid) => {
                keys.insert(kid, key);
            }
            None => anonymous.push(key),
        }
    }
    Ok(Cached {
        keys,
        anonymous,
        fetched: Instant::now(),
    })
}

/// The signature algorithm a JWK's `alg` names, if it names one.
fn signing_algorithm(alg: KeyAlgorithm) -> Option<Algorithm> {
    Some(match alg {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

/// Where the issuer's metadata may be: OpenID Connect's location first,
/// then RFC 8414's, which goes before the issuer's path.
fn discovery_urls(issuer: &str) -> Vec<String> {
    let trimmed = issuer.trim_end_matches('/');
    let mut urls = vec![format!("{trimmed}/.well-known/openid-configuration")];
    if let Ok(url) = reqwest::Url::parse(issuer) {
        let path = url.path().trim_end_matches('/');
        let mut base = url.clone();
        base.set_path("");
        base.set_query(None);
        let origin = base.as_str().trim_end_matches('/');
        urls.push(format!(
            "{origin}/.well-known/oauth-authorization-server{path}"
        ));
    }
    urls
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_is_looked_for_where_both_specs_put_it() {
        assert_eq!(
            discovery_urls("https://idp.example.com/realms/acme"),
            [
                "https://idp.example.com/realms/acme/.well-known/openid-configuration",
                "https://idp.example.com/.well-known/oauth-authorization-server/realms/acme",
            ]
        );
        assert_eq!(
            discovery_urls("https://tenant.auth0.com/"),
            [
                "https://tenant.auth0.com/.well-known/openid-configuration",
                "https://tenant.auth0.com/.well-known/oauth-authorization-server",
            ]
        );
    }

    #[test]
    fn a_key_set_keeps_only_public_signing_keys() {
        let set = serde_json::json!({"keys": [
            // P-256, for signatures.
            {"kty": "EC", "crv": "P-256", "kid": "ec", "use": "sig", "alg": "ES256",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
             "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            // The same key for encryption: left out.
            {"kty": "EC", "crv": "P-256", "kid": "enc", "use": "enc",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
             "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            // A shared secret has no place here.
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            // A kind it cannot read.
            {"kty": "XYZ", "kid": "odd"},
        ]});
        let cached = parse_key_set(set).unwrap();
        assert_eq!(cached.keys.len(), 1);
        assert_eq!(cached.keys["ec"].algorithm, Some(Algorithm::ES256));
        assert!(lookup(&cached, Some("hmac")).unwrap().is_none());
        // The only key serves a token without a key id.
        assert!(lookup(&cached, None).unwrap().is_some());
        let too_many = serde_json::json!({"keys": vec![serde_json::json!({}); MAX_KEYS + 1]});
        assert!(parse_key_set(too_many).is_err());
        assert!(parse_key_set(serde_json::json!({"nokeys": []})).is_err());
    }
}
