//! Opaque access tokens, checked by the issuer's introspection endpoint
//! (RFC 7662). An active answer is kept for a short while (never past the
//! token's expiry), keyed by the token's hash, so that a session's requests
//! do not each cost the issuer a request.

use super::Refusal;
use super::fetch::Fetcher;
use super::keys::KeySource;
use crate::config::IntrospectionConfig;
use serde_json::{Map, Value as Json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Answers kept at most; beyond it, expired ones go, then all.
const MAX_CACHED: usize = 10_000;

/// Active answers by the token's SHA-256, each with when it stops being
/// reused.
type Answers = HashMap<[u8; 32], (Arc<Map<String, Json>>, Instant)>;

/// The introspection endpoint and sluice's client there.
pub struct Introspection {
    endpoint: Option<String>,
    client_id: String,
    client_secret: String,
    cache_for: Duration,
    fetcher: Fetcher,
    keys: Arc<KeySource>,
    cache: Mutex<Answers>,
}

impl Introspection {
    pub fn new(
        config: &IntrospectionConfig,
        fetcher: Fetcher,
        keys: Arc<KeySource>,
    ) -> Result<Introspection, String> {
        let client_secret = crate::config::expand_env(&config.client_secret)
            .map_err(|e| format!("[http.oauth.introspection] client_secret {e}"))?;
        Ok(Introspection {
            endpoint: config.endpoint.clone(),
            client_id: config.client_id.clone(),
            client_secret,
            cache_for: Duration::from_secs(config.cache_s),
            fetcher,
            keys,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The claims of an active token for this server, or why not.
    pub async fn check(
        &self,
        token: &str,
        issuer: &str,
        audiences: &[String],
        leeway_s: u64,
    ) -> Result<Map<String, Json>, Refusal> {
        let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(claims) = self.cached(&hash) {
            return Ok((*claims).clone());
        }
        let endpoint = match &self.endpoint {
            Some(endpoint) => endpoint.clone(),
            None => self
                .keys
                .metadata()
                .await
                .map_err(|e| Refusal::Unavailable(format!("the issuer's metadata: {e}")))?
                .introspection_endpoint
                .ok_or_else(|| {
                    Refusal::Unavailable(
                        "the issuer's metadata names no introspection_endpoint; set \
                         [http.oauth.introspection] endpoint"
                            .into(),
                    )
                })?,
        };
        super::fetch::check_url(&endpoint, "introspection endpoint")
            .map_err(Refusal::Unavailable)?;
        let answer = self
            .fetcher
            .post_form(
                &endpoint,
                &[("token", token), ("token_type_hint", "access_token")],
                &self.client_id,
                &self.client_secret,
            )
            .await
            .map_err(|e| Refusal::Unavailable(format!("token introspection failed: {e}")))?;
        let Json::Object(claims) = answer else {
            return Err(Refusal::Unavailable(
                "token introspection answered no object".into(),
            ));
        };
        let expires = judge(&claims, issuer, audiences, leeway_s, now_s())?;
        let keep = self
            .cache_for
            .min(Duration::from_secs(expires.saturating_sub(now_s())));
        self.remember(hash, Arc::new(claims.clone()), keep);
        Ok(claims)
    }

    fn cached(&self, hash: &[u8; 32]) -> Option<Arc<Map<String, Json>>> {
        let cache = self.cache.lock().ok()?;
        match cache.get(hash) {
            Some((claims, until)) if Instant::now() < *until => Some(claims.clone()),
            _ => None,
        }
    }

    fn remember(&self, hash: [u8; 32], claims: Arc<Map<String, Json>>, keep: Duration) {
        if keep.is_zero() {
            return;
        }
        let Ok(mut cache) = self.cache.lock() else {
            return;
        };
        if cache.len() >= MAX_CACHED {
            let now = Instant::now();
            cache.retain(|_, (_, until)| *until > now);
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
        }
        cache.insert(hash, (claims, Instant::now() + keep));
    }
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Whether an introspection answer describes a token this server may
/// accept now: active, from this issuer, for this server (`aud` is
/// required: a token for another resource must not pass here), within its
/// lifetime. Its expiry, in Unix seconds.
fn judge(
    claims: &Map<String, Json>,
    issuer: &str,
    audiences: &[String],
    leeway_s: u64,
    now: u64,
) -> Result<u64, Refusal> {
    let invalid = |m: &str| Err(Refusal::Invalid(m.to_string()));
    if claims.get("active") != Some(&Json::Bool(true)) {
        return invalid("the token is not active (introspection)");
    }
    if let Some(iss) = claims.get("iss")
        && iss.as_str() != Some(issuer)
    {
        return invalid("the token was issued by another issuer");
    }
    let for_us = match claims.get("aud") {
        Some(Json::String(aud)) => audiences.contains(aud),
        Some(Json::Array(auds)) => auds
            .iter()
            .any(|a| a.as_str().is_some_and(|a| audiences.iter().any(|x| x == a))),
        _ => false,
    };
    if !for_us {
        return invalid("the token is not for this server: its audience is not this resource");
    }
    let Some(exp) = claims.get("exp").and_then(Json::as_u64) else {
        return invalid("the token has no exp claim");
    };
    if exp.saturating_add(leeway_s) < now {
        return invalid("the token has expired");
    }
    if let Some(nbf) = claims.get("nbf").and_then(Json::as_u64)
        && nbf > now.saturating_add(leeway_s)
    {
        return invalid("the token is not valid yet (nbf)");
    }
    Ok(exp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::http::oauth::object as claims;

    #[test]
    fn an_answer_must_be_active_ours_and_current() {
        let audiences = ["https://sluice/mcp".to_string()];
        let good = json!({"active": true, "iss": "https://idp", "aud": "https://sluice/mcp",
                          "exp": 2000, "sub": "alice"});
        assert_eq!(
            judge(&claims(good.clone()), "https://idp", &audiences, 60, 1000),
            Ok(2000)
        );
        let with = |key: &str, value: Json| {
            let mut c = claims(good.clone());
            c.insert(key.into(), value);
            judge(&c, "https://idp", &audiences, 60, 1000)
        };
        for (key, value, message) in [
            ("active", json!(false), "not active"),
            ("active", json!("true"), "not active"),
            ("iss", json!("https://other"), "another issuer"),
            ("aud", json!("https://other/mcp"), "not for this server"),
            ("aud", json!(["https://other/mcp"]), "not for this server"),
            ("exp", json!(900), "expired"),
            ("exp", json!("2000"), "no exp"),
            ("nbf", json!(1100), "not valid yet"),
        ] {
            match with(key, value) {
                Err(Refusal::Invalid(m)) => assert!(m.contains(message), "{key}: {m}"),
                other => panic!("{key}: {other:?}"),
            }
        }
        assert!(with("aud", json!(["x", "https://sluice/mcp"])).is_ok());
        // Within the leeway.
        assert!(with("exp", json!(950)).is_ok());
        let mut no_aud = claims(good);
        no_aud.remove("aud");
        assert!(judge(&no_aud, "https://idp", &audiences, 60, 1000).is_err());
    }
}
