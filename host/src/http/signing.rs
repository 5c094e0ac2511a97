//! Signed requests: HMAC-SHA256 over the method, the path, a timestamp, a
//! nonce and the body, with a shared secret per key.
//!
//! A client sends
//!
//! ```text
//! X-Sluice-Key: <key id>
//! X-Sluice-Timestamp: <unix seconds>
//! X-Sluice-Nonce: <16 to 128 characters, unique per request>
//! X-Sluice-Signature: v1=<hex HMAC-SHA256(secret, string to sign)>
//! ```
//!
//! where the string to sign is these lines joined by `\n`: `v1`, the method,
//! the path with its query, the timestamp, the nonce, and the hex SHA-256 of
//! the body. The server compares in constant time, refuses timestamps
//! outside its skew window, and refuses a nonce it has seen inside that
//! window, so a captured request cannot be replayed.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;

pub const HEADER_KEY: &str = "x-sluice-key";
pub const HEADER_TIMESTAMP: &str = "x-sluice-timestamp";
pub const HEADER_NONCE: &str = "x-sluice-nonce";
pub const HEADER_SIGNATURE: &str = "x-sluice-signature";

/// Entries the nonce cache holds at most; beyond, new nonces are refused
/// until old ones expire (an attacker flooding it cannot evict real ones).
const MAX_NONCES: usize = 1_000_000;

/// Why a signed request was refused. The client sees only "invalid
/// signature" or the skew/replay reason, never which check of the MAC failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the {0} header is missing or malformed")]
    Header(&'static str),
    #[error("the timestamp is outside the allowed clock skew")]
    Skew,
    #[error("this nonce was already used")]
    Replay,
    #[error("the signature is not valid")]
    Invalid,
}

/// The text a request's signature covers.
pub fn string_to_sign(
    method: &str,
    path: &str,
    timestamp: &str,
    nonce: &str,
    body: &[u8],
) -> String {
    let body_hash: String = Sha256::digest(body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("v1\n{method}\n{path}\n{timestamp}\n{nonce}\n{body_hash}")
}

fn mac(secret: &[u8], text: &str) -> Hmac<Sha256> {
    // HMAC takes keys of any length.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
    mac.update(text.as_bytes());
    mac
}

/// The `X-Sluice-Signature` value for a request (what a client computes).
pub fn sign(secret: &[u8], text: &str) -> String {
    let tag = mac(secret, text).finalize().into_bytes();
    let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    format!("v1={hex}")
}

/// Whether `signature` (the header value) is right for `text`, compared in
/// constant time.
pub fn verify(secret: &[u8], text: &str, signature: &str) -> Result<(), SignatureError> {
    let hex = signature
        .strip_prefix("v1=")
        .ok_or(SignatureError::Header(HEADER_SIGNATURE))?;
    if hex.len() != 64 {
        return Err(SignatureError::Header(HEADER_SIGNATURE));
    }
    let mut tag = [0u8; 32];
    for (i, byte) in tag.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
            .map_err(|_| SignatureError::Header(HEADER_SIGNATURE))?;
    }
    mac(secret, text)
        .verify_slice(&tag)
        .map_err(|_| SignatureError::Invalid)
}

/// Checks a timestamp (unix seconds, as sent) against `now` and `skew`.
pub fn check_timestamp(timestamp: &str, now: u64, skew: u64) -> Result<u64, SignatureError> {
    let at: u64 = timestamp
        .parse()
        .map_err(|_| SignatureError::Header(HEADER_TIMESTAMP))?;
    if at.abs_diff(now) > skew {
        return Err(SignatureError::Skew);
    }
    Ok(at)
}

/// Nonces seen within the skew window, per key.
#[derive(Debug, Default)]
pub struct NonceCache {
    seen: Mutex<HashMap<(String, String), u64>>,
}

impl NonceCache {
    /// Records `nonce` for `key` until `expires` (unix seconds); refuses one
    /// already recorded and unexpired.
    pub fn remember(
        &self,
        key: &str,
        nonce: &str,
        now: u64,
        expires: u64,
    ) -> Result<(), SignatureError> {
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen.len() >= MAX_NONCES / 2 {
            seen.retain(|_, until| *until >= now);
        }
        if seen.len() >= MAX_NONCES {
            return Err(SignatureError::Replay);
        }
        let entry = (key.to_string(), nonce.to_string());
        match seen.get(&entry) {
            Some(until) if *until >= now => Err(SignatureError::Replay),
            _ => {
                seen.insert(entry, expires);
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_cover_every_part() {
        let text = string_to_sign("POST", "/mcp", "1700000000", "n-0123456789abcdef", b"{}");
        let signature = sign(b"secret", &text);
        assert!(verify(b"secret", &text, &signature).is_ok());
        assert_eq!(
            verify(b"other", &text, &signature),
            Err(SignatureError::Invalid)
        );
        for changed in [
            string_to_sign("GET", "/mcp", "1700000000", "n-0123456789abcdef", b"{}"),
            string_to_sign("POST", "/mcp?x", "1700000000", "n-0123456789abcdef", b"{}"),
            string_to_sign("POST", "/mcp", "1700000001", "n-0123456789abcdef", b"{}"),
            string_to_sign("POST", "/mcp", "1700000000", "n-0123456789abcdeg", b"{}"),
            string_to_sign("POST", "/mcp", "1700000000", "n-0123456789abcdef", b"{ }"),
        ] {
            assert_eq!(
                verify(b"secret", &changed, &signature),
                Err(SignatureError::Invalid)
            );
        }
        assert!(verify(b"secret", &text, "v1=zz").is_err());
    }

    #[test]
    fn skew_and_replay_are_refused() {
        assert!(check_timestamp("1000", 1200, 300).is_ok());
        assert_eq!(
            check_timestamp("1000", 1301, 300),
            Err(SignatureError::Skew)
        );
        assert!(check_timestamp("soon", 1000, 300).is_err());
        let cache = NonceCache::default();
        assert!(cache.remember("k", "abc", 100, 700).is_ok());
        assert_eq!(
            cache.remember("k", "abc", 200, 800),
            Err(SignatureError::Replay)
        );
        assert!(cache.remember("other", "abc", 200, 800).is_ok());
        assert!(cache.remember("k", "abc", 701, 1300).is_ok(), "expired");
    }
}
