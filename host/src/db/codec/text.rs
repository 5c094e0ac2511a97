//! Plugin values as text PostgreSQL's input functions accept: scalars in their
//! natural form, array literals, and JSON for json/jsonb targets.

use std::fmt::Write as _;

use super::types::{BOX_OID, Class, Kind, PgType, array_elem_oid, class_of};
use super::{CodecError, MAX_DIMS};
use crate::db::value::{Scalar, Value};

/// The text PostgreSQL's input function for `target` accepts for `value`, or
/// `None` for SQL NULL.
///
/// Arrays become array literals (`{"a","b"}`), or JSON arrays when `target`
/// is json/jsonb; a JSON array sent for an array target becomes an array
/// literal. Everything else is the value's natural text form.
pub fn to_text_input<T: PgType + ?Sized>(
    value: &Value,
    target: &T,
) -> Result<Option<String>, CodecError> {
    let class = class_of(target);
    let json_target = !class.array && matches!(class.kind, Some(Kind::Json | Kind::Jsonb));
    Ok(match value {
        Value::Scalar(Scalar::Null) => None,
        Value::Scalar(s) if json_target => Some(scalar_json(s)),
        Value::Scalar(Scalar::Json(json)) if class.array => Some(
            json_array_literal(json, element_style(class, target))?.unwrap_or_else(|| json.clone()),
        ),
        Value::Scalar(s) => Some(scalar_text(s)),
        Value::Array { dims, items } if json_target => Some(array_json(dims, items)?),
        Value::Array { dims, items } => {
            Some(array_literal(dims, items, element_style(class, target))?)
        }
    })
}

/// How array elements are written for a given array target.
#[derive(Clone, Copy)]
struct ElementStyle {
    /// The elements are json/jsonb, so each one is written as JSON text.
    json: bool,
    delimiter: char,
}

fn element_style<T: PgType + ?Sized>(class: Class, target: &T) -> ElementStyle {
    ElementStyle {
        json: class.array && matches!(class.kind, Some(Kind::Json | Kind::Jsonb)),
        delimiter: if array_elem_oid(target) == Some(BOX_OID) {
            ';'
        } else {
            ','
        },
    }
}

pub(super) fn float_text(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        // Display is the shortest text that round-trips, without exponent.
        f.to_string()
    }
}

fn bytea_hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(2 + bytes.len() * 2);
    out.push_str("\\x");
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// A non-NULL scalar's natural text form.
fn scalar_text(s: &Scalar) -> String {
    match s {
        // NULL never reaches here; an empty string is a harmless answer.
        Scalar::Null => String::new(),
        Scalar::Bool(b) => b.to_string(),
        Scalar::Int(i) => i.to_string(),
        Scalar::Float(f) => float_text(*f),
        Scalar::Bytes(b) => bytea_hex(b),
        Scalar::Date(t) | Scalar::Timestamp(t) | Scalar::Timestamptz(t) => bc_date_input(t),
        Scalar::Numeric(t)
        | Scalar::Text(t)
        | Scalar::Json(t)
        | Scalar::Uuid(t)
        | Scalar::Time(t)
        | Scalar::Interval(t) => t.clone(),
    }
}

/// PostgreSQL rejects ISO 8601's astronomical years at or below zero
/// (`-0043-03-15`, which `decode` produces for 44 BC), so rewrite them in its
/// own `0044-03-15 BC` form.
fn bc_date_input(text: &str) -> String {
    let (astronomical, rest) = match text.strip_prefix('-') {
        Some(unsigned) => match unsigned.split_once('-') {
            Some((year, rest)) if !year.is_empty() && year.bytes().all(|c| c.is_ascii_digit()) => {
                match year.parse::<u64>() {
                    Ok(year) => (year, rest),
                    Err(_) => return text.to_owned(),
                }
            }
            _ => return text.to_owned(),
        },
        None => match text.strip_prefix("0000-") {
            Some(rest) => (0, rest),
            None => return text.to_owned(),
        },
    };
    format!("{:04}-{rest} BC", astronomical.saturating_add(1))
}

fn json_string(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// Whether `s` is a number in JSON's grammar.
fn is_json_number(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i > start
    };
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(c) if c.is_ascii_digit() => {
            digits(&mut i);
        }
        _ => return false,
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if !digits(&mut i) {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !digits(&mut i) {
            return false;
        }
    }
    i == b.len()
}

/// A scalar as JSON text, for json/jsonb targets.
fn scalar_json(s: &Scalar) -> String {
    match s {
        Scalar::Null => "null".into(),
        Scalar::Bool(b) => b.to_string(),
        Scalar::Int(i) => i.to_string(),
        // JSON has no NaN or infinities; PostgreSQL's to_json writes them as strings.
        Scalar::Float(f) if f.is_finite() => float_text(*f),
        Scalar::Float(f) => json_string(&float_text(*f)),
        Scalar::Numeric(n) if is_json_number(n) => n.clone(),
        Scalar::Numeric(n) => json_string(n),
        Scalar::Text(t) if serde_json::from_str::<serde_json::Value>(t).is_ok() => t.clone(),
        Scalar::Json(j) => j.clone(),
        Scalar::Bytes(b) => json_string(&bytea_hex(b)),
        Scalar::Text(t)
        | Scalar::Uuid(t)
        | Scalar::Date(t)
        | Scalar::Time(t)
        | Scalar::Timestamp(t)
        | Scalar::Timestamptz(t)
        | Scalar::Interval(t) => json_string(t),
    }
}

/// `dims` must account for exactly the items; no dims means no items. At
/// most [`MAX_DIMS`] dimensions, checked first, so that nothing walks or
/// prints a longer `dims`.
fn check_shape(dims: &[u32], items: &[Scalar]) -> Result<(), CodecError> {
    if dims.len() > MAX_DIMS {
        return Err(CodecError::TooManyDimensions { dims: dims.len() });
    }
    let expected = if dims.is_empty() {
        Some(0)
    } else {
        dims.iter().try_fold(1usize, |acc, &d| {
            usize::try_from(d).ok().and_then(|d| acc.checked_mul(d))
        })
    };
    if expected == Some(items.len()) {
        Ok(())
    } else {
        Err(CodecError::ArrayShape {
            dims: dims.to_vec(),
            items: items.len(),
        })
    }
}

/// Writes `items` (row-major over `dims`, as [`check_shape`] checked) as
/// nested groups, each item written by `item`.
///
/// A loop, not a recursion per dimension: before each item it closes and
/// reopens every group that ends there, i.e. each dimension whose block
/// (the product of it and the dimensions inside it) divides the item's index.
fn write_nested(
    out: &mut String,
    dims: &[u32],
    items: &[Scalar],
    (open, close, delimiter): (char, char, char),
    item: &mut dyn FnMut(&mut String, &Scalar),
) {
    // blocks[j] = dims[j] * dims[j + 1] * … ; every one is at least 1 for
    // a checked, non-empty array, and a 0 would only mean "never divides".
    let mut blocks = vec![0usize; dims.len()];
    let mut block = 1usize;
    for (j, &d) in dims.iter().enumerate().rev() {
        block = block.saturating_mul(usize::try_from(d).unwrap_or(usize::MAX));
        blocks[j] = block;
    }
    let groups_ending_at = |i: usize| {
        blocks
            .iter()
            .filter(|&&b| i.checked_rem(b) == Some(0))
            .count()
    };
    if items.is_empty() {
        out.push(open);
        out.push(close);
        return;
    }
    let depth = dims.len().max(1);
    for (i, s) in items.iter().enumerate() {
        let groups = if i == 0 { depth } else { groups_ending_at(i) };
        if i > 0 {
            out.extend(std::iter::repeat_n(close, groups));
            out.push(delimiter);
        }
        out.extend(std::iter::repeat_n(open, groups));
        item(out, s);
    }
    out.extend(std::iter::repeat_n(close, depth));
}

/// Appends `s` as a double-quoted array element.
fn push_quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

fn array_literal(
    dims: &[u32],
    items: &[Scalar],
    style: ElementStyle,
) -> Result<String, CodecError> {
    check_shape(dims, items)?;
    if items.is_empty() {
        return Ok("{}".into());
    }
    let mut out = String::new();
    let mut item = |out: &mut String, s: &Scalar| match s {
        Scalar::Null => out.push_str("NULL"),
        s if style.json => push_quoted(out, &scalar_json(s)),
        s => push_quoted(out, &scalar_text(s)),
    };
    write_nested(
        &mut out,
        dims,
        items,
        ('{', '}', style.delimiter),
        &mut item,
    );
    Ok(out)
}

fn array_json(dims: &[u32], items: &[Scalar]) -> Result<String, CodecError> {
    check_shape(dims, items)?;
    if items.is_empty() {
        return Ok("[]".into());
    }
    let mut out = String::new();
    let mut item = |out: &mut String, s: &Scalar| out.push_str(&scalar_json(s));
    write_nested(&mut out, dims, items, ('[', ']', ','), &mut item);
    Ok(out)
}

/// Converts a JSON array to an array literal, or `None` when `json` is not a
/// (valid) JSON array. Numbers keep their exact text. Arrays nested deeper
/// than [`MAX_DIMS`] (as dimensions, not json elements) are refused.
fn json_array_literal(json: &str, style: ElementStyle) -> Result<Option<String>, CodecError> {
    // Validate up front so the walk below can trust the syntax. serde_json
    // stops at 128 levels of nesting, so validating cannot overflow either.
    let valid_array = serde_json::from_str::<serde_json::Value>(json).is_ok_and(|v| v.is_array());
    if !valid_array {
        return Ok(None);
    }
    let mut cursor = JsonCursor { text: json, pos: 0 };
    cursor.skip_ws();
    let mut out = String::new();
    cursor.array_literal(&mut out, style, 1)?;
    Ok(Some(out))
}

/// A cursor over JSON text already known to be valid.
struct JsonCursor<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> JsonCursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    /// The raw text of the value at the cursor, consumed.
    fn raw_value(&mut self) -> &'a str {
        let bytes = self.text.as_bytes();
        let start = self.pos;
        let mut depth = 0usize;
        let mut in_string = false;
        let mut escaped = false;
        while let Some(&c) = bytes.get(self.pos) {
            if in_string {
                if escaped {
                    escaped = false;
                } else if c == b'\\' {
                    escaped = true;
                } else if c == b'"' {
                    in_string = false;
                    if depth == 0 {
                        self.pos += 1;
                        break;
                    }
                }
            } else {
                match c {
                    b'"' => in_string = true,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' if depth == 0 => break,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            self.pos += 1;
                            break;
                        }
                    }
                    b',' | b' ' | b'\t' | b'\n' | b'\r' if depth == 0 => break,
                    _ => {}
                }
            }
            self.pos += 1;
        }
        // Every stop is at an ASCII byte or the end, so this is a char boundary.
        self.text.get(start..self.pos).unwrap_or_default()
    }

    /// Writes the JSON array at the cursor, the `depth`th level of nesting,
    /// as an array literal. It recurses once per level, at most [`MAX_DIMS`].
    fn array_literal(
        &mut self,
        out: &mut String,
        style: ElementStyle,
        depth: usize,
    ) -> Result<(), CodecError> {
        if depth > MAX_DIMS {
            return Err(CodecError::JsonArrayTooDeep);
        }
        self.pos += 1; // '['
        out.push('{');
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            out.push('}');
            return Ok(());
        }
        loop {
            self.skip_ws();
            // For json/jsonb elements a nested array is an element, not a dimension.
            if self.peek() == Some(b'[') && !style.json {
                self.array_literal(out, style, depth + 1)?;
            } else {
                let raw = self.raw_value();
                push_json_element(out, raw, style);
            }
            self.skip_ws();
            let next = self.peek();
            self.pos += 1;
            if next == Some(b',') {
                out.push(style.delimiter);
            } else {
                break;
            }
        }
        out.push('}');
        Ok(())
    }
}

fn push_json_element(out: &mut String, raw: &str, style: ElementStyle) {
    match raw.as_bytes().first() {
        _ if raw == "null" => out.push_str("NULL"),
        _ if style.json => push_quoted(out, raw),
        Some(b'"') => match serde_json::from_str::<String>(raw) {
            Ok(s) => push_quoted(out, &s),
            Err(_) => push_quoted(out, raw),
        },
        Some(b'{' | b'[') => push_quoted(out, raw),
        // Numbers, true and false need no quoting.
        _ => out.push_str(raw),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::codec::test_support::{s, t, ty};

    fn input(value: Value, target: u32) -> Option<String> {
        to_text_input(&value, &ty(target)).expect("converts")
    }

    #[test]
    fn text_input_scalars() {
        assert_eq!(input(s(Scalar::Null), 23), None);
        assert_eq!(input(s(Scalar::Bool(true)), 16).as_deref(), Some("true"));
        assert_eq!(input(s(Scalar::Int(-5)), 23).as_deref(), Some("-5"));
        assert_eq!(input(s(Scalar::Float(0.1)), 701).as_deref(), Some("0.1"));
        assert_eq!(
            input(s(Scalar::Float(1e300)), 701).map(|s| s.len()),
            Some(301)
        );
        assert_eq!(
            input(s(Scalar::Float(f64::NAN)), 701).as_deref(),
            Some("NaN")
        );
        assert_eq!(
            input(s(Scalar::Float(f64::NEG_INFINITY)), 701).as_deref(),
            Some("-Infinity")
        );
        assert_eq!(
            input(s(Scalar::Numeric("12.50".into())), 1700).as_deref(),
            Some("12.50")
        );
        assert_eq!(
            input(s(Scalar::Bytes(vec![0, 0xAB])), 17).as_deref(),
            Some("\\x00ab")
        );
        assert_eq!(
            input(s(Scalar::Interval("P1DT2H".into())), 1186).as_deref(),
            Some("P1DT2H")
        );
        assert_eq!(
            input(s(Scalar::Json("[1,2]".into())), 3802).as_deref(),
            Some("[1,2]")
        );
        assert_eq!(
            input(s(Scalar::Date("-0043-03-15".into())), 1082).as_deref(),
            Some("0044-03-15 BC")
        );
        assert_eq!(
            input(s(Scalar::Timestamptz("0000-01-01T00:00:00Z".into())), 1184).as_deref(),
            Some("0001-01-01T00:00:00Z BC")
        );
        assert_eq!(
            input(s(Scalar::Timestamp("-infinity".into())), 1114).as_deref(),
            Some("-infinity")
        );
        assert_eq!(
            input(s(Scalar::Date("2024-05-01".into())), 1082).as_deref(),
            Some("2024-05-01")
        );
    }

    #[test]
    fn text_input_json_targets() {
        assert_eq!(input(s(t("abc")), 3802).as_deref(), Some("\"abc\""));
        assert_eq!(input(s(t("{\"a\":1}")), 114).as_deref(), Some("{\"a\":1}"));
        assert_eq!(input(s(t("42")), 3802).as_deref(), Some("42"));
        assert_eq!(input(s(Scalar::Int(7)), 3802).as_deref(), Some("7"));
        assert_eq!(
            input(s(Scalar::Bool(false)), 3802).as_deref(),
            Some("false")
        );
        assert_eq!(
            input(s(Scalar::Float(f64::NAN)), 3802).as_deref(),
            Some("\"NaN\"")
        );
        assert_eq!(
            input(s(Scalar::Numeric("12.50".into())), 3802).as_deref(),
            Some("12.50")
        );
        assert_eq!(
            input(s(Scalar::Numeric("NaN".into())), 3802).as_deref(),
            Some("\"NaN\"")
        );
        assert_eq!(
            input(s(Scalar::Date("2024-05-01".into())), 3802).as_deref(),
            Some("\"2024-05-01\"")
        );
        let array = Value::Array {
            dims: vec![2, 2],
            items: vec![
                Scalar::Int(1),
                t("x"),
                Scalar::Null,
                Scalar::Json("{\"k\":[1]}".into()),
            ],
        };
        assert_eq!(
            input(array, 3802).as_deref(),
            Some("[[1,\"x\"],[null,{\"k\":[1]}]]")
        );
        let empty = Value::Array {
            dims: vec![],
            items: vec![],
        };
        assert_eq!(input(empty, 114).as_deref(), Some("[]"));
    }

    #[test]
    fn text_input_arrays() {
        let array = Value::Array {
            dims: vec![4],
            items: vec![t("a\"b"), Scalar::Null, t("c\\d"), t("")],
        };
        assert_eq!(
            input(array, 1009).as_deref(),
            Some(r#"{"a\"b",NULL,"c\\d",""}"#)
        );
        let grid = Value::Array {
            dims: vec![2, 3],
            items: (1..=6).map(Scalar::Int).collect(),
        };
        assert_eq!(
            input(grid, 1007).as_deref(),
            Some(r#"{{"1","2","3"},{"4","5","6"}}"#)
        );
        let cube = Value::Array {
            dims: vec![2, 1, 2],
            items: (1..=4).map(Scalar::Int).collect(),
        };
        assert_eq!(
            input(cube, 1007).as_deref(),
            Some(r#"{{{"1","2"}},{{"3","4"}}}"#)
        );
        let empty = Value::Array {
            dims: vec![],
            items: vec![],
        };
        assert_eq!(input(empty, 1007).as_deref(), Some("{}"));
        let bytes = Value::Array {
            dims: vec![1],
            items: vec![Scalar::Bytes(vec![1])],
        };
        assert_eq!(input(bytes, 1001).as_deref(), Some(r#"{"\\x01"}"#));
        let boxes = Value::Array {
            dims: vec![2],
            items: vec![t("(1,1),(0,0)"), t("(2,2),(1,1)")],
        };
        assert_eq!(
            input(boxes, 1020).as_deref(),
            Some(r#"{"(1,1),(0,0)";"(2,2),(1,1)"}"#)
        );
        let jsons = Value::Array {
            dims: vec![2],
            items: vec![t("x"), Scalar::Json("{\"a\":1}".into())],
        };
        assert_eq!(
            input(jsons, 3807).as_deref(),
            Some(r#"{"\"x\"","{\"a\":1}"}"#)
        );
        let bad = Value::Array {
            dims: vec![2, 2],
            items: vec![Scalar::Int(1)],
        };
        assert!(matches!(
            to_text_input(&bad, &ty(1007)),
            Err(CodecError::ArrayShape { .. })
        ));
        let bad = Value::Array {
            dims: vec![],
            items: vec![Scalar::Int(1)],
        };
        assert!(to_text_input(&bad, &ty(1007)).is_err());
    }

    #[test]
    fn arrays_of_more_than_six_dimensions_are_refused_not_walked() {
        for n in [7, 100_000] {
            let deep = Value::Array {
                dims: vec![1; n],
                items: vec![Scalar::Int(1)],
            };
            for target in [1007, 3802] {
                let e = to_text_input(&deep, &ty(target)).expect_err("refused");
                assert!(
                    matches!(e, CodecError::TooManyDimensions { dims } if dims == n),
                    "{e}"
                );
                assert_eq!(
                    e.to_string(),
                    format!("array of {n} dimensions; PostgreSQL allows at most 6")
                );
            }
        }
        let six = Value::Array {
            dims: vec![1; 6],
            items: vec![Scalar::Int(1)],
        };
        assert_eq!(
            input(six.clone(), 1007).as_deref(),
            Some(r#"{{{{{{"1"}}}}}}"#)
        );
        assert_eq!(input(six, 3802).as_deref(), Some("[[[[[[1]]]]]]"));
    }

    #[test]
    fn nested_groups_are_written_without_recursion() {
        let write = |dims: &[u32], n: i64| {
            let items: Vec<Scalar> = (1..=n).map(Scalar::Int).collect();
            let mut out = String::new();
            let mut item = |out: &mut String, s: &Scalar| out.push_str(&scalar_text(s));
            write_nested(&mut out, dims, &items, ('{', '}', ','), &mut item);
            out
        };
        assert_eq!(write(&[3], 3), "{1,2,3}");
        assert_eq!(write(&[2, 3], 6), "{{1,2,3},{4,5,6}}");
        assert_eq!(write(&[3, 1], 3), "{{1},{2},{3}}");
        assert_eq!(write(&[2, 1, 2, 1], 4), "{{{{1},{2}}},{{{3},{4}}}}");
        assert_eq!(write(&[1; 6], 1), "{{{{{{1}}}}}}");
        // Shapes `check_shape` refuses give meaningless groups, but never a
        // panic or a recursion per dimension.
        assert_eq!(write(&[1; 100_000], 1).len(), 200_001);
        for dims in [&[0, 2][..], &[2, 0], &[u32::MAX, u32::MAX], &[]] {
            write(dims, 3);
        }
    }

    #[test]
    fn json_arrays_nest_at_most_six_deep_as_array_literals() {
        let nested = |depth: usize| {
            s(Scalar::Json(format!(
                "{}1{}",
                "[".repeat(depth),
                "]".repeat(depth)
            )))
        };
        assert_eq!(input(nested(6), 1007).as_deref(), Some("{{{{{{1}}}}}}"));
        // Valid JSON up to serde_json's limit: the walk stops at 7.
        for depth in [7, 64, 127] {
            assert!(
                matches!(
                    to_text_input(&nested(depth), &ty(1007)),
                    Err(CodecError::JsonArrayTooDeep)
                ),
                "{depth}"
            );
        }
        // Past serde_json's recursion limit the text is not valid JSON to
        // it, so it is not walked at all: PostgreSQL judges the text.
        assert!(serde_json::from_str::<serde_json::Value>(&"[".repeat(200)).is_err());
        let deepest = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(serde_json::from_str::<serde_json::Value>(&deepest).is_err());
        assert_eq!(
            to_text_input(&nested(100_000), &ty(1007))
                .expect("passed through")
                .map(|t| t.len()),
            Some(200_001)
        );
        // For json[] a nested array is one element, never a dimension.
        let element = format!("{}1{}", "[".repeat(99), "]".repeat(99));
        assert_eq!(input(nested(100), 3807), Some(format!("{{\"{element}\"}}")));
    }

    #[test]
    fn text_input_json_to_array_literal() {
        let json = |j: &str| s(Scalar::Json(j.into()));
        assert_eq!(
            input(json("[[1,2],[3,4]]"), 1007).as_deref(),
            Some("{{1,2},{3,4}}")
        );
        assert_eq!(
            input(json(r#"[ "a\"b" , null, "c\\d", "\u00e9", true ]"#), 1009).as_deref(),
            Some(r#"{"a\"b",NULL,"c\\d","é",true}"#)
        );
        assert_eq!(
            input(
                json(r#"[{"a": [1, "}"]}, 12345678901234567890123.50]"#),
                1009
            )
            .as_deref(),
            Some(r#"{"{\"a\": [1, \"}\"]}",12345678901234567890123.50}"#)
        );
        assert_eq!(input(json("[]"), 1007).as_deref(), Some("{}"));
        assert_eq!(
            input(json(r#"["x", [1], {"k": null}, null]"#), 3807).as_deref(),
            Some(r#"{"\"x\"","[1]","{\"k\": null}",NULL}"#)
        );
        // Not a JSON array: passed through for PostgreSQL to judge.
        assert_eq!(
            input(json(r#"{"a":1}"#), 1007).as_deref(),
            Some(r#"{"a":1}"#)
        );
        assert_eq!(input(json("[1,"), 1007).as_deref(), Some("[1,"));
    }
}
