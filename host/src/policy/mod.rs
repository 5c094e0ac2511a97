//! The policy: what a plugin's grant allows ([`Grant`], [`FunctionRules`]),
//! and what a SQL statement does ([`sql`]).
//!
//! Pure functions only; the [`crate::gate`] applies them to every database host
//! call. Analysis fails closed: SQL the parser cannot read is refused.

mod functions;
mod limits;
mod sql;

pub use functions::{FunctionRules, is_session_state, sensitive_setting};
pub(crate) use limits::each_limit;
pub use limits::{LimitSettings, Limits, MAX_MEMORY_MB};
pub use sql::{
    INDEX_DEFINITION, ReadAnalysis, RelationRef, StatementLimits, TOO_COMPLEX, WriteAnalysis,
    WriteVerb, analyze_index_definition, analyze_read, analyze_write, nesting_bound,
    parse_relation_name, placeholders,
};

use std::sync::Arc;

/// Default for `[policy] max_statement_bytes`.
pub const DEFAULT_MAX_STATEMENT_BYTES: usize = 256 * 1024;
/// Default for `[policy] max_statement_depth`.
pub const DEFAULT_MAX_STATEMENT_DEPTH: usize = 1000;
/// The most `[policy] max_statement_depth` may be: what the analysis stack
/// holds with room to spare.
pub const MAX_STATEMENT_DEPTH_LIMIT: usize = 10_000;

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

impl Pattern {
    /// `*.*`: every relation.
    pub fn any() -> Pattern {
        Pattern {
            schema: "*".into(),
            name: "*".into(),
        }
    }

    /// Whether every relation `other` matches, this matches too. `other`'s
    /// `*` is read as a literal, which only this pattern's `*` can match.
    fn covers(&self, other: &Pattern) -> bool {
        glob(&self.schema, &other.schema) && glob(&self.name, &other.name)
    }

    /// Whether granting `self` meets a request for `requested`: a plain name
    /// must be covered; a pattern with `*` asks for up to that much, so a
    /// grant inside it (or around it) meets it.
    fn satisfies(&self, requested: &Pattern) -> bool {
        let exact = !requested.schema.contains('*') && !requested.name.contains('*');
        self.covers(requested) || (!exact && requested.covers(self))
    }
}

impl std::fmt::Display for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

/// Which relations of a call a grant refuses, by why.
#[derive(Debug, Default)]
struct Refused {
    /// Outside the operator's grant: the config could allow them.
    ungranted: Vec<String>,
    /// Granted, but outside what the plugin's manifest requests.
    unrequested: Vec<String>,
    /// Server internals no grant opens.
    internal: Vec<String>,
}

/// `a`, `a and b`, `a, b and c`.
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// `relation x` or `relations x and y`.
fn relations_phrase(names: &[String]) -> String {
    let noun = if names.len() == 1 {
        "relation"
    } else {
        "relations"
    };
    format!("{noun} {}", and_list(names))
}

impl Refused {
    /// One denial for everything refused, naming each relation, the plugin,
    /// and what would allow them.
    fn denial(self, what: &str, plugin: &str, granted: &[Pattern]) -> Option<Denial> {
        if !self.internal.is_empty() {
            return Some(Denial::new(
                "server-internals",
                format!(
                    "{} {} the server's settings, files or credentials; no grant opens {}",
                    relations_phrase(&self.internal),
                    if self.internal.len() == 1 {
                        "shows"
                    } else {
                        "show"
                    },
                    if self.internal.len() == 1 {
                        "it"
                    } else {
                        "them"
                    },
                ),
            ));
        }
        let rule = if what == "read" {
            "read-grant"
        } else {
            "write-grant"
        };
        let mut parts = Vec::new();
        if !self.ungranted.is_empty() {
            let mut allowed: Vec<String> = granted.iter().map(|p| format!("\"{p}\"")).collect();
            allowed.extend(self.ungranted.iter().map(|n| format!("{n:?}")));
            let verb = if self.ungranted.len() == 1 {
                "is"
            } else {
                "are"
            };
            parts.push(format!(
                "{} {verb} not in plugin {plugin}'s {what} grant; the operator can allow \
                 {} with {what} = [{}] in [plugins.grants.{plugin}]",
                relations_phrase(&self.ungranted),
                if self.ungranted.len() == 1 {
                    "it"
                } else {
                    "them"
                },
                allowed.join(", ")
            ));
        }
        if !self.unrequested.is_empty() {
            parts.push(format!(
                "{} {} outside what plugin {plugin}'s manifest requests to {what}; only the \
                 plugin's author can widen that",
                relations_phrase(&self.unrequested),
                if self.unrequested.len() == 1 {
                    "is"
                } else {
                    "are"
                },
            ));
        }
        (!parts.is_empty()).then(|| Denial::new(rule, parts.join("; ")))
    }
}

/// Access to each of `relations` needs both the operator's grant and the
/// plugin's request (and, for reads, a relation that is not a server
/// internal); the denial names every relation refused and why.
fn check_access<'a>(
    what: &'static str,
    plugin: &str,
    granted: &[Pattern],
    requested: &[Pattern],
    relations: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<(), Denial> {
    let mut refused = Refused::default();
    for (schema, name) in relations {
        let qualified = format!("{schema}.{name}");
        let list = if what == "read" && is_internal(schema, name) {
            &mut refused.internal
        } else if !granted.iter().any(|p| p.matches(schema, name)) {
            &mut refused.ungranted
        } else if !requested.iter().any(|p| p.matches(schema, name)) {
            &mut refused.unrequested
        } else {
            continue;
        };
        if !list.contains(&qualified) {
            list.push(qualified);
        }
    }
    match refused.denial(what, plugin, granted) {
        Some(denial) => Err(denial),
        None => Ok(()),
    }
}

/// Catalog relations no grant opens, whatever its patterns: they show the
/// server's settings (and with them its file layout and commands), its
/// configuration files, or credentials (password hashes, user mappings).
const INTERNAL_RELATIONS: &[&str] = &[
    "pg_settings",
    "pg_file_settings",
    "pg_hba_file_rules",
    "pg_ident_file_mappings",
    "pg_config",
    "pg_authid",
    "pg_shadow",
    "pg_user_mapping",
    "pg_user_mappings",
];

fn is_internal(schema: &str, name: &str) -> bool {
    schema == "pg_catalog" && INTERNAL_RELATIONS.contains(&name)
}

fn effective(granted: &[Pattern], requested: &[Pattern]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for g in granted {
        for r in requested {
            let both = if r.covers(g) {
                g.to_string()
            } else if g.covers(r) {
                r.to_string()
            } else {
                format!("{g} ∩ {r}")
            };
            if !out.contains(&both) {
                out.push(both);
            }
        }
    }
    out
}

/// What a plugin asks for in its manifest (see the WIT's `requests`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requests {
    pub read: Vec<String>,
    pub write: Vec<String>,
    pub catalog: bool,
    /// Limits it asks to run under; each lowers what the operator granted.
    pub limits: LimitSettings,
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

/// A plugin's grant: what the operator granted, narrowed (see
/// [`Grant::narrowed`]) to what the plugin requested.
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    /// Relations the operator lets it read.
    pub read: Vec<Pattern>,
    /// Relations the operator lets it write.
    pub write: Vec<Pattern>,
    /// Relations it asked to read; a read must match both lists.
    pub requested_read: Vec<Pattern>,
    /// Relations it asked to write; a write must match both lists.
    pub requested_write: Vec<Pattern>,
    pub catalog: bool,
    /// Whether it may run EXPLAIN ANALYZE, which executes the statement it
    /// explains (in the read's READ ONLY transaction, under its timeout).
    pub analyze: bool,
    pub role: Option<String>,
    pub limits: Limits,
    /// Which functions its SQL may call.
    pub functions: Arc<FunctionRules>,
}

/// What the operator's config says of one plugin's grant; unset parts take
/// the defaults (see [`Grant::new`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GrantSettings {
    pub read: Option<Vec<Pattern>>,
    pub write: Option<Vec<Pattern>>,
    pub catalog: Option<bool>,
    pub analyze: Option<bool>,
    pub role: Option<String>,
    /// Its `functions` allowance (see [`FunctionRules::with_allowance`]).
    pub functions: Option<Vec<String>>,
    pub limits: LimitSettings,
}

/// The first-party plugin that gets a read grant on `public` by default.
pub const DEFAULT_READER: &str = "sql-read";

impl Grant {
    /// The grant for `plugin` from what the operator's config says of it
    /// (`settings`) over the defaults: the first-party reader reads
    /// `public.*` with catalog access; nothing else may read, write or see
    /// the catalog unless granted. Limits not set come from `defaults`.
    pub fn new(
        plugin: &str,
        settings: &GrantSettings,
        defaults: Limits,
        functions: Arc<FunctionRules>,
    ) -> Grant {
        let reader = plugin == DEFAULT_READER;
        let default_read = if reader {
            vec![Pattern {
                schema: "public".into(),
                name: "*".into(),
            }]
        } else {
            Vec::new()
        };
        Grant {
            read: settings.read.clone().unwrap_or(default_read),
            write: settings.write.clone().unwrap_or_default(),
            requested_read: vec![Pattern::any()],
            requested_write: vec![Pattern::any()],
            catalog: settings.catalog.unwrap_or(reader),
            analyze: settings.analyze.unwrap_or(false),
            role: settings.role.clone(),
            limits: settings.limits.over(defaults),
            // Checked when the config was loaded; a list that fails here
            // grants nothing beyond the shared rules.
            functions: match &settings.functions {
                Some(list) => functions
                    .with_allowance(list)
                    .map(Arc::new)
                    .unwrap_or(functions),
                None => functions,
            },
        }
    }

    pub fn may_read(&self, schema: &str, name: &str) -> bool {
        self.read.iter().any(|p| p.matches(schema, name))
            && self.requested_read.iter().any(|p| p.matches(schema, name))
            && !is_internal(schema, name)
    }

    pub fn may_write(&self, schema: &str, name: &str) -> bool {
        self.write.iter().any(|p| p.matches(schema, name))
            && self.requested_write.iter().any(|p| p.matches(schema, name))
    }

    /// The relations it may read, as readable patterns (`a ∩ b` where the
    /// granted and requested patterns only overlap).
    pub fn effective_read(&self) -> Vec<String> {
        effective(&self.read, &self.requested_read)
    }

    /// The relations it may write, as [`Grant::effective_read`].
    pub fn effective_write(&self) -> Vec<String> {
        effective(&self.write, &self.requested_write)
    }

    /// No access to anything, with `limits`: what a plugin has while it
    /// describes itself.
    pub fn nothing(limits: Limits) -> Grant {
        Grant {
            read: Vec::new(),
            write: Vec::new(),
            requested_read: Vec::new(),
            requested_write: Vec::new(),
            catalog: false,
            analyze: false,
            role: None,
            limits,
            functions: Arc::default(),
        }
    }

    /// Whether it may write anything at all.
    pub fn writes_anything(&self) -> bool {
        !self.write.is_empty() && !self.requested_write.is_empty()
    }

    /// The effective grant for a plugin that asked for `requests`: nothing
    /// it did not ask for, nothing the operator did not grant, and each
    /// limit the lower of the two. Also returns what it asked for and did
    /// not get, one line each (empty when fully granted).
    pub fn narrowed(mut self, requests: &Requests) -> Result<(Grant, Vec<String>), String> {
        let parse = |list: &[String]| -> Result<Vec<Pattern>, String> {
            list.iter().map(|t| Pattern::parse(t)).collect()
        };
        let requested_read = parse(&requests.read)?;
        let requested_write = parse(&requests.write)?;
        let mut unmet = Vec::new();
        for (what, requested, granted) in [
            ("read", &requested_read, &self.read),
            ("write", &requested_write, &self.write),
        ] {
            for r in requested {
                if !granted.iter().any(|g| g.satisfies(r)) {
                    unmet.push(format!("{what} {r}"));
                }
            }
        }
        if requests.catalog && !self.catalog {
            unmet.push("catalog".to_string());
        }
        self.catalog &= requests.catalog;
        self.requested_read = requested_read;
        self.requested_write = requested_write;

        let (limits, unmet_limits) = self.limits.lowered(requests.limits);
        self.limits = limits;
        unmet.extend(unmet_limits);
        Ok((self, unmet))
    }

    /// Reading every one of `relations` (`(schema, name)`) is allowed for
    /// `plugin`, or one denial naming each refused relation and what would
    /// allow it.
    pub fn check_reads<'a>(
        &self,
        plugin: &str,
        relations: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<(), Denial> {
        check_access("read", plugin, &self.read, &self.requested_read, relations)
    }

    /// Writing is allowed for `schema.name`, or the denial that says why not.
    pub fn check_write(&self, plugin: &str, schema: &str, name: &str) -> Result<(), Denial> {
        check_access(
            "write",
            plugin,
            &self.write,
            &self.requested_write,
            [(schema, name)],
        )
    }

    /// Whether `plugin` may write at all, or the denial that says how to
    /// grant it.
    pub fn check_writes_anything(&self, plugin: &str) -> Result<(), Denial> {
        if self.writes_anything() {
            return Ok(());
        }
        Err(Denial::new(
            "write-grant",
            format!(
                "plugin {plugin} has no write grant; the operator can allow writes with \
                 write = [\"schema.table\"] in [plugins.grants.{plugin}]"
            ),
        ))
    }

    /// Catalog access is allowed for `plugin`, or the denial naming the key
    /// that grants it.
    pub fn check_catalog(&self, plugin: &str) -> Result<(), Denial> {
        if self.catalog {
            Ok(())
        } else {
            Err(Denial::new(
                "catalog-grant",
                format!(
                    "plugin {plugin} may not list or describe relations; that needs \
                     catalog = true in [plugins.grants.{plugin}] (and catalog access \
                     requested by the plugin's manifest)"
                ),
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
    fn a_read_denial_names_every_relation_and_the_key() {
        let (grant, _) = operator(&["public.film"])
            .narrowed(&Requests {
                read: vec!["public.*".into(), "secret.*".into()],
                ..Requests::default()
            })
            .unwrap();
        let denial = grant
            .check_reads(
                "sql-read",
                [
                    ("public", "film"),
                    ("public", "rental"),
                    ("secret", "keys"),
                    ("public", "rental"),
                ],
            )
            .unwrap_err();
        assert_eq!(denial.rule, "read-grant");
        assert_eq!(
            denial.message,
            "relations public.rental and secret.keys are not in plugin sql-read's read grant; \
             the operator can allow them with read = [\"public.film\", \"public.rental\", \
             \"secret.keys\"] in [plugins.grants.sql-read]"
        );
        let (narrow, _) = operator(&["*.*"])
            .narrowed(&Requests {
                read: vec!["public.film".into()],
                ..Requests::default()
            })
            .unwrap();
        let denial = narrow.check_reads("p", [("public", "rental")]).unwrap_err();
        assert!(
            denial
                .message
                .contains("outside what plugin p's manifest requests to read"),
            "{}",
            denial.message
        );
        assert!(
            narrow
                .check_catalog("p")
                .unwrap_err()
                .message
                .contains("catalog = true in [plugins.grants.p]")
        );
    }

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

    fn operator(read: &[&str]) -> Grant {
        let settings = GrantSettings {
            read: Some(read.iter().map(|s| Pattern::parse(s).unwrap()).collect()),
            catalog: Some(true),
            ..GrantSettings::default()
        };
        Grant::new("p", &settings, Limits::default(), Arc::default())
    }

    #[test]
    fn narrowing_grants_only_what_both_allow() {
        let requests = Requests {
            read: vec!["public.film".into(), "public.rental".into()],
            limits: LimitSettings {
                timeout_ms: Some(30_000),
                max_rows: Some(50),
                ..LimitSettings::default()
            },
            ..Requests::default()
        };
        let (grant, unmet) = operator(&["public.*"]).narrowed(&requests).unwrap();
        assert!(grant.may_read("public", "film"));
        assert!(!grant.may_read("public", "customer"), "not requested");
        assert!(!grant.catalog, "not requested");
        assert_eq!(grant.limits.timeout_ms, 5000);
        assert_eq!(grant.limits.max_rows, 50);
        assert_eq!(unmet, vec!["timeout_ms 30000 (granted 5000)"]);

        let (grant, unmet) = operator(&["public.film"]).narrowed(&requests).unwrap();
        assert!(!grant.may_read("public", "rental"));
        assert_eq!(unmet[0], "read public.rental");

        // A wildcard request asks for up to that much.
        let wide = Requests {
            read: vec!["*.*".into()],
            catalog: true,
            ..Requests::default()
        };
        let (grant, unmet) = operator(&["public.*"]).narrowed(&wide).unwrap();
        assert!(unmet.is_empty(), "{unmet:?}");
        let (everything, _) = operator(&["*.*"]).narrowed(&wide).unwrap();
        assert!(everything.may_read("pg_catalog", "pg_class"));
        assert!(!everything.may_read("pg_catalog", "pg_settings"));
        assert_eq!(
            everything
                .check_reads("p", [("pg_catalog", "pg_authid")])
                .unwrap_err()
                .rule,
            "server-internals"
        );
        assert!(grant.may_read("public", "film") && !grant.may_read("secret", "x"));
        let (_, unmet) = operator(&[]).narrowed(&wide).unwrap();
        assert_eq!(unmet, vec!["read *.*"]);
        assert!(
            operator(&[])
                .narrowed(&Requests {
                    read: vec!["a.b.c".into()],
                    ..Requests::default()
                })
                .is_err()
        );
    }
}
