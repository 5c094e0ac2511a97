//! Plugin values as query parameters in PostgreSQL's binary format, for the
//! types whose binary form is simple; the rest go as text.

use std::borrow::Cow;

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgTypeInfo, Postgres};
use sqlx::{Encode, Type};

use super::CodecError;
use super::text::{float_text, to_text_input};
use super::types::{Class, Kind, PgType, class_of, type_name};
use crate::db::value::{Scalar, Value};

/// A query parameter already in PostgreSQL's binary format, bound with the
/// type it was encoded for.
///
/// sqlx declares that type in the Parse message, but it caches prepared
/// statements by SQL text alone (even for `persistent(false)` queries once the
/// text is cached), so later binds of the same SQL reuse the first declared
/// types. Encode for the parameter types PostgreSQL describes for the statement.
#[derive(Debug, Clone)]
pub struct RawParam {
    ty: PgTypeInfo,
    bytes: Option<Vec<u8>>,
}

impl RawParam {
    /// A parameter of type `ty` with binary contents `bytes` (`None` for NULL).
    pub fn new(ty: PgTypeInfo, bytes: Option<Vec<u8>>) -> Self {
        RawParam { ty, bytes }
    }

    /// The type the parameter is declared as.
    pub fn ty(&self) -> &PgTypeInfo {
        &self.ty
    }

    /// The binary contents, `None` for NULL.
    pub fn bytes(&self) -> Option<&[u8]> {
        self.bytes.as_deref()
    }
}

impl Type<Postgres> for RawParam {
    /// Only a fallback: `produces` supplies the real type of each value.
    fn type_info() -> PgTypeInfo {
        <str as Type<Postgres>>::type_info()
    }

    fn compatible(_ty: &PgTypeInfo) -> bool {
        true
    }
}

impl Encode<'_, Postgres> for RawParam {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        match &self.bytes {
            Some(bytes) => {
                buf.extend_from_slice(bytes);
                Ok(IsNull::No)
            }
            None => Ok(IsNull::Yes),
        }
    }

    /// `PgArguments::add` declares the parameter with this type in the Parse
    /// message, so PostgreSQL reads the bytes with the right receive function.
    fn produces(&self) -> Option<PgTypeInfo> {
        Some(self.ty.clone())
    }

    fn size_hint(&self) -> usize {
        self.bytes.as_ref().map_or(0, Vec::len)
    }
}

/// A parameter's binary contents; `None` is SQL NULL.
pub type Binary = Option<Vec<u8>>;

/// Encodes `value` in the binary format of `target` when that is simple:
/// bool, int2/4/8, float4/8, text-like types and enums, json, jsonb, uuid and
/// bytea (and domains over them). SQL NULL is encoded for any target.
///
/// `Ok(None)` means the caller should let PostgreSQL convert the value's text
/// form ([`to_text_input`]); `Err` means the value can never be a `target`.
pub fn encode_binary<T: PgType + ?Sized>(
    value: &Value,
    target: &T,
) -> Result<Option<Binary>, CodecError> {
    if matches!(value, Value::Scalar(Scalar::Null)) {
        return Ok(Some(None));
    }
    let Class {
        array: false,
        kind: Some(kind),
    } = class_of(target)
    else {
        return Ok(None);
    };
    let fail = |failure: Failure| failure.into_error(value, target);
    let scalar = match value {
        Value::Scalar(s) => Some(s),
        Value::Array { .. } => None,
    };
    let bytes = match (kind, scalar) {
        (Kind::Text | Kind::Json, _) => text_param(value, target)?,
        (Kind::Jsonb, _) => {
            let mut bytes = vec![1];
            bytes.extend(text_param(value, target)?);
            bytes
        }
        (Kind::Bool, Some(s)) => vec![u8::from(param_bool(s).map_err(fail)?)],
        (Kind::Int2 | Kind::Int4 | Kind::Int8, Some(s)) => {
            let v = param_int(s).map_err(fail)?;
            let out_of_range = || fail(Failure::OutOfRange);
            match kind {
                Kind::Int2 => i16::try_from(v)
                    .map_err(|_| out_of_range())?
                    .to_be_bytes()
                    .to_vec(),
                Kind::Int4 => i32::try_from(v)
                    .map_err(|_| out_of_range())?
                    .to_be_bytes()
                    .to_vec(),
                _ => i64::try_from(v)
                    .map_err(|_| out_of_range())?
                    .to_be_bytes()
                    .to_vec(),
            }
        }
        (Kind::Float4, Some(s)) => param_f32(s).map_err(fail)?.to_be_bytes().to_vec(),
        (Kind::Float8, Some(s)) => param_f64(s).map_err(fail)?.to_be_bytes().to_vec(),
        (Kind::Uuid, Some(s)) => param_uuid(s).map_err(fail)?.to_vec(),
        (Kind::Bytea, Some(s)) => match param_bytea(s).map_err(fail)? {
            Some(bytes) => bytes,
            None => return Ok(None),
        },
        (Kind::Bool | Kind::Int2 | Kind::Int4 | Kind::Int8, None)
        | (Kind::Float4 | Kind::Float8 | Kind::Uuid | Kind::Bytea, None) => {
            return Err(fail(Failure::Invalid));
        }
        _ => return Ok(None),
    };
    Ok(Some(Some(bytes)))
}

fn text_param<T: PgType + ?Sized>(value: &Value, target: &T) -> Result<Vec<u8>, CodecError> {
    Ok(to_text_input(value, target)?
        .unwrap_or_default()
        .into_bytes())
}

/// Why a parameter conversion failed, before the error names value and type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    Invalid,
    OutOfRange,
}

impl Failure {
    fn into_error<T: PgType + ?Sized>(self, value: &Value, target: &T) -> CodecError {
        let type_name = type_name(target);
        let value = describe(value);
        match self {
            Failure::Invalid => CodecError::InvalidParam { type_name, value },
            Failure::OutOfRange => CodecError::OutOfRange { type_name, value },
        }
    }
}

/// A short description of a value for error messages.
fn describe(value: &Value) -> String {
    /// Keeps error messages short.
    fn clip(s: &str) -> Cow<'_, str> {
        const MAX: usize = 60;
        match s.char_indices().nth(MAX) {
            Some((end, _)) => format!("{}…", &s[..end]).into(),
            None => s.into(),
        }
    }
    let Value::Scalar(s) = value else {
        return "an array".into();
    };
    // Text-like values are shown quoted, with escapes, so odd characters show.
    match s {
        Scalar::Null => "NULL".into(),
        Scalar::Bool(b) => format!("boolean {b}"),
        Scalar::Int(i) => i.to_string(),
        Scalar::Float(f) => float_text(*f),
        Scalar::Numeric(n) => format!("numeric {}", clip(n)),
        Scalar::Text(t) => format!("{:?}", clip(t)),
        Scalar::Bytes(b) => format!("{} bytes", b.len()),
        Scalar::Json(j) => format!("json {}", clip(j)),
        Scalar::Uuid(t) => format!("uuid {:?}", clip(t)),
        Scalar::Date(t) => format!("date {:?}", clip(t)),
        Scalar::Time(t) => format!("time {:?}", clip(t)),
        Scalar::Timestamp(t) => format!("timestamp {:?}", clip(t)),
        Scalar::Timestamptz(t) => format!("timestamptz {:?}", clip(t)),
        Scalar::Interval(t) => format!("interval {:?}", clip(t)),
    }
}

/// A JSON document holding a single number, string or boolean, as the
/// scalar a plugin would have sent for it.
fn json_scalar(json: &str) -> Option<Scalar> {
    match serde_json::from_str::<serde_json::Value>(json).ok()? {
        serde_json::Value::Bool(b) => Some(Scalar::Bool(b)),
        serde_json::Value::Number(_) => Some(Scalar::Numeric(json.trim().to_owned())),
        serde_json::Value::String(s) => Some(Scalar::Text(s)),
        _ => None,
    }
}

/// Boolean text as PostgreSQL's `boolin` reads it: trimmed, case-insensitive,
/// unambiguous prefixes of true/false/yes/no, on/off, 1/0.
fn parse_pg_bool(text: &str) -> Option<bool> {
    let t = text.trim().to_ascii_lowercase();
    let prefix_of = |word: &str, min: usize| t.len() >= min && word.starts_with(t.as_str());
    match t.as_bytes().first()? {
        b't' if prefix_of("true", 1) => Some(true),
        b'f' if prefix_of("false", 1) => Some(false),
        b'y' if prefix_of("yes", 1) => Some(true),
        b'n' if prefix_of("no", 1) => Some(false),
        b'o' if prefix_of("on", 2) => Some(true),
        b'o' if prefix_of("off", 2) => Some(false),
        b'1' if t == "1" => Some(true),
        b'0' if t == "0" => Some(false),
        _ => None,
    }
}

fn param_bool(s: &Scalar) -> Result<bool, Failure> {
    match s {
        Scalar::Bool(b) => Ok(*b),
        Scalar::Int(0) => Ok(false),
        Scalar::Int(1) => Ok(true),
        Scalar::Text(t) | Scalar::Numeric(t) => parse_pg_bool(t).ok_or(Failure::Invalid),
        Scalar::Json(j) => param_bool(&json_scalar(j).ok_or(Failure::Invalid)?),
        _ => Err(Failure::Invalid),
    }
}

/// Parses decimal text (optional sign, fraction, exponent) that must denote an
/// integer exactly: `12`, `12.00`, `1.2e1`.
fn parse_exact_int(text: &str) -> Result<i128, Failure> {
    let t = text.trim();
    let (negative, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(p) => (&body[..p], Some(&body[p + 1..])),
        None => (body, None),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |s: &str| s.bytes().all(|c| c.is_ascii_digit());
    if (int_part.is_empty() && frac_part.is_empty())
        || !all_digits(int_part)
        || !all_digits(frac_part)
    {
        return Err(Failure::Invalid);
    }
    let exponent: i64 = match exponent {
        None => 0,
        Some(e) => {
            let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
            if digits.is_empty() || !all_digits(digits) {
                return Err(Failure::Invalid);
            }
            // Any exponent beyond this either overflows or leaves a fraction,
            // so clamping keeps the arithmetic below from overflowing.
            let magnitude = digits.parse::<i64>().unwrap_or(i64::MAX).min(1_000_000);
            if e.starts_with('-') {
                -magnitude
            } else {
                magnitude
            }
        }
    };
    // The value is 0.<digits> × 10^point.
    let digits: String = int_part.chars().chain(frac_part.chars()).collect();
    let significant = digits.trim_start_matches('0');
    let point = int_part.len() as i64 + exponent - (digits.len() - significant.len()) as i64;
    let significant = significant.trim_end_matches('0');
    if significant.is_empty() {
        return Ok(0);
    }
    if point < significant.len() as i64 {
        return Err(Failure::Invalid);
    }
    if point > 39 {
        return Err(Failure::OutOfRange);
    }
    let significant = significant.as_bytes();
    let mut value: i128 = 0;
    for i in 0..point as usize {
        let d = i128::from(significant.get(i).map_or(0, |c| c - b'0'));
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(d))
            .ok_or(Failure::OutOfRange)?;
    }
    Ok(if negative { -value } else { value })
}

fn param_int(s: &Scalar) -> Result<i128, Failure> {
    match s {
        Scalar::Int(i) => Ok((*i).into()),
        Scalar::Float(f) if f.is_nan() => Err(Failure::Invalid),
        Scalar::Float(f) if f.is_infinite() => Err(Failure::OutOfRange),
        // `as` saturates at i128's bounds, far outside every target's range.
        Scalar::Float(f) if f.fract() == 0.0 => Ok(*f as i128),
        Scalar::Numeric(t) | Scalar::Text(t) => parse_exact_int(t),
        Scalar::Json(j) => match json_scalar(j) {
            Some(s @ (Scalar::Numeric(_) | Scalar::Text(_))) => param_int(&s),
            _ => Err(Failure::Invalid),
        },
        _ => Err(Failure::Invalid),
    }
}

/// A float literal as `float4in`/`float8in` read it: the spelled-out
/// infinities and NaN, or decimal text.
enum FloatLiteral<'a> {
    Special(f64),
    Decimal(&'a str),
}

fn float_literal(text: &str) -> Result<FloatLiteral<'_>, Failure> {
    let t = text.trim();
    match t.to_ascii_lowercase().as_str() {
        "nan" => return Ok(FloatLiteral::Special(f64::NAN)),
        "infinity" | "+infinity" | "inf" | "+inf" => {
            return Ok(FloatLiteral::Special(f64::INFINITY));
        }
        "-infinity" | "-inf" => return Ok(FloatLiteral::Special(f64::NEG_INFINITY)),
        _ => {}
    }
    // Rust's parser also takes other spellings of inf/NaN; only digits get through.
    if t.is_empty()
        || !t
            .bytes()
            .all(|c| c.is_ascii_digit() || matches!(c, b'+' | b'-' | b'.' | b'e' | b'E'))
    {
        return Err(Failure::Invalid);
    }
    Ok(FloatLiteral::Decimal(t))
}

/// PostgreSQL rejects decimal input that overflows to infinity or underflows to zero.
fn check_float_range(decimal: &str, infinite: bool, zero: bool) -> Result<(), Failure> {
    let nonzero_mantissa = decimal
        .bytes()
        .take_while(|c| !matches!(c, b'e' | b'E'))
        .any(|c| matches!(c, b'1'..=b'9'));
    if infinite || (zero && nonzero_mantissa) {
        Err(Failure::OutOfRange)
    } else {
        Ok(())
    }
}

fn param_f64(s: &Scalar) -> Result<f64, Failure> {
    match s {
        Scalar::Int(i) => Ok(*i as f64),
        Scalar::Float(f) => Ok(*f),
        Scalar::Numeric(t) | Scalar::Text(t) => match float_literal(t)? {
            FloatLiteral::Special(f) => Ok(f),
            FloatLiteral::Decimal(d) => {
                let f: f64 = d.parse().map_err(|_| Failure::Invalid)?;
                check_float_range(d, f.is_infinite(), f == 0.0)?;
                Ok(f)
            }
        },
        Scalar::Json(j) => param_f64(&json_scalar(j).ok_or(Failure::Invalid)?),
        _ => Err(Failure::Invalid),
    }
}

fn param_f32(s: &Scalar) -> Result<f32, Failure> {
    match s {
        Scalar::Int(i) => Ok(*i as f32),
        Scalar::Float(f) => {
            let narrowed = *f as f32;
            if (f.is_finite() && narrowed.is_infinite()) || (*f != 0.0 && narrowed == 0.0) {
                Err(Failure::OutOfRange)
            } else {
                Ok(narrowed)
            }
        }
        // Parse text straight to f32: going through f64 could round twice.
        Scalar::Numeric(t) | Scalar::Text(t) => match float_literal(t)? {
            FloatLiteral::Special(f) => Ok(f as f32),
            FloatLiteral::Decimal(d) => {
                let f: f32 = d.parse().map_err(|_| Failure::Invalid)?;
                check_float_range(d, f.is_infinite(), f == 0.0)?;
                Ok(f)
            }
        },
        Scalar::Json(j) => param_f32(&json_scalar(j).ok_or(Failure::Invalid)?),
        _ => Err(Failure::Invalid),
    }
}

/// UUID text in the forms the uuid crate parses, or failing that the looser
/// grammar of PostgreSQL's `uuid_in` (a hyphen allowed after any group of four
/// hex digits, optional braces).
fn parse_uuid(text: &str) -> Option<[u8; 16]> {
    if let Ok(uuid) = uuid::Uuid::try_parse(text) {
        return Some(*uuid.as_bytes());
    }
    let body = match text.strip_prefix('{') {
        Some(rest) => rest.strip_suffix('}')?,
        None => text,
    };
    let b = body.as_bytes();
    let hex = |c: Option<&u8>| c.and_then(|&c| char::from(c).to_digit(16));
    let mut out = [0u8; 16];
    let mut i = 0;
    for (k, byte) in out.iter_mut().enumerate() {
        let hi = hex(b.get(i))?;
        let lo = hex(b.get(i + 1))?;
        *byte = u8::try_from(hi << 4 | lo).ok()?;
        i += 2;
        if k % 2 == 1 && k < 15 && b.get(i) == Some(&b'-') {
            i += 1;
        }
    }
    (i == b.len()).then_some(out)
}

fn param_uuid(s: &Scalar) -> Result<[u8; 16], Failure> {
    match s {
        Scalar::Uuid(t) | Scalar::Text(t) => parse_uuid(t).ok_or(Failure::Invalid),
        Scalar::Json(j) => match json_scalar(j) {
            Some(s @ Scalar::Text(_)) => param_uuid(&s),
            _ => Err(Failure::Invalid),
        },
        _ => Err(Failure::Invalid),
    }
}

/// bytea contents: raw bytes, or text in the `\x` hex format. Other text is in
/// bytea's escape format, which is left to PostgreSQL (`Ok(None)`).
fn param_bytea(s: &Scalar) -> Result<Option<Vec<u8>>, Failure> {
    match s {
        Scalar::Bytes(b) => Ok(Some(b.clone())),
        Scalar::Text(t) => match t.strip_prefix("\\x") {
            Some(hex) => decode_pg_hex(hex).map(Some).ok_or(Failure::Invalid),
            None => Ok(None),
        },
        _ => Err(Failure::Invalid),
    }
}

/// Hex digits in pairs, with whitespace allowed between pairs, as `byteain` reads them.
fn decode_pg_hex(hex: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(hex.len() / 2);
    let mut chars = hex.chars();
    while let Some(c) = chars.next() {
        if matches!(c, ' ' | '\n' | '\t' | '\r') {
            continue;
        }
        let hi = c.to_digit(16)?;
        let lo = chars.next()?.to_digit(16)?;
        out.push(u8::try_from(hi << 4 | lo).ok()?);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::codec::test_support::{hex, s, t, ty};
    use sqlx::postgres::types::Oid;

    fn enc(value: Value, target: u32) -> Result<Option<Vec<u8>>, CodecError> {
        encode_binary(&value, &ty(target)).map(|p| p.map(Option::unwrap_or_default))
    }

    fn enc_ok(value: Value, target: u32) -> Vec<u8> {
        enc(value, target).expect("encodes").expect("binary")
    }

    #[test]
    fn binary_integers() {
        assert_eq!(enc_ok(s(Scalar::Int(-2)), 21), hex("fffe"));
        assert_eq!(enc_ok(s(Scalar::Int(42)), 23), hex("0000002a"));
        assert_eq!(enc_ok(s(t(" 42 ")), 23), hex("0000002a"));
        assert_eq!(
            enc_ok(s(Scalar::Numeric("12.00".into())), 20),
            hex("000000000000000c")
        );
        assert_eq!(
            enc_ok(s(Scalar::Numeric("1.2e1".into())), 23),
            hex("0000000c")
        );
        assert_eq!(enc_ok(s(Scalar::Float(3.0)), 23), hex("00000003"));
        assert_eq!(enc_ok(s(Scalar::Json("7".into())), 23), hex("00000007"));
        assert_eq!(
            enc_ok(s(t("-9223372036854775808")), 20),
            hex("8000000000000000")
        );
        assert_eq!(enc_ok(s(t("0e5")), 23), hex("00000000"));
        let err = enc(s(t("abc")), 23).expect_err("invalid");
        assert_eq!(err.to_string(), "parameter is not a valid int4: \"abc\"");
        let err = enc(s(Scalar::Int(70000)), 21).expect_err("out of range");
        assert_eq!(err.to_string(), "parameter is out of range for int2: 70000");
        assert!(matches!(
            enc(s(Scalar::Bool(true)), 23),
            Err(CodecError::InvalidParam { .. })
        ));
        assert!(matches!(
            enc(s(Scalar::Float(1.5)), 23),
            Err(CodecError::InvalidParam { .. })
        ));
        assert!(matches!(
            enc(s(t("1.5")), 23),
            Err(CodecError::InvalidParam { .. })
        ));
        assert!(matches!(
            enc(s(t("9223372036854775808")), 20),
            Err(CodecError::OutOfRange { .. })
        ));
        assert!(matches!(
            enc(s(t("1e400")), 20),
            Err(CodecError::OutOfRange { .. })
        ));
        assert!(matches!(
            enc(s(t("1e-400")), 20),
            Err(CodecError::InvalidParam { .. })
        ));
        assert!(matches!(
            enc(s(Scalar::Numeric("NaN".into())), 23),
            Err(CodecError::InvalidParam { .. })
        ));
        assert!(matches!(
            enc(s(t("")), 23),
            Err(CodecError::InvalidParam { .. })
        ));
        assert!(matches!(
            enc(s(t("1e")), 23),
            Err(CodecError::InvalidParam { .. })
        ));
        assert!(matches!(
            enc(
                Value::Array {
                    dims: vec![],
                    items: vec![]
                },
                23
            ),
            Err(CodecError::InvalidParam { .. })
        ));
    }

    #[test]
    fn binary_other_types() {
        assert_eq!(enc_ok(s(Scalar::Bool(true)), 16), vec![1]);
        assert_eq!(enc_ok(s(t(" OFF ")), 16), vec![0]);
        assert_eq!(enc_ok(s(t("tr")), 16), vec![1]);
        assert_eq!(enc_ok(s(Scalar::Int(0)), 16), vec![0]);
        assert!(enc(s(t("o")), 16).is_err());
        assert!(enc(s(Scalar::Int(2)), 16).is_err());
        assert_eq!(enc_ok(s(Scalar::Float(1.5)), 701), hex("3ff8000000000000"));
        assert_eq!(enc_ok(s(t("0.1")), 700), hex("3dcccccd"));
        assert_eq!(enc_ok(s(Scalar::Float(0.1)), 700), hex("3dcccccd"));
        assert_eq!(enc_ok(s(Scalar::Int(2)), 701), hex("4000000000000000"));
        assert_eq!(enc_ok(s(t("-Infinity")), 701), hex("fff0000000000000"));
        assert!(matches!(
            enc(s(t("1e39")), 700),
            Err(CodecError::OutOfRange { .. })
        ));
        assert!(matches!(
            enc(s(Scalar::Float(1e39)), 700),
            Err(CodecError::OutOfRange { .. })
        ));
        assert!(matches!(
            enc(s(t("1e-400")), 701),
            Err(CodecError::OutOfRange { .. })
        ));
        assert!(matches!(
            enc(s(t("infinityx")), 701),
            Err(CodecError::InvalidParam { .. })
        ));
        assert_eq!(enc_ok(s(t("héllo")), 25), "héllo".as_bytes());
        assert_eq!(enc_ok(s(Scalar::Int(5)), 1043), b"5");
        assert_eq!(enc_ok(s(Scalar::Bytes(vec![1, 2])), 25), b"\\x0102");
        assert_eq!(
            enc_ok(s(Scalar::Json("{\"a\":1}".into())), 114),
            b"{\"a\":1}"
        );
        assert_eq!(enc_ok(s(t("plain")), 3802), b"\x01\"plain\"");
        let uuid = hex("a0eebc999c0b4ef8bb6d6bb9bd380a11");
        assert_eq!(
            enc_ok(
                s(Scalar::Uuid("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11".into())),
                2950
            ),
            uuid
        );
        assert_eq!(
            enc_ok(s(t("{A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11}")), 2950),
            uuid
        );
        assert_eq!(
            enc_ok(s(t("a0eebc999c0b4ef8-bb6d6bb9bd380a11")), 2950),
            uuid
        );
        assert!(enc(s(t("a0eebc99")), 2950).is_err());
        assert_eq!(
            enc_ok(s(Scalar::Bytes(vec![0xde, 0xad])), 17),
            vec![0xde, 0xad]
        );
        assert_eq!(enc_ok(s(t("\\xDE ad")), 17), vec![0xde, 0xad]);
        assert!(enc(s(t("\\xd")), 17).is_err());
        assert_eq!(enc(s(t("abc")), 17).expect("defers"), None);
        assert!(enc(s(Scalar::Int(1)), 17).is_err());
        // Types without a binary fast path are left to PostgreSQL.
        assert_eq!(enc(s(t("2024-05-01")), 1082).expect("defers"), None);
        assert_eq!(enc(s(t("{1,2}")), 1007).expect("defers"), None);
        assert_eq!(enc(s(t("1.5")), 1700).expect("defers"), None);
        // NULL binds for any type.
        let null = encode_binary(&s(Scalar::Null), &ty(1082))
            .expect("ok")
            .expect("binary");
        assert_eq!(null, None);
    }

    #[test]
    fn raw_param_declares_its_type() {
        let param = RawParam::new(ty(23), Some(vec![0, 0, 0, 1]));
        assert_eq!(
            Encode::<Postgres>::produces(&param).and_then(|t| t.oid()),
            Some(Oid(23))
        );
        let mut buf = PgArgumentBuffer::default();
        assert!(!param.encode_by_ref(&mut buf).expect("encodes").is_null());
        assert_eq!(&buf[..], &[0, 0, 0, 1]);
        let null = RawParam::new(ty(23), None);
        let mut buf = PgArgumentBuffer::default();
        assert!(null.encode_by_ref(&mut buf).expect("encodes").is_null());
        assert!(buf.is_empty());
    }

    #[test]
    fn describe_clips_long_text() {
        let long = "x".repeat(100);
        let d = describe(&s(Scalar::Text(long)));
        assert!(d.ends_with("…\"") && d.chars().count() == 63, "{d}");
    }
}
