//! The first-party tools through a real MCP client: listing, queries, the
//! catalog tools, EXPLAIN and inserts.

use crate::support::{self, fresh_db, spawn, structured, text_of};
use serde_json::{Value, json};

fn tool<'a>(tools: &'a Value, name: &str) -> &'a Value {
    tools
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["name"] == name))
        .unwrap_or_else(|| panic!("no tool {name} in {tools}"))
}

/// The names of a tools/list answer, sorted.
fn sorted_names(tools: &Value) -> Vec<&str> {
    let mut names: Vec<&str> = tools
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn lists_first_party_tools_with_schemas_and_annotations() {
    let db = fresh_db().await;
    // sql-write's tools are offered only with a write grant.
    let config = "[plugins.grants.sql-write]\nwrite = [\"public.*\"]\n";
    let server = spawn(&db, config, None).await;
    let tools = support::json(&server.list_tools().await);
    assert_eq!(
        sorted_names(&tools),
        [
            "delete_records",
            "describe_table",
            "explain_query",
            "insert_record",
            "list_tables",
            "query",
            "update_records"
        ]
    );

    let query = tool(&tools, "query");
    assert_eq!(query["inputSchema"]["type"], "object");
    assert_eq!(query["inputSchema"]["required"], json!(["sql"]));
    assert!(query["inputSchema"]["properties"]["params"].is_object());
    assert_eq!(query["outputSchema"]["type"], "object");
    assert!(query["description"].as_str().unwrap().contains("read-only"));
    assert_eq!(query["annotations"]["readOnlyHint"], true);
    assert_eq!(query["annotations"]["destructiveHint"], false);

    let insert = tool(&tools, "insert_record");
    assert_eq!(insert["annotations"]["readOnlyHint"], false);
    assert_eq!(insert["annotations"]["destructiveHint"], false);
    assert_eq!(insert["annotations"]["idempotentHint"], false);
    assert_eq!(insert["inputSchema"]["required"], json!(["table", "data"]));
    for name in ["update_records", "delete_records"] {
        let t = tool(&tools, name);
        assert_eq!(t["annotations"]["readOnlyHint"], false, "{name}");
        assert_eq!(t["annotations"]["destructiveHint"], true, "{name}");
        assert!(
            t["inputSchema"]["required"]
                .as_array()
                .unwrap()
                .contains(&json!("filter")),
            "{name}"
        );
    }
    for name in ["list_tables", "describe_table", "explain_query"] {
        assert_eq!(
            tool(&tools, name)["annotations"]["readOnlyHint"],
            true,
            "{name}"
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn query_returns_typed_rows_as_text_and_structured_content() {
    let db = fresh_db().await;
    let server = spawn(&db, "", None).await;
    let result = server
        .call(
            "query",
            json!({"sql": "SELECT book_id, title, price FROM books WHERE book_id = $1", "params": ["1"]}),
        )
        .await;
    let out = structured(&result);
    assert_eq!(
        out["columns"],
        json!([
            {"name": "book_id", "type": "int4"},
            {"name": "title", "type": "text"},
            {"name": "price", "type": "numeric"}
        ])
    );
    assert_eq!(
        out["rows"],
        json!([{"book_id": 1, "title": "Pride and Prejudice", "price": "12.50"}])
    );
    assert_eq!(out["row_count"], 1);
    assert_eq!(out["truncated"], false);
    // Clients that ignore structured content read the same JSON as text.
    let text: Value = serde_json::from_str(&text_of(&result)).unwrap();
    assert_eq!(text, out);
    server.shutdown().await;
}

#[tokio::test]
async fn query_rows_are_capped_by_the_grant() {
    let db = fresh_db().await;
    let config = "[plugins.grants.sql-read]\nread = [\"public.*\"]\ncatalog = true\nmax_rows = 5\ntimeout_ms = 3000\n";
    let server = spawn(&db, config, None).await;
    let out = structured(
        &server
            .call(
                "query",
                json!({"sql": "SELECT * FROM order_items ORDER BY order_id, line_no"}),
            )
            .await,
    );
    assert_eq!(out["row_count"], 5);
    assert_eq!(out["truncated"], true);
    assert_eq!(out["rows"][0]["order_id"], 1);
    let out = structured(
        &server
            .call(
                "query",
                json!({"sql": "SELECT * FROM authors WHERE author_id <= 5"}),
            )
            .await,
    );
    assert_eq!(out["row_count"], 5);
    assert_eq!(out["truncated"], false);
    // The server stops producing rows at the cap: 38^5 (79 million) rows would
    // not fit in the statement timeout, five do.
    let out = structured(
        &server
            .call(
                "query",
                json!({"sql": "SELECT a.order_id FROM order_items a, order_items b, order_items c, order_items d, order_items e"}),
            )
            .await,
    );
    assert_eq!(out["row_count"], 5, "{out}");
    assert_eq!(out["truncated"], true);
    server.shutdown().await;
}

#[tokio::test]
async fn list_tables_and_describe_table_show_the_live_catalog() {
    let db = fresh_db().await;
    let server = spawn(&db, "", None).await;
    let tables = structured(&server.call("list_tables", json!({})).await);
    let tables = tables["tables"].as_array().unwrap();
    let books = tables.iter().find(|t| t["name"] == "books").unwrap();
    assert_eq!(books["schema"], "public");
    assert_eq!(books["kind"], "table");
    assert_eq!(books["estimated_rows"], 20);
    assert_eq!(books["column_count"], 17);
    let view = tables
        .iter()
        .find(|t| t["name"] == "book_sales_summary")
        .unwrap();
    assert_eq!(view["kind"], "view");
    assert_eq!(tables.len(), 7, "{tables:?}");

    let none = structured(&server.call("list_tables", json!({"schema": "nope"})).await);
    assert_eq!(none["tables"], json!([]));

    let d = structured(
        &server
            .call("describe_table", json!({"table": "public.books"}))
            .await,
    );
    assert_eq!(d["name"], "books");
    assert_eq!(d["primary_key"], json!(["book_id"]));
    let price = d["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "price")
        .unwrap();
    assert_eq!(price["type"], "numeric(10,2)");
    assert_eq!(price["nullable"], false);
    let fk = &d["foreign_keys"][0];
    assert_eq!(fk["columns"], json!(["author_id"]));
    assert_eq!(fk["references_table"], "public.authors");
    assert_eq!(fk["references_columns"], json!(["author_id"]));
    assert!(d["indexes"].as_array().unwrap().iter().any(|i| {
        i["definition"]
            .as_str()
            .unwrap()
            .contains("USING gin (search)")
    }));
    assert!(
        d["constraints"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["kind"] == "unique")
    );

    let missing = server
        .call("describe_table", json!({"table": "no_such_table"}))
        .await;
    assert_eq!(missing.is_error, Some(true));
    assert!(
        text_of(&missing).contains("no_such_table"),
        "{}",
        text_of(&missing)
    );
    server.shutdown().await;
}

#[tokio::test]
async fn explain_query_returns_the_json_plan_without_running_it() {
    let db = fresh_db().await;
    let server = spawn(&db, "", None).await;
    let out = structured(
        &server
            .call(
                "explain_query",
                json!({"sql": "SELECT * FROM books JOIN authors USING (author_id) WHERE price > 10"}),
            )
            .await,
    );
    let plan = &out["plan"][0]["Plan"];
    assert!(plan["Node Type"].is_string(), "{out}");
    assert!(plan["Total Cost"].is_number(), "{out}");
    assert!(
        plan.get("Actual Rows").is_none(),
        "EXPLAIN must not run the query: {out}"
    );

    for sql in [
        "DELETE FROM books",
        "ANALYZE SELECT 1",
        "SELECT 1; DELETE FROM books",
        "EXPLAIN SELECT 1",
    ] {
        let r = server.call("explain_query", json!({ "sql": sql })).await;
        assert_eq!(r.is_error, Some(true), "{sql}: {}", text_of(&r));
    }
    server.shutdown().await;
}

#[tokio::test]
async fn insert_record_converts_values_and_returns_the_stored_row() {
    let db = fresh_db().await;
    let config = "[plugins.grants.sql-write]\nwrite = [\"public.books\", \"public.authors\"]\n";
    let server = spawn(&db, config, None).await;

    let author = structured(
        &server
            .call(
                "insert_record",
                json!({"table": "authors", "data": {"full_name": "Ursula K. Le Guin", "birth_year": 1929, "country_code": "US"}}),
            )
            .await,
    );
    assert_eq!(author["table"], "authors");
    assert_eq!(author["row"]["author_id"], 100);
    assert_eq!(author["row"]["death_year"], Value::Null);

    let book = server
        .call(
            "insert_record",
            json!({"table": "public.books", "data": {
                "isbn": "9780441478125",
                "title": "The Left Hand of Darkness",
                "author_id": 100,
                "first_published": "1969-03-01",
                "pages": 304,
                "price": "9.99",
                "stock_count": 3,
                "tags": ["science fiction", "classic"],
                "reading_time": "PT8H30M",
                "dimensions_mm": [178, 106, 20],
                "restocked_at": "2024-06-01T09:30:00",
                "cover_thumbnail": "\\x0102ff",
                "metadata": {"format": "paperback", "awards": ["Hugo", "Nebula"]}
            }}),
        )
        .await;
    let row = &structured(&book)["row"];
    assert_eq!(row["book_id"], 100, "{}", text_of(&book));
    assert_eq!(row["price"], "9.99");
    assert_eq!(row["tags"], json!(["science fiction", "classic"]));
    assert_eq!(row["reading_time"], "PT8H30M");
    assert_eq!(row["dimensions_mm"], json!([178, 106, 20]));
    assert_eq!(row["restocked_at"], "2024-06-01T09:30:00");
    assert_eq!(row["cover_thumbnail"], "AQL/");
    assert_eq!(
        row["metadata"],
        json!({"format": "paperback", "awards": ["Hugo", "Nebula"]})
    );
    assert_eq!(row["in_print"], true, "defaults are filled in");
    assert!(row["search"].as_str().unwrap().contains("'dark'"), "{row}");

    // The row is really there.
    let out = structured(
        &server
            .call(
                "query",
                json!({"sql": "SELECT title FROM books WHERE book_id = 100"}),
            )
            .await,
    );
    assert_eq!(out["rows"], json!([{"title": "The Left Hand of Darkness"}]));

    // Database checks still apply: a bad ISBN violates the domain's CHECK.
    let bad = server
        .call(
            "insert_record",
            json!({"table": "books", "data": {"isbn": "123", "title": "x", "author_id": 1, "price": 1}}),
        )
        .await;
    assert_eq!(bad.is_error, Some(true));
    assert!(text_of(&bad).contains("23514"), "{}", text_of(&bad));

    // Unknown and generated columns are refused before reaching the table.
    let unknown = server
        .call(
            "insert_record",
            json!({"table": "authors", "data": {"nope": 1}}),
        )
        .await;
    assert_eq!(unknown.is_error, Some(true));
    assert!(
        text_of(&unknown).contains("no column \"nope\""),
        "{}",
        text_of(&unknown)
    );
    let generated = server
        .call(
            "insert_record",
            json!({"table": "books", "data": {"search": "x"}}),
        )
        .await;
    assert!(
        text_of(&generated).contains("generated"),
        "{}",
        text_of(&generated)
    );
    server.shutdown().await;
}

#[tokio::test]
async fn concurrent_calls_each_get_their_own_instance_and_answer() {
    let db = fresh_db().await;
    let server = spawn(&db, "", None).await;
    let calls = (1..=24).map(|i| {
        let server = &server;
        async move {
            let out = structured(
                &server
                    .call(
                        "query",
                        json!({"sql": "SELECT book_id, title FROM books WHERE book_id = $1", "params": [i % 20 + 1]}),
                    )
                    .await,
            );
            (i % 20 + 1, out["rows"][0]["book_id"].clone())
        }
    });
    for (asked, got) in futures::future::join_all(calls).await {
        assert_eq!(got, json!(asked));
    }
    server.shutdown().await;
}

#[tokio::test]
async fn inserted_rows_of_types_without_a_json_form_come_back_as_text() {
    let db = fresh_db().await;
    {
        use sqlx::Connection as _;
        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
        sqlx::raw_sql(
            "CREATE TABLE bookings (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, \
             during tsrange NOT NULL, room inet)",
        )
        .execute(&mut conn)
        .await
        .unwrap();
    }
    let config = "[plugins.grants.sql-write]\nwrite = [\"public.bookings\"]\n";
    let server = spawn(&db, config, None).await;
    let r = server
        .call(
            "insert_record",
            json!({"table": "bookings", "data": {"during": "[2024-01-01 10:00,2024-01-01 12:00)", "room": "10.0.0.7"}}),
        )
        .await;
    let row = &structured(&r)["row"];
    assert_eq!(row["id"], 1, "{}", text_of(&r));
    assert_eq!(
        row["during"],
        "[\"2024-01-01 10:00:00\",\"2024-01-01 12:00:00\")"
    );
    assert_eq!(row["room"], "10.0.0.7");
    // An identity column that is GENERATED ALWAYS cannot be set.
    let r = server
        .call(
            "insert_record",
            json!({"table": "bookings", "data": {"id": 5, "during": "empty"}}),
        )
        .await;
    assert!(text_of(&r).contains("generated"), "{}", text_of(&r));
    server.shutdown().await;
}

#[tokio::test]
async fn describe_table_names_every_kind_of_constraint() {
    let db = fresh_db().await;
    {
        use sqlx::Connection as _;
        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
        sqlx::raw_sql(
            "CREATE TABLE venues (venue_id int PRIMARY KEY); \
             CREATE TABLE slots ( \
               slot_id int PRIMARY KEY, \
               venue_id int NOT NULL REFERENCES venues (venue_id), \
               code text UNIQUE, \
               seats int CHECK (seats > 0), \
               area box, \
               EXCLUDE USING gist (area WITH &&)); \
             CREATE FUNCTION slots_noop() RETURNS trigger LANGUAGE plpgsql \
               AS $$BEGIN RETURN NULL; END$$; \
             CREATE CONSTRAINT TRIGGER slots_audit AFTER INSERT ON slots \
               FOR EACH ROW EXECUTE FUNCTION slots_noop();",
        )
        .execute(&mut conn)
        .await
        .unwrap();
    }
    let server = spawn(&db, "", None).await;
    let d = structured(
        &server
            .call("describe_table", json!({"table": "slots"}))
            .await,
    );
    let constraints: Vec<(&str, &str, &str)> = d["constraints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap(),
                c["kind"].as_str().unwrap(),
                c["definition"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        constraints,
        [
            ("slots_seats_check", "check", "CHECK ((seats > 0))"),
            (
                "slots_venue_id_fkey",
                "foreign-key",
                "FOREIGN KEY (venue_id) REFERENCES venues(venue_id)"
            ),
            ("slots_pkey", "primary-key", "PRIMARY KEY (slot_id)"),
            ("slots_audit", "trigger", "TRIGGER"),
            ("slots_code_key", "unique", "UNIQUE (code)"),
            (
                "slots_area_excl",
                "exclusion",
                "EXCLUDE USING gist (area WITH &&)"
            ),
        ],
        "{d}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_grants_toolset_offers_only_the_tools_it_names() {
    let db = fresh_db().await;
    let config = "[plugins.grants.sql-read]\ntools = [\"query\", \"list_tables\"]\n";
    let server = spawn(&db, config, None).await;
    let tools = support::json(&server.list_tools().await);
    // sql-write offers nothing without a write grant.
    assert_eq!(sorted_names(&tools), ["list_tables", "query"]);
    let ok = server
        .call("query", json!({"sql": "SELECT 1 AS one"}))
        .await;
    assert_eq!(ok.is_error, Some(false), "{}", text_of(&ok));
    // A tool left out is not there to call.
    let left_out = server
        .try_call("describe_table", json!({"table": "film"}))
        .await;
    assert!(left_out.is_err(), "{left_out:?}");
    // Prompts are not tools: a toolset leaves them alone.
    assert!(!server.list_prompts().await.is_empty());
}

#[test]
fn a_toolset_naming_a_tool_the_plugin_lacks_stops_the_start() {
    let work = tempfile::tempdir().unwrap();
    std::fs::write(
        work.path().join("sluice.toml"),
        "[plugins.grants.sql-read]\ntools = [\"query\", \"drop_everything\"]\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["plugins", "check"])
        .current_dir(work.path())
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains(
            "[plugins.grants.sql-read] tools names drop_everything, which plugin sql-read \
             does not offer; its tools are query, list_tables, describe_table, explain_query"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn explain_analyze_runs_only_under_a_grant_that_says_so_and_never_writes() {
    let db = fresh_db().await;
    // A function that writes, which no denylist knows.
    support::run_sql(
        &db.url,
        "CREATE FUNCTION restock() RETURNS bigint LANGUAGE sql AS \
         'UPDATE books SET stock_count = stock_count + 1 RETURNING 1'",
    )
    .await;
    let explain =
        json!({"sql": "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) SELECT count(*) FROM books"});

    // Off unless granted, with the key that would allow it.
    let server = spawn(&db, "", None).await;
    let refused = server.call("query", explain.clone()).await;
    assert_eq!(refused.is_error, Some(true));
    let text = text_of(&refused);
    assert!(text.contains("explain-analyze"), "{text}");
    assert!(
        text.contains("analyze = true in [plugins.grants.sql-read]"),
        "{text}"
    );
    // Plain EXPLAIN needs no more than the read grant.
    let plain = server
        .call(
            "query",
            json!({"sql": "EXPLAIN SELECT count(*) FROM books"}),
        )
        .await;
    assert_eq!(plain.is_error, Some(false), "{}", text_of(&plain));
    server.shutdown().await;

    let server = spawn(&db, "[plugins.grants.sql-read]\nanalyze = true\n", None).await;
    let ran = server.call("query", explain).await;
    assert_eq!(ran.is_error, Some(false), "{}", text_of(&ran));
    let plan = structured(&ran)["rows"][0].to_string();
    assert!(plan.contains("Actual Total Time"), "{plan}");
    assert!(plan.contains("Shared Hit Blocks"), "{plan}");
    // Only queries: a write is refused before it runs…
    let write = server
        .call("query", json!({"sql": "EXPLAIN ANALYZE DELETE FROM books"}))
        .await;
    assert_eq!(write.is_error, Some(true));
    assert!(
        text_of(&write).contains("read-only-statement"),
        "{}",
        text_of(&write)
    );
    // …and a query that would change something fails in the READ ONLY
    // transaction, which is rolled back either way.
    let stock = json!({"sql": "SELECT sum(stock_count) AS n FROM books"});
    let before = structured(&server.call("query", stock.clone()).await)["rows"][0]["n"].clone();
    let bump = server
        .call("query", json!({"sql": "EXPLAIN ANALYZE SELECT restock()"}))
        .await;
    assert_eq!(bump.is_error, Some(true));
    assert!(
        text_of(&bump).contains("read-only transaction"),
        "{}",
        text_of(&bump)
    );
    let after = structured(&server.call("query", stock).await)["rows"][0]["n"].clone();
    assert_eq!(before, after);
}
