//! Who is calling: what the transport established about a client (an API
//! key, an OAuth subject, or the local user on stdio), carried with every
//! call down to the database.
//!
//! The transport builds a [`Principal`]; the registry uses its [`Scope`];
//! the gate runs the call's statements under its database role and hands
//! PostgreSQL its identity as transaction-local settings
//! ([`Principal::settings`]), always as bound values; the audit trail names
//! it.

use crate::registry::model::Scope;
use std::sync::Arc;

/// The prefix of every setting sluice gives PostgreSQL about the caller.
pub const SETTING_PREFIX: &str = "sluice.";

/// How the caller proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authority {
    /// The local user of a stdio session: whoever started sluice.
    Local,
    /// An API key or signing key, by its config id.
    Key { id: Arc<str> },
    /// An OAuth access token: its issuer and subject.
    OAuth { issuer: Arc<str>, subject: Arc<str> },
}

/// A caller, as the transport established it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub authority: Authority,
    /// The plugins it may use.
    pub scope: Scope,
    /// The database role its calls run as (`SET LOCAL ROLE`), in place of
    /// a plugin's own `role`.
    pub role: Option<Arc<str>>,
    /// Token claims the operator chose to show PostgreSQL, as
    /// `(setting suffix, value)`: `sluice.claim.<suffix>`.
    pub claims: Vec<(Arc<str>, String)>,
}

impl Principal {
    /// The local user of a stdio session: every plugin, no role of its own,
    /// nothing to tell PostgreSQL.
    pub const fn local() -> Principal {
        Principal {
            authority: Authority::Local,
            scope: Scope::All,
            role: None,
            claims: Vec::new(),
        }
    }

    /// A caller that may use nothing: what a request that reached MCP
    /// without passing authentication is treated as, so that a missing check
    /// fails closed.
    pub fn nobody() -> Principal {
        Principal {
            authority: Authority::Key { id: Arc::from("") },
            scope: Scope::Only(Arc::from([])),
            role: None,
            claims: Vec::new(),
        }
    }

    /// The API key `id`, with its scope and role.
    pub fn key(id: Arc<str>, scope: Scope, role: Option<Arc<str>>) -> Principal {
        Principal {
            authority: Authority::Key { id },
            scope,
            role,
            claims: Vec::new(),
        }
    }

    /// The key id, when a key authenticated the caller.
    pub fn key_id(&self) -> Option<&str> {
        match &self.authority {
            Authority::Key { id } => Some(id),
            _ => None,
        }
    }

    /// The OAuth issuer and subject, when a token authenticated the caller.
    pub fn subject(&self) -> Option<(&str, &str)> {
        match &self.authority {
            Authority::OAuth { issuer, subject } => Some((issuer, subject)),
            _ => None,
        }
    }

    /// One name for the caller, for sessions kept to their owner and for
    /// log lines: `key:<id>`, or `oauth:<subject> <issuer>`.
    pub fn owner(&self) -> String {
        match &self.authority {
            Authority::Local => "local".to_string(),
            Authority::Key { id } => format!("key:{id}"),
            Authority::OAuth { issuer, subject } => format!("oauth:{subject} {issuer}"),
        }
    }

    /// The transaction-local settings that tell PostgreSQL who is asking,
    /// as `(name, value)`: `sluice.subject`, `sluice.issuer` and
    /// `sluice.key_id` (each empty when it does not apply), and
    /// `sluice.claim.<name>` for each claim the config names. None for the
    /// local user of stdio. The gate binds them as parameters of
    /// `set_config`; they are never spliced into SQL.
    pub fn settings(&self) -> Vec<(String, String)> {
        let (subject, issuer, key_id) = match &self.authority {
            Authority::Local => return Vec::new(),
            Authority::Key { id } => ("", "", &**id),
            Authority::OAuth { issuer, subject } => (&**subject, &**issuer, ""),
        };
        let mut settings = vec![
            (format!("{SETTING_PREFIX}subject"), subject.to_string()),
            (format!("{SETTING_PREFIX}issuer"), issuer.to_string()),
            (format!("{SETTING_PREFIX}key_id"), key_id.to_string()),
        ];
        settings.extend(
            self.claims
                .iter()
                .map(|(name, value)| (format!("{SETTING_PREFIX}claim.{name}"), value.clone())),
        );
        settings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_name_the_caller_and_nothing_for_the_local_user() {
        assert!(Principal::local().settings().is_empty());
        let key = Principal::key(Arc::from("ci"), Scope::All, None);
        assert_eq!(
            key.settings(),
            [
                ("sluice.subject".to_string(), String::new()),
                ("sluice.issuer".to_string(), String::new()),
                ("sluice.key_id".to_string(), "ci".to_string()),
            ]
        );
        let token = Principal {
            authority: Authority::OAuth {
                issuer: Arc::from("https://idp"),
                subject: Arc::from("alice"),
            },
            scope: Scope::All,
            role: Some(Arc::from("analyst")),
            claims: vec![(Arc::from("email"), "a@example.com".to_string())],
        };
        let settings = token.settings();
        assert_eq!(settings[0].1, "alice");
        assert_eq!(settings[1].1, "https://idp");
        assert_eq!(settings[2].1, "");
        assert_eq!(
            settings[3],
            (
                "sluice.claim.email".to_string(),
                "a@example.com".to_string()
            )
        );
        assert_eq!(token.owner(), "oauth:alice https://idp");
        assert_eq!(key.owner(), "key:ci");
    }
}
