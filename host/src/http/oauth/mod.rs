//! sluice as an OAuth 2.1 resource server, as the MCP authorization spec
//! has it: access tokens from the configured authorization server, for this
//! server's resource URL (RFC 8707), checked here; the protected-resource
//! metadata (RFC 9728) that tells clients where to get one.
//!
//! A JWT access token is checked against the issuer's published keys
//! ([`keys`]): an asymmetric algorithm this server accepts (never `none`,
//! never a shared secret), the signature, `iss`, `aud`, `exp` and `nbf`
//! (with a leeway), and the scopes. An opaque token goes to the issuer's
//! introspection endpoint (RFC 7662), when one is configured. Then
//! `[[http.oauth.rules]]` ([`rules`]) decide what the caller may use and
//! which database role it is; a caller no rule admits is refused.

mod fetch;
mod introspect;
mod keys;
mod rules;

use crate::config::OAuthConfig;
use crate::principal::{Authority, Principal};
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value as Json};
use std::sync::Arc;
use std::time::Duration;

pub use fetch::check_url;

/// The longest access token looked at. Real ones are a few KiB; this bounds
/// what a client can make the server decode and hash.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// The longest subject accepted, in bytes.
const MAX_SUBJECT_BYTES: usize = 1024;

/// The algorithms accepted when the config names none: every asymmetric
/// one. Symmetric (`HS*`) algorithms never are: the key set is public.
const DEFAULT_ALGORITHMS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// Why a token was refused, and so which answer it gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// 401 `invalid_token`: forged, expired, not for this server, unknown.
    Invalid(String),
    /// 403 `insufficient_scope`: a valid token without the scopes needed.
    Scope { needed: String, message: String },
    /// 403: a valid token whose caller no rule admits.
    NoRule(String),
    /// 503: the issuer's keys or introspection cannot be reached, so no
    /// token can be checked now.
    Unavailable(String),
}

/// The resource server: what it accepts, and the issuer's keys.
pub struct OAuth {
    issuer: Arc<str>,
    resource: String,
    /// The protected-resource metadata's URL, for `WWW-Authenticate`.
    metadata_url: String,
    audiences: Vec<String>,
    required: Vec<String>,
    scopes_supported: Vec<String>,
    algorithms: Vec<Algorithm>,
    leeway_s: u64,
    /// `(setting suffix, claim name)`: what PostgreSQL is shown.
    claims: Vec<(Arc<str>, String)>,
    rules: Vec<rules::Rule>,
    keys: Arc<keys::KeySource>,
    introspection: Option<introspect::Introspection>,
}

/// Checks `[http.oauth]` without building anything: what a config load
/// reports.
pub fn check_config(config: &OAuthConfig) -> Result<(), String> {
    parse(config).map(|_| ())
}

/// What the config says, checked.
#[derive(Debug)]
struct Parsed {
    algorithms: Vec<Algorithm>,
    rules: Vec<rules::Rule>,
    metadata_url: String,
    claims: Vec<(Arc<str>, String)>,
}

fn parse(config: &OAuthConfig) -> Result<Parsed, String> {
    fetch::check_url(&config.issuer, "[http.oauth] issuer")?;
    let resource = reqwest::Url::parse(&config.resource).map_err(|e| {
        format!(
            "[http.oauth] resource {:?} is not a URL: {e}",
            config.resource
        )
    })?;
    if !matches!(resource.scheme(), "https" | "http") || resource.fragment().is_some() {
        return Err(format!(
            "[http.oauth] resource {:?} must be this server's http(s) URL, without a fragment",
            config.resource
        ));
    }
    if let Some(uri) = &config.jwks_uri {
        fetch::check_url(uri, "[http.oauth] jwks_uri")?;
    }
    let algorithms = if config.algorithms.is_empty() {
        DEFAULT_ALGORITHMS.to_vec()
    } else {
        config
            .algorithms
            .iter()
            .map(|name| {
                let algorithm: Algorithm = name.parse().ok().filter(|a| DEFAULT_ALGORITHMS.contains(a)).ok_or_else(|| {
                    format!(
                        "[http.oauth] algorithms: {name:?} is not an asymmetric signature algorithm \
                         (RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA)"
                    )
                })?;
                Ok(algorithm)
            })
            .collect::<Result<Vec<_>, String>>()?
    };
    if config.rules.is_empty() {
        return Err(
            "[http.oauth] needs at least one [[http.oauth.rules]] entry: rules decide \
             which plugins a caller may use (an entry with no conditions admits every caller \
             with a valid token)"
                .into(),
        );
    }
    let rules = config
        .rules
        .iter()
        .enumerate()
        .map(|(i, rule)| rules::Rule::new(i, rule))
        .collect::<Result<Vec<_>, String>>()?;
    let mut claims = Vec::new();
    for (name, claim) in &config.claims {
        if !rules::valid_setting_name(name) {
            return Err(format!(
                "[http.oauth.claims] {name:?}: a setting name is lower-case letters, digits and \
                 `_`, starting with a letter or `_` (it becomes sluice.claim.{name})"
            ));
        }
        if claim.is_empty() {
            return Err(format!(
                "[http.oauth.claims] {name}: the claim name is empty"
            ));
        }
        claims.push((Arc::from(name.as_str()), claim.clone()));
    }
    if let Some(endpoint) = config
        .introspection
        .as_ref()
        .and_then(|i| i.endpoint.as_ref())
    {
        fetch::check_url(endpoint, "[http.oauth.introspection] endpoint")?;
    }
    if config.jwks_refresh_s == 0 || config.fetch_timeout_ms == 0 {
        return Err("[http.oauth] jwks_refresh_s and fetch_timeout_ms must be at least 1".into());
    }
    // RFC 9728 §3.1: the well-known part goes before the resource's path.
    let mut origin = resource.clone();
    origin.set_path("");
    origin.set_query(None);
    let path = resource.path().trim_end_matches('/');
    let metadata_url = format!(
        "{}/.well-known/oauth-protected-resource{path}",
        origin.as_str().trim_end_matches('/')
    );
    Ok(Parsed {
        algorithms,
        rules,
        metadata_url,
        claims,
    })
}

impl OAuth {
    /// The resource server `[http.oauth]` describes. Nothing is fetched
    /// yet: the issuer's metadata and keys come with the first token (and
    /// [`OAuth::warm`] asks for them at start).
    pub fn from_config(config: &OAuthConfig) -> Result<OAuth, String> {
        let parsed = parse(config)?;
        let fetcher = fetch::Fetcher::new(Duration::from_millis(config.fetch_timeout_ms))?;
        let keys = Arc::new(keys::KeySource::new(
            &config.issuer,
            fetcher.clone(),
            config.jwks_uri.clone(),
            Duration::from_secs(config.jwks_refresh_s),
            Duration::from_secs(config.jwks_max_age_s.max(config.jwks_refresh_s)),
        ));
        let introspection = match &config.introspection {
            Some(settings) => Some(introspect::Introspection::new(
                settings,
                fetcher,
                keys.clone(),
            )?),
            None => None,
        };
        let mut scopes_supported: Vec<String> = config.scopes.clone();
        for rule in &config.rules {
            for scope in &rule.scopes {
                if !scopes_supported.contains(scope) {
                    scopes_supported.push(scope.clone());
                }
            }
        }
        let audiences = if config.audiences.is_empty() {
            vec![config.resource.clone()]
        } else {
            let mut all = vec![config.resource.clone()];
            all.extend(config.audiences.iter().cloned());
            all
        };
        Ok(OAuth {
            issuer: Arc::from(config.issuer.as_str()),
            resource: config.resource.clone(),
            metadata_url: parsed.metadata_url,
            audiences,
            required: config.scopes.clone(),
            scopes_supported,
            algorithms: parsed.algorithms,
            leeway_s: config.leeway_s,
            claims: parsed.claims,
            rules: parsed.rules,
            keys,
            introspection,
        })
    }

    /// Fetches the issuer's metadata and keys ahead of the first token, so
    /// that a wrong issuer shows in the log at start. A failure is logged,
    /// not fatal: the issuer may come up after sluice.
    pub async fn warm(&self) {
        match self.keys.prefetch().await {
            Ok(keys) => tracing::info!(
                issuer = %self.issuer,
                keys,
                "OAuth: accepting access tokens from this issuer"
            ),
            Err(e) => tracing::warn!(
                issuer = %self.issuer,
                "OAuth: cannot fetch the issuer's keys yet ({e}); tokens are refused \
                 with 503 until they can be fetched"
            ),
        }
    }

    /// The URL of the protected-resource metadata.
    pub fn metadata_url(&self) -> &str {
        &self.metadata_url
    }

    /// The paths the metadata is served at: RFC 9728's, with the resource's
    /// path after the well-known part, and the bare one some clients try.
    pub fn metadata_paths(&self) -> Vec<String> {
        let mut paths = vec!["/.well-known/oauth-protected-resource".to_string()];
        if let Ok(url) = reqwest::Url::parse(&self.metadata_url)
            && url.path() != paths[0]
        {
            paths.push(url.path().to_string());
        }
        paths
    }

    /// The protected-resource metadata document (RFC 9728).
    pub fn metadata(&self) -> Json {
        serde_json::json!({
            "resource": self.resource,
            "authorization_servers": [&*self.issuer],
            "scopes_supported": self.scopes_supported,
            "bearer_methods_supported": ["header"],
            "resource_name": "sluice",
        })
    }

    /// The scopes every token needs, space-separated, for a challenge.
    pub fn required_scopes(&self) -> String {
        self.required.join(" ")
    }

    /// Checks an access token; the caller it names, or why not.
    pub async fn authenticate(&self, token: &str) -> Result<Principal, Refusal> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(Refusal::Invalid(format!(
                "the token is longer than {MAX_TOKEN_BYTES} bytes"
            )));
        }
        let claims = if looks_like_jwt(token) {
            self.check_jwt(token).await?
        } else if let Some(introspection) = &self.introspection {
            introspection
                .check(token, &self.issuer, &self.audiences, self.leeway_s)
                .await?
        } else {
            return Err(Refusal::Invalid(
                "the token is neither an API key nor a JWT access token".into(),
            ));
        };
        self.admit(&claims)
    }

    async fn check_jwt(&self, token: &str) -> Result<Map<String, Json>, Refusal> {
        let invalid = |m: String| Refusal::Invalid(m);
        // The algorithm as written, so that `none` and HS256 are named as
        // what they are rather than as unparseable.
        let written =
            header_alg(token).ok_or_else(|| invalid("the token's header is not valid".into()))?;
        let algorithm: Algorithm = written
            .parse()
            .ok()
            .filter(|a| self.algorithms.contains(a))
            .ok_or_else(|| {
                invalid(format!(
                    "the token is signed with {written:?}, which this server does not accept \
                     ([http.oauth] algorithms; never none or a shared secret)"
                ))
            })?;
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| invalid(format!("the token's header is not valid: {e}")))?;
        let key = match self.keys.key(header.kid.as_deref()).await {
            Ok(key) => key,
            Err(keys::KeyError::Unavailable(why)) => {
                return Err(Refusal::Unavailable(format!(
                    "the authorization server's keys cannot be fetched ({why})"
                )));
            }
            Err(e) => return Err(invalid(e.to_string())),
        };
        if key.algorithm.is_some_and(|pinned| pinned != algorithm) {
            return Err(invalid(format!(
                "the token's key is for {:?}, not {written}",
                key.algorithm
            )));
        }
        let mut validation = Validation::new(algorithm);
        validation.leeway = self.leeway_s;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_issuer(&[&*self.issuer]);
        validation.set_audience(&self.audiences);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<Map<String, Json>>(token, &key.decoding, &validation)
            .map_err(|e| invalid(jwt_error(&e, &self.audiences)))?;
        Ok(data.claims)
    }

    /// From a checked token's claims to its caller: the scopes every token
    /// needs, then the first rule that matches.
    fn admit(&self, claims: &Map<String, Json>) -> Result<Principal, Refusal> {
        let subject = match claims.get("sub").or_else(|| claims.get("client_id")) {
            Some(Json::String(s)) if !s.is_empty() && s.len() <= MAX_SUBJECT_BYTES => s.clone(),
            _ => return Err(Refusal::Invalid("the token names no subject".into())),
        };
        // Both checks held `iss` to the configured issuer already.
        let issuer = self.issuer.clone();
        let scopes = rules::token_scopes(claims);
        let missing: Vec<&str> = self
            .required
            .iter()
            .map(String::as_str)
            .filter(|s| !scopes.contains(s))
            .collect();
        if !missing.is_empty() {
            return Err(Refusal::Scope {
                needed: self.required_scopes(),
                message: format!(
                    "the token lacks the scope {} that [http.oauth] scopes requires",
                    missing.join(" ")
                ),
            });
        }
        let Some(rule) = self.rules.iter().find(|r| r.matches(&scopes, claims)) else {
            return Err(Refusal::NoRule(format!(
                "no [[http.oauth.rules]] entry admits subject {subject:?}: its scopes and claims \
                 match none of them"
            )));
        };
        tracing::debug!(subject, rule = %rule.place, "OAuth caller admitted");
        Ok(Principal {
            authority: Authority::OAuth {
                issuer,
                subject: Arc::from(subject),
            },
            scope: rule.scope.clone(),
            role: rule.role.clone(),
            claims: self
                .claims
                .iter()
                .filter_map(|(setting, claim)| {
                    rules::setting_value(claims.get(claim)).map(|v| (setting.clone(), v))
                })
                .collect(),
        })
    }
}

/// Whether `token` has a JWS compact shape: three base64url parts.
fn looks_like_jwt(token: &str) -> bool {
    let parts: Vec<&str> = token.split('.').collect();
    parts.len() == 3
        && parts[..2].iter().all(|p| !p.is_empty())
        && parts.iter().all(|p| {
            p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// The `alg` a token's header writes, whatever it is.
fn header_alg(token: &str) -> Option<String> {
    use base64::Engine as _;
    let header = token.split('.').next()?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .ok()?;
    let value: Json = serde_json::from_slice(&bytes).ok()?;
    value.get("alg")?.as_str().map(str::to_string)
}

/// What a failed JWT check says to the client.
fn jwt_error(error: &jsonwebtoken::errors::Error, audiences: &[String]) -> String {
    use jsonwebtoken::errors::ErrorKind;
    match error.kind() {
        ErrorKind::ExpiredSignature => "the token has expired".into(),
        ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)".into(),
        ErrorKind::InvalidAudience => format!(
            "the token is not for this server: its audience is not {}",
            audiences.join(" or ")
        ),
        ErrorKind::InvalidIssuer => "the token was issued by another issuer".into(),
        ErrorKind::InvalidSignature => "the token's signature does not verify".into(),
        ErrorKind::InvalidAlgorithm => "the token's algorithm does not match its key".into(),
        ErrorKind::MissingRequiredClaim(claim) => format!("the token has no {claim} claim"),
        ErrorKind::InvalidClaimFormat(claim) => format!("the token's {claim} claim is malformed"),
        _ => format!("the token is not valid: {error}"),
    }
}

/// A JSON object's map, for the tests of this module and its parts.
#[cfg(test)]
fn object(value: Json) -> Map<String, Json> {
    match value {
        Json::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Result<OAuthConfig, String> {
        let text = format!(
            "issuer = \"https://idp.example.com/realms/acme\"\n\
             resource = \"https://sluice.example.com/mcp\"\n{extra}"
        );
        toml::from_str(&text).map_err(|e| e.to_string())
    }

    #[test]
    fn the_config_is_checked_whole() {
        let ok = config("[[rules]]\n").unwrap();
        let parsed = parse(&ok).unwrap();
        assert_eq!(
            parsed.metadata_url,
            "https://sluice.example.com/.well-known/oauth-protected-resource/mcp"
        );
        assert_eq!(parsed.algorithms.len(), DEFAULT_ALGORITHMS.len());
        for (extra, message) in [
            ("", "at least one [[http.oauth.rules]]"),
            ("algorithms = [\"HS256\"]\n[[rules]]\n", "not an asymmetric"),
            ("algorithms = [\"none\"]\n[[rules]]\n", "not an asymmetric"),
            (
                "[claims]\n\"e-mail\" = \"email\"\n[[rules]]\n",
                "setting name",
            ),
            (
                "jwks_uri = \"http://keys.example.com\"\n[[rules]]\n",
                "https",
            ),
            ("[[rules]]\nrole = \"\"\n", "role is empty"),
            ("[[rules]]\nclaims = { groups = [] }\n", "lists no value"),
        ] {
            let e = parse(&config(extra).unwrap()).err().unwrap_or_default();
            assert!(e.contains(message), "{extra}: {e}");
        }
        let mut plain = config("[[rules]]\n").unwrap();
        plain.issuer = "http://idp.example.com".into();
        assert!(parse(&plain).unwrap_err().contains("https"));
    }

    #[test]
    fn jwt_shape_and_header() {
        assert!(looks_like_jwt("eyJh.eyJi.c2ln"));
        assert!(looks_like_jwt("eyJh.eyJi."));
        assert!(!looks_like_jwt("sluice_0123"));
        assert!(!looks_like_jwt("a.b"));
        assert!(!looks_like_jwt("a.b.c.d"));
        assert!(!looks_like_jwt("a+.b.c"));
        // {"alg":"none"}
        assert_eq!(
            header_alg("eyJhbGciOiJub25lIn0.e30.").as_deref(),
            Some("none")
        );
        assert_eq!(header_alg("!!.e30."), None);
    }
}
