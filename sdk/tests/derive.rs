//! `sluice_sdk::json_derive` as plugins use it, also beside other derives
//! and under a glob import of the whole crate.

use sluice_sdk::*;

/// Nothing the glob import brings in gets in the way of the built-in derive.
#[derive(Debug, Clone, PartialEq, Default)]
struct Plain {
    n: u32,
}

/// Arguments of a tool.
#[sluice_sdk::json_derive(Deserialize, Serialize, JsonSchema)]
#[derive(Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
struct Args {
    /// The table.
    table_name: String,
    #[serde(default)]
    limit: Option<u32>,
}

/// Below another derive, as well as above.
#[derive(Clone, Copy)]
#[json_derive(Serialize, JsonSchema)]
enum Kind {
    Table,
    View,
}

#[test]
fn derives_work_beside_others_and_under_a_glob_import() {
    assert_eq!(Plain::default().clone(), Plain { n: 0 });
    let args: Args = serde_json::from_str(r#"{"tableName": "film"}"#).unwrap();
    assert_eq!(
        args,
        Args {
            table_name: "film".into(),
            limit: None
        }
    );
    assert_eq!(
        serde_json::to_value(&args).unwrap(),
        serde_json::json!({"tableName": "film", "limit": null})
    );
    let schema = schemars::schema_for!(Args).to_value();
    assert_eq!(
        schema["properties"]["tableName"]["description"],
        "The table."
    );
    assert_eq!(schema["description"], "Arguments of a tool.");
    assert_eq!(
        serde_json::to_value([Kind::Table, Kind::View]).unwrap(),
        serde_json::json!(["Table", "View"])
    );
    assert!(schemars::schema_for!(Kind).to_value()["enum"].is_array());
}
