//! Declared tools: SQL tools an operator writes in a `NAME.tools.toml` file
//! in the plugin directory, or inline as `[plugins.tools.NAME]`, with no
//! compiler. Each file is a plugin named `NAME`, served by the embedded
//! `sql-tools` component under `[plugins.grants.NAME]` like any other.
//!
//! This module reads a declaration and checks what needs no database:
//! the shape, the names, the parameters against the statement's `$n`
//! placeholders, defaults against enums. The registry then has the gate
//! vet each statement ([`crate::gate::Gate::vet`]: policy, grant, types,
//! prepared) and hands the result to the component
//! ([`ToolsFile::component_config`]).

use crate::policy::{self, StatementLimits};
use serde::Deserialize;
use serde_json::{Value as Json, json};
use std::collections::{BTreeMap, BTreeSet};

/// The suffix of a tools file in the plugin directory.
pub const FILE_SUFFIX: &str = ".tools.toml";
/// Largest tools file read, in bytes.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;
/// Tools one declaration may hold.
const MAX_TOOLS: usize = 256;
/// Parameters one tool may have.
const MAX_PARAMS: usize = 64;
/// Characters of a description or title.
const MAX_TEXT: usize = 4096;
/// Choices of one `enum`.
const MAX_CHOICES: usize = 1000;

/// The config key the component reads the checked declaration from.
pub const CONFIG_KEY: &str = "sluice.declared";
/// Each tool's config key is this and the tool's name: a call's instance
/// reads only its own tool.
pub const TOOL_KEY_PREFIX: &str = "sluice.declared.tool.";

/// One declaration: a tools file, or a `[plugins.tools.NAME]` table.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolsFile {
    /// What the tools are for, in a sentence: the plugin's description.
    pub description: Option<String>,
    /// `[[tools]]`
    #[serde(default)]
    pub tools: Vec<ToolDecl>,
}

/// `[[tools]]`: one tool.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolDecl {
    /// `[A-Za-z0-9_.-]`, at most 128 characters, unique in the file.
    pub name: String,
    pub title: Option<String>,
    /// What it does, for the model.
    pub description: String,
    /// One statement with `$1`, `$2`, … for the parameters, in order.
    pub sql: String,
    /// `read` (the default): a query; `write`: one INSERT, UPDATE or DELETE.
    #[serde(default)]
    pub kind: Kind,
    /// A write that may overwrite or delete data. Default: true for UPDATE
    /// and DELETE, false for INSERT.
    pub destructive: Option<bool>,
    /// A write whose repetition changes nothing more. Default: false.
    pub idempotent: Option<bool>,
    /// Rows one call of a write may touch, below the grant's
    /// `max_write_rows`.
    pub max_rows: Option<u32>,
    /// `[[tools.params]]`, one per placeholder, in order.
    #[serde(default)]
    pub params: Vec<ParamDecl>,
}

/// Whether a tool reads or writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    #[default]
    Read,
    Write,
}

/// `[[tools.params]]`: the parameter `$n`, the n-th in the list.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamDecl {
    /// The argument's name: lower-case letters, digits and `_`.
    pub name: String,
    /// A PostgreSQL type name (`integer`, `text`, `date`, `text[]`, an enum
    /// type): the type the statement uses the parameter as.
    #[serde(rename = "type")]
    pub type_name: String,
    pub description: Option<String>,
    /// Used when the argument is not given; makes it optional.
    pub default: Option<toml::Value>,
    /// The only values allowed.
    #[serde(rename = "enum")]
    pub choices: Option<Vec<toml::Value>>,
    /// Absent means SQL NULL (rather than an error).
    #[serde(default)]
    pub optional: bool,
}

/// Why a declaration cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeclaredError {
    /// Not TOML, or not the shape of a tools file.
    #[error("{0}")]
    Syntax(String),
    /// One tool is wrong; says which and how.
    #[error("tool {tool}: {problem}")]
    Tool { tool: String, problem: String },
    /// Wrong as a whole.
    #[error("{0}")]
    Invalid(String),
}

fn tool_error(tool: &str, problem: impl Into<String>) -> DeclaredError {
    DeclaredError::Tool {
        tool: tool.to_string(),
        problem: problem.into(),
    }
}

/// Parses a tools file's text.
pub fn parse(text: &str) -> Result<ToolsFile, DeclaredError> {
    toml::from_str(text).map_err(|e| DeclaredError::Syntax(e.to_string()))
}

/// The plugin name a tools file serves under: its name without
/// [`FILE_SUFFIX`], if that is one.
pub fn file_stem(file_name: &str) -> Option<&str> {
    file_name
        .strip_suffix(FILE_SUFFIX)
        .filter(|s| !s.is_empty())
}

impl ToolsFile {
    /// Checks everything that needs no database; `limits` bound each
    /// statement as the gate will.
    pub fn check(&self, limits: StatementLimits) -> Result<(), DeclaredError> {
        if self.tools.is_empty() {
            return Err(DeclaredError::Invalid(
                "it declares no tools: add a [[tools]] table with name, description and sql".into(),
            ));
        }
        if self.tools.len() > MAX_TOOLS {
            return Err(DeclaredError::Invalid(format!(
                "it declares {} tools, more than {MAX_TOOLS}",
                self.tools.len()
            )));
        }
        if self
            .description
            .as_ref()
            .is_some_and(|d| d.len() > MAX_TEXT)
        {
            return Err(DeclaredError::Invalid(format!(
                "its description is longer than {MAX_TEXT} bytes"
            )));
        }
        let mut names = BTreeSet::new();
        for tool in &self.tools {
            if !names.insert(tool.name.as_str()) {
                return Err(tool_error(&tool.name, "declared twice"));
            }
            tool.check(limits)?;
        }
        Ok(())
    }
}

impl ToolDecl {
    fn check(&self, limits: StatementLimits) -> Result<(), DeclaredError> {
        let fail = |problem: String| Err(tool_error(&self.name, problem));
        let valid_name = !self.name.is_empty()
            && self.name.len() <= 128
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !valid_name {
            return fail("a tool name is 1 to 128 of A-Z, a-z, 0-9, `_`, `.` and `-`".into());
        }
        if self.description.trim().is_empty() {
            return fail("description is empty; say what the tool does, for the model".into());
        }
        for (what, text) in [
            ("description", Some(&self.description)),
            ("title", self.title.as_ref()),
        ] {
            if text.is_some_and(|t| t.len() > MAX_TEXT) {
                return fail(format!("its {what} is longer than {MAX_TEXT} bytes"));
            }
        }
        if self.kind == Kind::Read {
            for (key, set) in [
                ("destructive", self.destructive.is_some()),
                ("idempotent", self.idempotent.is_some()),
                ("max_rows", self.max_rows.is_some()),
            ] {
                if set {
                    return fail(format!("{key} is for write tools (kind = \"write\")"));
                }
            }
        }
        if self.max_rows == Some(0) {
            return fail("max_rows must be at least 1".into());
        }
        if self.params.len() > MAX_PARAMS {
            return fail(format!("more than {MAX_PARAMS} parameters"));
        }
        let mut seen = BTreeSet::new();
        for p in &self.params {
            let valid = !p.name.is_empty()
                && p.name.len() <= 64
                && p.name
                    .starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
                && p.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !valid {
                return fail(format!(
                    "parameter name {:?}: use lower-case letters, digits and `_`, \
                     starting with a letter or `_`",
                    p.name
                ));
            }
            if !seen.insert(p.name.as_str()) {
                return fail(format!("parameter {} is declared twice", p.name));
            }
            if p.type_name.trim().is_empty() || p.type_name.len() > 256 {
                return fail(format!("parameter {}: type is empty or too long", p.name));
            }
            if p.description.as_ref().is_some_and(|d| d.len() > MAX_TEXT) {
                return fail(format!(
                    "parameter {}: its description is longer than {MAX_TEXT} bytes",
                    p.name
                ));
            }
            p.check_values().map_err(|e| tool_error(&self.name, e))?;
        }
        let used = policy::placeholders(&self.sql, limits)
            .map_err(|d| tool_error(&self.name, format!("sql: {}", d.message)))?;
        let declared = self.params.len() as u32;
        if let Some(beyond) = used.iter().find(|n| **n > declared) {
            return fail(format!(
                "the SQL uses ${beyond}, and {declared} parameter(s) are declared; \
                 add a [[tools.params]] for each placeholder, in order"
            ));
        }
        if let Some((i, unused)) = self
            .params
            .iter()
            .enumerate()
            .find(|(i, _)| !used.contains(&(*i as u32 + 1)))
        {
            return fail(format!(
                "parameter {} is ${}, and the SQL never uses ${}",
                unused.name,
                i + 1,
                i + 1
            ));
        }
        Ok(())
    }
}

impl ParamDecl {
    /// Its default and enum values as PostgreSQL should read them (the
    /// JSON text for `json`/`jsonb`, whose argument is the document; an
    /// array literal, `{"a","b"}`, for an array): what the gate checks
    /// against its type.
    pub fn values_as_text(&self) -> Vec<String> {
        let type_name = self.type_name.trim().to_ascii_lowercase();
        let is_json = |t: &str| matches!(t.trim(), "json" | "jsonb");
        let json_type = is_json(&type_name);
        // Elements of `jsonb[]` are documents too.
        let json_elements = type_name.strip_suffix("[]").is_some_and(is_json);
        self.default
            .iter()
            .chain(self.choices.iter().flatten())
            .filter_map(|v| json_of(v).ok())
            .filter_map(|v| match v {
                _ if json_type => Some(v.to_string()),
                Json::String(s) => Some(s),
                Json::Number(n) => Some(n.to_string()),
                Json::Bool(b) => Some(b.to_string()),
                Json::Array(_) => Some(array_literal(&v, json_elements)),
                Json::Null | Json::Object(_) => None,
            })
            .collect()
    }

    fn check_values(&self) -> Result<(), String> {
        let name = &self.name;
        if let Some(default) = &self.default {
            json_of(default).map_err(|e| format!("parameter {name}: default {e}"))?;
            if self.optional {
                return Err(format!(
                    "parameter {name}: a default makes it optional already; drop optional"
                ));
            }
        }
        if let Some(choices) = &self.choices {
            if choices.is_empty() || choices.len() > MAX_CHOICES {
                return Err(format!(
                    "parameter {name}: enum needs 1 to {MAX_CHOICES} values"
                ));
            }
            let choices: Vec<Json> = choices
                .iter()
                .map(json_of)
                .collect::<Result<_, _>>()
                .map_err(|e| format!("parameter {name}: enum {e}"))?;
            if let Some(default) = &self.default
                && let Ok(default) = json_of(default)
                && !choices.contains(&default)
            {
                return Err(format!(
                    "parameter {name}: the default {default} is not one of its enum values"
                ));
            }
        }
        Ok(())
    }
}

/// A JSON array as PostgreSQL's array input reads it: nested arrays as
/// nested braces, every element double-quoted (so commas, braces and
/// spaces in it stay its own), `null` as NULL. Nesting is TOML's, which
/// its parser bounds (see the test of it).
fn array_literal(value: &Json, json_elements: bool) -> String {
    match value {
        Json::Array(items) => {
            let inner: Vec<String> = items
                .iter()
                .map(|item| array_literal(item, json_elements))
                .collect();
            format!("{{{}}}", inner.join(","))
        }
        Json::Null => "NULL".into(),
        element => {
            let text = match element {
                Json::String(s) if !json_elements => s.clone(),
                other => other.to_string(),
            };
            format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
        }
    }
}

/// A TOML value as the JSON an argument would be. TOML's dates and times
/// become their text; tables are refused (a parameter is a value).
fn json_of(value: &toml::Value) -> Result<Json, String> {
    Ok(match value {
        toml::Value::String(s) => Json::String(s.clone()),
        toml::Value::Integer(i) => json!(i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(Json::Number)
            .ok_or_else(|| format!("{f} is not a JSON number"))?,
        toml::Value::Boolean(b) => Json::Bool(*b),
        toml::Value::Datetime(d) => Json::String(d.to_string()),
        toml::Value::Array(items) => {
            Json::Array(items.iter().map(json_of).collect::<Result<_, _>>()?)
        }
        toml::Value::Table(_) => return Err("is a table, not a value".into()),
    })
}

/// One statement's facts from the database: what [`crate::gate::Vetted`]
/// found, in the terms the component needs.
#[derive(Debug, Clone, Default)]
pub struct StatementFacts {
    /// `schema.name` of the relation it writes.
    pub written: Option<String>,
    /// `schema.name` of each relation it reads.
    pub read: Vec<String>,
    /// Each parameter's canonical type name.
    pub parameter_types: Vec<String>,
    /// An INSERT (which adds) rather than an UPDATE or DELETE.
    pub inserts: bool,
}

impl ToolsFile {
    /// The config the component reads as plugin `name`, from this
    /// (checked) declaration and its statements' `facts`, one per tool in
    /// order: the plugin's JSON under [`CONFIG_KEY`], naming its tools, and
    /// each tool's under [`TOOL_KEY_PREFIX`] and its name.
    pub fn component_config(
        &self,
        name: &str,
        facts: &[StatementFacts],
    ) -> BTreeMap<String, String> {
        let mut read = BTreeSet::new();
        let mut write = BTreeSet::new();
        let mut config = BTreeMap::new();
        for (tool, facts) in self.tools.iter().zip(facts) {
            read.extend(facts.read.iter().cloned());
            write.extend(facts.written.iter().cloned());
            let params: Vec<Json> = tool
                .params
                .iter()
                .zip(&facts.parameter_types)
                .map(|(p, type_name)| {
                    json!({
                        "name": p.name,
                        "type": type_name,
                        "description": p.description,
                        "default": p.default.as_ref().and_then(|d| json_of(d).ok()),
                        "enum": p.choices.as_ref().map(|c| c.iter().filter_map(|v| json_of(v).ok()).collect::<Vec<_>>()),
                        "optional": p.optional,
                    })
                })
                .collect();
            let is_write = tool.kind == Kind::Write;
            let declared = json!({
                "name": tool.name,
                "title": tool.title,
                "description": tool.description,
                "sql": tool.sql,
                "write": is_write,
                "destructive": is_write && tool.destructive.unwrap_or(!facts.inserts),
                "idempotent": is_write && tool.idempotent.unwrap_or(false),
                "max_rows": tool.max_rows,
                "params": params,
            });
            config.insert(
                format!("{TOOL_KEY_PREFIX}{}", tool.name),
                declared.to_string(),
            );
        }
        let description = self
            .description
            .clone()
            .unwrap_or_else(|| format!("SQL tools declared for {name}"));
        let names: Vec<&str> = self.tools.iter().map(|t| t.name.as_str()).collect();
        let plugin = json!({
            "name": name,
            "description": description,
            "read": read,
            "write": write,
            "tools": names,
        });
        config.insert(CONFIG_KEY.to_string(), plugin.to_string());
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(text: &str) -> String {
        let file = parse(text).unwrap_or_else(|e| panic!("{e}"));
        file.check(StatementLimits::default())
            .expect_err("should be refused")
            .to_string()
    }

    const GOOD: &str = r#"
description = "Film lookups"

[[tools]]
name = "films_by_rating"
title = "Films by rating"
description = "Films of one rating, longest first."
sql = "SELECT title FROM film WHERE rating = $1::mpaa_rating LIMIT $2"

[[tools.params]]
name = "rating"
type = "text"
enum = ["G", "PG", "R"]
default = "G"

[[tools.params]]
name = "limit"
type = "integer"
default = 10
"#;

    #[test]
    fn a_good_file_passes_and_becomes_the_components_config() {
        let file = parse(GOOD).unwrap();
        file.check(StatementLimits::default()).unwrap();
        let facts = StatementFacts {
            read: vec!["public.film".into()],
            parameter_types: vec!["text".into(), "integer".into()],
            ..StatementFacts::default()
        };
        let entries = file.component_config("films", &[facts]);
        let keys: Vec<&str> = entries.keys().map(String::as_str).collect();
        assert_eq!(keys, [CONFIG_KEY, "sluice.declared.tool.films_by_rating"]);
        let config: Json = serde_json::from_str(&entries[CONFIG_KEY]).unwrap();
        assert_eq!(config["name"], "films");
        assert_eq!(config["read"], json!(["public.film"]));
        assert_eq!(config["write"], json!([]));
        assert_eq!(config["tools"], json!(["films_by_rating"]));
        let tool: Json =
            serde_json::from_str(&entries["sluice.declared.tool.films_by_rating"]).unwrap();
        assert_eq!(tool["write"], false);
        assert_eq!(tool["params"][0]["enum"], json!(["G", "PG", "R"]));
        assert_eq!(tool["params"][1]["default"], json!(10));
        assert_eq!(tool["params"][1]["type"], "integer");
    }

    #[test]
    fn mistakes_are_refused_with_what_to_change() {
        for (text, expected) in [
            ("tools = []", "declares no tools"),
            (
                "[[tools]]\nname = \"a\"\ndescription = \"d\"\nsql = \"SELECT $2\"\n\
                 [[tools.params]]\nname = \"x\"\ntype = \"int\"",
                "tool a: the SQL uses $2, and 1 parameter(s) are declared",
            ),
            (
                "[[tools]]\nname = \"a\"\ndescription = \"d\"\nsql = \"SELECT $1\"\n\
                 [[tools.params]]\nname = \"x\"\ntype = \"int\"\n\
                 [[tools.params]]\nname = \"y\"\ntype = \"int\"",
                "parameter y is $2, and the SQL never uses $2",
            ),
            (
                "[[tools]]\nname = \"a\"\ndescription = \"d\"\nsql = \"SELECT $1\"\n\
                 [[tools.params]]\nname = \"x\"\ntype = \"text\"\nenum = [\"a\"]\ndefault = \"b\"",
                "the default \"b\" is not one of its enum values",
            ),
            (
                "[[tools]]\nname = \"a b\"\ndescription = \"d\"\nsql = \"SELECT 1\"",
                "a tool name is",
            ),
            (
                "[[tools]]\nname = \"a\"\ndescription = \"d\"\nsql = \"SELECT 1\"\nmax_rows = 3",
                "max_rows is for write tools",
            ),
            (
                "[[tools]]\nname = \"a\"\ndescription = \"d\"\nsql = \"SELECT 1\"\n\
                 [[tools]]\nname = \"a\"\ndescription = \"d\"\nsql = \"SELECT 1\"",
                "tool a: declared twice",
            ),
            (
                "[[tools]]\nname = \"a\"\ndescription = \" \"\nsql = \"SELECT 1\"",
                "description is empty",
            ),
        ] {
            let got = problem(text);
            assert!(got.contains(expected), "{text}\n→ {got}");
        }
        // Unknown keys are refused by the parser, naming the key.
        let e = parse(
            "[[tools]]\nname = \"a\"\ndescription = \"d\"\nsql = \"SELECT 1\"\nwrites = true",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("unknown field `writes`"), "{e}");
    }

    #[test]
    fn defaults_and_enum_values_go_to_the_check_as_text() {
        let file = parse(GOOD).unwrap();
        assert_eq!(
            file.tools[0].params[0].values_as_text(),
            ["G", "G", "PG", "R"]
        );
        assert_eq!(file.tools[0].params[1].values_as_text(), ["10"]);
        let json = parse(
            "[[tools]]\nname = \"a\"\ndescription = \"d\"\nsql = \"SELECT $1\"\n\
             [[tools.params]]\nname = \"doc\"\ntype = \"JSONB\"\ndefault = \"x\"",
        )
        .unwrap();
        assert_eq!(json.tools[0].params[0].values_as_text(), ["\"x\""]);
        let arrays = parse(
            "[[tools]]\nname = \"a\"\ndescription = \"d\"\nsql = \"SELECT $1, $2\"\n\
             [[tools.params]]\nname = \"tags\"\ntype = \"text[]\"\n\
             default = [\"a,b\", \"say \\\"hi\\\"\", \"back\\\\slash\", \"{}\"]\n\
             [[tools.params]]\nname = \"grid\"\ntype = \"integer[]\"\ndefault = [[1, 2], [3, 4]]",
        )
        .unwrap();
        assert_eq!(
            arrays.tools[0].params[0].values_as_text(),
            [r#"{"a,b","say \"hi\"","back\\slash","{}"}"#]
        );
        assert_eq!(
            arrays.tools[0].params[1].values_as_text(),
            [r#"{{"1","2"},{"3","4"}}"#]
        );
    }

    #[test]
    fn nesting_past_the_parsers_limit_is_an_error_not_a_crash() {
        for n in [100, 100_000] {
            let arrays = format!("description = {}1{}", "[".repeat(n), "]".repeat(n));
            assert!(matches!(parse(&arrays), Err(DeclaredError::Syntax(_))));
            let tables = format!("description = {}1{}", "{a=".repeat(n), "}".repeat(n));
            assert!(matches!(parse(&tables), Err(DeclaredError::Syntax(_))));
        }
    }

    #[test]
    fn the_plugin_name_is_the_file_name_without_its_suffix() {
        assert_eq!(file_stem("films.tools.toml"), Some("films"));
        assert_eq!(file_stem(".tools.toml"), None);
        assert_eq!(file_stem("films.toml"), None);
    }
}
