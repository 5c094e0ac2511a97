//! Conversions between the WIT bindings and the host's own types, so that
//! neither the database layer nor the transport sees a wasm type.

use super::bindings::exports::sluice::plugin::handler as h;
use super::bindings::sluice::plugin::{database as wdb, types as wt};
use super::{Description, LoadError};
use crate::db::catalog::{self, RelationKind};
use crate::db::value::{Scalar, Value};
use crate::db::{ColumnMeta, PgError, Rows};
use crate::gate::GateError;
use crate::registry::model as m;
use serde_json::{Map, Value as Json};

fn scalar_in(s: wt::Scalar) -> Scalar {
    match s {
        wt::Scalar::Null => Scalar::Null,
        wt::Scalar::Boolean(b) => Scalar::Bool(b),
        wt::Scalar::Int(i) => Scalar::Int(i),
        wt::Scalar::Float(f) => Scalar::Float(f),
        wt::Scalar::Numeric(s) => Scalar::Numeric(s),
        wt::Scalar::Text(s) => Scalar::Text(s),
        wt::Scalar::Bytes(b) => Scalar::Bytes(b),
        wt::Scalar::Json(s) => Scalar::Json(s),
        wt::Scalar::Uuid(s) => Scalar::Uuid(s),
        wt::Scalar::Date(s) => Scalar::Date(s),
        wt::Scalar::Time(s) => Scalar::Time(s),
        wt::Scalar::Timestamp(s) => Scalar::Timestamp(s),
        wt::Scalar::Timestamptz(s) => Scalar::Timestamptz(s),
        wt::Scalar::Interval(s) => Scalar::Interval(s),
    }
}

fn scalar_out(s: Scalar) -> wt::Scalar {
    match s {
        Scalar::Null => wt::Scalar::Null,
        Scalar::Bool(b) => wt::Scalar::Boolean(b),
        Scalar::Int(i) => wt::Scalar::Int(i),
        Scalar::Float(f) => wt::Scalar::Float(f),
        Scalar::Numeric(s) => wt::Scalar::Numeric(s),
        Scalar::Text(s) => wt::Scalar::Text(s),
        Scalar::Bytes(b) => wt::Scalar::Bytes(b),
        Scalar::Json(s) => wt::Scalar::Json(s),
        Scalar::Uuid(s) => wt::Scalar::Uuid(s),
        Scalar::Date(s) => wt::Scalar::Date(s),
        Scalar::Time(s) => wt::Scalar::Time(s),
        Scalar::Timestamp(s) => wt::Scalar::Timestamp(s),
        Scalar::Timestamptz(s) => wt::Scalar::Timestamptz(s),
        Scalar::Interval(s) => wt::Scalar::Interval(s),
    }
}

/// Column/value pairs a plugin sent.
pub fn pairs_in(pairs: Vec<(String, wt::Value)>) -> Vec<(String, Value)> {
    pairs.into_iter().map(|(k, v)| (k, value_in(v))).collect()
}

/// A value a plugin sent (already through the boundary checks).
pub fn value_in(v: wt::Value) -> Value {
    match v {
        // PostgreSQL has one empty array, of no dimensions; the SDK sends a
        // JSON `[]` as dims `[0]`.
        wt::Value::Array(a) if a.items.is_empty() => Value::Array {
            dims: Vec::new(),
            items: Vec::new(),
        },
        wt::Value::Scalar(s) => Value::Scalar(scalar_in(s)),
        wt::Value::Array(a) => Value::Array {
            dims: a.dims,
            items: a.items.into_iter().map(scalar_in).collect(),
        },
    }
}

fn value_out(v: Value) -> wt::Value {
    match v {
        Value::Scalar(s) => wt::Value::Scalar(scalar_out(s)),
        Value::Array { dims, items } => wt::Value::Array(wt::ArrayValue {
            dims,
            items: items.into_iter().map(scalar_out).collect(),
        }),
    }
}

/// Rows for a plugin.
pub fn rows_out(r: Rows) -> wdb::Rows {
    wdb::Rows {
        columns: r
            .columns
            .into_iter()
            .map(|ColumnMeta { name, type_name }| wdb::Column { name, type_name })
            .collect(),
        rows: r
            .rows
            .into_iter()
            .map(|row| row.into_iter().map(value_out).collect())
            .collect(),
        truncated: r.truncated,
    }
}

/// A gate error as the plugin sees it.
pub fn gate_error(e: GateError) -> wt::Error {
    match e {
        GateError::Denied(d) => wt::Error::Denied(wt::Denial {
            rule: d.rule.to_string(),
            message: d.message,
        }),
        GateError::InvalidInput(m) => wt::Error::InvalidInput(m),
        GateError::NotFound(m) => wt::Error::NotFound(m),
        GateError::Database(pg) => wt::Error::Database(wt::DatabaseError {
            sqlstate: pg.sqlstate,
            message: pg.message,
            detail: pg.detail,
            hint: pg.hint,
        }),
        GateError::Internal(m) => wt::Error::Internal(m),
    }
}

fn kind_out(k: RelationKind) -> wdb::RelationKind {
    match k {
        RelationKind::Table => wdb::RelationKind::Table,
        RelationKind::PartitionedTable => wdb::RelationKind::PartitionedTable,
        RelationKind::View => wdb::RelationKind::View,
        RelationKind::MaterializedView => wdb::RelationKind::MaterializedView,
        RelationKind::ForeignTable => wdb::RelationKind::ForeignTable,
    }
}

/// A constraint kind as the catalog names it (see `catalog::describe`).
/// Anything unnamed there, such as PostgreSQL 18's not-null constraints,
/// is `other`: a plugin still sees the constraint and its definition.
fn constraint_kind_out(kind: &str) -> wdb::ConstraintKind {
    match kind {
        "check" => wdb::ConstraintKind::Check,
        "unique" => wdb::ConstraintKind::Unique,
        "primary-key" => wdb::ConstraintKind::PrimaryKey,
        "foreign-key" => wdb::ConstraintKind::ForeignKey,
        "exclusion" => wdb::ConstraintKind::Exclusion,
        "trigger" => wdb::ConstraintKind::Trigger,
        _ => wdb::ConstraintKind::Other,
    }
}

/// A relation for a plugin.
pub fn relation_out(r: catalog::Relation) -> wdb::Relation {
    wdb::Relation {
        schema: r.schema,
        name: r.name,
        kind: kind_out(r.kind),
        estimated_rows: r.estimated_rows,
        column_count: r.column_count,
        comment: r.comment,
    }
}

/// A relation description for a plugin.
pub fn description_out(d: catalog::RelationDescription) -> wdb::RelationDescription {
    wdb::RelationDescription {
        relation: relation_out(d.relation),
        columns: d
            .columns
            .into_iter()
            .map(|c| wdb::ColumnInfo {
                name: c.name,
                type_name: c.type_name,
                nullable: c.nullable,
                default: c.default,
                comment: c.comment,
            })
            .collect(),
        primary_key: d.primary_key,
        foreign_keys: d
            .foreign_keys
            .into_iter()
            .map(|f| wdb::ForeignKey {
                name: f.name,
                columns: f.columns,
                referenced_table: f.referenced_table,
                referenced_columns: f.referenced_columns,
            })
            .collect(),
        indexes: d
            .indexes
            .into_iter()
            .map(|i| wdb::IndexInfo {
                name: i.name,
                definition: i.definition,
                unique: i.unique,
                primary: i.primary,
            })
            .collect(),
        constraints: d
            .constraints
            .into_iter()
            .map(|c| wdb::ConstraintInfo {
                name: c.name,
                kind: constraint_kind_out(&c.kind),
                definition: c.definition,
            })
            .collect(),
    }
}

/// An error plugin `plugin`'s export returned. A `denied` is the policy's
/// only when the host issued it during this call (`issued`) and the plugin
/// passes it on, its rule unchanged and its message as the host wrote it
/// (a plugin may add a hint after it); any other is the plugin's own
/// refusal, and says so, so a plugin cannot dress its own words up as the
/// host's policy.
pub fn call_error(e: wt::Error, plugin: &str, issued: &[(String, String)]) -> m::CallError {
    let passed_on = |d: &wt::Denial| {
        issued
            .iter()
            .any(|(rule, message)| *rule == d.rule && d.message.starts_with(message.as_str()))
    };
    match e {
        wt::Error::Denied(d) if passed_on(&d) => m::CallError::Denied {
            rule: d.rule,
            message: d.message,
        },
        wt::Error::Denied(d) => m::CallError::Refused {
            plugin: plugin.to_string(),
            rule: d.rule,
            message: d.message,
        },
        wt::Error::InvalidInput(s) => m::CallError::InvalidInput(s),
        wt::Error::NotFound(s) => m::CallError::NotFound(s),
        wt::Error::Database(d) => m::CallError::Database(PgError {
            sqlstate: d.sqlstate,
            message: d.message,
            detail: d.detail,
            hint: d.hint,
        }),
        wt::Error::Internal(s) => m::CallError::Internal(s),
    }
}

fn object_schema(text: &str, what: &str) -> Result<Map<String, Json>, LoadError> {
    let problem = match serde_json::from_str::<Json>(text) {
        Ok(Json::Object(mut map)) => {
            // MCP requires object schemas; an empty schema means "no arguments".
            map.entry("type")
                .or_insert_with(|| Json::String("object".into()));
            if map.get("type") == Some(&Json::String("object".into())) {
                return Ok(map);
            }
            "must be an object schema".to_string()
        }
        Ok(_) => "is not a JSON object".to_string(),
        Err(e) => format!("is not valid JSON: {e}"),
    };
    Err(LoadError::Schema {
        what: what.to_string(),
        problem,
    })
}

fn manifest(m: h::Manifest) -> m::Manifest {
    let r = m.requests;
    m::Manifest {
        name: m.name,
        version: m.version,
        description: m.description,
        requests: crate::policy::Requests {
            read: r.read,
            write: r.write,
            catalog: r.catalog,
            limits: crate::policy::LimitSettings {
                timeout_ms: r.timeout_ms,
                memory_mb: r.memory_mb.map(u64::from),
                max_rows: r.max_rows,
                ..Default::default()
            },
        },
    }
}

/// A plugin's description in host terms. Its JSON schemas must parse; the
/// names it declares are the registry's to check (see
/// [`m::check_declared_names`]).
pub fn description(d: h::Description) -> Result<Description, LoadError> {
    let manifest = manifest(d.manifest);
    let mut tools = Vec::with_capacity(d.tools.len());
    for t in d.tools {
        let input_schema = object_schema(&t.input_schema, &format!("input schema of {}", t.name))?;
        let output_schema = t
            .output_schema
            .as_deref()
            .map(|s| object_schema(s, &format!("output schema of {}", t.name)))
            .transpose()?;
        tools.push(m::ToolSpec {
            name: t.name,
            title: t.title,
            description: t.description,
            input_schema,
            output_schema,
            annotations: m::ToolAnnotations {
                read_only: t.annotations.read_only,
                destructive: t.annotations.destructive,
                idempotent: t.annotations.idempotent,
                open_world: t.annotations.open_world,
            },
        });
    }
    let mut prompts: Vec<m::PromptSpec> = Vec::with_capacity(d.prompts.len());
    for p in d.prompts {
        prompts.push(m::PromptSpec {
            name: p.name,
            title: p.title,
            description: p.description,
            arguments: p
                .arguments
                .into_iter()
                .map(|a| m::PromptArgumentSpec {
                    name: a.name,
                    title: a.title,
                    description: a.description,
                    required: a.required,
                })
                .collect(),
        });
    }
    Ok(Description {
        manifest,
        tools,
        resources: d
            .resources
            .into_iter()
            .map(|r| m::ResourceSpec {
                uri: r.uri,
                name: r.name,
                title: r.title,
                description: r.description,
                mime_type: r.mime_type,
            })
            .collect(),
        resource_templates: d
            .resource_templates
            .into_iter()
            .map(|t| m::ResourceTemplateSpec {
                uri_template: t.uri_template,
                name: t.name,
                title: t.title,
                description: t.description,
                mime_type: t.mime_type,
            })
            .collect(),
        prompts,
    })
}

pub fn resource_contents(c: h::ResourceContents) -> m::ResourceContents {
    m::ResourceContents {
        uri: c.uri,
        mime_type: c.mime_type,
        body: match c.body {
            h::ResourceBody::Text(t) => m::ResourceBody::Text(t),
            h::ResourceBody::Blob(b) => m::ResourceBody::Blob(b),
        },
    }
}

fn content(c: h::Content) -> m::Content {
    match c {
        h::Content::Text(t) => m::Content::Text(t),
        h::Content::Image(x) => m::Content::Image {
            data: x.data,
            mime_type: x.mime_type,
        },
        h::Content::Audio(x) => m::Content::Audio {
            data: x.data,
            mime_type: x.mime_type,
        },
        h::Content::Resource(r) => m::Content::Resource(resource_contents(r)),
    }
}

/// A tool result; structured content must be valid JSON.
pub fn tool_result(r: h::ToolResult) -> Result<m::ToolOutput, m::CallError> {
    let structured = r
        .structured
        .as_deref()
        .map(serde_json::from_str::<Json>)
        .transpose()
        .map_err(|e| {
            m::CallError::Internal(format!("the tool returned invalid structured JSON: {e}"))
        })?;
    Ok(m::ToolOutput {
        content: r.content.into_iter().map(content).collect(),
        structured,
        is_error: r.is_error,
    })
}

pub fn prompt_result(r: h::PromptResult) -> m::PromptOutput {
    m::PromptOutput {
        description: r.description,
        messages: r
            .messages
            .into_iter()
            .map(|msg| m::PromptMessage {
                role: match msg.role {
                    h::Role::User => m::Role::User,
                    h::Role::Assistant => m::Role::Assistant,
                },
                content: content(msg.content),
            })
            .collect(),
    }
}

pub fn completion_request(r: m::CompletionRequest) -> h::CompletionRequest {
    h::CompletionRequest {
        target: match r.target {
            m::CompletionTarget::Prompt(p) => h::CompletionTarget::Prompt(p),
            m::CompletionTarget::ResourceTemplate(t) => h::CompletionTarget::ResourceTemplate(t),
        },
        argument: r.argument,
        value: r.value,
        context: r.context,
    }
}

pub fn completion(c: h::Completion) -> m::CompletionOutput {
    m::CompletionOutput {
        values: c.values,
        total: c.total,
        has_more: c.has_more,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_denial_is_the_policys_only_when_the_host_issued_it() {
        let denial = |rule: &str, message: &str| {
            wt::Error::Denied(wt::Denial {
                rule: rule.into(),
                message: message.into(),
            })
        };
        let issued = vec![("read-grant".to_string(), "relation a.b is not".to_string())];
        let passed = call_error(
            denial("read-grant", "relation a.b is not; hint"),
            "p",
            &issued,
        );
        assert_eq!(
            passed.to_string(),
            "denied (read-grant): relation a.b is not; hint"
        );
        for (rule, message) in [
            ("read-grant", "relation c.d is not"),
            ("max_rows", "relation a.b is not"),
        ] {
            let own = call_error(denial(rule, message), "p", &issued);
            assert_eq!(
                own.to_string(),
                format!("plugin p refused ({rule}): {message}")
            );
        }
        let own = call_error(denial("read-grant", "relation a.b is not"), "p", &[]);
        assert!(matches!(own, m::CallError::Refused { .. }), "{own:?}");
    }

    fn result(structured: String) -> h::ToolResult {
        h::ToolResult {
            content: Vec::new(),
            structured: Some(structured),
            is_error: false,
        }
    }

    #[test]
    fn structured_json_is_bounded_in_depth() {
        // serde_json's recursion limit: an error, never a stack overflow.
        let deep = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
        match tool_result(result(deep)) {
            Err(m::CallError::Internal(message)) => {
                assert!(message.contains("invalid structured JSON"), "{message}")
            }
            other => panic!("{other:?}"),
        }
        let fine = format!("{}1{}", "[".repeat(100), "]".repeat(100));
        assert!(tool_result(result(fine)).is_ok());
    }

    #[test]
    fn every_constraint_kind_the_catalog_names_has_its_case() {
        use wdb::ConstraintKind as K;
        for (name, kind) in [
            ("check", K::Check),
            ("unique", K::Unique),
            ("primary-key", K::PrimaryKey),
            ("foreign-key", K::ForeignKey),
            ("exclusion", K::Exclusion),
            ("trigger", K::Trigger),
            ("other", K::Other),
            ("not-null", K::Other),
            ("", K::Other),
        ] {
            assert_eq!(constraint_kind_out(name), kind, "{name:?}");
        }
    }
}
