//! Result values: PostgreSQL's binary wire format to [`Value`], with the text
//! forms PostgreSQL's own output functions would print where a value is text.

use std::fmt::Write as _;

use sqlx::ValueRef as _;
use sqlx::postgres::{PgValueFormat, PgValueRef};

use super::types::{BUILTINS, Kind, PgType, class_of, type_name};
use super::{CodecError, MAX_DIMS};
use crate::db::value::{Scalar, Value};

/// Decodes one binary-format result value into a [`Value`].
///
/// SQL NULL becomes `Scalar::Null`; arrays become `Value::Array` (their lower
/// bounds are dropped). Types for which [`is_decodable`](super::is_decodable)
/// is false are an error.
pub fn decode(value: PgValueRef<'_>) -> Result<Value, CodecError> {
    let ty = value.type_info();
    if !value.is_null() && value.format() != PgValueFormat::Binary {
        return Err(CodecError::TextFormat(type_name(&*ty)));
    }
    decode_value(&*ty, value.as_bytes().ok())
}

/// Decodes one binary-format value of type `ty` (`None` is SQL NULL), as
/// [`decode`] does.
pub fn decode_value<T: PgType + ?Sized>(ty: &T, bytes: Option<&[u8]>) -> Result<Value, CodecError> {
    let class = class_of(ty);
    let Some(kind) = class.kind else {
        return Err(CodecError::UnsupportedType(type_name(ty)));
    };
    match bytes {
        None => Ok(Value::Scalar(Scalar::Null)),
        Some(bytes) => decode_bytes(class.array, kind, bytes),
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::codec::test_support::{hex, t};
    use crate::db::codec::types::builtin_class;

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
}
