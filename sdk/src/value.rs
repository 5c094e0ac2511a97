//! SQL values and their JSON form.

use base64::Engine as _;
use serde_json::Value as Json;

pub use crate::bindings::sluice::plugin::types::{ArrayValue, Scalar, Value};

impl Scalar {
    /// The JSON form a model sees: exact numerics and 64-bit-safe values stay
    /// strings where JSON numbers would lose meaning, `bytea` is base64, `json`
    /// is embedded as JSON.
    pub fn to_json(&self) -> Json {
        match self {
            Scalar::Null => Json::Null,
            Scalar::Boolean(b) => Json::Bool(*b),
            Scalar::Int(i) => Json::from(*i),
            Scalar::Float(f) => serde_json::Number::from_f64(*f)
                .map(Json::Number)
                .unwrap_or_else(|| Json::String(float_text(*f))),
            Scalar::Numeric(s)
            | Scalar::Text(s)
            | Scalar::Uuid(s)
            | Scalar::Date(s)
            | Scalar::Time(s)
            | Scalar::Timestamp(s)
            | Scalar::Timestamptz(s)
            | Scalar::Interval(s) => Json::String(s.clone()),
            Scalar::Bytes(b) => Json::String(base64::engine::general_purpose::STANDARD.encode(b)),
            Scalar::Json(s) => serde_json::from_str(s).unwrap_or_else(|_| Json::String(s.clone())),
        }
    }

    /// A scalar from a JSON scalar; `None` for arrays and objects.
    fn from_json(json: &Json) -> Option<Scalar> {
        Some(match json {
            Json::Null => Scalar::Null,
            Json::Bool(b) => Scalar::Boolean(*b),
            Json::Number(n) => match n.as_i64() {
                Some(i) => Scalar::Int(i),
                // Floats and huge integers travel as decimal text so the host can
                // convert them exactly to the column's type (numeric stays exact).
                None => Scalar::Numeric(n.to_string()),
            },
            Json::String(s) => Scalar::Text(s.clone()),
            Json::Array(_) | Json::Object(_) => return None,
        })
    }
}

fn float_text(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f > 0.0 {
        "Infinity".into()
    } else {
        "-Infinity".into()
    }
}

impl Value {
    /// The JSON form of the value; arrays become (nested) JSON arrays.
    pub fn to_json(&self) -> Json {
        match self {
            Value::Scalar(s) => s.to_json(),
            Value::Array(a) => {
                let items: Vec<Json> = a.items.iter().map(Scalar::to_json).collect();
                nest(&a.dims, &mut items.into_iter())
            }
        }
    }

    /// A value from JSON, for parameters and inserted data.
    ///
    /// Scalars map to their scalar case; a rectangular array of scalars becomes
    /// an array value (the host renders it as JSON instead when the column is
    /// `json`/`jsonb`); any other array or object becomes `json`.
    pub fn from_json(json: &Json) -> Value {
        if let Some(s) = Scalar::from_json(json) {
            return Value::Scalar(s);
        }
        if let Json::Array(_) = json {
            let mut dims = Vec::new();
            let mut items = Vec::new();
            if flatten(json, 0, &mut dims, &mut items) {
                return Value::Array(ArrayValue { dims, items });
            }
        }
        Value::Scalar(Scalar::Json(json.to_string()))
    }
}

/// Rebuilds nested arrays from row-major items.
fn nest(dims: &[u32], items: &mut impl Iterator<Item = Json>) -> Json {
    match dims.split_first() {
        None => Json::Array(Vec::new()),
        Some((&n, [])) => Json::Array(items.take(n as usize).collect()),
        Some((&n, rest)) => Json::Array((0..n).map(|_| nest(rest, items)).collect()),
    }
}

/// Flattens a rectangular JSON array of scalars; false when it is not one.
fn flatten(json: &Json, depth: usize, dims: &mut Vec<u32>, items: &mut Vec<Scalar>) -> bool {
    match json {
        Json::Array(elems) => {
            let Ok(len) = u32::try_from(elems.len()) else {
                return false;
            };
            if depth == dims.len() {
                // A new dimension may only open on the first path down.
                if !items.is_empty() {
                    return false;
                }
                dims.push(len);
            } else if dims[depth] != len {
                return false;
            }
            elems.iter().all(|e| flatten(e, depth + 1, dims, items))
        }
        other => {
            // Scalars must sit at the innermost level only.
            if depth != dims.len() {
                return false;
            }
            match Scalar::from_json(other) {
                Some(s) => {
                    items.push(s);
                    true
                }
                None => false,
            }
        }
    }
}

macro_rules! from_scalar {
    ($($t:ty => $case:ident),* $(,)?) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Self {
                Value::Scalar(Scalar::$case(v.into()))
            }
        }
    )*};
}

from_scalar!(bool => Boolean, i64 => Int, i32 => Int, f64 => Float, String => Text, &str => Text);

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Scalar(Scalar::Null), Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn round_trip(j: Json) -> Json {
        Value::from_json(&j).to_json()
    }

    #[test]
    fn scalars_map_to_their_cases() {
        assert_eq!(Value::from_json(&json!(5)), Value::Scalar(Scalar::Int(5)));
        assert_eq!(
            Value::from_json(&json!(2.5)),
            Value::Scalar(Scalar::Numeric("2.5".into()))
        );
        assert_eq!(
            Value::from_json(&json!(u64::MAX)),
            Value::Scalar(Scalar::Numeric(u64::MAX.to_string()))
        );
        assert_eq!(
            Value::from_json(&json!("x")),
            Value::Scalar(Scalar::Text("x".into()))
        );
        assert_eq!(Value::from_json(&json!(null)), Value::Scalar(Scalar::Null));
    }

    #[test]
    fn rectangular_arrays_become_arrays() {
        let v = Value::from_json(&json!([[1, 2], [3, null]]));
        let Value::Array(a) = &v else { panic!("{v:?}") };
        assert_eq!(a.dims, vec![2, 2]);
        assert_eq!(a.items.len(), 4);
        assert_eq!(
            round_trip(json!([[1, 2], [3, null]])),
            json!([[1, 2], [3, null]])
        );
        assert_eq!(round_trip(json!([])), json!([]));
    }

    #[test]
    fn ragged_arrays_and_objects_become_json() {
        for j in [
            json!([1, [2]]),
            json!([[1], 2]),
            json!([[1, 2], [3]]),
            json!([{"a": 1}]),
        ] {
            assert_eq!(
                Value::from_json(&j),
                Value::Scalar(Scalar::Json(j.to_string())),
                "{j}"
            );
        }
        assert_eq!(round_trip(json!({"a": [1, 2]})), json!({"a": [1, 2]}));
    }

    #[test]
    fn special_values_keep_their_meaning() {
        assert_eq!(Scalar::Float(f64::NAN).to_json(), json!("NaN"));
        assert_eq!(
            Scalar::Float(f64::NEG_INFINITY).to_json(),
            json!("-Infinity")
        );
        assert_eq!(Scalar::Bytes(vec![0, 255]).to_json(), json!("AP8="));
        assert_eq!(Scalar::Numeric("12.50".into()).to_json(), json!("12.50"));
    }
}
