//! SQL values as the host hands them to plugins, independent of wasmtime.
//!
//! These mirror `sluice:plugin/types.{scalar, value}` in the WIT; the runtime
//! converts between the two so that the database layer never sees wasm types.

/// A scalar SQL value. See the WIT for the meaning of each case.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// Exact decimal text.
    Numeric(String),
    Text(String),
    Bytes(Vec<u8>),
    /// One serialized JSON document.
    Json(String),
    Uuid(String),
    Date(String),
    Time(String),
    Timestamp(String),
    Timestamptz(String),
    /// ISO 8601 duration.
    Interval(String),
}

/// A scalar or a (possibly multi-dimensional) array of scalars.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar(Scalar),
    /// `dims` gives each dimension's length, outermost first; `items` is row-major.
    Array {
        dims: Vec<u32>,
        items: Vec<Scalar>,
    },
}

impl From<Scalar> for Value {
    fn from(s: Scalar) -> Self {
        Value::Scalar(s)
    }
}
