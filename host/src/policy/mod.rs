//! The policy: what a plugin's grant allows ([`Grant`], [`FunctionRules`]),
//! and what a SQL statement does ([`sql`]).
//!
//! Pure functions only; the [`crate::gate`] applies them to every database host
//! call. Analysis fails closed: SQL the parser cannot read is refused.

mod functions;
mod sql;

pub use functions::FunctionRules;
pub use sql::{ReadAnalysis, RelationRef, analyze_read, fingerprint, parse_relation_name};

use crate::config::GrantConfig;
use std::sync::Arc;

/// A refusal, naming the rule that refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("denied ({rule}): {message}")]
pub struct Denial {
    pub rule: &'static str,
    pub message: String,
}

impl Denial {
    pub(crate) fn new(rule: &'static str, message: impl Into<String>) -> Self {
        Denial {
            rule,
            message: message.into(),
        }
    }
}

/// One relation pattern of a grant: `schema.name`, either part may be `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    schema: String,
    name: String,
}

impl Pattern {
    /// Parses `public.*`, `public.film`, `*.*`; a bare `film` means `public.film`.
    pub fn parse(text: &str) -> Result<Pattern, String> {
        let parts: Vec<&str> = text.split('.').collect();
        let (schema, name) = match parts.as_slice() {
            [name] => ("public", *name),
            [schema, name] => (*schema, *name),
            _ => {
                return Err(format!(
                    "relation pattern {text:?} must be `schema.name` (either part may be `*`)"
                ));
            }
        };
        if schema.is_empty() || name.is_empty() {
            return Err(format!("relation pattern {text:?} has an empty part"));
        }
        Ok(Pattern {
            schema: schema.to_string(),
            name: name.to_string(),
        })
    }

    /// Whether the relation `schema.name` (as stored in the catalog) matches.
    pub fn matches(&self, schema: &str, name: &str) -> bool {
        glob(&self.schema, schema) && glob(&self.name, name)
    }
}

/// `*` matches any run of characters; everything else matches itself exactly.
pub(crate) fn glob(pattern: &str, text: &str) -> bool {
    let Some((head, rest)) = pattern.split_once('*') else {
        return pattern == text;
    };
    let Some(mut remaining) = text.strip_prefix(head) else {
        return false;
    };
    let pieces: Vec<&str> = rest.split('*').collect();
    for (i, piece) in pieces.iter().enumerate() {
        if i == pieces.len() - 1 {
            return remaining.ends_with(piece);
        }
        match remaining.find(piece) {
            Some(at) => remaining = &remaining[at + piece.len()..],
            None => return false,
        }
    }
    true
}

/// Limits that apply to one plugin's calls. Each is named in the error a
/// call gets when it reaches it, by its config key.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// `timeout_ms`: statement timeout, and the deadline of a whole call.
    pub timeout_ms: u64,
    /// `max_rows`: rows a query returns; more are dropped and flagged.
    pub max_rows: u32,
    /// `max_write_rows`: rows one update or delete may touch; more roll back.
    pub max_write_rows: u32,
    /// `max_result_bytes`: size of one statement's result as it comes off
    /// the wire; a bigger result is an error.
    pub max_result_bytes: u64,
    /// `memory_mb`: linear memory of one call.
    pub memory_bytes: u64,
    /// `max_host_calls`: host calls one plugin call may make.
    pub max_host_calls: u32,
    /// `max_concurrent_calls`: calls of one plugin running at once.
    pub max_concurrent_calls: u32,
}

/// A plugin's effective grant.
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    pub read: Vec<Pattern>,
    pub write: Vec<Pattern>,
    pub catalog: bool,
    pub role: Option<String>,
    pub limits: Limits,
    /// Which functions its SQL may call.
    pub functions: Arc<FunctionRules>,
}

/// The first-party plugin that gets a read grant on `public` by default.
pub const DEFAULT_READER: &str = "sql-read";

impl Grant {
    /// The grant for `plugin` from its config entry (if any) over the defaults:
    /// the first-party reader reads `public.*` with catalog access; nothing else
    /// may read, write or see the catalog unless granted.
    pub fn from_config(
        plugin: &str,
        config: Option<&GrantConfig>,
        defaults: &Limits,
        functions: Arc<FunctionRules>,
    ) -> Grant {
        let empty = GrantConfig::default();
        let c = config.unwrap_or(&empty);
        let reader = plugin == DEFAULT_READER;
        let patterns = |list: &Option<Vec<String>>, default: &[&str]| -> Vec<Pattern> {
            let texts: Vec<String> = match list {
                Some(list) => list.clone(),
                None => default.iter().map(|s| s.to_string()).collect(),
            };
            // Patterns were validated when the config was loaded.
            texts
                .iter()
                .filter_map(|t| Pattern::parse(t).ok())
                .collect()
        };
        Grant {
            read: patterns(&c.read, if reader { &["public.*"] } else { &[] }),
            write: patterns(&c.write, &[]),
            catalog: c.catalog.unwrap_or(reader),
            role: c.role.clone(),
            limits: Limits {
                timeout_ms: c.timeout_ms.unwrap_or(defaults.timeout_ms),
                max_rows: c.max_rows.unwrap_or(defaults.max_rows),
                max_write_rows: c.max_write_rows.unwrap_or(defaults.max_write_rows),
                max_result_bytes: c.max_result_bytes.unwrap_or(defaults.max_result_bytes),
                memory_bytes: c
                    .memory_mb
                    .map(|mb| mb * 1024 * 1024)
                    .unwrap_or(defaults.memory_bytes),
                max_host_calls: c.max_host_calls.unwrap_or(defaults.max_host_calls),
                max_concurrent_calls: c
                    .max_concurrent_calls
                    .unwrap_or(defaults.max_concurrent_calls),
            },
            functions,
        }
    }

    pub fn may_read(&self, schema: &str, name: &str) -> bool {
        self.read.iter().any(|p| p.matches(schema, name))
    }

    pub fn may_write(&self, schema: &str, name: &str) -> bool {
        self.write.iter().any(|p| p.matches(schema, name))
    }

    /// Reading is allowed for `schema.name`, or the denial that says why not.
    pub fn check_read(&self, schema: &str, name: &str) -> Result<(), Denial> {
        if self.may_read(schema, name) {
            Ok(())
        } else {
            Err(Denial::new(
                "read-grant",
                format!("relation {schema}.{name} is not in this plugin's read grant"),
            ))
        }
    }

    /// Writing is allowed for `schema.name`, or the denial that says why not.
    pub fn check_write(&self, schema: &str, name: &str) -> Result<(), Denial> {
        if self.may_write(schema, name) {
            Ok(())
        } else {
            Err(Denial::new(
                "write-grant",
                format!("relation {schema}.{name} is not in this plugin's write grant"),
            ))
        }
    }

    /// Catalog access is allowed, or the denial.
    pub fn check_catalog(&self) -> Result<(), Denial> {
        if self.catalog {
            Ok(())
        } else {
            Err(Denial::new(
                "catalog-grant",
                "this plugin may not list or describe relations",
            ))
        }
    }

    /// Whether `schema.name` is visible through the catalog calls.
    pub fn may_see(&self, schema: &str, name: &str) -> bool {
        self.may_read(schema, name) || self.may_write(schema, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match() {
        let p = Pattern::parse("public.*").unwrap();
        assert!(p.matches("public", "film"));
        assert!(!p.matches("secret", "film"));
        let p = Pattern::parse("film").unwrap();
        assert!(p.matches("public", "film"));
        assert!(!p.matches("public", "films"));
        let p = Pattern::parse("s.f*m").unwrap();
        assert!(p.matches("s", "film"));
        assert!(!p.matches("s", "filmx"));
        assert!(Pattern::parse("a.b.c").is_err());
    }
}
