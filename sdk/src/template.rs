//! Matching URIs against simple RFC 6570 templates (`db://tables/{table}/schema`).

/// Variables a URI bound in a resource template, percent-decoded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UriParams(Vec<(String, String)>);

impl UriParams {
    /// The value of variable `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

enum Part<'a> {
    Literal(&'a str),
    Var(&'a str),
}

fn parts(template: &str) -> Vec<Part<'_>> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        if open > 0 {
            out.push(Part::Literal(&rest[..open]));
        }
        out.push(Part::Var(&rest[open + 1..open + close]));
        rest = &rest[open + close + 1..];
    }
    if !rest.is_empty() {
        out.push(Part::Literal(rest));
    }
    out
}

/// The variable names of a template, in order: RFC 6570 expressions'
/// operators (`{+path}`, `{?q,limit}`) and modifiers (`{id:3}`, `{list*}`)
/// are not part of the names, which is how clients name them when they ask
/// for completions.
pub(crate) fn variables(template: &str) -> Vec<String> {
    parts(template)
        .into_iter()
        .filter_map(|p| match p {
            Part::Var(v) => Some(v),
            Part::Literal(_) => None,
        })
        .flat_map(|expression| {
            expression
                .trim_start_matches(['+', '#', '.', '/', ';', '?', '&'])
                .split(',')
                .map(|spec| spec.split(':').next().unwrap_or_default())
                .map(|name| name.trim_end_matches('*').to_string())
                .filter(|name| !name.is_empty())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Binds `uri` to `template`: every variable matches a non-empty run of
/// characters other than `/`, as simple string expansion would produce.
pub(crate) fn match_uri(template: &str, uri: &str) -> Option<UriParams> {
    let mut rest = uri;
    let mut bound = Vec::new();
    let parts = parts(template);
    for (i, part) in parts.iter().enumerate() {
        match part {
            Part::Literal(lit) => rest = rest.strip_prefix(lit)?,
            Part::Var(name) => {
                let end = match parts.get(i + 1) {
                    Some(Part::Literal(next)) => rest.find(next)?,
                    _ => rest.len(),
                };
                let raw = &rest[..end];
                if raw.is_empty() || raw.contains('/') {
                    return None;
                }
                bound.push((name.to_string(), percent_decode(raw)?));
                rest = &rest[end..];
            }
        }
    }
    rest.is_empty().then_some(UriParams(bound))
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_variables() {
        let p = match_uri(
            "db://tables/{table}/schema",
            "db://tables/public.film/schema",
        )
        .unwrap();
        assert_eq!(p.get("table"), Some("public.film"));
        let p = match_uri(
            "db://tables/{table}/schema",
            "db://tables/my%20table/schema",
        )
        .unwrap();
        assert_eq!(p.get("table"), Some("my table"));
    }

    #[test]
    fn rejects_mismatches() {
        assert!(match_uri("db://tables/{table}/schema", "db://tables//schema").is_none());
        assert!(match_uri("db://tables/{table}/schema", "db://tables/a/b/schema").is_none());
        assert!(match_uri("db://tables/{table}/schema", "db://tables/a/schema/x").is_none());
        assert!(match_uri("db://tables/{table}/schema", "db://overview").is_none());
    }

    #[test]
    fn lists_variables() {
        assert_eq!(variables("x://{a}/y/{b}"), vec!["a", "b"]);
        assert_eq!(
            variables("x://{+path}{?q,limit}{#frag}/{id:3}/{list*}"),
            vec!["path", "q", "limit", "frag", "id", "list"]
        );
    }
}
