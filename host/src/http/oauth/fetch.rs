//! Requests to the authorization server: its metadata, its keys, token
//! introspection. Each is bounded in time and size, follows no redirect,
//! and goes over HTTPS unless the server is on loopback (a local test
//! server, or one on the same machine).

use std::time::Duration;

/// The most any answer of the authorization server may hold.
pub const MAX_ANSWER_BYTES: usize = 512 * 1024;

/// Why a request to the authorization server failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{url}: {message}")]
    Failed { url: String, message: String },
}

impl FetchError {
    fn new(url: &str, message: impl Into<String>) -> FetchError {
        FetchError::Failed {
            url: url.to_string(),
            message: message.into(),
        }
    }
}

/// Checks that `url` may be asked: an absolute `https` URL, or `http` to
/// a loopback address. `what` names it for the message.
pub fn check_url(url: &str, what: &str) -> Result<reqwest::Url, String> {
    let parsed =
        reqwest::Url::parse(url).map_err(|e| format!("{what} {url:?} is not a URL: {e}"))?;
    let loopback = match parsed.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if loopback => Ok(parsed),
        _ => Err(format!(
            "{what} {url:?} must be an https URL (http only to a loopback address)"
        )),
    }
}

/// The HTTP client for the authorization server.
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
}

impl Fetcher {
    /// A client whose every request ends after `timeout`.
    pub fn new(timeout: Duration) -> Result<Fetcher, String> {
        crate::install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            // A redirect could lead a key fetch anywhere.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("sluice/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client for OAuth: {e}"))?;
        Ok(Fetcher { client })
    }

    /// GETs `url` as a JSON object.
    pub async fn get_json(&self, url: &str) -> Result<serde_json::Value, FetchError> {
        let request = self
            .client
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json");
        self.send(url, request).await
    }

    /// POSTs `form` to `url` with HTTP Basic client authentication, and
    /// reads the answer as a JSON object.
    pub async fn post_form(
        &self,
        url: &str,
        form: &[(&str, &str)],
        client_id: &str,
        client_secret: &str,
    ) -> Result<serde_json::Value, FetchError> {
        let request = self
            .client
            .post(url)
            .header(reqwest::header::ACCEPT, "application/json")
            // RFC 6749 §2.3.1: the id and secret are form-encoded first.
            .basic_auth(form_encode(client_id), Some(form_encode(client_secret)))
            .form(form);
        self.send(url, request).await
    }

    async fn send(
        &self,
        url: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<serde_json::Value, FetchError> {
        let mut response = request
            .send()
            .await
            .map_err(|e| FetchError::new(url, without_url(&e)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(FetchError::new(url, format!("answered {status}")));
        }
        if response
            .content_length()
            .is_some_and(|n| n > MAX_ANSWER_BYTES as u64)
        {
            return Err(FetchError::new(url, "the answer is too large"));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| FetchError::new(url, without_url(&e)))?
        {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(FetchError::new(url, "the answer is too large"));
            }
            body.extend_from_slice(&chunk);
        }
        let value: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| FetchError::new(url, format!("the answer is not JSON: {e}")))?;
        if !value.is_object() {
            return Err(FetchError::new(url, "the answer is not a JSON object"));
        }
        Ok(value)
    }
}

/// reqwest's message, without the URL it repeats.
fn without_url(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    if let Some(url) = error.url() {
        text = text.replace(&format!(" ({url})"), "");
    }
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// `application/x-www-form-urlencoded` encoding of one value.
fn form_encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_loopback_http_is_asked() {
        assert!(check_url("https://idp.example.com/realms/a", "issuer").is_ok());
        assert!(check_url("http://127.0.0.1:8080", "issuer").is_ok());
        assert!(check_url("http://[::1]:8080/x", "issuer").is_ok());
        assert!(check_url("http://localhost/x", "issuer").is_ok());
        for bad in [
            "http://idp.example.com",
            "ftp://127.0.0.1",
            "idp.example.com",
            "",
        ] {
            let e = check_url(bad, "issuer").unwrap_err();
            assert!(e.starts_with("issuer"), "{e}");
        }
    }
}
