//! `sql-tools`: the tools an operator declares in a `*.tools.toml` file (or
//! inline in the config), each one SQL statement with `$n` parameters.
//!
//! The host reads and checks the file (the policy, the grant, the types,
//! the parameters against the placeholders, the statement prepared) and
//! runs this component once per file, as a plugin named after the file,
//! with the checked declaration in its config: the plugin under
//! `sluice.declared` and each tool under `sluice.declared.tool.<name>`, so
//! that a call's fresh instance reads only the tool it runs.
//! This component turns each declared tool into an MCP tool: an input
//! schema from its parameters, arguments checked and defaulted, and the
//! statement run through the host's gated `query` (a read) or `execute`
//! (a write, under the row cap). Its answer has `query`'s shape.

use sluice_sdk::db;
use sluice_sdk::prelude::*;
use sluice_sdk::serde_json::{self, Map, Value as Json, json};
use std::rc::Rc;

/// The config key the host puts the declaration under.
const DECLARED: &str = "sluice.declared";
/// Each tool's key: this and its name.
const TOOL_PREFIX: &str = "sluice.declared.tool.";

/// A set of declared tools, as the host hands it over.
#[sluice_sdk::json_derive(Deserialize)]
struct Declared {
    name: String,
    description: String,
    /// What the statements touch, for the manifest: exactly those.
    read: Vec<String>,
    write: Vec<String>,
    /// The tools' names; each tool is under its own key.
    tools: Vec<String>,
}

#[sluice_sdk::json_derive(Deserialize)]
struct DeclaredTool {
    name: String,
    title: Option<String>,
    description: String,
    sql: String,
    write: bool,
    destructive: bool,
    idempotent: bool,
    max_rows: Option<u32>,
    params: Vec<Param>,
}

#[sluice_sdk::json_derive(Deserialize)]
struct Param {
    name: String,
    /// The type as PostgreSQL names it (`integer`, `text[]`, `mpaa_rating`).
    #[serde(rename = "type")]
    type_name: String,
    description: Option<String>,
    default: Option<Json>,
    #[serde(rename = "enum")]
    choices: Option<Vec<Json>>,
    /// Absent means SQL NULL rather than an error.
    optional: bool,
}

/// How a PostgreSQL type travels in JSON.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Integer,
    Number,
    Boolean,
    /// `json`/`jsonb`: any JSON value, sent as its text.
    Json,
    /// Everything else, in PostgreSQL's text form.
    Text,
}

fn kind(type_name: &str) -> Kind {
    match type_name {
        "smallint" | "integer" | "bigint" | "oid" => Kind::Integer,
        "real" | "double precision" => Kind::Number,
        t if t.starts_with("numeric") => Kind::Number,
        "boolean" => Kind::Boolean,
        "json" | "jsonb" => Kind::Json,
        _ => Kind::Text,
    }
}

/// The element type of an array type (`integer[]` → `integer`).
fn element(type_name: &str) -> Option<&str> {
    type_name.strip_suffix("[]")
}

fn schema_of_type(type_name: &str) -> Json {
    if let Some(inner) = element(type_name) {
        return json!({"type": "array", "items": schema_of_type(inner)});
    }
    match kind(type_name) {
        Kind::Integer => json!({"type": "integer"}),
        Kind::Number => json!({"type": "number"}),
        Kind::Boolean => json!({"type": "boolean"}),
        Kind::Json => json!({}),
        Kind::Text => {
            let format = match type_name {
                "date" => Some("date"),
                "timestamp with time zone" => Some("date-time"),
                "uuid" => Some("uuid"),
                _ => None,
            };
            match format {
                Some(f) => json!({"type": "string", "format": f}),
                None => json!({"type": "string"}),
            }
        }
    }
}

fn input_schema(tool: &DeclaredTool) -> Json {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for p in &tool.params {
        let mut schema = schema_of_type(&p.type_name);
        let Json::Object(fields) = &mut schema else {
            continue;
        };
        let type_note = format!("PostgreSQL type {}", p.type_name);
        let description = match &p.description {
            Some(d) => format!("{d} ({type_note})"),
            None => type_note,
        };
        fields.insert("description".into(), Json::String(description));
        if let Some(choices) = &p.choices {
            fields.insert("enum".into(), Json::Array(choices.clone()));
        }
        if let Some(default) = &p.default {
            fields.insert("default".into(), default.clone());
        }
        if p.default.is_none() && !p.optional {
            required.push(Json::String(p.name.clone()));
        }
        properties.insert(p.name.clone(), schema);
    }
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

/// A write tool's answer: `query`'s shape, and how many rows it touched.
#[sluice_sdk::json_derive(Serialize, JsonSchema)]
struct WriteOutput {
    #[serde(flatten)]
    rows: db::QueryOutput,
    /// Rows inserted, updated or deleted.
    affected: u64,
}

/// The output schema of a read or a write tool.
fn output_schema(write: bool) -> Option<Json> {
    if write {
        <sluice_sdk::Json<WriteOutput> as sluice_sdk::ToolOutput>::output_schema()
    } else {
        <sluice_sdk::Json<db::QueryOutput> as sluice_sdk::ToolOutput>::output_schema()
    }
}

/// One argument as a statement parameter, checked against its declaration.
fn parameter(p: &Param, given: Option<&Json>) -> Result<Value> {
    let value = match given.or(p.default.as_ref()) {
        Some(v) => v,
        None if p.optional => return Ok(Value::Scalar(Scalar::Null)),
        None => {
            return Err(Error::invalid_input(format!(
                "argument {:?} is required ({})",
                p.name, p.type_name
            )));
        }
    };
    if let Some(choices) = &p.choices
        && !choices.contains(value)
    {
        let allowed: Vec<String> = choices.iter().map(Json::to_string).collect();
        return Err(Error::invalid_input(format!(
            "argument {:?} must be one of {}, not {value}",
            p.name,
            allowed.join(", ")
        )));
    }
    check_kind(&p.name, &p.type_name, value)?;
    Ok(match kind(&p.type_name) {
        // A JSON argument is the document itself, a string one included.
        Kind::Json if element(&p.type_name).is_none() && !value.is_null() => {
            Value::Scalar(Scalar::Json(value.to_string()))
        }
        _ => Value::from_json(value),
    })
}

/// `value` is JSON of the kind `type_name` travels as (a string is
/// accepted for any type: PostgreSQL reads its text form).
fn check_kind(name: &str, type_name: &str, value: &Json) -> Result<()> {
    if value.is_null() || value.is_string() {
        return Ok(());
    }
    if let Some(inner) = element(type_name) {
        return match value {
            Json::Array(items) => items
                .iter()
                .try_for_each(|item| check_kind(name, inner, item)),
            _ => Err(mismatch(name, type_name, value)),
        };
    }
    let fits = match kind(type_name) {
        Kind::Integer => value.is_i64() || value.is_u64(),
        Kind::Number => value.is_number(),
        Kind::Boolean => value.is_boolean(),
        Kind::Json => true,
        Kind::Text => false,
    };
    if fits {
        Ok(())
    } else {
        Err(mismatch(name, type_name, value))
    }
}

fn mismatch(name: &str, type_name: &str, value: &Json) -> Error {
    Error::invalid_input(format!(
        "argument {name:?} is {type_name}; {value} is not one"
    ))
}

fn run(tool: &DeclaredTool, args: Json) -> Result<ToolResult> {
    let Json::Object(args) = args else {
        return Err(Error::invalid_input("arguments must be a JSON object"));
    };
    if let Some(unknown) = args
        .keys()
        .find(|k| !tool.params.iter().any(|p| &p.name == *k))
    {
        let known: Vec<&str> = tool.params.iter().map(|p| p.name.as_str()).collect();
        return Err(Error::invalid_input(format!(
            "tool {} has no argument {unknown:?} (arguments: {})",
            tool.name,
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        )));
    }
    let params = tool
        .params
        .iter()
        .map(|p| parameter(p, args.get(&p.name)))
        .collect::<Result<Vec<_>>>()?;
    if tool.write {
        let outcome = db::execute(&tool.sql, &params, tool.max_rows)?;
        ToolResult::json(&WriteOutput {
            rows: db::QueryOutput::from(&outcome.returned),
            affected: outcome.affected,
        })
    } else {
        ToolResult::json(&db::QueryOutput::from(&db::query(&tool.sql, &params)?))
    }
}

fn build() -> Plugin {
    let declared = match sluice_sdk::config::get(DECLARED) {
        Some(text) => serde_json::from_str::<Declared>(&text),
        None => {
            // Loaded without a declaration, it offers nothing and asks for
            // nothing: the host only runs it for a tools file.
            return Plugin::new().description("serves the tools declared in *.tools.toml files");
        }
    };
    let declared = match declared {
        Ok(d) => d,
        Err(e) => {
            sluice_sdk::log::error(format!("the host's declaration is unreadable: {e}"));
            return Plugin::new();
        }
    };
    let requests = Requests::new().read(declared.read).write(declared.write);
    let mut plugin = Plugin::new()
        .name(&declared.name)
        .description(&declared.description)
        .requests(requests);
    for name in declared.tools {
        let key = format!("{TOOL_PREFIX}{name}");
        plugin = plugin.lazy_tool(name, move || make_tool(&key));
    }
    plugin
}

/// The tool declared under config `key`.
fn make_tool(key: &str) -> Result<Tool> {
    let text = sluice_sdk::config::get(key)
        .ok_or_else(|| Error::internal(format!("the host's declaration has no {key}")))?;
    let tool: DeclaredTool = serde_json::from_str(&text).map_err(|e| {
        Error::internal(format!(
            "the host's declaration of {key} is unreadable: {e}"
        ))
    })?;
    // Shared by the schemas, built only when described, and the call.
    let tool = Rc::new(tool);
    let (for_schemas, for_call) = (tool.clone(), tool.clone());
    let mut t = Tool::dynamic(
        &tool.name,
        move || (input_schema(&for_schemas), output_schema(for_schemas.write)),
        move |args| run(&for_call, args),
    )
    .description(&tool.description);
    if let Some(title) = &tool.title {
        t = t.title(title);
    }
    t = if !tool.write {
        t.read_only()
    } else if tool.destructive {
        t.destructive()
    } else {
        t.additive()
    };
    if tool.write && tool.idempotent {
        t = t.idempotent();
    }
    Ok(t)
}

sluice_sdk::plugin!(build);

#[cfg(test)]
mod tests {
    use super::*;

    fn param(type_name: &str) -> Param {
        Param {
            name: "p".into(),
            type_name: type_name.into(),
            description: None,
            default: None,
            choices: None,
            optional: false,
        }
    }

    #[test]
    fn schemas_follow_the_postgresql_types() {
        assert_eq!(schema_of_type("bigint"), json!({"type": "integer"}));
        assert_eq!(schema_of_type("numeric(10,2)"), json!({"type": "number"}));
        assert_eq!(
            schema_of_type("text[]"),
            json!({"type": "array", "items": {"type": "string"}})
        );
        assert_eq!(schema_of_type("jsonb"), json!({}));
        assert_eq!(
            schema_of_type("timestamp with time zone"),
            json!({"type": "string", "format": "date-time"})
        );
        assert_eq!(schema_of_type("mpaa_rating"), json!({"type": "string"}));
    }

    #[test]
    fn arguments_are_checked_against_their_declaration() {
        let int = param("integer");
        assert_eq!(
            parameter(&int, Some(&json!(7))).unwrap(),
            Value::Scalar(Scalar::Int(7))
        );
        // Text is PostgreSQL's to read; a JSON kind that cannot be is refused.
        assert!(parameter(&int, Some(&json!("7"))).is_ok());
        assert!(parameter(&int, Some(&json!(true))).is_err());
        assert!(parameter(&int, Some(&json!(1.5))).is_err());
        assert!(parameter(&int, None).is_err());
        let optional = Param {
            optional: true,
            ..param("integer")
        };
        assert_eq!(
            parameter(&optional, None).unwrap(),
            Value::Scalar(Scalar::Null)
        );
        let defaulted = Param {
            default: Some(json!(5)),
            ..param("integer")
        };
        assert_eq!(
            parameter(&defaulted, None).unwrap(),
            Value::Scalar(Scalar::Int(5))
        );
        let rating = Param {
            choices: Some(vec![json!("G"), json!("PG")]),
            ..param("mpaa_rating")
        };
        assert!(parameter(&rating, Some(&json!("PG"))).is_ok());
        let refused = parameter(&rating, Some(&json!("R"))).unwrap_err();
        assert!(refused.to_string().contains("must be one of \"G\", \"PG\""));
        let ints = param("integer[]");
        assert!(parameter(&ints, Some(&json!([1, 2]))).is_ok());
        assert!(parameter(&ints, Some(&json!([1, "x", false]))).is_err());
        // A JSON parameter is the document itself, a string one included.
        assert_eq!(
            parameter(&param("jsonb"), Some(&json!({"a": [1]}))).unwrap(),
            Value::Scalar(Scalar::Json("{\"a\":[1]}".into()))
        );
        assert_eq!(
            parameter(&param("json"), Some(&json!("a"))).unwrap(),
            Value::Scalar(Scalar::Json("\"a\"".into()))
        );
    }

    #[test]
    fn a_write_answers_in_querys_shape_and_says_what_it_touched() {
        let read = output_schema(false).unwrap();
        let write = output_schema(true).unwrap();
        for key in ["columns", "rows", "row_count", "truncated"] {
            assert!(read["properties"][key].is_object(), "{read}");
            assert!(write["properties"][key].is_object(), "{write}");
        }
        assert!(read["properties"]["affected"].is_null());
        assert_eq!(
            write["properties"]["affected"]["type"], "integer",
            "{write}"
        );
        assert!(
            write["required"]
                .as_array()
                .unwrap()
                .contains(&json!("affected"))
        );
    }

    #[test]
    fn the_input_schema_requires_what_has_no_default() {
        let tool = DeclaredTool {
            name: "t".into(),
            title: None,
            description: "d".into(),
            sql: "SELECT $1, $2".into(),
            write: false,
            destructive: false,
            idempotent: false,
            max_rows: None,
            params: vec![
                Param {
                    name: "a".into(),
                    ..param("text")
                },
                Param {
                    name: "b".into(),
                    default: Some(json!(1)),
                    ..param("integer")
                },
            ],
        };
        let schema = input_schema(&tool);
        assert_eq!(schema["required"], json!(["a"]));
        assert_eq!(schema["properties"]["b"]["default"], 1);
        assert_eq!(
            schema["properties"]["a"]["description"],
            "PostgreSQL type text"
        );
        let unknown = run(&tool, json!({"c": 1})).unwrap_err().to_string();
        assert!(
            unknown.contains("no argument \"c\" (arguments: a, b)"),
            "{unknown}"
        );
    }
}
