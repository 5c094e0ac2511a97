//! Conversion between PostgreSQL's binary wire format and
//! [`Value`](super::value::Value).
//!
//! Both drivers (sqlx for writes and the catalog, tokio-postgres for reads)
//! describe types in their own way; [`PgType`] is what the codec asks of
//! either.
//!
//! The host always receives results and sends parameters in the binary format, so
//! the host cannot lean on PostgreSQL's text output. This module decodes the
//! binary form of the types plugins see as values, renders plugin values as
//! text that PostgreSQL's input functions accept, and encodes the common
//! parameter types straight into their binary form.
//!
//! - `types`: which PostgreSQL types there are (OIDs, names) and which binary
//!   format each has.
//! - `decode`: result values, binary wire to [`Value`](super::value::Value).
//! - `text`: plugin values as the text PostgreSQL's input functions accept.
//! - `encode`: plugin values as binary parameters.

mod decode;
mod encode;
mod text;
mod types;

pub use decode::{decode, decode_value};
pub use encode::{Binary, RawParam, encode_binary};
pub use text::to_text_input;
pub use types::{PgType, Shape, is_decodable, type_name};

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

/// Helpers shared by the submodules' tests.
#[cfg(test)]
mod test_support {
    use sqlx::postgres::PgTypeInfo;
    use sqlx::postgres::types::Oid;

    use crate::db::value::{Scalar, Value};

    pub(super) fn hex(s: &str) -> Vec<u8> {
        let s = s.strip_prefix("\\x").unwrap_or(s);
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("test hex"))
            .collect()
    }

    pub(super) fn ty(oid: u32) -> PgTypeInfo {
        PgTypeInfo::with_oid(Oid(oid))
    }

    pub(super) fn s(v: Scalar) -> Value {
        Value::Scalar(v)
    }

    pub(super) fn t(v: &str) -> Scalar {
        Scalar::Text(v.into())
    }
}
