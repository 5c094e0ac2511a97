//! From a token's claims to what its caller may do: `[[http.oauth.rules]]`
//! (plugins and database role) and the claims shown to PostgreSQL.

use crate::config::OAuthRule;
use crate::registry::model::Scope;
use serde_json::{Map, Value as Json};
use std::sync::Arc;

/// A rule, ready to match.
#[derive(Debug)]
pub struct Rule {
    /// Its place in the config, for messages: `[[http.oauth.rules]] #2`.
    pub place: String,
    scopes: Vec<String>,
    claims: Vec<(String, Vec<String>)>,
    pub scope: Scope,
    pub role: Option<Arc<str>>,
}

impl Rule {
    pub fn new(index: usize, rule: &OAuthRule) -> Result<Rule, String> {
        let place = format!("[[http.oauth.rules]] #{}", index + 1);
        if let Some(role) = &rule.role
            && role.is_empty()
        {
            return Err(format!("{place}: role is empty"));
        }
        for (claim, values) in &rule.claims {
            if values.values().is_empty() {
                return Err(format!("{place}: claim {claim:?} lists no value"));
            }
        }
        Ok(Rule {
            scopes: rule.scopes.clone(),
            claims: rule
                .claims
                .iter()
                .map(|(claim, values)| (claim.clone(), values.values().to_vec()))
                .collect(),
            scope: match &rule.plugins {
                Some(names) => Scope::Only(names.iter().cloned().collect()),
                None => Scope::All,
            },
            role: rule.role.as_deref().map(Arc::from),
            place,
        })
    }

    /// Whether a token with `scopes` and `claims` meets every condition.
    pub fn matches(&self, scopes: &[&str], claims: &Map<String, Json>) -> bool {
        self.scopes.iter().all(|s| scopes.contains(&s.as_str()))
            && self
                .claims
                .iter()
                .all(|(claim, wanted)| claim_matches(claims.get(claim), wanted))
    }
}

/// A claim matches when it is one of `wanted`, or a list holding one.
fn claim_matches(claim: Option<&Json>, wanted: &[String]) -> bool {
    match claim {
        Some(Json::String(value)) => wanted.iter().any(|w| w == value),
        Some(Json::Array(items)) => items
            .iter()
            .any(|item| item.as_str().is_some_and(|v| wanted.iter().any(|w| w == v))),
        Some(Json::Bool(b)) => wanted.iter().any(|w| *w == b.to_string()),
        Some(Json::Number(n)) => wanted.iter().any(|w| *w == n.to_string()),
        _ => false,
    }
}

/// The scopes a token grants: RFC 9068's space-separated `scope`, or
/// `scp` (a string, or a list, as some issuers write it).
pub fn token_scopes(claims: &Map<String, Json>) -> Vec<&str> {
    let mut scopes = Vec::new();
    for key in ["scope", "scp"] {
        match claims.get(key) {
            Some(Json::String(text)) => scopes.extend(text.split_ascii_whitespace()),
            Some(Json::Array(items)) => scopes.extend(items.iter().filter_map(Json::as_str)),
            _ => {}
        }
    }
    scopes
}

/// Whether `name` may follow `sluice.claim.` in a PostgreSQL setting name:
/// a simple identifier.
pub fn valid_setting_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// A claim's value as a setting: a string as it is, anything else as JSON
/// (a list of groups becomes `["a","b"]`, for `::jsonb`); none when the
/// token lacks it.
pub fn setting_value(claim: Option<&Json>) -> Option<String> {
    match claim? {
        Json::Null => None,
        Json::String(text) => Some(text.clone()),
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::http::oauth::object as claims;

    #[test]
    fn a_rule_needs_every_scope_and_claim() {
        let config: OAuthRule = toml::from_str(
            "scopes = [\"db.read\"]\nclaims = { groups = \"analysts\", tenant = [\"a\", \"b\"] }\n\
             plugins = [\"query\"]\nrole = \"analyst\"\n",
        )
        .unwrap();
        let rule = Rule::new(0, &config).unwrap();
        let token = claims(json!({"groups": ["staff", "analysts"], "tenant": "b"}));
        assert!(rule.matches(&["db.read", "other"], &token));
        assert!(!rule.matches(&["other"], &token));
        let other_group = claims(json!({"groups": ["staff"], "tenant": "b"}));
        assert!(!rule.matches(&["db.read"], &other_group));
        let other_tenant = claims(json!({"groups": "analysts", "tenant": "c"}));
        assert!(!rule.matches(&["db.read"], &other_tenant));
        let no_tenant = claims(json!({"groups": "analysts"}));
        assert!(!rule.matches(&["db.read"], &no_tenant));
        assert_eq!(rule.role.as_deref(), Some("analyst"));
        assert!(rule.scope.allows("query") && !rule.scope.allows("sql-write"));
        // An empty rule matches every caller.
        let any = Rule::new(1, &OAuthRule::default()).unwrap();
        assert!(any.matches(&[], &claims(json!({}))));
        assert_eq!(any.scope, Scope::All);
    }

    #[test]
    fn scopes_come_from_scope_or_scp() {
        let token = claims(json!({"scope": "a  b", "scp": ["c", 1]}));
        assert_eq!(token_scopes(&token), ["a", "b", "c"]);
        assert!(token_scopes(&claims(json!({"scope": 5}))).is_empty());
    }

    #[test]
    fn settings_take_simple_names_and_any_value() {
        assert!(valid_setting_name("email") && valid_setting_name("_x1"));
        for bad in ["", "E", "e-mail", "a.b", "1a", &"a".repeat(64)] {
            assert!(!valid_setting_name(bad), "{bad}");
        }
        assert_eq!(setting_value(Some(&json!("x"))).as_deref(), Some("x"));
        assert_eq!(
            setting_value(Some(&json!(["a", "b"]))).as_deref(),
            Some("[\"a\",\"b\"]")
        );
        assert_eq!(setting_value(Some(&json!(null))), None);
        assert_eq!(setting_value(None), None);
    }
}
