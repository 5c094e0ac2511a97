//! Conversion between PostgreSQL's binary wire format and [`Value`].
//!
//! sqlx always receives results and sends parameters in the binary format, so
//! the host cannot lean on PostgreSQL's text output. This module decodes the
//! binary form of the types plugins see as values, renders plugin values as
//! text that PostgreSQL's input functions accept, and encodes the common
//! parameter types straight into their binary form.

use std::borrow::Cow;
use std::fmt::Write as _;

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{
    PgArgumentBuffer, PgTypeInfo, PgTypeKind, PgValueFormat, PgValueRef, Postgres,
};
use sqlx::{Encode, Type, TypeInfo as _, ValueRef as _};

use super::value::{Scalar, Value};

/// Why a value could not be decoded or converted.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// `decode` does not know the binary format of this type.
    #[error("cannot decode value of type {0}")]
    UnsupportedType(String),
    /// The value arrived in the text format, which this codec does not read.
    #[error("cannot decode value of type {0}: it arrived in the text format")]
    TextFormat(String),
    /// The server's bytes do not follow the type's binary format.
    #[error("malformed {type_name} value from the server: {reason}")]
    Malformed {
        type_name: &'static str,
        reason: &'static str,
    },
    /// A parameter cannot be converted to the type PostgreSQL expects.
    #[error("parameter is not a valid {type_name}: {value}")]
    InvalidParam { type_name: String, value: String },
    /// A numeric parameter lies outside the range of the type PostgreSQL expects.
    #[error("parameter is out of range for {type_name}: {value}")]
    OutOfRange { type_name: String, value: String },
    /// An array value whose `dims` do not account for its items.
    #[error("array dimensions {dims:?} do not match its {items} items")]
    ArrayShape { dims: Vec<u32>, items: usize },
    /// An array value of more dimensions than PostgreSQL allows.
    #[error("array of {dims} dimensions; PostgreSQL allows at most {MAX_DIMS}")]
    TooManyDimensions { dims: usize },
    /// A JSON array sent for an array type, nested deeper than an array can be.
    #[error(
        "JSON array nested more than {MAX_DIMS} deep; PostgreSQL arrays have at most {MAX_DIMS} dimensions"
    )]
    JsonArrayTooDeep,
}

/// PostgreSQL's `MAXDIM`: the most dimensions an array may have.
pub const MAX_DIMS: usize = 6;

// ---------------------------------------------------------------------------
// Type classification
// ---------------------------------------------------------------------------

/// The binary formats this module understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bool,
    Int2,
    Int4,
    Int8,
    Oid,
    Float4,
    Float8,
    Numeric,
    /// text, varchar, bpchar, name, unknown and enums: the binary form is the text.
    Text,
    /// `"char"`: a single raw byte.
    Char,
    /// xml and citext are text on the wire as well; they are told apart from
    /// `Text` only because they are not in the binary parameter fast path.
    Xml,
    CiText,
    Json,
    Jsonb,
    Bytea,
    Uuid,
    Date,
    Time,
    TimeTz,
    Timestamp,
    Timestamptz,
    Interval,
    TsVector,
    Inet,
    Cidr,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Bool => "bool",
            Kind::Int2 => "int2",
            Kind::Int4 => "int4",
            Kind::Int8 => "int8",
            Kind::Oid => "oid",
            Kind::Float4 => "float4",
            Kind::Float8 => "float8",
            Kind::Numeric => "numeric",
            Kind::Text => "text",
            Kind::Char => "\"char\"",
            Kind::Xml => "xml",
            Kind::CiText => "citext",
            Kind::Json => "json",
            Kind::Jsonb => "jsonb",
            Kind::Bytea => "bytea",
            Kind::Uuid => "uuid",
            Kind::Date => "date",
            Kind::Time => "time",
            Kind::TimeTz => "timetz",
            Kind::Timestamp => "timestamp",
            Kind::Timestamptz => "timestamptz",
            Kind::Interval => "interval",
            Kind::TsVector => "tsvector",
            Kind::Inet => "inet",
            Kind::Cidr => "cidr",
        }
    }
}

/// A built-in type: its OID, its array type's OID (0 for none), its short name
/// and, when this module can decode it, its binary format.
struct Builtin {
    oid: u32,
    array: u32,
    name: &'static str,
    kind: Option<Kind>,
}

const fn builtin(oid: u32, array: u32, name: &'static str, kind: Option<Kind>) -> Builtin {
    Builtin {
        oid,
        array,
        name,
        kind,
    }
}

/// Built-in OIDs are fixed in PostgreSQL's catalog, so they are safe to hard-code.
/// The undecodable entries are here for `type_name` and array detection.
const BUILTINS: &[Builtin] = &[
    builtin(16, 1000, "bool", Some(Kind::Bool)),
    builtin(17, 1001, "bytea", Some(Kind::Bytea)),
    builtin(18, 1002, "\"char\"", Some(Kind::Char)),
    builtin(19, 1003, "name", Some(Kind::Text)),
    builtin(20, 1016, "int8", Some(Kind::Int8)),
    builtin(21, 1005, "int2", Some(Kind::Int2)),
    builtin(23, 1007, "int4", Some(Kind::Int4)),
    builtin(25, 1009, "text", Some(Kind::Text)),
    builtin(26, 1028, "oid", Some(Kind::Oid)),
    builtin(114, 199, "json", Some(Kind::Json)),
    builtin(142, 143, "xml", Some(Kind::Xml)),
    builtin(600, 1017, "point", None),
    builtin(601, 1018, "lseg", None),
    builtin(602, 1019, "path", None),
    builtin(603, 1020, "box", None),
    builtin(604, 1027, "polygon", None),
    builtin(628, 629, "line", None),
    builtin(650, 651, "cidr", Some(Kind::Cidr)),
    builtin(700, 1021, "float4", Some(Kind::Float4)),
    builtin(701, 1022, "float8", Some(Kind::Float8)),
    builtin(705, 0, "unknown", Some(Kind::Text)),
    builtin(718, 719, "circle", None),
    builtin(774, 775, "macaddr8", None),
    builtin(790, 791, "money", None),
    builtin(829, 1040, "macaddr", None),
    builtin(869, 1041, "inet", Some(Kind::Inet)),
    builtin(1042, 1014, "bpchar", Some(Kind::Text)),
    builtin(1043, 1015, "varchar", Some(Kind::Text)),
    builtin(1082, 1182, "date", Some(Kind::Date)),
    builtin(1083, 1183, "time", Some(Kind::Time)),
    builtin(1114, 1115, "timestamp", Some(Kind::Timestamp)),
    builtin(1184, 1185, "timestamptz", Some(Kind::Timestamptz)),
    builtin(1186, 1187, "interval", Some(Kind::Interval)),
    builtin(1266, 1270, "timetz", Some(Kind::TimeTz)),
    builtin(1560, 1561, "bit", None),
    builtin(1562, 1563, "varbit", None),
    builtin(1700, 1231, "numeric", Some(Kind::Numeric)),
    builtin(2249, 2287, "record", None),
    builtin(2278, 0, "void", None),
    builtin(2950, 2951, "uuid", Some(Kind::Uuid)),
    builtin(3614, 3643, "tsvector", Some(Kind::TsVector)),
    builtin(3615, 3645, "tsquery", None),
    builtin(3802, 3807, "jsonb", Some(Kind::Jsonb)),
    builtin(3904, 3905, "int4range", None),
    builtin(3906, 3907, "numrange", None),
    builtin(3908, 3909, "tsrange", None),
    builtin(3910, 3911, "tstzrange", None),
    builtin(3912, 3913, "daterange", None),
    builtin(3926, 3927, "int8range", None),
    builtin(4072, 4073, "jsonpath", None),
];

/// `box` is the only built-in type whose array delimiter is not a comma.
const BOX_OID: u32 = 603;

/// The shape of a type: scalar or array, and the binary format of the scalar
/// or of the array's elements (`None` when this module cannot decode it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Class {
    array: bool,
    kind: Option<Kind>,
}

impl Class {
    const UNSUPPORTED: Class = Class {
        array: false,
        kind: None,
    };

    fn scalar(kind: Kind) -> Class {
        Class {
            array: false,
            kind: Some(kind),
        }
    }
}

fn builtin_class(oid: u32) -> Option<Class> {
    BUILTINS.iter().find_map(|b| {
        if b.oid == oid {
            Some(Class {
                array: false,
                kind: b.kind,
            })
        } else if b.array != 0 && b.array == oid {
            Some(Class {
                array: true,
                kind: b.kind,
            })
        } else {
            None
        }
    })
}

/// `PgTypeInfo::kind()` panics for types sqlx knows only by name or by a bare
/// OID (it never resolved them), so only ask resolved types for their kind.
/// An unresolved OID-only type displays as `?`.
fn resolved_kind(ty: &PgTypeInfo) -> Option<&PgTypeKind> {
    if ty.oid().is_none() || ty.name() == "?" {
        None
    } else {
        Some(ty.kind())
    }
}

/// citext lives in an extension, so it has no fixed OID; sqlx names it after
/// `regtype`, which schema-qualifies it when it is off the search path.
fn is_citext(ty: &PgTypeInfo) -> bool {
    let name = ty.name();
    name == "citext" || name.ends_with(".citext")
}

fn class_of(ty: &PgTypeInfo) -> Class {
    if let Some(class) = ty.oid().and_then(|oid| builtin_class(oid.0)) {
        return class;
    }
    match resolved_kind(ty) {
        Some(PgTypeKind::Enum(_)) => Class::scalar(Kind::Text),
        Some(PgTypeKind::Domain(base)) => class_of(base),
        Some(PgTypeKind::Array(elem)) => {
            let elem = class_of(elem);
            Class {
                array: true,
                // An array of a domain over an array has array elements, which
                // `Value` cannot hold.
                kind: if elem.array { None } else { elem.kind },
            }
        }
        Some(PgTypeKind::Simple) if is_citext(ty) => Class::scalar(Kind::CiText),
        _ => Class::UNSUPPORTED,
    }
}

/// The OID of an array type's element type, looking through domains.
fn array_elem_oid(ty: &PgTypeInfo) -> Option<u32> {
    if let Some(oid) = ty.oid()
        && let Some(b) = BUILTINS.iter().find(|b| b.array != 0 && b.array == oid.0)
    {
        return Some(b.oid);
    }
    match resolved_kind(ty)? {
        PgTypeKind::Array(elem) => elem.oid().map(|oid| oid.0),
        PgTypeKind::Domain(base) => array_elem_oid(base),
        _ => None,
    }
}

/// True when `decode` supports values of type `ty`, so the caller need not cast
/// the column to text.
pub fn is_decodable(ty: &PgTypeInfo) -> bool {
    class_of(ty).kind.is_some()
}

/// A PostgreSQL-style name for `ty`: built-ins by their short catalog name
/// (`int4`, `timestamptz`, `int4[]`), other types by the name sqlx resolved.
pub fn type_name(ty: &PgTypeInfo) -> String {
    if let Some(oid) = ty.oid() {
        for b in BUILTINS {
            if b.oid == oid.0 {
                return b.name.to_owned();
            }
            if b.array != 0 && b.array == oid.0 {
                return format!("{}[]", b.name);
            }
        }
    }
    match (ty.name(), ty.oid()) {
        ("?", Some(oid)) => format!("type with oid {}", oid.0),
        (name, _) => name.to_owned(),
    }
}

// ---------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------

/// Decodes one binary-format result value into a [`Value`].
///
/// SQL NULL becomes `Scalar::Null`; arrays become `Value::Array` (their lower
/// bounds are dropped). Types for which [`is_decodable`] is false are an error.
pub fn decode(value: PgValueRef<'_>) -> Result<Value, CodecError> {
    let ty = value.type_info();
    let class = class_of(&ty);
    let Some(kind) = class.kind else {
        return Err(CodecError::UnsupportedType(type_name(&ty)));
    };
    if value.is_null() {
        return Ok(Value::Scalar(Scalar::Null));
    }
    if value.format() != PgValueFormat::Binary {
        return Err(CodecError::TextFormat(type_name(&ty)));
    }
    let bytes = value.as_bytes().map_err(|_| CodecError::Malformed {
        type_name: kind.name(),
        reason: "value is missing",
    })?;
    decode_bytes(class.array, kind, bytes)
}

/// Decodes a non-NULL value of a type of class (`array`, `kind`); for arrays
/// `kind` is the element format to use when the array header names an element
/// type that is not built in (enums, domains).
fn decode_bytes(array: bool, kind: Kind, bytes: &[u8]) -> Result<Value, CodecError> {
    if array {
        decode_array(bytes, kind)
    } else {
        decode_scalar(kind, bytes).map(Value::Scalar)
    }
}

fn malformed(kind: Kind, reason: &'static str) -> CodecError {
    CodecError::Malformed {
        type_name: kind.name(),
        reason,
    }
}

/// A bounds-checked cursor over a binary value.
struct Reader<'a> {
    buf: &'a [u8],
    type_name: &'static str,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], type_name: &'static str) -> Self {
        Reader { buf, type_name }
    }

    fn error(&self, reason: &'static str) -> CodecError {
        CodecError::Malformed {
            type_name: self.type_name,
            reason,
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        if self.buf.len() < n {
            return Err(self.error("value is truncated"));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u16(&mut self) -> Result<u16, CodecError> {
        self.array().map(u16::from_be_bytes)
    }

    fn i16(&mut self) -> Result<i16, CodecError> {
        self.array().map(i16::from_be_bytes)
    }

    fn i32(&mut self) -> Result<i32, CodecError> {
        self.array().map(i32::from_be_bytes)
    }

    fn u32(&mut self) -> Result<u32, CodecError> {
        self.array().map(u32::from_be_bytes)
    }

    fn i64(&mut self) -> Result<i64, CodecError> {
        self.array().map(i64::from_be_bytes)
    }

    /// Bytes up to a NUL terminator, which is consumed.
    fn cstr(&mut self) -> Result<&'a [u8], CodecError> {
        let end = self
            .buf
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| self.error("string is not terminated"))?;
        let s = self.take(end)?;
        self.take(1)?;
        Ok(s)
    }

    fn finish(&self) -> Result<(), CodecError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(self.error("unexpected trailing bytes"))
        }
    }
}

/// Reads a whole value of exactly `N` bytes.
fn fixed<const N: usize>(kind: Kind, bytes: &[u8]) -> Result<[u8; N], CodecError> {
    <[u8; N]>::try_from(bytes).map_err(|_| malformed(kind, "wrong length"))
}

fn utf8(kind: Kind, bytes: &[u8]) -> Result<String, CodecError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| malformed(kind, "invalid UTF-8"))
}

fn decode_scalar(kind: Kind, b: &[u8]) -> Result<Scalar, CodecError> {
    Ok(match kind {
        Kind::Bool => Scalar::Bool(fixed::<1>(kind, b)? != [0]),
        Kind::Int2 => Scalar::Int(i16::from_be_bytes(fixed(kind, b)?).into()),
        Kind::Int4 => Scalar::Int(i32::from_be_bytes(fixed(kind, b)?).into()),
        Kind::Int8 => Scalar::Int(i64::from_be_bytes(fixed(kind, b)?)),
        Kind::Oid => Scalar::Int(u32::from_be_bytes(fixed(kind, b)?).into()),
        Kind::Float4 => Scalar::Float(widen_f32(f32::from_be_bytes(fixed(kind, b)?))),
        Kind::Float8 => Scalar::Float(f64::from_be_bytes(fixed(kind, b)?)),
        Kind::Numeric => Scalar::Numeric(decode_numeric(b)?),
        Kind::Text | Kind::Xml | Kind::CiText => Scalar::Text(utf8(kind, b)?),
        Kind::Char => Scalar::Text(char_text(fixed::<1>(kind, b)?[0])),
        Kind::Json => Scalar::Json(utf8(kind, b)?),
        Kind::Jsonb => match b.split_first() {
            Some((1, text)) => Scalar::Json(utf8(kind, text)?),
            _ => return Err(malformed(kind, "unsupported jsonb version")),
        },
        Kind::Bytea => Scalar::Bytes(b.to_vec()),
        Kind::Uuid => Scalar::Uuid(uuid::Uuid::from_bytes(fixed(kind, b)?).to_string()),
        Kind::Date => Scalar::Date(format_date(i32::from_be_bytes(fixed(kind, b)?))),
        Kind::Time => {
            let usecs = i64::from_be_bytes(fixed(kind, b)?);
            if !(0..=USECS_PER_DAY).contains(&usecs) {
                return Err(malformed(kind, "time of day out of range"));
            }
            let mut out = String::new();
            push_time(&mut out, usecs);
            Scalar::Time(out)
        }
        Kind::TimeTz => {
            let mut r = Reader::new(b, kind.name());
            let usecs = r.i64()?;
            let zone = r.i32()?;
            r.finish()?;
            if !(0..=USECS_PER_DAY).contains(&usecs) {
                return Err(malformed(kind, "time of day out of range"));
            }
            let mut out = String::new();
            push_time(&mut out, usecs);
            // PostgreSQL stores the zone in seconds *west* of UTC.
            push_offset(&mut out, -i64::from(zone));
            Scalar::Time(out)
        }
        Kind::Timestamp => {
            Scalar::Timestamp(format_timestamp(i64::from_be_bytes(fixed(kind, b)?), ""))
        }
        Kind::Timestamptz => {
            Scalar::Timestamptz(format_timestamp(i64::from_be_bytes(fixed(kind, b)?), "Z"))
        }
        Kind::Interval => {
            let mut r = Reader::new(b, kind.name());
            let usecs = r.i64()?;
            let days = r.i32()?;
            let months = r.i32()?;
            r.finish()?;
            Scalar::Interval(format_interval(usecs, days, months))
        }
        Kind::TsVector => Scalar::Text(decode_tsvector(b)?),
        Kind::Inet => Scalar::Text(decode_inet(b, false)?),
        Kind::Cidr => Scalar::Text(decode_inet(b, true)?),
    })
}

/// Widens a float4 to the f64 of the decimal PostgreSQL's `float4out` prints,
/// so `0.1::float4` reads as 0.1 (not 0.10000000149011612) and matches psql.
///
/// `float4out` is Ryu with exclusive bounds: the shortest decimal strictly
/// inside the float's rounding interval, nearest the exact value, ties to an
/// even last digit. Rust's shortest formatting accepts the bounds and rounds
/// ties differently, so it only provides the starting length here.
fn widen_f32(f: f32) -> f64 {
    let exact = f64::from(f);
    if !f.is_finite() || f == 0.0 {
        return exact;
    }
    let magnitude = f.abs();
    let x = f64::from(magnitude);
    let below = f64::from(magnitude.next_down());
    let above = if magnitude == f32::MAX {
        x + (x - below)
    } else {
        f64::from(magnitude.next_up())
    };
    // f64 holds these midpoints exactly.
    let (low, high) = ((below + x) / 2.0, (x + above) / 2.0);
    let shortest = format!("{magnitude:e}");
    let start = shortest
        .split('e')
        .next()
        .map_or(1, |m| m.replace('.', "").len());
    for digits in start..=9 {
        if let Some(value) = nearest_decimal_inside(x, digits, low, high) {
            return value.copysign(exact);
        }
    }
    exact
}

/// The `digits`-digit decimal nearest `x` that lies strictly between `low` and
/// `high`, preferring an even last digit on ties. Neighbours of the nearest
/// one are tried too because the interval is lopsided at powers of two.
fn nearest_decimal_inside(x: f64, digits: usize, low: f64, high: f64) -> Option<f64> {
    let rounded = format!("{:.*e}", digits.saturating_sub(1), x);
    let (mantissa, exponent) = rounded.split_once('e')?;
    let mantissa: u64 = mantissa.replace('.', "").parse().ok()?;
    let exponent: i64 = exponent.parse().ok()?;
    let scale = exponent - i64::try_from(digits).ok()? + 1;
    let mut best: Option<(f64, f64, u64)> = None;
    for candidate in [mantissa.saturating_sub(1), mantissa, mantissa + 1] {
        let Ok(value) = format!("{candidate}e{scale}").parse::<f64>() else {
            continue;
        };
        if candidate == 0 || value <= low || value >= high {
            continue;
        }
        let distance = (value - x).abs();
        let better = best.is_none_or(|(_, best_distance, best_candidate)| {
            distance < best_distance || (distance == best_distance && best_candidate % 2 == 1)
        });
        if better {
            best = Some((value, distance, candidate));
        }
    }
    best.map(|(value, _, _)| value)
}

/// `"char"` text as `charout` prints it: NUL is empty, high-bit bytes are octal escapes.
fn char_text(c: u8) -> String {
    match c {
        0 => String::new(),
        c if c.is_ascii() => char::from(c).to_string(),
        c => format!("\\{c:03o}"),
    }
}

fn decode_array(bytes: &[u8], fallback: Kind) -> Result<Value, CodecError> {
    let mut r = Reader::new(bytes, "array");
    let ndim = r.i32()?;
    // The has-null flag is redundant: every element carries its own length.
    let _has_nulls = r.i32()?;
    let elem_oid = r.u32()?;
    if !(0..=MAX_DIMS as i32).contains(&ndim) {
        return Err(r.error("bad number of dimensions"));
    }
    // The header's element OID is authoritative when it is a built-in type;
    // enums and domains have catalog OIDs, for which the column's type tells.
    let kind = match BUILTINS.iter().find(|b| b.oid == elem_oid) {
        Some(b) => b
            .kind
            .ok_or_else(|| CodecError::UnsupportedType(format!("{}[]", b.name)))?,
        None => fallback,
    };
    let mut dims = Vec::new();
    let mut total: usize = 1;
    for _ in 0..ndim {
        let len = u32::try_from(r.i32()?).map_err(|_| r.error("negative dimension"))?;
        let _lower_bound = r.i32()?;
        total = usize::try_from(len)
            .ok()
            .and_then(|len| total.checked_mul(len))
            .ok_or_else(|| r.error("too many elements"))?;
        dims.push(len);
    }
    if ndim == 0 || total == 0 {
        r.finish()?;
        return Ok(Value::Array {
            dims: Vec::new(),
            items: Vec::new(),
        });
    }
    // Every element takes at least its 4-byte length; checking this first keeps
    // a corrupt header from triggering a huge allocation.
    if total > r.buf.len() / 4 {
        return Err(r.error("value is truncated"));
    }
    let mut items = Vec::with_capacity(total);
    for _ in 0..total {
        let len = r.i32()?;
        if len == -1 {
            items.push(Scalar::Null);
        } else {
            let len = usize::try_from(len).map_err(|_| r.error("bad element length"))?;
            items.push(decode_scalar(kind, r.take(len)?)?);
        }
    }
    r.finish()?;
    Ok(Value::Array { dims, items })
}

fn decode_numeric(b: &[u8]) -> Result<String, CodecError> {
    let mut r = Reader::new(b, "numeric");
    let ndigits = r.i16()?;
    let weight = i32::from(r.i16()?);
    let sign = r.u16()?;
    let dscale = r.u16()?;
    let negative = match sign {
        0x0000 => false,
        0x4000 => true,
        0xC000 => return Ok("NaN".into()),
        0xD000 => return Ok("Infinity".into()),
        0xF000 => return Ok("-Infinity".into()),
        _ => return Err(r.error("unknown sign")),
    };
    if dscale > 0x3FFF {
        return Err(r.error("scale out of range"));
    }
    let ndigits = usize::try_from(ndigits).map_err(|_| r.error("negative digit count"))?;
    let mut digits = Vec::with_capacity(ndigits);
    for _ in 0..ndigits {
        let d = r.u16()?;
        if d > 9999 {
            return Err(r.error("digit out of range"));
        }
        digits.push(d);
    }
    r.finish()?;

    // Base-10000 digit `i` has weight `weight - i`; digits outside the stored
    // ones are zero.
    let digit = |i: i32| -> u16 {
        usize::try_from(i)
            .ok()
            .and_then(|i| digits.get(i))
            .copied()
            .unwrap_or(0)
    };
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    if weight < 0 {
        out.push('0');
    } else {
        let _ = write!(out, "{}", digit(0));
        for i in 1..=weight {
            let _ = write!(out, "{:04}", digit(i));
        }
    }
    // Like numeric_out, print exactly `dscale` fractional digits, keeping
    // trailing zeros.
    let scale = usize::from(dscale);
    if scale > 0 {
        out.push('.');
        let start = out.len();
        let mut i = weight + 1;
        while out.len() - start < scale {
            let _ = write!(out, "{:04}", digit(i));
            i += 1;
        }
        out.truncate(start + scale);
    }
    Ok(out)
}

const USECS_PER_SEC: i64 = 1_000_000;
const USECS_PER_MINUTE: i64 = 60 * USECS_PER_SEC;
const USECS_PER_HOUR: i64 = 60 * USECS_PER_MINUTE;
const USECS_PER_DAY: i64 = 24 * USECS_PER_HOUR;
/// Days from 1970-01-01 to PostgreSQL's epoch, 2000-01-01.
const PG_EPOCH_DAYS: i64 = 10_957;

/// Appends `.ffffff` without trailing zeros, or nothing for whole seconds.
fn push_fraction(out: &mut String, usecs: i64) {
    if usecs != 0 {
        let digits = format!("{:06}", usecs.unsigned_abs());
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
}

/// Appends `HH:MM:SS[.ffffff]` for a time of day in microseconds.
fn push_time(out: &mut String, usecs: i64) {
    let _ = write!(
        out,
        "{:02}:{:02}:{:02}",
        usecs / USECS_PER_HOUR,
        usecs / USECS_PER_MINUTE % 60,
        usecs / USECS_PER_SEC % 60
    );
    push_fraction(out, usecs % USECS_PER_SEC);
}

/// Appends a UTC offset given in seconds east: `+02:00`, `-05:30`, `+01:02:03`.
fn push_offset(out: &mut String, east: i64) {
    let sign = if east < 0 { '-' } else { '+' };
    let abs = east.unsigned_abs();
    let _ = write!(out, "{sign}{:02}:{:02}", abs / 3600, abs / 60 % 60);
    if !abs.is_multiple_of(60) {
        let _ = write!(out, ":{:02}", abs % 60);
    }
}

/// Proleptic Gregorian (year, month, day) from days since 1970-01-01, with
/// astronomical year numbering (1 BC is year 0), as ISO 8601 wants.
/// This is Howard Hinnant's `civil_from_days`; unlike chrono it covers
/// PostgreSQL's whole date range.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Appends `YYYY-MM-DD` for a day counted from PostgreSQL's epoch.
fn push_date(out: &mut String, pg_days: i64) {
    let (year, month, day) = civil_from_days(pg_days + PG_EPOCH_DAYS);
    if year < 0 {
        let _ = write!(out, "-{:04}", year.unsigned_abs());
    } else {
        let _ = write!(out, "{year:04}");
    }
    let _ = write!(out, "-{month:02}-{day:02}");
}

fn format_date(days: i32) -> String {
    match days {
        i32::MAX => "infinity".into(),
        i32::MIN => "-infinity".into(),
        days => {
            let mut out = String::new();
            push_date(&mut out, days.into());
            out
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.ffffff]` followed by `suffix`, or PostgreSQL's infinities.
fn format_timestamp(usecs: i64, suffix: &str) -> String {
    match usecs {
        i64::MAX => "infinity".into(),
        i64::MIN => "-infinity".into(),
        usecs => {
            let mut out = String::new();
            push_date(&mut out, usecs.div_euclid(USECS_PER_DAY));
            out.push('T');
            push_time(&mut out, usecs.rem_euclid(USECS_PER_DAY));
            out.push_str(suffix);
            out
        }
    }
}

/// ISO 8601 duration exactly as PostgreSQL's `intervalstyle = iso_8601` prints
/// it: each field keeps its own sign and zero fields are left out.
fn format_interval(usecs: i64, days: i32, months: i32) -> String {
    // Integer division truncates toward zero here as in C, so every field
    // carries the sign of the quantity it came from.
    let years = months / 12;
    let months = months % 12;
    let hours = usecs / USECS_PER_HOUR;
    let minutes = usecs % USECS_PER_HOUR / USECS_PER_MINUTE;
    let seconds = usecs % USECS_PER_MINUTE / USECS_PER_SEC;
    let fraction = usecs % USECS_PER_SEC;
    if years == 0 && months == 0 && days == 0 && usecs == 0 {
        return "PT0S".into();
    }
    fn part(out: &mut String, value: i64, unit: char) {
        if value != 0 {
            let _ = write!(out, "{value}{unit}");
        }
    }
    let mut out = String::from("P");
    part(&mut out, years.into(), 'Y');
    part(&mut out, months.into(), 'M');
    part(&mut out, days.into(), 'D');
    if usecs != 0 {
        out.push('T');
    }
    part(&mut out, hours, 'H');
    part(&mut out, minutes, 'M');
    if seconds != 0 || fraction != 0 {
        if seconds < 0 || fraction < 0 {
            out.push('-');
        }
        let _ = write!(out, "{}", seconds.unsigned_abs());
        push_fraction(&mut out, fraction);
        out.push('S');
    }
    out
}

/// tsvector in `tsvectorout`'s form: `'lexeme':1A,2 'other'`.
fn decode_tsvector(b: &[u8]) -> Result<String, CodecError> {
    let mut r = Reader::new(b, "tsvector");
    let count = r.i32()?;
    if count < 0 {
        return Err(r.error("negative lexeme count"));
    }
    let mut out = String::new();
    for i in 0..count {
        let lexeme = std::str::from_utf8(r.cstr()?).map_err(|_| r.error("invalid UTF-8"))?;
        if i > 0 {
            out.push(' ');
        }
        out.push('\'');
        for c in lexeme.chars() {
            if c == '\'' || c == '\\' {
                out.push(c);
            }
            out.push(c);
        }
        out.push('\'');
        let npos = r.u16()?;
        for j in 0..npos {
            // Each position packs a 2-bit weight (3 = A … 0 = D, unprinted)
            // over a 14-bit position.
            let word = r.u16()?;
            out.push(if j == 0 { ':' } else { ',' });
            let _ = write!(out, "{}", word & 0x3FFF);
            match word >> 14 {
                3 => out.push('A'),
                2 => out.push('B'),
                1 => out.push('C'),
                _ => {}
            }
        }
    }
    r.finish()?;
    Ok(out)
}

/// inet/cidr in `network_out`'s form: inet omits a full-length netmask, cidr
/// always shows it.
fn decode_inet(b: &[u8], cidr: bool) -> Result<String, CodecError> {
    let kind = if cidr { Kind::Cidr } else { Kind::Inet };
    let [family, bits, _is_cidr, len, addr @ ..] = b else {
        return Err(malformed(kind, "value is truncated"));
    };
    if usize::from(*len) != addr.len() {
        return Err(malformed(kind, "wrong address length"));
    }
    let mut out = String::new();
    // PostgreSQL's own family codes: 2 for IPv4, 3 for IPv6.
    let max_bits = match (family, addr) {
        (2, [a, b, c, d]) => {
            let _ = write!(out, "{a}.{b}.{c}.{d}");
            32
        }
        (3, addr) if addr.len() == 16 => {
            push_ipv6(&mut out, addr);
            128
        }
        _ => return Err(malformed(kind, "unknown address family")),
    };
    if *bits > max_bits {
        return Err(malformed(kind, "netmask too long"));
    }
    if cidr || *bits != max_bits {
        let _ = write!(out, "/{bits}");
    }
    Ok(out)
}

/// An IPv6 address as PostgreSQL's `inet_net_ntop_ipv6` prints it, which
/// differs from Rust's `Ipv6Addr` display for embedded IPv4 addresses.
fn push_ipv6(out: &mut String, addr: &[u8]) {
    let mut words = [0u16; 8];
    for (word, pair) in words.iter_mut().zip(addr.chunks_exact(2)) {
        *word = u16::from_be_bytes([pair[0], pair[1]]);
    }
    // The first longest run of zero words (at least two) becomes `::`.
    let mut best: Option<(usize, usize)> = None;
    let mut cur: Option<(usize, usize)> = None;
    // A non-zero sentinel after the last word closes a trailing run.
    for (i, &word) in words.iter().chain([1].iter()).enumerate() {
        if word == 0 {
            cur = Some(cur.map_or((i, 1), |(start, len)| (start, len + 1)));
        } else if let Some(run) = cur.take()
            && best.is_none_or(|b| run.1 > b.1)
        {
            best = Some(run);
        }
    }
    let best = best.filter(|&(_, len)| len >= 2);
    let in_run = |i: usize| best.is_some_and(|(start, len)| i >= start && i < start + len);
    for (i, &word) in words.iter().enumerate() {
        if in_run(i) {
            if best.is_some_and(|(start, _)| start == i) {
                out.push(':');
            }
            continue;
        }
        if i != 0 {
            out.push(':');
        }
        // IPv4-compatible and IPv4-mapped addresses end in dotted quad.
        let embeds_ipv4 = best.is_some_and(|(start, len)| {
            start == 0
                && (len == 6 || (len == 7 && words[7] != 1) || (len == 5 && words[5] == 0xFFFF))
        });
        if i == 6 && embeds_ipv4 {
            let _ = write!(out, "{}.{}.{}.{}", addr[12], addr[13], addr[14], addr[15]);
            return;
        }
        let _ = write!(out, "{word:x}");
    }
    if best.is_some_and(|(start, len)| start + len == 8) {
        out.push(':');
    }
}

// ---------------------------------------------------------------------------
// Text input
// ---------------------------------------------------------------------------

/// The text PostgreSQL's input function for `target` accepts for `value`, or
/// `None` for SQL NULL.
///
/// Arrays become array literals (`{"a","b"}`), or JSON arrays when `target`
/// is json/jsonb; a JSON array sent for an array target becomes an array
/// literal. Everything else is the value's natural text form.
pub fn to_text_input(value: &Value, target: &PgTypeInfo) -> Result<Option<String>, CodecError> {
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

fn element_style(class: Class, target: &PgTypeInfo) -> ElementStyle {
    ElementStyle {
        json: class.array && matches!(class.kind, Some(Kind::Json | Kind::Jsonb)),
        delimiter: if array_elem_oid(target) == Some(BOX_OID) {
            ';'
        } else {
            ','
        },
    }
}

fn float_text(f: f64) -> String {
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

// ---------------------------------------------------------------------------
// Binary parameters
// ---------------------------------------------------------------------------

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

/// Encodes `value` in the binary format of `target` when that is simple:
/// bool, int2/4/8, float4/8, text-like types and enums, json, jsonb, uuid and
/// bytea (and domains over them). SQL NULL is encoded for any target.
///
/// `Ok(None)` means the caller should let PostgreSQL convert the value's text
/// form ([`to_text_input`]); `Err` means the value can never be a `target`.
pub fn encode_binary(value: &Value, target: &PgTypeInfo) -> Result<Option<RawParam>, CodecError> {
    if matches!(value, Value::Scalar(Scalar::Null)) {
        return Ok(Some(RawParam::new(target.clone(), None)));
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
    Ok(Some(RawParam::new(target.clone(), Some(bytes))))
}

fn text_param(value: &Value, target: &PgTypeInfo) -> Result<Vec<u8>, CodecError> {
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
    fn into_error(self, value: &Value, target: &PgTypeInfo) -> CodecError {
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
    use sqlx::postgres::types::Oid;

    fn hex(s: &str) -> Vec<u8> {
        let s = s.strip_prefix("\\x").unwrap_or(s);
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("test hex"))
            .collect()
    }

    /// Decodes bytes from PostgreSQL's `*_send` functions as built-in type `oid`.
    fn dec(oid: u32, bytes: &str) -> Value {
        let class = builtin_class(oid).expect("builtin type");
        decode_bytes(class.array, class.kind.expect("decodable"), &hex(bytes)).expect("decodes")
    }

    fn scalar(oid: u32, bytes: &str) -> Scalar {
        match dec(oid, bytes) {
            Value::Scalar(s) => s,
            other => panic!("expected a scalar, got {other:?}"),
        }
    }

    fn text(oid: u32, bytes: &str) -> String {
        match scalar(oid, bytes) {
            Scalar::Text(t)
            | Scalar::Numeric(t)
            | Scalar::Json(t)
            | Scalar::Uuid(t)
            | Scalar::Date(t)
            | Scalar::Time(t)
            | Scalar::Timestamp(t)
            | Scalar::Timestamptz(t)
            | Scalar::Interval(t) => t,
            other => panic!("expected text, got {other:?}"),
        }
    }

    fn ty(oid: u32) -> PgTypeInfo {
        PgTypeInfo::with_oid(Oid(oid))
    }

    fn s(v: Scalar) -> Value {
        Value::Scalar(v)
    }

    fn t(v: &str) -> Scalar {
        Scalar::Text(v.into())
    }

    // Byte strings below come from PostgreSQL 15's `*_send` functions.

    #[test]
    fn numeric() {
        let cases = [
            ("\\x0002000000000002000c1388", "12.50"),
            ("\\x0001ffff00000003000a", "0.001"),
            ("\\x0001ffff400000011388", "-0.5"),
            ("\\x00010005000000000001", "100000000000000000000"),
            ("\\x0000000000000000", "0"),
            ("\\x0000000000000003", "0.000"),
            ("\\x00000000c0000000", "NaN"),
            ("\\x00000000d0000020", "Infinity"),
            ("\\x00000000f0000020", "-Infinity"),
            (
                "\\x0006000200000009000109291a85000004d21388",
                "123456789.000012345",
            ),
            ("\\x00010001400000000001", "-10000"),
            ("\\x00010000000000040001", "1.0000"),
            (
                "\\x0006000400000002270f270f270f270f270f26ac",
                "99999999999999999999.99",
            ),
            ("\\x0001fffe000000080001", "0.00000001"),
            ("\\x00010005000000030001", "100000000000000000000.000"),
        ];
        for (bytes, want) in cases {
            assert_eq!(scalar(1700, bytes), Scalar::Numeric(want.into()), "{bytes}");
        }
        assert!(decode_bytes(false, Kind::Numeric, &hex("\\x000100000000")).is_err());
    }

    #[test]
    fn simple_scalars() {
        assert_eq!(scalar(16, "01"), Scalar::Bool(true));
        assert_eq!(scalar(21, "fffe"), Scalar::Int(-2));
        assert_eq!(scalar(20, "7fffffffffffffff"), Scalar::Int(i64::MAX));
        assert_eq!(scalar(26, "ffffffff"), Scalar::Int(4_294_967_295));
        assert_eq!(scalar(701, "3ff8000000000000"), Scalar::Float(1.5));
        assert_eq!(scalar(700, "3dcccccd"), Scalar::Float(0.1));
        // float4 widening follows float4out (`3.4546632e+06`, `7.9253744e+07`),
        // not Rust's shortest formatting (`3454663.3`, `79253740`).
        assert_eq!(scalar(700, "4a52db1d"), Scalar::Float(3454663.2));
        assert_eq!(scalar(700, "4c972a1e"), Scalar::Float(79253744.0));
        assert_eq!(scalar(700, "7f7fffff"), Scalar::Float(3.4028235e38));
        assert_eq!(scalar(700, "00000001"), Scalar::Float(1e-45));
        assert_eq!(scalar(700, "bf800000"), Scalar::Float(-1.0));
        assert_eq!(scalar(700, "80000000"), Scalar::Float(-0.0));
        assert!(matches!(scalar(700, "7fc00000"), Scalar::Float(f) if f.is_nan()));
        assert_eq!(
            scalar(17, "deadbeef"),
            Scalar::Bytes(vec![0xde, 0xad, 0xbe, 0xef])
        );
        assert_eq!(text(18, "41"), "A");
        assert_eq!(text(18, "e9"), "\\351");
        assert_eq!(text(18, "00"), "");
        assert_eq!(
            scalar(2950, "a0eebc999c0b4ef8bb6d6bb9bd380a11"),
            Scalar::Uuid("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11".into())
        );
        assert_eq!(
            scalar(3802, "017b2261223a205b312c20325d7d"),
            Scalar::Json(r#"{"a": [1, 2]}"#.into())
        );
        assert_eq!(
            scalar(114, "7b226122203a20317d"),
            Scalar::Json(r#"{"a" : 1}"#.into())
        );
        assert!(decode_bytes(false, Kind::Int4, &hex("0001")).is_err());
        assert!(decode_bytes(false, Kind::Jsonb, &hex("027b7d")).is_err());
    }

    #[test]
    fn dates_and_times() {
        assert_eq!(scalar(1082, "000022b7"), Scalar::Date("2024-05-01".into()));
        assert_eq!(text(1082, "fff49d7b"), "-0043-03-15");
        assert_eq!(text(1082, "7fffffff"), "infinity");
        assert_eq!(text(1082, "80000000"), "-infinity");
        assert_eq!(text(1082, "ffffd533"), "1970-01-01");
        assert_eq!(
            scalar(1083, "0000000b866e0f00"),
            Scalar::Time("13:45:00".into())
        );
        assert_eq!(text(1083, "0000000b8671df90"), "13:45:00.25");
        assert_eq!(text(1083, "000000141dd76000"), "24:00:00");
        assert_eq!(text(1266, "0000000b866e0f00ffffe3e0"), "13:45:00+02:00");
        assert_eq!(text(1266, "0000000b8675b02000004d58"), "13:45:00.5-05:30");
        assert_eq!(
            scalar(1114, "0002ba637623af00"),
            Scalar::Timestamp("2024-05-01T13:45:00".into())
        );
        assert_eq!(text(1114, "0002ba6376277f90"), "2024-05-01T13:45:00.25");
        assert_eq!(text(1114, "ffffffffffffffff"), "1999-12-31T23:59:59.999999");
        assert_eq!(text(1114, "ff1af9e8fb46d000"), "-0043-03-15T12:00:00");
        assert_eq!(
            scalar(1184, "0002ba61c8fc6700"),
            Scalar::Timestamptz("2024-05-01T11:45:00Z".into())
        );
        assert_eq!(
            text(1184, "0002ba6376259140"),
            "2024-05-01T13:45:00.123456Z"
        );
        assert_eq!(text(1184, "7fffffffffffffff"), "infinity");
        assert_eq!(text(1184, "8000000000000000"), "-infinity");
    }

    #[test]
    fn intervals() {
        assert_eq!(
            scalar(1186, "000000036c9361a0000000030000000e"),
            Scalar::Interval("P1Y2M3DT4H5M6.5S".into())
        );
        assert_eq!(text(1186, "00000000000000000000000000000000"), "PT0S");
        assert_eq!(text(1186, "fffffffe52d8b800ffffffff00000000"), "P-1DT-2H");
        assert_eq!(
            text(1186, "0000000000000001fffffffdfffffff6"),
            "P-10M-3DT0.000001S"
        );
        assert_eq!(text(1186, "ffffffffffe91ca00000000000000000"), "PT-1.5S");
    }

    #[test]
    fn tsvector() {
        assert_eq!(
            text(3614, "000000026361740000010003666174000001c002"),
            "'cat':3 'fat':2A"
        );
        assert_eq!(
            text(
                3614,
                "000000046261636b5c736c6173680000038002400300046974277300000100016e6f706f73000000737020616365000000"
            ),
            r"'back\\slash':2B,3C,4 'it''s':1 'nopos' 'sp ace'"
        );
        assert_eq!(text(3614, "00000000"), "");
        assert_eq!(text(3614, "000000016100000200013fff"), "'a':1,16383");
    }

    #[test]
    fn inet_and_cidr() {
        assert_eq!(text(869, "02180004c0a80001"), "192.168.0.1/24");
        assert_eq!(text(869, "02200004c0a80001"), "192.168.0.1");
        assert_eq!(text(869, "0380001000000000000000000000000000000001"), "::1");
        assert_eq!(
            text(869, "0340001020010db8000000000000000000000001"),
            "2001:db8::1/64"
        );
        assert_eq!(
            text(869, "0380001000000000000000000000ffff01020304"),
            "::ffff:1.2.3.4"
        );
        assert_eq!(text(650, "020801040a000000"), "10.0.0.0/8");
        assert_eq!(text(650, "022001040a010203"), "10.1.2.3/32");
        assert_eq!(
            text(650, "0320011020010db8000000000000000000000000"),
            "2001:db8::/32"
        );
        assert!(decode_bytes(false, Kind::Inet, &hex("02200005c0a80001")).is_err());
    }

    #[test]
    fn arrays() {
        assert_eq!(
            dec(
                1007,
                "00000002000000010000001700000002000000010000000200000001000000040000000100000004000000020000000400000003ffffffff"
            ),
            Value::Array {
                dims: vec![2, 2],
                items: vec![Scalar::Int(1), Scalar::Int(2), Scalar::Int(3), Scalar::Null]
            }
        );
        assert_eq!(
            dec(1007, "000000000000000000000017"),
            Value::Array {
                dims: vec![],
                items: vec![]
            }
        );
        assert_eq!(
            dec(
                1009,
                "000000010000000100000019000000040000000100000003612262ffffffff00000003635c6400000000"
            ),
            Value::Array {
                dims: vec![4],
                items: vec![t("a\"b"), Scalar::Null, t("c\\d"), t("")]
            }
        );
        // `[2:3]={7,8}`: the lower bound is dropped.
        assert_eq!(
            dec(
                1007,
                "000000010000000000000017000000020000000200000004000000070000000400000008"
            ),
            Value::Array {
                dims: vec![2],
                items: vec![Scalar::Int(7), Scalar::Int(8)]
            }
        );
        assert_eq!(
            dec(
                1231,
                "0000000100000001000006a400000003000000010000000c000200000000000100011388ffffffff0000000a00010000400000000002"
            ),
            Value::Array {
                dims: vec![3],
                items: vec![
                    Scalar::Numeric("1.5".into()),
                    Scalar::Null,
                    Scalar::Numeric("-2".into())
                ]
            }
        );
        let Value::Array { dims, items } = dec(
            1005,
            "000000030000000000000015000000020000000100000002000000010000000200000001000000020001000000020002000000020003000000020004000000020005000000020006000000020007000000020008",
        ) else {
            panic!("expected an array")
        };
        assert_eq!(dims, vec![2, 2, 2]);
        assert_eq!(items, (1..=8).map(Scalar::Int).collect::<Vec<_>>());
        // An element OID that is not built in (an enum) falls back to the column's element kind.
        let enum_array = "0000000100000000000040f90000000100000001000000036f6b61";
        assert_eq!(
            decode_bytes(true, Kind::Text, &hex(enum_array)).expect("decodes"),
            Value::Array {
                dims: vec![1],
                items: vec![t("oka")]
            }
        );
        // A corrupt header must not allocate or panic.
        assert!(
            decode_bytes(
                true,
                Kind::Int4,
                &hex("0000000100000000000000177fffffff00000001")
            )
            .is_err()
        );
        assert!(
            decode_bytes(
                true,
                Kind::Int4,
                &hex("0000000100000000000000170000000100000001000000080000000000000001")
            )
            .is_err()
        );
    }

    #[test]
    fn classification_and_names() {
        assert!(is_decodable(&ty(1700)));
        assert!(is_decodable(&ty(1009)));
        assert!(is_decodable(&ty(3643)));
        assert!(!is_decodable(&ty(3615)));
        assert!(!is_decodable(&ty(600)));
        assert!(!is_decodable(&ty(1017)));
        // An unresolved non-builtin OID must not reach `kind()`, which panics.
        assert!(!is_decodable(&ty(16_385)));
        assert!(!is_decodable(&PgTypeInfo::with_name("mood")));
        assert_eq!(type_name(&ty(23)), "int4");
        assert_eq!(type_name(&ty(1007)), "int4[]");
        assert_eq!(type_name(&ty(1184)), "timestamptz");
        assert_eq!(type_name(&ty(18)), "\"char\"");
        assert_eq!(type_name(&<String as Type<Postgres>>::type_info()), "text");
        assert_eq!(
            type_name(&<serde_json::Value as Type<Postgres>>::type_info()),
            "jsonb"
        );
        assert_eq!(type_name(&PgTypeInfo::with_name("mood")), "mood");
        assert_eq!(type_name(&ty(16_385)), "type with oid 16385");
    }

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

    fn enc(value: Value, target: u32) -> Result<Option<Vec<u8>>, CodecError> {
        encode_binary(&value, &ty(target))
            .map(|p| p.map(|p| p.bytes().map(<[u8]>::to_vec).unwrap_or_default()))
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
        assert_eq!(null.bytes(), None);
        assert_eq!(null.ty().oid(), Some(Oid(1082)));
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
