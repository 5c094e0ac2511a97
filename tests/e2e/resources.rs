//! Resources, resource templates, prompts and completions of `sql-read`.

use crate::support::{self, fresh_db, spawn};
use serde_json::{Value, json};

fn resource_json(result: &Value) -> Value {
    let text = result["contents"][0]["text"]
        .as_str()
        .expect("text contents");
    serde_json::from_str(text).expect("JSON contents")
}

#[tokio::test]
async fn overview_and_table_schema_resources() {
    let db = fresh_db().await;
    let server = spawn(&db, "", None).await;
    let resources = support::json(&server.list_resources().await);
    assert!(
        resources
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["uri"] == "db://overview" && r["mimeType"] == "application/json"),
        "{resources}"
    );
    let templates = support::json(&server.list_resource_templates().await);
    assert!(
        templates
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["uriTemplate"] == "db://tables/{table}/schema"),
        "{templates}"
    );

    let overview = support::json(&server.read_resource("db://overview").await.unwrap());
    assert_eq!(overview["contents"][0]["uri"], "db://overview");
    let tables = resource_json(&overview);
    let orders = tables["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "orders")
        .unwrap();
    assert_eq!(orders["estimated_rows"], 25);
    assert_eq!(orders["column_count"], 8);

    let schema = support::json(
        &server
            .read_resource("db://tables/orders/schema")
            .await
            .unwrap(),
    );
    let schema = resource_json(&schema);
    assert_eq!(schema["name"], "orders");
    assert_eq!(schema["primary_key"], json!(["order_id"]));
    let status = schema["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "status")
        .unwrap();
    assert_eq!(status["type"], "order_status");

    let missing = server.read_resource("db://tables/nope/schema").await;
    let err = missing.expect_err("a missing table is an error");
    let data = support::error_data(&err);
    assert_eq!(
        data.code,
        rmcp::model::ErrorCode::RESOURCE_NOT_FOUND,
        "{data:?}"
    );
    assert_eq!(data.data, Some(json!({"uri": "db://tables/nope/schema"})));
    server.shutdown().await;
}

#[tokio::test]
async fn prompts_are_filled_with_the_live_schema() {
    let db = fresh_db().await;
    let server = spawn(&db, "", None).await;
    let prompts = support::json(&server.list_prompts().await);
    let analyze = prompts
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "analyze_table")
        .unwrap();
    assert_eq!(analyze["arguments"][0]["name"], "table_name");
    assert_eq!(analyze["arguments"][0]["required"], true);
    assert_eq!(analyze["arguments"][1]["name"], "focus");

    let p = support::json(
        &server
            .get_prompt(
                "analyze_table",
                &[("table_name", "books"), ("focus", "pricing")],
            )
            .await
            .unwrap(),
    );
    let text = p["messages"][0]["content"]["text"].as_str().unwrap();
    assert_eq!(p["messages"][0]["role"], "user");
    assert!(text.contains("public.books"), "{text}");
    assert!(text.contains("price numeric(10,2) NOT NULL"), "{text}");
    assert!(
        text.contains("FOREIGN KEY (author_id) REFERENCES public.authors"),
        "{text}"
    );
    assert!(text.contains("pricing"), "{text}");

    let p = support::json(
        &server
            .get_prompt(
                "generate_report_query",
                &[("report_type", "top customers by revenue")],
            )
            .await
            .unwrap(),
    );
    let text = p["messages"][0]["content"]["text"].as_str().unwrap();
    assert!(text.contains("top customers by revenue"), "{text}");
    assert!(text.contains("table public.customers"), "{text}");
    assert!(text.contains("view public.book_sales_summary"), "{text}");

    assert!(server.get_prompt("analyze_table", &[]).await.is_err());
    assert!(server.get_prompt("no_such_prompt", &[]).await.is_err());
    let hidden = server
        .get_prompt("analyze_table", &[("table_name", "pg_catalog.pg_authid")])
        .await;
    assert!(
        hidden.is_err(),
        "a table outside the grant cannot be analysed"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn completions_suggest_tables_and_report_types() {
    let db = fresh_db().await;
    let server = spawn(&db, "", None).await;
    assert_eq!(
        server
            .complete_prompt_arg("analyze_table", "table_name", "bo")
            .await,
        ["book_sales_summary", "books"]
    );
    assert_eq!(
        server
            .complete_template_var("db://tables/{table}/schema", "table", "ORD")
            .await,
        ["order_items", "orders"]
    );
    assert_eq!(
        server
            .complete_prompt_arg("generate_report_query", "report_type", "t")
            .await,
        ["top-n ranking", "trend over time"]
    );
    assert!(
        server
            .complete_prompt_arg("analyze_table", "table_name", "zzz")
            .await
            .is_empty()
    );
    server.shutdown().await;
}
