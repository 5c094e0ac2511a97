//! Who may call: bearer API keys, checked against SHA-256 hashes in the
//! config (so the config never holds a usable key), signed requests
//! ([`super::signing`]), checked with a shared secret, and OAuth access
//! tokens ([`super::oauth`]). Each key has a scope, a database role and a
//! rate limit of its own; each OAuth caller gets its scope and role from
//! the rules, and a rate limit per subject; each client address has a
//! budget of refused credentials ([`super::failed_auth`]).
//!
//! Spent nonces and rate limits are this process's own, or, with `[http]
//! shared_state = "postgres"`, shared by every replica through the database
//! ([`crate::db::shared_state`]), one round trip per request. While that
//! store cannot answer, signed requests are refused (503: a replay could
//! not be told apart) and rate limits fall back to each replica's own.

use super::failed_auth::{Client, FailedAuth};
use super::messages::{self, MessageLimits};
use super::oauth::{OAuth, Refusal};
use super::signing::{self, NonceCache, SignatureError};
use super::throttle::{LogThrottle, throttled};
use crate::config::{AuthConfig, RateLimitConfig};
use crate::db::shared_state::{Admission, Quota, SharedState, Spend};
use crate::principal::Principal;
use crate::registry::model::Scope;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, RateLimiter};
use sha2::{Digest, Sha256};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// Prefix of every key sluice makes, so a leaked one is recognisable.
const KEY_PREFIX: &str = "sluice_";

/// The configured keys.
#[derive(Debug, Default)]
pub struct ApiKeys {
    keys: Vec<Key>,
    /// How far a signed request's clock may be off, in seconds.
    max_skew_s: u64,
    nonces: NonceCache,
}

enum Credential {
    /// SHA-256 of a bearer key.
    Bearer([u8; 32]),
    /// The shared secret of a signing key.
    Hmac(Vec<u8>),
}

/// Never prints key material, should a key end up in a log.
impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Credential::Bearer(_) => "Bearer(<hash>)",
            Credential::Hmac(_) => "Hmac(<secret>)",
        })
    }
}

#[derive(Debug)]
struct Key {
    id: Arc<str>,
    credential: Credential,
    /// The caller the key is: its id, scope and database role.
    principal: Arc<Principal>,
    /// Requests per minute and burst, for this key alone.
    quota: Quota,
    /// The quota, kept in this process (the shared state's fallback).
    limiter: Arc<DefaultDirectRateLimiter>,
}

/// Who owns what a request opens (sessions are kept to their owner and
/// capped per owner): [`Principal::owner`]. In the request's extensions,
/// beside the `Arc<Principal>` itself.
#[derive(Debug, Clone)]
pub struct Owner(pub Arc<str>);

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
    pub fn from_config(auth: &AuthConfig, defaults: &RateLimitConfig) -> Result<ApiKeys, String> {
        let entries = &auth.keys;
        let mut keys: Vec<Key> = Vec::with_capacity(entries.len());
        for entry in entries {
            let credential = match (&entry.hash, &entry.secret) {
                (Some(hash), None) => Credential::Bearer(
                    hash.strip_prefix("sha256:").and_then(unhex).ok_or_else(|| {
                        format!(
                            "[[http.auth.keys]] {}: hash must be `sha256:` and 64 hex digits (see `sluice keys new`)",
                            entry.id
                        )
                    })?,
                ),
                (None, Some(secret)) => {
                    let secret = crate::config::expand_env(secret)
                        .map_err(|e| format!("[[http.auth.keys]] {}: secret {e}", entry.id))?;
                    if secret.len() < 32 {
                        return Err(format!(
                            "[[http.auth.keys]] {}: a signing secret needs at least 32 characters",
                            entry.id
                        ));
                    }
                    Credential::Hmac(secret.into_bytes())
                }
                _ => {
                    return Err(format!(
                        "[[http.auth.keys]] {}: give either hash (a bearer key) or secret (signed requests)",
                        entry.id
                    ));
                }
            };
            if keys.iter().any(|k| *k.id == *entry.id) {
                return Err(format!("[[http.auth.keys]] id {} is used twice", entry.id));
            }
            let scope = match &entry.plugins {
                Some(names) => Scope::Only(names.iter().cloned().collect()),
                None => Scope::All,
            };
            if entry.role.as_deref() == Some("") {
                return Err(format!("[[http.auth.keys]] {}: role is empty", entry.id));
            }
            let id = Arc::<str>::from(entry.id.as_str());
            let per_minute = NonZeroU32::new(entry.per_minute.unwrap_or(defaults.per_minute));
            let burst = NonZeroU32::new(entry.burst.unwrap_or(defaults.burst));
            let (Some(per_minute), Some(burst)) = (per_minute, burst) else {
                return Err(format!(
                    "[[http.auth.keys]] {}: per_minute and burst must be at least 1",
                    entry.id
                ));
            };
            keys.push(Key {
                principal: Arc::new(Principal::key(
                    id.clone(),
                    scope,
                    entry.role.as_deref().map(Arc::from),
                )),
                id,
                credential,
                quota: Quota {
                    per_minute: per_minute.get(),
                    burst: burst.get(),
                },
                limiter: Arc::new(RateLimiter::direct(
                    governor::Quota::per_minute(per_minute).allow_burst(burst),
                )),
            });
        }
        Ok(ApiKeys {
            keys,
            max_skew_s: auth.max_skew_s,
            nonces: NonceCache::default(),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The bearer key `token` is. Every stored hash is compared, in
    /// constant time, so timing tells nothing about which or how close.
    fn find(&self, token: &str) -> Option<&Key> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for key in &self.keys {
            if let Credential::Bearer(hash) = &key.credential
                && bool::from(hash.ct_eq(&digest))
            {
                found = Some(key);
            }
        }
        found
    }

    /// Checks a signed request's headers and body; the key it was signed
    /// with, and the nonce it spends once admitted, with the time (unix
    /// seconds) until which it must stay spent.
    fn check_signed(
        &self,
        headers: &axum::http::HeaderMap,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<(&Key, String, u64), SignatureError> {
        let header = |name: &'static str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .ok_or(SignatureError::Header(name))
        };
        let key_id = header(signing::HEADER_KEY)?;
        let timestamp = header(signing::HEADER_TIMESTAMP)?;
        let nonce = header(signing::HEADER_NONCE)?;
        let signature = header(signing::HEADER_SIGNATURE)?;
        if !(16..=128).contains(&nonce.len()) {
            return Err(SignatureError::Header(signing::HEADER_NONCE));
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let at = signing::check_timestamp(timestamp, now, self.max_skew_s)?;
        // An unknown key id fails like a bad signature.
        let key = self
            .keys
            .iter()
            .find(|k| *k.id == *key_id && matches!(k.credential, Credential::Hmac(_)))
            .ok_or(SignatureError::Invalid)?;
        let Credential::Hmac(secret) = &key.credential else {
            return Err(SignatureError::Invalid);
        };
        let text = signing::string_to_sign(method, path, timestamp, nonce, body);
        signing::verify(secret, &text, signature)?;
        // Only a genuine request spends its nonce; it stays spent as long as
        // its timestamp would be accepted.
        Ok((key, nonce.to_string(), at + self.max_skew_s))
    }
}

fn random_secret() -> Result<String, String> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| format!("no randomness: {e}"))?;
    Ok(format!("{KEY_PREFIX}{}", hex(&secret)))
}

/// A new random bearer key and the config entry that accepts it (which
/// holds only its hash).
pub fn new_key(id: &str) -> Result<(String, String), String> {
    let key = random_secret()?;
    let hash = hex(&Sha256::digest(key.as_bytes()));
    let entry = format!("[[http.auth.keys]]\nid = {id:?}\nhash = \"sha256:{hash}\"\n");
    Ok((key, entry))
}

/// A new random signing secret and the config entry that reads it from
/// the environment variable `env_var`.
pub fn new_signing_key(id: &str, env_var: &str) -> Result<(String, String), String> {
    let secret = random_secret()?;
    let entry = format!("[[http.auth.keys]]\nid = {id:?}\nsecret = \"${{{env_var}}}\"\n");
    Ok((secret, entry))
}

/// What [`require_key`] checks requests against.
pub struct Gate {
    pub keys: ApiKeys,
    /// OAuth access tokens, when `[http.oauth]` is configured.
    pub oauth: Option<Arc<OAuth>>,
    /// Requests per OAuth caller (by [`Principal::owner`]), at
    /// `[http.rate_limit]`.
    pub callers: DefaultKeyedRateLimiter<String>,
    /// `[http.rate_limit]`, each OAuth caller's quota.
    pub caller_quota: Quota,
    /// Nonces and rate limits shared with other replicas, when `[http]
    /// shared_state = "postgres"`.
    pub shared: Option<Arc<SharedState>>,
    pub failed: FailedAuth,
    /// A signed request's body is read to be checked, within these.
    pub limits: MessageLimits,
    /// Refused credentials and limited addresses: one line a second.
    pub refusals: LogThrottle,
    /// Keys over their rate limit: one line a second.
    pub over_rate: LogThrottle,
    /// Signed requests refused while the shared state cannot answer: one
    /// line a second.
    pub shared_refusals: LogThrottle,
    /// Rate limits falling back to this replica's own: one line a second.
    pub shared_fallbacks: LogThrottle,
}

/// What the nonce and rate checks say of a request.
enum Verdict {
    Admitted,
    Replay,
    Limited(std::time::Duration),
    /// The shared state cannot tell a replay (signed requests only).
    Unavailable(String),
}

/// The per-caller limiter of OAuth callers, at `[http.rate_limit]`, and
/// its quota.
pub fn caller_limiter(
    defaults: &RateLimitConfig,
) -> Result<(DefaultKeyedRateLimiter<String>, Quota), String> {
    let per_minute = NonZeroU32::new(defaults.per_minute);
    let burst = NonZeroU32::new(defaults.burst);
    let (Some(per_minute), Some(burst)) = (per_minute, burst) else {
        return Err("[http.rate_limit] per_minute and burst must be at least 1".into());
    };
    Ok((
        RateLimiter::keyed(governor::Quota::per_minute(per_minute).allow_burst(burst)),
        Quota {
            per_minute: per_minute.get(),
            burst: burst.get(),
        },
    ))
}

/// Axum middleware: lets a request through with a valid `Authorization:
/// Bearer` API key or OAuth access token, or a valid signature, within its
/// rate limit (recording the caller and its owner in the request's
/// extensions). Otherwise it answers 401 with `WWW-Authenticate` (naming
/// the protected-resource metadata when OAuth is on), 403 for a valid token
/// without the scope or rule it needs, or 429 with `Retry-After`, before
/// anything reaches MCP or a plugin. A client address over its budget of
/// refused credentials gets 429 before its credentials are looked at.
pub async fn require_key(State(gate): State<Arc<Gate>>, request: Request, next: Next) -> Response {
    // Every connection has its peer address (see `super::server`); without
    // one, all such requests share one budget.
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    let client = Client::of(peer);
    if let Err(wait) = gate.failed.check(client) {
        throttled!(
            warn,
            gate.refusals,
            %client,
            "HTTP request refused: too many refused credentials from this address"
        );
        return too_many_failures(wait);
    }
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_string())
        });
    if let Some(token) = bearer {
        if let Some(key) = gate.keys.find(&token) {
            return admit_key(&gate, client, key, None, request, next).await;
        }
        return match &gate.oauth {
            Some(oauth) => match oauth.authenticate(&token).await {
                Ok(principal) => admit_caller(&gate, principal, request, next).await,
                Err(Refusal::Invalid(why)) => gate.refuse(client, "an access token", &why),
                Err(Refusal::Scope { needed, message }) => gate.forbidden(Some(&needed), &message),
                Err(Refusal::NoRule(message)) => gate.forbidden(None, &message),
                Err(Refusal::Unavailable(message)) => {
                    throttled!(warn, gate.refusals, "OAuth token not checked: {message}");
                    unavailable(&message)
                }
            },
            None => gate.refuse(client, "an invalid API key", "the API key is not valid"),
        };
    }
    if request.headers().contains_key(signing::HEADER_SIGNATURE) {
        // The body is part of what was signed, so it is read (within the
        // body limit) before anything else sees the request.
        let (parts, body) = request.into_parts();
        let bytes = match messages::read_body(body, gate.limits.frame.max_bytes).await {
            Ok(bytes) => bytes,
            Err(error) => return error.response(&gate.limits),
        };
        let path = parts
            .uri
            .path_and_query()
            .map_or(parts.uri.path(), |p| p.as_str());
        let (key, nonce, expires) =
            match gate
                .keys
                .check_signed(&parts.headers, parts.method.as_str(), path, &bytes)
            {
                Ok(checked) => checked,
                Err(e) => return gate.refuse(client, "a signed request", &e.to_string()),
            };
        let spend = Spend {
            key: &key.id,
            nonce: &nonce,
            expires,
        };
        let request = Request::from_parts(parts, bytes.into());
        return admit_key(&gate, client, key, Some(spend), request, next).await;
    }
    let wanted = if gate.oauth.is_some() {
        "an access token (Authorization: Bearer <token>), an API key or a signed request is required"
    } else {
        "an API key (Authorization: Bearer <key>) or a signed request is required"
    };
    gate.unauthorized(None, wanted)
}

impl Gate {
    /// A refused credential: 401, or 429 once `client` is over its budget.
    fn refuse(&self, client: Client, what: &str, why: &str) -> Response {
        match self.failed.refused(client) {
            Ok(()) => {
                throttled!(
                    warn,
                    self.refusals,
                    %client,
                    "HTTP request with {what} refused: {why}"
                );
                self.unauthorized(Some("invalid_token"), why)
            }
            Err(wait) => {
                throttled!(
                    warn,
                    self.refusals,
                    %client,
                    "HTTP request with {what} refused, and its address limited for {} s ([http.failed_auth])",
                    wait.as_secs().max(1)
                );
                too_many_failures(wait)
            }
        }
    }

    /// 401 with the challenge: RFC 6750's, and RFC 9728's
    /// `resource_metadata` when OAuth is on, so a client learns where to
    /// get a token.
    fn unauthorized(&self, error: Option<&str>, message: &str) -> Response {
        let challenge = self.challenge(error.map(|e| (e, message)), None);
        with_challenge(StatusCode::UNAUTHORIZED, &challenge, message)
    }

    /// 403 for a valid token that may not do this. Missing scopes are
    /// `insufficient_scope`, naming them, so that a client can ask for them
    /// (a step-up); a caller no rule admits gets no error code, since no
    /// scope it could ask for would change that.
    fn forbidden(&self, scope: Option<&str>, message: &str) -> Response {
        throttled!(info, self.refusals, "OAuth caller refused: {message}");
        let challenge = match scope {
            Some(scope) => self.challenge(Some(("insufficient_scope", message)), Some(scope)),
            None => self.challenge(None, None),
        };
        with_challenge(StatusCode::FORBIDDEN, &challenge, message)
    }

    fn challenge(&self, error: Option<(&str, &str)>, scope: Option<&str>) -> String {
        let mut challenge = "Bearer realm=\"sluice\"".to_string();
        if let Some((error, description)) = error {
            challenge.push_str(&format!(
                ", error=\"{error}\", error_description=\"{}\"",
                quotable(description)
            ));
        }
        if let Some(scope) = scope.filter(|s| !s.is_empty()) {
            challenge.push_str(&format!(", scope=\"{}\"", quotable(scope)));
        }
        if let Some(oauth) = &self.oauth {
            challenge.push_str(&format!(
                ", resource_metadata=\"{}\"",
                quotable(oauth.metadata_url())
            ));
        }
        challenge
    }

    /// Spends a signed request's nonce and takes a token from its caller's
    /// bucket: in the shared state when there is one, else (and for rate
    /// limits while it cannot answer) in this process, through `local`.
    async fn check_admission(
        &self,
        spend: Option<Spend<'_>>,
        owner: &str,
        quota: Quota,
        local: impl Fn() -> Result<(), std::time::Duration>,
    ) -> Verdict {
        if let Some(shared) = &self.shared {
            match shared.admit(spend, owner, quota).await {
                Ok(Admission::Admitted) => return Verdict::Admitted,
                Ok(Admission::Replay) => return Verdict::Replay,
                Ok(Admission::Limited(wait)) => return Verdict::Limited(wait),
                Err(e) if spend.is_some() => {
                    throttled!(warn, self.shared_refusals, "signed request refused: {e}");
                    return Verdict::Unavailable(e.to_string());
                }
                Err(e) => {
                    throttled!(
                        warn,
                        self.shared_fallbacks,
                        "{e}; rate limits are this replica's own until it answers"
                    );
                }
            }
        } else if let Some(spend) = spend {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            if self
                .keys
                .nonces
                .remember(spend.key, spend.nonce, now, spend.expires)
                .is_err()
            {
                return Verdict::Replay;
            }
        }
        match local() {
            Ok(()) => Verdict::Admitted,
            Err(wait) => Verdict::Limited(wait),
        }
    }
}

/// The wait a governor limiter asks for.
fn wait_of(not_until: governor::NotUntil<governor::clock::QuantaInstant>) -> std::time::Duration {
    not_until.wait_time_from(DefaultClock::default().now())
}

/// Lets a request with an API key or signature in, within its key's rate
/// limit, once its nonce (if signed) is spent.
async fn admit_key(
    gate: &Gate,
    client: Client,
    key: &Key,
    spend: Option<Spend<'_>>,
    request: Request,
    next: Next,
) -> Response {
    let owner = key.principal.owner();
    let local = || key.limiter.check().map_err(wait_of);
    match gate.check_admission(spend, &owner, key.quota, local).await {
        Verdict::Admitted => {}
        Verdict::Replay => {
            return gate.refuse(
                client,
                "a signed request",
                &SignatureError::Replay.to_string(),
            );
        }
        Verdict::Limited(wait) => {
            throttled!(info, gate.over_rate, key = %key.id, "rate limit reached");
            return too_many_requests(
                wait,
                "rate limit reached for this API key ([http.rate_limit], or the key's own per_minute and burst)",
            );
        }
        Verdict::Unavailable(why) => return replay_unknown(&why),
    }
    admit(
        key.principal.clone(),
        Owner(Arc::from(owner)),
        request,
        next,
    )
    .await
}

/// Lets an OAuth caller in, within its own rate limit.
async fn admit_caller(gate: &Gate, principal: Principal, request: Request, next: Next) -> Response {
    let owner = principal.owner();
    let local = || gate.callers.check_key(&owner).map_err(wait_of);
    match gate
        .check_admission(None, &owner, gate.caller_quota, local)
        .await
    {
        Verdict::Admitted => {}
        Verdict::Limited(wait) => {
            throttled!(info, gate.over_rate, caller = %owner, "rate limit reached");
            return too_many_requests(
                wait,
                "rate limit reached for this caller ([http.rate_limit])",
            );
        }
        // Without a nonce there is no replay to tell, and a failing store
        // falls back to the local limit.
        Verdict::Replay | Verdict::Unavailable(_) => {}
    }
    admit(Arc::new(principal), Owner(Arc::from(owner)), request, next).await
}

/// 503 for a signed request while the shared state cannot say whether its
/// nonce was spent on another replica: refusing is the only safe answer.
fn replay_unknown(why: &str) -> Response {
    let mut response = (
        StatusCode::SERVICE_UNAVAILABLE,
        axum::Json(serde_json::json!({
            "error": format!(
                "signed requests are refused while replay protection cannot be checked: \
                 {why} ([http] shared_state); retry shortly"
            )
        })),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(1u32));
    response
}

async fn admit(
    principal: Arc<Principal>,
    owner: Owner,
    mut request: Request,
    next: Next,
) -> Response {
    request.extensions_mut().insert(owner);
    request.extensions_mut().insert(principal);
    next.run(request).await
}

/// Text fit for a quoted-string of a challenge (RFC 6750 §3: printable
/// ASCII without `"` and `\\`).
fn quotable(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '"' | '\\' => '\'',
            ' '..='~' => c,
            _ => '?',
        })
        .take(400)
        .collect()
}

fn with_challenge(status: StatusCode, challenge: &str, message: &str) -> Response {
    let mut response =
        (status, axum::Json(serde_json::json!({ "error": message }))).into_response();
    if let Ok(value) = HeaderValue::from_str(challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

fn unavailable(message: &str) -> Response {
    let mut response = (
        StatusCode::SERVICE_UNAVAILABLE,
        axum::Json(serde_json::json!({
            "error": format!("the access token cannot be checked now: {message}")
        })),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(5u32));
    response
}

fn too_many_failures(wait: std::time::Duration) -> Response {
    too_many_requests(
        wait,
        "too many refused credentials from this address; wait, then retry \
         ([http.failed_auth] per_minute and burst)",
    )
}

fn too_many_requests(wait: std::time::Duration, message: &str) -> Response {
    // Whole seconds, rounded up: a client that waits that long gets in.
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut response = (
        StatusCode::TOO_MANY_REQUESTS,
        axum::Json(serde_json::json!({ "error": message })),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
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
        let keys = ApiKeys::from_config(&config.http.auth, &RateLimitConfig::default()).unwrap();
        assert_eq!(keys.find(&key).map(|k| &*k.id), Some("analyst"));
        assert!(keys.find("sluice_wrong").is_none());
        assert!(keys.find("").is_none());
        let (other, _) = new_key("x").unwrap();
        assert_ne!(key, other);
    }

    #[test]
    fn malformed_entries_are_refused() {
        for entry in [
            "hash = \"md5:00\"",
            "secret = \"short\"",
            "hash = \"sha256:00\"\nsecret = \"0123456789abcdef0123456789abcdef\"",
            "",
        ] {
            let text = format!("[[http.auth.keys]]\nid = \"a\"\n{entry}\n");
            let config = crate::config::Config::parse(&text, std::path::Path::new("f")).unwrap();
            let keys = ApiKeys::from_config(&config.http.auth, &RateLimitConfig::default());
            assert!(keys.is_err(), "{entry}");
        }
    }
}
