//! Values keep their meaning from PostgreSQL to the client's JSON, and
//! parameters of any type reach PostgreSQL as the type it expects.

use crate::support::{fresh_db, spawn, structured, text_of};
use serde_json::{Value, json};

async fn row(server: &crate::support::Server, sql: &str, params: Value) -> (Value, Value) {
    let result = server
        .call("query", json!({"sql": sql, "params": params}))
        .await;
    assert_ne!(result.is_error, Some(true), "{sql}: {}", text_of(&result));
    let out = structured(&result);
    (out["rows"][0].clone(), out["columns"].clone())
}

fn type_of(columns: &Value, name: &str) -> String {
    columns
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .map(|c| c["type"].as_str().unwrap().to_string())
        .unwrap_or_else(|| panic!("no column {name} in {columns}"))
}

#[tokio::test]
async fn sample_data_types_round_trip_exactly() {
    let db = fresh_db().await;
    let server = spawn(&db, "", None).await;

    let (book, columns) = row(
        &server,
        "SELECT price, restocked_at, first_published, tags, dimensions_mm, metadata, \
                cover_thumbnail, reading_time, search, isbn, in_print, pages \
         FROM books WHERE book_id = 1",
        json!([]),
    )
    .await;
    assert_eq!(book["price"], "12.50");
    assert_eq!(book["restocked_at"], "2024-05-09T15:45:00");
    assert_eq!(book["first_published"], "1813-01-28");
    assert_eq!(book["tags"], json!(["classic", "romance", "satire"]));
    assert_eq!(book["dimensions_mm"], json!([198, 129, 24]));
    assert_eq!(
        book["metadata"],
        json!({"format": "paperback", "series": null, "edition": 3, "language": "en", "publisher": "Penguin Classics"})
    );
    assert_eq!(book["cover_thumbnail"], "iVBORw0KGgo=");
    assert_eq!(book["reading_time"], "PT10H45M");
    let search = book["search"].as_str().unwrap();
    assert!(search.contains("'pride':1A"), "{search}");
    assert!(search.contains("'prejudic':3A"), "{search}");
    assert_eq!(book["isbn"], "9787835163834");
    assert_eq!(book["in_print"], true);
    assert_eq!(book["pages"], 432);
    assert_eq!(type_of(&columns, "tags"), "text[]");
    assert_eq!(type_of(&columns, "metadata"), "jsonb");
    assert_eq!(type_of(&columns, "search"), "tsvector");
    assert_eq!(type_of(&columns, "restocked_at"), "timestamp");

    let (customer, _) = row(
        &server,
        "SELECT public_id, joined_on FROM customers WHERE customer_id = 1",
        json!([]),
    )
    .await;
    assert_eq!(
        customer["public_id"],
        "99d3c3a9-f079-43b1-a8be-297cb9e2f88b"
    );
    assert_eq!(customer["joined_on"], "2021-03-14");

    let (order, columns) = row(
        &server,
        "SELECT status, placed_at, shipping_fee FROM orders WHERE order_id = 1",
        json!([]),
    )
    .await;
    assert_eq!(order["status"], "shipped");
    assert_eq!(type_of(&columns, "status"), "order_status");
    assert_eq!(order["placed_at"], "2024-01-10T11:40:59Z");
    assert_eq!(order["shipping_fee"], "3.95");
    server.shutdown().await;
}

#[tokio::test]
async fn literal_values_of_every_kind_keep_their_meaning() {
    let db = fresh_db().await;
    let server = spawn(&db, "", None).await;
    let (r, columns) = row(
        &server,
        "SELECT 1.50::numeric AS n, 123456789012345678901234567890.123456789::numeric AS big, \
                'NaN'::numeric AS nan, -0.000001::numeric AS tiny, 9007199254740993::int8 AS i8, \
                3.5::float8 AS f, 'Infinity'::float8 AS finf, true AS b, NULL::int AS nul, \
                '2024-02-29'::date AS d, '13:45:00.25'::time AS t, \
                '2024-02-29 23:59:59.123456+02'::timestamptz AS tz, \
                '1 year 2 months 3 days 04:05:06.5'::interval AS iv, '-1 day'::interval AS neg, \
                ARRAY[[1,2],[3,4]] AS m, ARRAY['a', NULL, 'b\"c'] AS ta, '{}'::int[] AS empty, \
                '{\"a\": [1, 2.5, \"x\"]}'::json AS j, '\\x00ff'::bytea AS bin, \
                'a1b2c3d4-0000-4000-8000-0000000000ff'::uuid AS u, \
                '192.168.0.1/24'::inet AS ip, int4range(1, 5) AS r, \
                'fat cats'::tsvector AS tv, 'héllo ☃'::text AS uni",
        json!([]),
    )
    .await;
    assert_eq!(r["n"], "1.50");
    assert_eq!(r["big"], "123456789012345678901234567890.123456789");
    assert_eq!(r["nan"], "NaN");
    assert_eq!(r["tiny"], "-0.000001");
    assert_eq!(r["i8"], json!(9007199254740993i64));
    assert_eq!(r["f"], 3.5);
    assert_eq!(r["finf"], "Infinity");
    assert_eq!(r["b"], true);
    assert_eq!(r["nul"], Value::Null);
    assert_eq!(r["d"], "2024-02-29");
    assert_eq!(r["t"], "13:45:00.25");
    assert_eq!(r["tz"], "2024-02-29T21:59:59.123456Z");
    assert_eq!(r["iv"], "P1Y2M3DT4H5M6.5S");
    assert_eq!(r["neg"], "P-1D");
    assert_eq!(r["m"], json!([[1, 2], [3, 4]]));
    assert_eq!(r["ta"], json!(["a", null, "b\"c"]));
    assert_eq!(r["empty"], json!([]));
    assert_eq!(r["j"], json!({"a": [1, 2.5, "x"]}));
    assert_eq!(r["bin"], "AP8=");
    assert_eq!(r["u"], "a1b2c3d4-0000-4000-8000-0000000000ff");
    assert_eq!(r["ip"], "192.168.0.1/24");
    // Types without a binary decoder arrive in PostgreSQL's text form.
    assert_eq!(r["r"], "[1,5)");
    assert_eq!(r["tv"], "'cats' 'fat'");
    assert_eq!(r["uni"], "héllo ☃");
    assert_eq!(type_of(&columns, "m"), "int4[]");
    assert_eq!(type_of(&columns, "r"), "int4range");
    server.shutdown().await;
}

#[tokio::test]
async fn parameters_are_converted_to_the_inferred_types() {
    let db = fresh_db().await;
    let server = spawn(&db, "", None).await;
    let count = |sql: &'static str, params: Value| {
        let server = &server;
        async move {
            let (r, _) = row(server, sql, params).await;
            r["n"].clone()
        }
    };
    // Strings for integers, enums, timestamps, uuids, numerics, dates.
    assert_eq!(count("SELECT $1::int + 1 AS n", json!(["41"])).await, 42);
    assert_eq!(count("SELECT $1 + 1 AS n", json!([41])).await, 42);
    assert_eq!(
        count(
            "SELECT count(*) AS n FROM orders WHERE status = $1",
            json!(["shipped"])
        )
        .await,
        4
    );
    assert_eq!(
        count(
            "SELECT count(*) AS n FROM orders WHERE placed_at >= $1 AND placed_at < $2",
            json!(["2024-01-10T00:00:00Z", "2024-01-11T00:00:00+00:00"])
        )
        .await,
        1
    );
    assert_eq!(
        count(
            "SELECT count(*) AS n FROM customers WHERE public_id = $1",
            json!(["99d3c3a9-f079-43b1-a8be-297cb9e2f88b"])
        )
        .await,
        1
    );
    assert_eq!(
        count(
            "SELECT count(*) AS n FROM books WHERE price = $1",
            json!(["12.50"])
        )
        .await,
        1
    );
    assert_eq!(
        count(
            "SELECT count(*) AS n FROM books WHERE price = $1",
            json!([12.5])
        )
        .await,
        1
    );
    assert_eq!(
        count(
            "SELECT count(*) AS n FROM books WHERE first_published < $1",
            json!(["1800-01-01"])
        )
        .await,
        0
    );
    assert_eq!(
        count(
            "SELECT count(*) AS n FROM books WHERE in_print = $1",
            json!([false])
        )
        .await,
        1
    );
    // Arrays, ranges and intervals go through PostgreSQL's own input functions.
    assert_eq!(
        count(
            "SELECT count(*) AS n FROM books WHERE tags @> $1",
            json!([["classic"]])
        )
        .await,
        count(
            "SELECT count(*) AS n FROM books WHERE 'classic' = ANY(tags)",
            json!([])
        )
        .await
    );
    assert_eq!(
        count(
            "SELECT count(*) AS n FROM books WHERE reading_time > $1",
            json!(["PT15H"])
        )
        .await,
        count(
            "SELECT count(*) AS n FROM books WHERE reading_time > interval '15 hours'",
            json!([])
        )
        .await
    );
    assert_eq!(
        count("SELECT $1::int4range @> 3 AS n", json!(["[1,5)"])).await,
        true
    );
    assert_eq!(
        count("SELECT $1::text IS NULL AS n", json!([null])).await,
        true
    );

    // A value that cannot be the inferred type, and a wrong parameter count,
    // are tool errors the model can fix.
    let bad = server
        .call(
            "query",
            json!({"sql": "SELECT * FROM books WHERE book_id = $1", "params": ["abc"]}),
        )
        .await;
    assert_eq!(bad.is_error, Some(true));
    assert!(text_of(&bad).contains("$1"), "{}", text_of(&bad));
    let bad = server
        .call(
            "query",
            json!({"sql": "SELECT * FROM books WHERE book_id = $1", "params": []}),
        )
        .await;
    assert_eq!(bad.is_error, Some(true));
    assert!(text_of(&bad).contains("parameter"), "{}", text_of(&bad));
    server.shutdown().await;
}
