//! The plugin names the config uses, checked against the plugins that are
//! loaded: one place for `serve`, `plugins list/check` and hot reload.
//!
//! A grant table, a config table, a `[plugins] disabled` entry or an HTTP
//! key scope that names no loaded plugin is a mistake (most often a typo:
//! `sql_read` for `sql-read`), and a silent one: the restriction or the
//! grant it meant never applies. The one way to name a plugin before it
//! arrives (by hot reload) is to list it in `[plugins] expected`, so that
//! no typo passes as a plugin to come.

use crate::config::Config;
use std::collections::BTreeSet;
use std::fmt;

/// A config entry naming a plugin that is not loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownName {
    /// Where the name is, as the operator would look for it in the file.
    pub place: String,
    /// The name as written.
    pub name: String,
    /// The closest loaded name, when one is close enough to be a typo.
    pub suggestion: Option<String>,
    /// Every loaded plugin, for the message when nothing is close.
    loaded: Vec<String>,
    /// Plugin files that did not load (their names are unknown), which
    /// may be what the entry meant.
    failed: Vec<String>,
}

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} names plugin {:?}, which is not loaded; ",
            self.place, self.name
        )?;
        match &self.suggestion {
            Some(close) => write!(f, "did you mean {close}?"),
            None => {
                let loaded = if self.loaded.is_empty() {
                    "none".to_string()
                } else {
                    self.loaded.join(", ")
                };
                write!(f, "loaded plugins: {loaded}")?;
                if !self.failed.is_empty() {
                    write!(f, "; failed to load: {}", self.failed.join(", "))?;
                }
                write!(
                    f,
                    " (a plugin that may be absent, to arrive later by hot reload, \
                     must be listed in [plugins] expected)"
                )
            }
        }
    }
}

/// What [`check_names`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameCheck {
    /// Entries naming no loaded plugin: errors.
    pub unknown: Vec<UnknownName>,
    /// `[plugins] expected` names not loaded (yet): worth a log line only.
    pub awaited: Vec<String>,
}

impl NameCheck {
    /// The unknown names as one error, if there are any.
    pub fn into_result(self) -> Result<(), UnknownNames> {
        if self.unknown.is_empty() {
            Ok(())
        } else {
            Err(UnknownNames(self.unknown))
        }
    }

    /// Logs the expected plugins that are not loaded yet.
    pub fn log_awaited(&self) {
        for name in &self.awaited {
            tracing::info!(
                plugin = %name,
                "expected plugin is not loaded yet; its grant and config apply when it arrives"
            );
        }
    }
}

/// Config entries that name plugins that are not loaded; fatal at start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct UnknownNames(pub Vec<UnknownName>);

impl fmt::Display for UnknownNames {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [one] => write!(f, "{one}"),
            many => {
                write!(
                    f,
                    "{} config entries name plugins that are not loaded:",
                    many.len()
                )?;
                for problem in many {
                    write!(f, "\n  {problem}")?;
                }
                Ok(())
            }
        }
    }
}

/// Checks every plugin name the config uses against `loaded` (every plugin
/// whose manifest was read, served or not: disabled and idle ones count).
/// `failed` are the plugin files that did not load, for the messages.
pub fn check_names(config: &Config, loaded: &BTreeSet<String>, failed: &[String]) -> NameCheck {
    let plugins = &config.plugins;
    let expected: BTreeSet<&str> = plugins.expected.iter().map(String::as_str).collect();
    let mut places: Vec<(String, &str)> = Vec::new();
    for name in plugins.grants.keys() {
        places.push((format!("[plugins.grants.{name}]"), name));
    }
    for name in plugins.config.keys() {
        places.push((format!("[plugins.config.{name}]"), name));
    }
    for name in &plugins.disabled {
        places.push(("[plugins] disabled".to_string(), name));
    }
    for key in &config.http.auth.keys {
        for name in key.plugins.iter().flatten() {
            places.push((format!("[[http.auth.keys]] {:?} plugins", key.id), name));
        }
    }
    for (i, rule) in config
        .http
        .oauth
        .iter()
        .flat_map(|o| o.rules.iter())
        .enumerate()
    {
        for name in rule.plugins.iter().flatten() {
            places.push((format!("[[http.oauth.rules]] #{} plugins", i + 1), name));
        }
    }
    let loaded_list: Vec<String> = loaded.iter().cloned().collect();
    let unknown = places
        .into_iter()
        .filter(|(_, name)| !loaded.contains(*name) && !expected.contains(name))
        .map(|(place, name)| UnknownName {
            place,
            name: name.to_string(),
            suggestion: closest(name, loaded).map(str::to_string),
            loaded: loaded_list.clone(),
            failed: failed.to_vec(),
        })
        .collect();
    let awaited = expected
        .into_iter()
        .filter(|name| !loaded.contains(*name))
        .map(str::to_string)
        .collect();
    NameCheck { unknown, awaited }
}

/// The loaded name closest to `name`, if it is close enough to be what was
/// meant: `_` for `-` and case count as no difference, and up to one edit
/// per four characters (at least one) as a typo.
fn closest<'a>(name: &str, loaded: &'a BTreeSet<String>) -> Option<&'a str> {
    let normal = |s: &str| s.to_ascii_lowercase().replace('_', "-");
    let wanted: Vec<char> = normal(name).chars().collect();
    let most = 1 + wanted.len() / 4;
    loaded
        .iter()
        .map(|candidate| {
            let have: Vec<char> = normal(candidate).chars().collect();
            (edit_distance(&wanted, &have), candidate)
        })
        .filter(|(distance, candidate)| *distance <= most && *distance < candidate.len())
        // Ties go to the first in name order: the set is sorted.
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate.as_str())
}

/// Levenshtein distance: single-character insertions, deletions and
/// substitutions. Names are short (at most 64 characters), so the
/// quadratic table is small.
fn edit_distance(a: &[char], b: &[char]) -> usize {
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut current = Vec::with_capacity(b.len() + 1);
        current.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != cb);
            let delete = previous[j + 1] + 1;
            let insert = current[j] + 1;
            current.push(substitute.min(delete).min(insert));
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn distances() {
        let d = |a: &str, b: &str| {
            edit_distance(
                &a.chars().collect::<Vec<_>>(),
                &b.chars().collect::<Vec<_>>(),
            )
        };
        assert_eq!(d("", ""), 0);
        assert_eq!(d("abc", ""), 3);
        assert_eq!(d("kitten", "sitting"), 3);
        assert_eq!(d("sql-read", "sql-reed"), 1);
    }

    #[test]
    fn suggests_only_close_names() {
        let loaded = set(&["hello", "sql-read", "sql-write"]);
        assert_eq!(closest("sql_read", &loaded), Some("sql-read"));
        assert_eq!(closest("SQL-Write", &loaded), Some("sql-write"));
        assert_eq!(closest("sql-writer", &loaded), Some("sql-write"));
        assert_eq!(closest("sqlread", &loaded), Some("sql-read"));
        assert_eq!(closest("helo", &loaded), Some("hello"));
        assert_eq!(closest("geo", &loaded), None);
        assert_eq!(closest("x", &set(&["y"])), None);
    }

    #[test]
    fn finds_every_kind_of_entry_and_honours_expected() {
        let text = r#"
            [plugins]
            disabled = ["sql-writ"]
            expected = ["geo", "sql-read"]

            [plugins.grants.sql_read]
            read = ["public.film"]

            [plugins.grants.geo]
            read = ["public.*"]

            [plugins.config.helo]
            greeting = "hi"

            [[http.auth.keys]]
            id = "ci"
            hash = "sha256:00"
            plugins = ["sql-read", "other"]
        "#;
        let config = Config::parse(text, Path::new("t.toml")).unwrap();
        let check = check_names(&config, &set(&["hello", "sql-read", "sql-write"]), &[]);
        let lines: Vec<String> = check.unknown.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "[plugins.grants.sql_read] names plugin \"sql_read\", which is not loaded; did you mean sql-read?",
                "[plugins.config.helo] names plugin \"helo\", which is not loaded; did you mean hello?",
                "[plugins] disabled names plugin \"sql-writ\", which is not loaded; did you mean sql-write?",
                "[[http.auth.keys]] \"ci\" plugins names plugin \"other\", which is not loaded; loaded plugins: \
                 hello, sql-read, sql-write (a plugin that may be absent, to arrive later by hot reload, \
                 must be listed in [plugins] expected)",
            ]
        );
        assert_eq!(check.awaited, ["geo"]);
        let failed = ["d/x.wasm".to_string()];
        let check = check_names(&config, &set(&["sql-read"]), &failed);
        assert!(
            check.unknown[3]
                .to_string()
                .contains("loaded plugins: sql-read; failed to load: d/x.wasm ("),
            "{}",
            check.unknown[3]
        );
        let error = check.into_result().unwrap_err().to_string();
        assert!(
            error.starts_with(
                "4 config entries name plugins that are not loaded:\n  [plugins.grants.sql_read]"
            ),
            "{error}"
        );
    }
}
