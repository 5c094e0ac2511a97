//! The audit trail: one structured event per database host call, to the log
//! (target `sluice::audit`) and, when configured, to a JSON-lines file.
//!
//! Events name the client (its API key, or its OAuth subject and issuer;
//! a stdio session's local user is named by neither) and carry the
//! statement's fingerprint (literals replaced by `?`), never parameter
//! values.

use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::Path;
use std::sync::Mutex;

/// What the gate decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Allowed (the database may still have failed it: see `sqlstate`).
    Allow,
    /// Refused by the policy; nothing reached the database.
    Deny,
    /// Failed before a decision (bad input, connection trouble).
    Error,
}

/// One audit event.
#[derive(Debug, Clone, Serialize)]
pub struct Event<'a> {
    /// RFC 3339 UTC.
    pub time: String,
    /// The API key the client authenticated with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<&'a str>,
    /// The OAuth subject the client's token names, and its issuer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<&'a str>,
    pub plugin: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool: Option<&'a str>,
    /// `query`, `insert`, `list-relations`, `describe-relation`.
    pub call: &'a str,
    /// The statement with literals replaced by `?`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    pub relations: &'a [String],
    pub decision: Decision,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub duration_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sqlstate: Option<String>,
}

/// Where events go.
#[derive(Default)]
pub struct AuditLog {
    file: Option<Mutex<File>>,
}

impl AuditLog {
    /// Events to the log only.
    pub fn log_only() -> Self {
        AuditLog::default()
    }

    /// Events to the log and appended to `path`.
    pub fn to_file(path: &Path) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(AuditLog {
            file: Some(Mutex::new(file)),
        })
    }

    /// Records one event.
    pub fn record(&self, event: &Event<'_>) {
        let line = match serde_json::to_string(event) {
            Ok(line) => line,
            Err(e) => {
                tracing::error!("cannot serialize an audit event: {e}");
                return;
            }
        };
        match event.decision {
            Decision::Deny => tracing::warn!(target: "sluice::audit", "{line}"),
            _ => tracing::info!(target: "sluice::audit", "{line}"),
        }
        if let Some(file) = &self.file {
            // One write per line, so concurrent events never interleave.
            let written = file
                .lock()
                .map_err(|_| std::io::Error::other("audit file lock poisoned"))
                .and_then(|mut f| f.write_all(format!("{line}\n").as_bytes()));
            if let Err(e) = written {
                tracing::error!("cannot write the audit file: {e}");
            }
        }
    }
}
