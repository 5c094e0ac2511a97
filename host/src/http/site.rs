//! One `Host` and `Origin` rule for every MCP route (`/mcp`, `/sse`,
//! `/messages`), against DNS rebinding and cross-site pages.
//!
//! `Host` must name an entry of `[http] allowed_hosts`: a name (any port,
//! which must be a number) or `name:port` (that port only), compared
//! without case. `Origin`, when present, must be an entry of
//! `[http] allowed_origins`: `scheme://host:port`, `scheme://host:*` (any
//! port) or `scheme://host` (the scheme's default port), or `null`. A
//! refusal is a 403 that names the setting that would allow the request.
//!
//! rmcp checks `/mcp` against the same lists after this; everything allowed
//! here it allows too, so its refusals are never seen.

use super::throttle::{LogThrottle, throttled};
use crate::config::HttpConfig;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// Header values longer than this are not echoed in a refusal.
const MAX_ECHO: usize = 128;

/// A host and its port, as in `Host` or an allowed entry.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Authority {
    /// Lower case, without IPv6 brackets.
    host: String,
    port: Option<u16>,
}

/// `name`, `name:port`, `[v6]`, `[v6]:port`, or, when `bare_v6`, an IPv6
/// address without brackets (as config entries write `::1`; a `Host`
/// header may not). `None` when malformed, such as a port that is not a
/// number.
fn parse_authority(text: &str, bare_v6: bool) -> Option<Authority> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':')?),
        };
        (host, port)
    } else if text.matches(':').count() > 1 {
        if !bare_v6 {
            return None;
        }
        (text, None)
    } else {
        match text.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    let port = match port {
        Some(port) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            Some(port.parse::<u16>().ok()?)
        }
        Some(_) => return None,
        None => None,
    };
    let name_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'));
    name_ok.then(|| Authority {
        host: host.to_ascii_lowercase(),
        port,
    })
}

/// An origin: `null`, or scheme, host and port (the scheme's default when
/// none is written).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Origin {
    Null,
    Site {
        scheme: String,
        host: String,
        port: Option<u16>,
    },
}

/// An allowed origin's port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Port {
    Any,
    Exactly(Option<u16>),
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// `scheme://authority`, nothing after it; with `:*` when `wildcard`.
fn parse_origin(text: &str, wildcard: bool) -> Option<(Origin, Port)> {
    if text.eq_ignore_ascii_case("null") {
        return Some((Origin::Null, Port::Exactly(None)));
    }
    let (scheme, rest) = text.split_once("://")?;
    if scheme.is_empty()
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
    {
        return None;
    }
    let scheme = scheme.to_ascii_lowercase();
    let (rest, any) = match rest.strip_suffix(":*") {
        Some(base) if wildcard => (base, true),
        _ => (rest, false),
    };
    let authority = parse_authority(rest, false)?;
    let port = authority.port.or_else(|| default_port(&scheme));
    let origin = Origin::Site {
        scheme,
        host: authority.host,
        port: if any { None } else { port },
    };
    Some((origin, if any { Port::Any } else { Port::Exactly(port) }))
}

/// The allowed hosts and origins, parsed once.
pub struct Site {
    hosts: Vec<Authority>,
    origins: Vec<(Origin, Port)>,
    log: LogThrottle,
}

impl Site {
    /// Fails on an entry that can never match, naming it.
    pub fn new(config: &HttpConfig) -> Result<Site, String> {
        let hosts = config
            .allowed_hosts
            .iter()
            .map(|entry| {
                parse_authority(entry, true).ok_or_else(|| {
                    format!("[http] allowed_hosts: {entry:?} is not a host name or name:port")
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if hosts.is_empty() {
            return Err(
                "[http] allowed_hosts is empty, so every request would be refused; list the names clients use"
                    .into(),
            );
        }
        let origins = config
            .allowed_origins
            .iter()
            .map(|entry| {
                parse_origin(entry, true).ok_or_else(|| {
                    format!(
                        "[http] allowed_origins: {entry:?} is not an origin (scheme://host, scheme://host:port, scheme://host:* or null)"
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Site {
            hosts,
            origins,
            log: LogThrottle::default(),
        })
    }

    fn host_allowed(&self, host: &str) -> bool {
        parse_authority(host, false).is_some_and(|host| {
            self.hosts.iter().any(|allowed| {
                allowed.host == host.host && (allowed.port.is_none() || allowed.port == host.port)
            })
        })
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        let Some((origin, _)) = parse_origin(origin, false) else {
            return false;
        };
        self.origins
            .iter()
            .any(|(allowed, port)| match (allowed, &origin) {
                (Origin::Null, Origin::Null) => true,
                (
                    Origin::Site {
                        scheme: a_scheme,
                        host: a_host,
                        ..
                    },
                    Origin::Site {
                        scheme,
                        host,
                        port: origin_port,
                    },
                ) => {
                    a_scheme == scheme
                        && a_host == host
                        && match port {
                            Port::Any => true,
                            Port::Exactly(p) => p == origin_port,
                        }
                }
                _ => false,
            })
    }

    /// Why the request is refused, naming the setting that would allow it.
    fn check(&self, headers: &HeaderMap) -> Result<(), String> {
        let Some(host) = headers.get(header::HOST) else {
            return Err(
                "the request has no Host header; [http] allowed_hosts lists those accepted".into(),
            );
        };
        let host = String::from_utf8_lossy(host.as_bytes());
        if !self.host_allowed(&host) {
            return Err(format!(
                "the Host {} is not allowed; to accept it, add it to [http] allowed_hosts",
                echo(&host)
            ));
        }
        for origin in headers.get_all(header::ORIGIN) {
            let origin = String::from_utf8_lossy(origin.as_bytes());
            if !self.origin_allowed(&origin) {
                return Err(format!(
                    "the Origin {} is not allowed; to accept it, add it to [http] allowed_origins",
                    echo(&origin)
                ));
            }
        }
        Ok(())
    }
}

/// A header value for a message: quoted, escaped, bounded.
fn echo(value: &str) -> String {
    let mut shown: String = value.chars().take(MAX_ECHO).collect();
    if shown.len() < value.len() {
        shown.push('…');
    }
    format!("{shown:?}")
}

/// Axum middleware: refuses, with 403, requests whose `Host` or `Origin`
/// is not allowed.
pub async fn same_site(State(site): State<Arc<Site>>, request: Request, next: Next) -> Response {
    match site.check(request.headers()) {
        Ok(()) => next.run(request).await,
        Err(why) => {
            throttled!(warn, site.log, "HTTP request refused: {why}");
            (
                StatusCode::FORBIDDEN,
                axum::Json(serde_json::json!({ "error": why })),
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(hosts: &[&str], origins: &[&str]) -> Site {
        Site::new(&HttpConfig {
            allowed_hosts: hosts.iter().map(|s| s.to_string()).collect(),
            allowed_origins: origins.iter().map(|s| s.to_string()).collect(),
            ..HttpConfig::default()
        })
        .unwrap()
    }

    #[test]
    fn hosts_need_an_allowed_name_and_a_numeric_port() {
        let s = site(&["localhost", "::1", "mcp.example.com:8443"], &[]);
        for ok in [
            "localhost",
            "localhost:8080",
            "LocalHost:1",
            "[::1]",
            "[::1]:443",
            "mcp.example.com:8443",
        ] {
            assert!(s.host_allowed(ok), "{ok}");
        }
        for bad in [
            "localhost:abc",
            "localhost:",
            "localhost:99999",
            "localhost:+80",
            "localhost.",
            "evil.example",
            "localhost@evil.example",
            "mcp.example.com",
            "mcp.example.com:443",
            "[::1",
            "[::1]x",
            "::1",
            "",
        ] {
            assert!(!s.host_allowed(bad), "{bad}");
        }
    }

    #[test]
    fn origins_match_scheme_host_and_port() {
        let s = site(
            &["localhost"],
            &["https://app.example.com:443", "http://localhost:*", "null"],
        );
        for ok in [
            "https://app.example.com",
            "https://app.example.com:443",
            "HTTPS://APP.example.com",
            "http://localhost",
            "http://localhost:3000",
            "null",
        ] {
            assert!(s.origin_allowed(ok), "{ok}");
        }
        for bad in [
            "http://app.example.com",
            "https://app.example.com:8443",
            "https://app.example.com.evil.example",
            "https://localhost:3000",
            "https://app.example.com/path",
            "app.example.com",
            "",
        ] {
            assert!(!s.origin_allowed(bad), "{bad}");
        }
        // A portless entry means the scheme's default port.
        let s = site(&["localhost"], &["https://app.example.com"]);
        assert!(s.origin_allowed("https://app.example.com:443"));
        assert!(!s.origin_allowed("https://app.example.com:8443"));
    }

    #[test]
    fn refusals_name_the_setting_and_bad_entries_are_refused() {
        let s = site(&["localhost"], &[]);
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, "localhost:abc".parse().unwrap());
        let why = s.check(&headers).unwrap_err();
        assert!(
            why.contains("[http] allowed_hosts") && why.contains("localhost:abc"),
            "{why}"
        );
        headers.insert(header::HOST, "localhost".parse().unwrap());
        headers.insert(header::ORIGIN, "https://evil.example".parse().unwrap());
        let why = s.check(&headers).unwrap_err();
        assert!(why.contains("[http] allowed_origins"), "{why}");
        assert!(s.check(&HeaderMap::new()).is_err());
        assert!(
            Site::new(&HttpConfig {
                allowed_hosts: vec!["host:port".into()],
                ..HttpConfig::default()
            })
            .is_err()
        );
        assert!(
            Site::new(&HttpConfig {
                allowed_hosts: vec![],
                ..HttpConfig::default()
            })
            .is_err()
        );
        assert!(
            Site::new(&HttpConfig {
                allowed_origins: vec!["app.example.com".into()],
                ..HttpConfig::default()
            })
            .is_err()
        );
    }
}
