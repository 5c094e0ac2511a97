//! `sql-read`: the read-only database tools every sluice user gets.
//!
//! Tools `query`, `list_tables`, `describe_table`, `explain_query`; resources
//! `db://overview` and `db://tables/{table}/schema`; prompts `analyze_table` and
//! `generate_report_query`. Everything goes through the host's checked database
//! calls, so what this plugin can see is exactly what the operator granted it.

use sluice_sdk::db::{self, ConstraintKind, Relation, RelationDescription, RelationKind};
use sluice_sdk::prelude::*;
use sluice_sdk::serde_json::{self, Value as JsonValue};

/// Tables described in full in `generate_report_query`; beyond it, names only.
const REPORT_SCHEMA_TABLES: usize = 40;

/// Run one read-only SQL statement (SELECT, WITH ... SELECT, VALUES, TABLE name,
/// or EXPLAIN of one of those, without ANALYZE) and return its rows as JSON. Use
/// $1, $2, ... placeholders with `params` for values. Rows beyond the server's
/// row cap are dropped and `truncated` is set.
#[sluice_sdk::json_derive(Deserialize, JsonSchema)]
struct QueryArgs {
    /// The SQL statement: exactly one, read-only.
    sql: String,
    /// Values for $1, $2, ... in order. Strings are converted to the type the
    /// query needs (e.g. "42" for an integer column); numbers, booleans and null
    /// are accepted too.
    #[serde(default)]
    params: Vec<JsonValue>,
}

fn query(args: QueryArgs) -> Result<Json<db::QueryOutput>> {
    let params: Vec<Value> = args.params.iter().map(Value::from_json).collect();
    let rows = db::query(&args.sql, &params).map_err(readable_hint)?;
    Ok(Json(db::QueryOutput::from(&rows)))
}

/// A read refused for the relations it names: the model learns where to
/// find the ones it may read.
fn readable_hint(error: Error) -> Error {
    match error {
        Error::Denied(mut denial) if denial.rule == "read-grant" => {
            denial
                .message
                .push_str("; call list_tables to see the relations this plugin may read");
            Error::Denied(denial)
        }
        other => other,
    }
}

/// List the tables and views you may query, with row estimates and column
/// counts.
#[sluice_sdk::json_derive(Deserialize, JsonSchema)]
struct ListTablesArgs {
    /// Only relations in this schema (all visible schemas when omitted).
    schema: Option<String>,
}

#[sluice_sdk::json_derive(Serialize, JsonSchema)]
struct TableOut {
    schema: String,
    name: String,
    /// `table`, `partitioned table`, `view`, `materialized view` or `foreign table`.
    kind: String,
    /// The planner's estimate; null when the table was never analysed.
    estimated_rows: Option<i64>,
    column_count: u32,
    comment: Option<String>,
}

#[sluice_sdk::json_derive(Serialize, JsonSchema)]
struct ListTablesOut {
    tables: Vec<TableOut>,
}

fn kind_name(kind: RelationKind) -> &'static str {
    match kind {
        RelationKind::Table => "table",
        RelationKind::PartitionedTable => "partitioned table",
        RelationKind::View => "view",
        RelationKind::MaterializedView => "materialized view",
        RelationKind::ForeignTable => "foreign table",
    }
}

/// The names clients have always seen for constraint kinds.
fn constraint_kind_name(kind: ConstraintKind) -> &'static str {
    match kind {
        ConstraintKind::Check => "check",
        ConstraintKind::Unique => "unique",
        ConstraintKind::PrimaryKey => "primary-key",
        ConstraintKind::ForeignKey => "foreign-key",
        ConstraintKind::Exclusion => "exclusion",
        ConstraintKind::Trigger => "trigger",
        ConstraintKind::Other => "other",
    }
}

fn table_out(r: &Relation) -> TableOut {
    TableOut {
        schema: r.schema.clone(),
        name: r.name.clone(),
        kind: kind_name(r.kind).to_string(),
        estimated_rows: r.estimated_rows,
        column_count: r.column_count,
        comment: r.comment.clone(),
    }
}

fn list_tables(args: ListTablesArgs) -> Result<Json<ListTablesOut>> {
    let relations = db::list_relations(args.schema.as_deref())?;
    Ok(Json(ListTablesOut {
        tables: relations.iter().map(table_out).collect(),
    }))
}

/// Describe a table or view: columns with types, nullability and defaults,
/// primary and foreign keys, indexes and constraints.
#[sluice_sdk::json_derive(Deserialize, JsonSchema)]
struct DescribeArgs {
    /// Table name, optionally schema-qualified (`film` or `public.film`).
    table: String,
}

#[sluice_sdk::json_derive(Serialize, JsonSchema)]
struct ColumnDescOut {
    name: String,
    #[serde(rename = "type")]
    type_name: String,
    nullable: bool,
    default: Option<String>,
    comment: Option<String>,
}

#[sluice_sdk::json_derive(Serialize, JsonSchema)]
struct ForeignKeyOut {
    name: String,
    columns: Vec<String>,
    references_table: String,
    references_columns: Vec<String>,
}

#[sluice_sdk::json_derive(Serialize, JsonSchema)]
struct IndexOut {
    name: String,
    definition: String,
    unique: bool,
    primary: bool,
}

#[sluice_sdk::json_derive(Serialize, JsonSchema)]
struct ConstraintOut {
    name: String,
    kind: String,
    definition: String,
}

#[sluice_sdk::json_derive(Serialize, JsonSchema)]
struct DescribeOut {
    schema: String,
    name: String,
    kind: String,
    comment: Option<String>,
    estimated_rows: Option<i64>,
    columns: Vec<ColumnDescOut>,
    primary_key: Vec<String>,
    foreign_keys: Vec<ForeignKeyOut>,
    indexes: Vec<IndexOut>,
    constraints: Vec<ConstraintOut>,
}

fn describe_out(d: RelationDescription) -> DescribeOut {
    DescribeOut {
        schema: d.relation.schema,
        name: d.relation.name,
        kind: kind_name(d.relation.kind).to_string(),
        comment: d.relation.comment,
        estimated_rows: d.relation.estimated_rows,
        columns: d
            .columns
            .into_iter()
            .map(|c| ColumnDescOut {
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
            .map(|f| ForeignKeyOut {
                name: f.name,
                columns: f.columns,
                references_table: f.referenced_table,
                references_columns: f.referenced_columns,
            })
            .collect(),
        indexes: d
            .indexes
            .into_iter()
            .map(|i| IndexOut {
                name: i.name,
                definition: i.definition,
                unique: i.unique,
                primary: i.primary,
            })
            .collect(),
        constraints: d
            .constraints
            .into_iter()
            .map(|c| ConstraintOut {
                name: c.name,
                kind: constraint_kind_name(c.kind).to_string(),
                definition: c.definition,
            })
            .collect(),
    }
}

fn describe_table(args: DescribeArgs) -> Result<Json<DescribeOut>> {
    let description = db::describe_relation(&args.table).map_err(readable_hint)?;
    Ok(Json(describe_out(description)))
}

/// Show PostgreSQL's plan for a query (EXPLAIN in JSON format, without ANALYZE:
/// the query is planned, not run).
#[sluice_sdk::json_derive(Deserialize, JsonSchema)]
struct ExplainArgs {
    /// The query to explain, without the EXPLAIN keyword.
    sql: String,
}

#[sluice_sdk::json_derive(Serialize, JsonSchema)]
struct ExplainOut {
    /// The plan as PostgreSQL's `EXPLAIN (FORMAT JSON)` returns it.
    plan: JsonValue,
}

fn explain_query(args: ExplainArgs) -> Result<Json<ExplainOut>> {
    let plan = db::explain("", &args.sql, &[]).map_err(readable_hint)?;
    Ok(Json(ExplainOut { plan }))
}

/// Name a relation as a model should write it: unqualified in `public`.
fn display_name(r: &Relation) -> String {
    if r.schema == "public" {
        r.name.clone()
    } else {
        format!("{}.{}", r.schema, r.name)
    }
}

fn complete_table(prefix: &str, _context: &[(String, String)]) -> Result<Vec<String>> {
    let relations = db::list_relations(None)?;
    let mut names: Vec<String> = Vec::new();
    for r in &relations {
        names.push(display_name(r));
        // Let `public.fi` complete too.
        if r.schema == "public" && prefix.contains('.') {
            names.push(format!("public.{}", r.name));
        }
    }
    Ok(Completion::filter_prefix(names, prefix))
}

fn overview(uri: &str) -> Result<Vec<ResourceContents>> {
    let relations = db::list_relations(None)?;
    let tables: Vec<TableOut> = relations.iter().map(table_out).collect();
    Ok(vec![ResourceContents::json(
        uri,
        &serde_json::json!({ "tables": tables }),
    )?])
}

fn table_schema(uri: &str, params: &UriParams) -> Result<Vec<ResourceContents>> {
    let table = params
        .get("table")
        .ok_or_else(|| Error::invalid_input("the URI names no table"))?;
    // A missing table is a missing resource; one that exists but is outside
    // the grant says so, as `query` does when it names the relation.
    let desc = db::describe_relation(table).map_err(readable_hint)?;
    Ok(vec![ResourceContents::json(uri, &describe_out(desc))?])
}

/// The schema of one relation as compact text for a prompt.
fn schema_text(d: &RelationDescription) -> String {
    let mut out = format!(
        "{} {}.{}",
        kind_name(d.relation.kind),
        d.relation.schema,
        d.relation.name
    );
    if let Some(rows) = d.relation.estimated_rows {
        out.push_str(&format!(" (~{rows} rows)"));
    }
    if let Some(c) = &d.relation.comment {
        out.push_str(&format!(" -- {c}"));
    }
    out.push('\n');
    for c in &d.columns {
        out.push_str(&format!(
            "  {} {}{}{}",
            c.name,
            c.type_name,
            if c.nullable { "" } else { " NOT NULL" },
            c.default
                .as_ref()
                .map(|d| format!(" DEFAULT {d}"))
                .unwrap_or_default()
        ));
        if let Some(comment) = &c.comment {
            out.push_str(&format!(" -- {comment}"));
        }
        out.push('\n');
    }
    if !d.primary_key.is_empty() {
        out.push_str(&format!("  PRIMARY KEY ({})\n", d.primary_key.join(", ")));
    }
    for fk in &d.foreign_keys {
        out.push_str(&format!(
            "  FOREIGN KEY ({}) REFERENCES {} ({})\n",
            fk.columns.join(", "),
            fk.referenced_table,
            fk.referenced_columns.join(", ")
        ));
    }
    out
}

fn analyze_table(args: &PromptArgs) -> Result<PromptResult> {
    let table = args
        .get("table_name")
        .ok_or_else(|| Error::invalid_input("table_name is required"))?;
    let desc = db::describe_relation(table)?;
    let focus = args
        .get("focus")
        .unwrap_or("overall data profile and quality");
    let name = format!("{}.{}", desc.relation.schema, desc.relation.name);
    let text = format!(
        "Analyze the PostgreSQL table {name}, focusing on: {focus}.\n\n\
         Its live schema:\n\n{}\n\
         Use the `query` tool to run read-only SQL against it. Start with row counts, \
         null rates and distinct counts of the key columns, then look at value \
         distributions and relationships through the foreign keys. Keep each query \
         bounded (LIMIT, aggregates). Report findings with the SQL that supports each.",
        schema_text(&desc)
    );
    Ok(PromptResult::new([PromptMessage::user(text)]).description(format!("Analyze {name}")))
}

const REPORT_TYPES: [&str; 6] = [
    "summary",
    "top-n ranking",
    "trend over time",
    "distribution",
    "cohort comparison",
    "data quality",
];

fn generate_report_query(args: &PromptArgs) -> Result<PromptResult> {
    let report_type = args
        .get("report_type")
        .ok_or_else(|| Error::invalid_input("report_type is required"))?;
    let relations = db::list_relations(None)?;
    let schema = report_schema(&relations, |r| {
        db::describe_relation(&format!(
            "{}.{}",
            quote_ident(&r.schema),
            quote_ident(&r.name)
        ))
    })?;
    let text = format!(
        "Write one read-only PostgreSQL query for this report: {report_type}.\n\n\
         The database's live schema (only what you may read):\n\n{schema}\
         Use only the tables and columns above, join along the foreign keys, name \
         every output column clearly, and bound the result (aggregate or LIMIT). \
         Explain the query briefly, then run it with the `query` tool and summarise \
         the result."
    );
    Ok(PromptResult::new([PromptMessage::user(text)])
        .description(format!("A {report_type} report query")))
}

/// The schema part of `generate_report_query`: the first
/// [`REPORT_SCHEMA_TABLES`] relations described in full, the rest by name.
///
/// Listing and describing are separate host calls, so a relation can be
/// dropped in between; one that is gone by the time it is described is left
/// out. Any other failure fails the prompt.
fn report_schema(
    relations: &[Relation],
    mut describe: impl FnMut(&Relation) -> Result<RelationDescription>,
) -> Result<String> {
    let mut schema = String::new();
    let mut described = 0;
    for r in relations {
        if described < REPORT_SCHEMA_TABLES {
            match describe(r) {
                Ok(desc) => {
                    schema.push_str(&schema_text(&desc));
                    schema.push('\n');
                    described += 1;
                }
                Err(Error::NotFound(_)) => continue,
                Err(e) => return Err(e),
            }
        } else {
            schema.push_str(&format!("{} {}\n", kind_name(r.kind), display_name(r)));
        }
    }
    Ok(schema)
}

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn build() -> Plugin {
    Plugin::new()
        // Any relation the operator grants, and the catalog to find them.
        .requests(Requests::new().read(["*.*"]).catalog())
        .tool(
            Tool::new("query", query)
                .title("Run a read-only SQL query")
                .read_only(),
        )
        .tool(
            Tool::new("list_tables", list_tables)
                .title("List tables")
                .read_only(),
        )
        .tool(
            Tool::new("describe_table", describe_table)
                .title("Describe a table")
                .read_only(),
        )
        .tool(
            Tool::new("explain_query", explain_query)
                .title("Explain a query plan")
                .read_only(),
        )
        .resource(
            Resource::new("db://overview", "overview", overview)
                .title("Database overview")
                .description(
                    "Every table and view you may read, with row estimates and column counts",
                )
                .mime_type("application/json"),
        )
        .resource_template(
            ResourceTemplate::new("db://tables/{table}/schema", "table-schema", table_schema)
                .title("Table schema")
                .description("Columns, keys, indexes and constraints of one table")
                .mime_type("application/json")
                .complete("table", complete_table),
        )
        .prompt(
            Prompt::new("analyze_table", analyze_table)
                .title("Analyze a table")
                .description("Profile one table's data, filled with its live schema")
                .required_argument("table_name", "The table to analyze")
                .optional_argument(
                    "focus",
                    "What to focus on, e.g. data quality, growth, outliers",
                )
                .complete("table_name", complete_table),
        )
        .prompt(
            Prompt::new("generate_report_query", generate_report_query)
                .title("Generate a report query")
                .description("Write a SQL report query, filled with the live schema")
                .required_argument(
                    "report_type",
                    "The kind of report, e.g. summary or top-n ranking",
                )
                .complete("report_type", |prefix, _| {
                    Ok(Completion::filter_prefix(REPORT_TYPES, prefix))
                }),
        )
}

sluice_sdk::plugin!(build);

#[cfg(test)]
mod tests {
    use super::*;

    fn relation(name: &str) -> Relation {
        Relation {
            schema: "public".into(),
            name: name.into(),
            kind: RelationKind::Table,
            estimated_rows: Some(3),
            column_count: 1,
            comment: None,
        }
    }

    fn description(r: &Relation) -> RelationDescription {
        RelationDescription {
            relation: r.clone(),
            columns: vec![db::ColumnInfo {
                name: format!("{}_id", r.name),
                type_name: "integer".into(),
                nullable: false,
                default: None,
                comment: None,
            }],
            primary_key: vec![format!("{}_id", r.name)],
            foreign_keys: Vec::new(),
            indexes: Vec::new(),
            constraints: Vec::new(),
        }
    }

    /// Describes every relation but the ones named in `gone`, which were
    /// dropped after the listing (what the host answers then).
    fn describe_except<'a>(
        gone: &'a [&'a str],
    ) -> impl FnMut(&Relation) -> Result<RelationDescription> + 'a {
        move |r| {
            if gone.contains(&r.name.as_str()) {
                Err(Error::not_found(format!(
                    "no relation named public.{}",
                    r.name
                )))
            } else {
                Ok(description(r))
            }
        }
    }

    #[test]
    fn a_relation_dropped_after_the_listing_is_left_out() {
        let relations = [relation("authors"), relation("gone"), relation("orders")];
        let schema = report_schema(&relations, describe_except(&["gone"])).unwrap();
        assert!(schema.contains("table public.authors"), "{schema}");
        assert!(schema.contains("table public.orders"), "{schema}");
        assert!(!schema.contains("gone"), "{schema}");
    }

    #[test]
    fn relations_left_out_do_not_count_against_the_described_ones() {
        let mut relations = vec![relation("gone")];
        relations.extend((0..REPORT_SCHEMA_TABLES + 1).map(|i| relation(&format!("t{i}"))));
        let schema = report_schema(&relations, describe_except(&["gone"])).unwrap();
        let described = schema.matches("PRIMARY KEY").count();
        assert_eq!(described, REPORT_SCHEMA_TABLES, "{schema}");
        let last = format!("t{REPORT_SCHEMA_TABLES}");
        assert!(schema.ends_with(&format!("table {last}\n")), "{schema}");
    }

    #[test]
    fn constraint_kinds_render_as_they_always_have() {
        let rendered: Vec<&str> = [
            ConstraintKind::Check,
            ConstraintKind::Unique,
            ConstraintKind::PrimaryKey,
            ConstraintKind::ForeignKey,
            ConstraintKind::Exclusion,
            ConstraintKind::Trigger,
            ConstraintKind::Other,
        ]
        .into_iter()
        .map(constraint_kind_name)
        .collect();
        assert_eq!(
            rendered,
            [
                "check",
                "unique",
                "primary-key",
                "foreign-key",
                "exclusion",
                "trigger",
                "other"
            ]
        );
    }

    #[test]
    fn other_failures_still_fail_the_prompt() {
        let relations = [relation("authors")];
        let denied = report_schema(&relations, |_| {
            Err(Error::Denied(sluice_sdk::Denial {
                rule: "read-grant".into(),
                message: "relation public.authors is not in this plugin's read grant".into(),
            }))
        });
        assert!(matches!(denied, Err(Error::Denied(_))));
    }
}
