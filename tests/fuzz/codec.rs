//! The codec: a plugin's values in, parameters in PostgreSQL's binary or
//! text form out, for every parameter type. Never a crash, whatever the
//! value and the type; a value either encodes or is refused.

use crate::{bounded, cases, corpus};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::Value as Json;
use sluice::db::codec::{encode_binary, to_text_input};
use sluice::db::value::{Scalar, Value};
use sqlx::postgres::PgTypeInfo;
use sqlx::postgres::types::Oid;

/// Parameter types: every built-in the codec knows, their arrays, and
/// types it does not know.
const TYPES: &[u32] = &[
    16,
    17,
    18,
    19,
    20,
    21,
    23,
    25,
    26,
    114,
    142,
    600,
    650,
    700,
    701,
    790,
    829,
    869,
    1000,
    1001,
    1005,
    1007,
    1009,
    1015,
    1016,
    1021,
    1022,
    1042,
    1043,
    1082,
    1083,
    1114,
    1115,
    1182,
    1184,
    1185,
    1186,
    1187,
    1231,
    1266,
    1270,
    1560,
    1700,
    2249,
    2278,
    2950,
    2951,
    3614,
    3643,
    3802,
    3807,
    3904,
    3926,
    0,
    1,
    99_999,
    4_294_967_295,
];

fn encode(value: Value, oid: u32) {
    bounded(&format!("encoding {value:.200?} as {oid}"), move || {
        let ty = PgTypeInfo::with_oid(Oid(oid));
        let _ = encode_binary(&value, &ty);
        let _ = to_text_input(&value, &ty);
    });
}

/// A scalar from its corpus form, `{"<case>": value}`.
fn scalar(json: &Json) -> Scalar {
    let (case, v) = json
        .as_object()
        .and_then(|o| o.iter().next())
        .expect("a scalar is an object with one key");
    let text = || v.as_str().unwrap_or_default().to_string();
    match case.as_str() {
        "null" => Scalar::Null,
        "bool" => Scalar::Bool(v.as_bool().unwrap_or_default()),
        "int" => Scalar::Int(v.as_i64().unwrap_or_default()),
        "float" => Scalar::Float(v.as_f64().unwrap_or_default()),
        "numeric" => Scalar::Numeric(text()),
        "text" => Scalar::Text(text()),
        "bytes" => Scalar::Bytes(
            v.as_array()
                .map(|a| a.iter().map(|b| b.as_u64().unwrap_or(0) as u8).collect())
                .unwrap_or_default(),
        ),
        "json" => Scalar::Json(text()),
        "uuid" => Scalar::Uuid(text()),
        "date" => Scalar::Date(text()),
        "time" => Scalar::Time(text()),
        "timestamp" => Scalar::Timestamp(text()),
        "timestamptz" => Scalar::Timestamptz(text()),
        "interval" => Scalar::Interval(text()),
        other => panic!("unknown scalar case {other}"),
    }
}

/// A case from its corpus form: `{"type": oid, "scalar": …}` or
/// `{"type": oid, "array": {"dims": […], "items": […]}}`.
fn case(json: &Json) -> (Value, u32) {
    let oid = json["type"].as_u64().expect("a type") as u32;
    let value = match (json.get("scalar"), json.get("array")) {
        (Some(s), _) => Value::Scalar(scalar(s)),
        (_, Some(a)) => Value::Array {
            dims: a["dims"]
                .as_array()
                .expect("dims")
                .iter()
                .map(|d| d.as_u64().unwrap_or(0) as u32)
                .collect(),
            items: a["items"]
                .as_array()
                .expect("items")
                .iter()
                .map(scalar)
                .collect(),
        },
        _ => panic!("a case has a scalar or an array"),
    };
    (value, oid)
}

#[test]
fn codec_corpus() {
    for (name, bytes) in corpus("codec") {
        let json: Json = serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let (value, oid) = case(&json);
        encode(value.clone(), oid);
        // Every corpus value against every type, too.
        for &other in TYPES {
            encode(value.clone(), other);
        }
    }
}

fn text_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        proptest::sample::select(vec![
            "",
            "NaN",
            "-Infinity",
            "1e999",
            "-0",
            "0x1F",
            "1_000",
            " 42 ",
            "9223372036854775808",
            "2024-02-30",
            "infinity",
            "P1Y",
            "PT-1S",
            "13:60:00",
            "\\x00ff",
            "{1,2}",
            "[1,[2]]",
            "{\"a\":",
            "true",
            "yes",
            "00000000-0000-0000-0000-000000000000",
        ])
        .prop_map(str::to_string),
        "[0-9.eE+-]{0,40}",
    ]
}

fn scalar_strategy() -> impl Strategy<Value = Scalar> {
    prop_oneof![
        Just(Scalar::Null),
        any::<bool>().prop_map(Scalar::Bool),
        any::<i64>().prop_map(Scalar::Int),
        any::<f64>().prop_map(Scalar::Float),
        text_strategy().prop_map(Scalar::Numeric),
        text_strategy().prop_map(Scalar::Text),
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(Scalar::Bytes),
        text_strategy().prop_map(Scalar::Json),
        text_strategy().prop_map(Scalar::Uuid),
        text_strategy().prop_map(Scalar::Date),
        text_strategy().prop_map(Scalar::Time),
        text_strategy().prop_map(Scalar::Timestamp),
        text_strategy().prop_map(Scalar::Timestamptz),
        text_strategy().prop_map(Scalar::Interval),
    ]
}

fn value_strategy() -> impl Strategy<Value = Value> {
    let dims = prop_oneof![
        proptest::collection::vec(0u32..4, 0..8),
        proptest::collection::vec(any::<u32>(), 0..4),
        (1usize..200_000).prop_map(|n| vec![1; n]),
    ];
    prop_oneof![
        3 => scalar_strategy().prop_map(Value::Scalar),
        1 => (dims, proptest::collection::vec(scalar_strategy(), 0..16))
            .prop_map(|(dims, items)| Value::Array { dims, items }),
        // Shapes that are right, so the encoders' insides are reached.
        1 => (1u32..4, 1u32..4, scalar_strategy()).prop_map(|(a, b, s)| Value::Array {
            dims: vec![a, b],
            items: vec![s; (a * b) as usize],
        }),
    ]
}

#[test]
fn codec_generated() {
    let mut runner = TestRunner::new(Config {
        cases: cases(3000),
        failure_persistence: None,
        ..Config::default()
    });
    let input = (value_strategy(), proptest::sample::select(TYPES));
    runner
        .run(&input, |(value, oid)| {
            encode(value, oid);
            Ok(())
        })
        .unwrap();
}
