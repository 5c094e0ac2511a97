//! Declared tools: an operator saves a `NAME.tools.toml` file (or writes
//! `[plugins.tools.NAME]`) and a model gets SQL tools, with no compiler.
//! Read, write and enum-parameter tools called through MCP on Pagila; a
//! statement outside the grant or with a wrong type refused at load with
//! what to change; a tools file edited while serving.

use crate::support::{TestDb, pagila_db, spawn, spawn_at, structured, text_of};
use serde_json::{Value, json};
use sqlx::{Connection as _, PgConnection};
use std::path::Path;
use std::process::{Command, Stdio};

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn scalar_i64(db: &TestDb, sql: &str) -> i64 {
    let mut conn = PgConnection::connect(&db.url).await.unwrap();
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

const FILMS: &str = r#"
description = "Film catalogue tools"

[[tools]]
name = "films_by_rating"
title = "Films by rating"
description = "Films of one MPAA rating, longest first."
sql = """
SELECT film_id, title, rating::text AS rating, length
FROM film WHERE rating = $1
ORDER BY length DESC, film_id LIMIT $2
"""

[[tools.params]]
name = "rating"
type = "mpaa_rating"
description = "The MPAA rating"
enum = ["G", "PG", "PG-13", "R", "NC-17"]

[[tools.params]]
name = "limit"
type = "integer"
description = "How many films"
default = 5

[[tools]]
name = "rename_category"
kind = "write"
description = "Renames one category."
sql = "UPDATE category SET name = $2 WHERE category_id = $1 RETURNING category_id, name"
max_rows = 1

[[tools.params]]
name = "category_id"
type = "integer"

[[tools.params]]
name = "name"
type = "text"

[[tools]]
name = "reprice_rating"
kind = "write"
description = "Sets the rental rate of every film of one rating."
sql = "UPDATE film SET rental_rate = $2 WHERE rating = $1"
max_rows = 10

[[tools.params]]
name = "rating"
type = "mpaa_rating"

[[tools.params]]
name = "rate"
type = "numeric"

[[tools]]
name = "add_actor"
kind = "write"
description = "Adds an actor."
sql = "INSERT INTO actor (first_name, last_name) VALUES ($1, $2) RETURNING actor_id"

[[tools.params]]
name = "first_name"
type = "text"

[[tools.params]]
name = "last_name"
type = "text"

[[tools]]
name = "remove_actor"
kind = "write"
description = "Removes an actor who has no films."
sql = "DELETE FROM actor WHERE actor_id = $1 AND NOT EXISTS (SELECT 1 FROM film_actor fa WHERE fa.actor_id = $1)"
max_rows = 1

[[tools.params]]
name = "actor_id"
type = "integer"

[[tools]]
name = "pick"
description = "One key of a JSON document."
sql = "SELECT $1::jsonb -> $2::text AS v"

[[tools.params]]
name = "doc"
type = "jsonb"

[[tools.params]]
name = "key"
type = "text"
"#;

const GRANT: &str = "[plugins.grants.films]\n\
                     read = [\"public.film\", \"public.category\", \"public.film_actor\"]\n\
                     write = [\"public.category\", \"public.film\", \"public.actor\"]\n";

async fn pagila_or_skip(test: &str) -> Option<TestDb> {
    match pagila_db().await {
        Ok(db) => Some(db),
        Err(why) => {
            eprintln!("SKIPPED {test}: {why}");
            None
        }
    }
}

fn tool<'a>(tools: &'a Value, name: &str) -> &'a Value {
    tools
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["name"] == name))
        .unwrap_or_else(|| panic!("no tool {name} in {tools}"))
}

fn tools_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

#[tokio::test]
async fn declared_read_write_and_enum_tools_are_called_through_mcp() {
    let Some(db) = pagila_or_skip("declared tools").await else {
        return;
    };
    let dir = tools_dir(&[("films.tools.toml", FILMS)]);
    let server = spawn(&db, GRANT, Some(dir.path())).await;
    let tools = crate::support::json(&server.list_tools().await);

    // The input schema comes from the parameters; annotations from the kind.
    let by_rating = tool(&tools, "films_by_rating");
    assert_eq!(by_rating["title"], "Films by rating");
    let schema = &by_rating["inputSchema"];
    assert_eq!(schema["required"], json!(["rating"]), "{schema}");
    assert_eq!(
        schema["properties"]["rating"]["enum"],
        json!(["G", "PG", "PG-13", "R", "NC-17"])
    );
    assert_eq!(schema["properties"]["rating"]["type"], "string");
    assert_eq!(schema["properties"]["limit"]["type"], "integer");
    assert_eq!(schema["properties"]["limit"]["default"], 5);
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(by_rating["annotations"]["readOnlyHint"], true);
    let rename = tool(&tools, "rename_category");
    assert_eq!(rename["annotations"]["readOnlyHint"], false);
    assert_eq!(rename["annotations"]["destructiveHint"], true);
    assert!(rename["outputSchema"]["properties"]["affected"].is_object());
    assert_eq!(
        tool(&tools, "add_actor")["annotations"]["destructiveHint"],
        false
    );

    // A read, with the enum parameter and the default.
    let r = server
        .call("films_by_rating", json!({"rating": "PG-13"}))
        .await;
    let out = structured(&r);
    assert_eq!(out["row_count"], 5, "{out}");
    assert!(
        out["rows"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["rating"] == "PG-13")
    );
    assert_eq!(out["columns"][1], json!({"name": "title", "type": "text"}));
    let r = server
        .call("films_by_rating", json!({"rating": "R", "limit": 2}))
        .await;
    assert_eq!(structured(&r)["row_count"], 2);

    // A value outside the enum, an unknown argument, a missing one.
    for (args, expected) in [
        (json!({"rating": "XXX"}), "must be one of"),
        (
            json!({"rating": "G", "order": "title"}),
            "no argument \"order\"",
        ),
        (json!({}), "argument \"rating\" is required"),
        (json!({"rating": "G", "limit": "many"}), "invalid input"),
    ] {
        let r = server.call("films_by_rating", args.clone()).await;
        assert_eq!(r.is_error, Some(true), "{args}");
        assert!(text_of(&r).contains(expected), "{args}: {}", text_of(&r));
    }

    // A JSON parameter takes the document itself.
    let r = server
        .call("pick", json!({"doc": {"k": [1, "two"]}, "key": "k"}))
        .await;
    assert_eq!(structured(&r)["rows"][0]["v"], json!([1, "two"]));
    assert_eq!(
        tool(&tools, "pick")["inputSchema"]["properties"]["doc"]["description"],
        "PostgreSQL type jsonb"
    );

    // A write with RETURNING, within its cap.
    let r = server
        .call(
            "rename_category",
            json!({"category_id": 1, "name": "Deeds"}),
        )
        .await;
    let out = structured(&r);
    assert_eq!(out["affected"], 1, "{out}");
    assert_eq!(out["rows"][0]["name"], "Deeds");
    assert_eq!(
        scalar_i64(
            &db,
            "SELECT count(*) FROM category WHERE name = 'Deeds' AND category_id = 1"
        )
        .await,
        1
    );

    // A write over its cap is rolled back whole.
    let before = scalar_i64(&db, "SELECT count(*) FROM film WHERE rental_rate = 0.01").await;
    let r = server
        .call("reprice_rating", json!({"rating": "G", "rate": 0.01}))
        .await;
    assert_eq!(r.is_error, Some(true));
    let text = text_of(&r);
    assert!(text.contains("max_write_rows"), "{text}");
    assert!(text.contains("nothing changed"), "{text}");
    assert_eq!(
        scalar_i64(&db, "SELECT count(*) FROM film WHERE rental_rate = 0.01").await,
        before
    );

    // An insert, and a delete without RETURNING that says what it did.
    let out = structured(
        &server
            .call(
                "add_actor",
                json!({"first_name": "Ada", "last_name": "Lovelace"}),
            )
            .await,
    );
    assert_eq!(out["affected"], 1, "{out}");
    let id = out["rows"][0]["actor_id"].as_i64().unwrap();
    let out = structured(&server.call("remove_actor", json!({"actor_id": id})).await);
    assert_eq!(out["affected"], 1, "{out}");
    assert_eq!(out["columns"], json!([]));
    assert_eq!(
        scalar_i64(
            &db,
            &format!("SELECT count(*) FROM actor WHERE actor_id = {id}")
        )
        .await,
        0
    );
    server.shutdown().await;
}

/// `sluice plugins check` with the database at `url`; (exit code, stdout).
fn check(url: &str, config: &str, dir: &Path) -> (i32, String) {
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("sluice.toml"), config).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["plugins", "check", "--database-url", url, "--plugins"])
        .arg(dir)
        .current_dir(work.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test]
async fn a_declared_tool_outside_its_grant_or_with_a_wrong_type_is_refused_at_load() {
    let Some(db) = pagila_or_skip("declared tools at load").await else {
        return;
    };
    let staff = "[[tools]]\nname = \"staff_emails\"\ndescription = \"Staff e-mail addresses.\"\n\
                 sql = \"SELECT email FROM staff\"\n";
    let typed = "[[tools]]\nname = \"film\"\ndescription = \"One film.\"\n\
                 sql = \"SELECT title FROM film WHERE film_id = $1\"\n\
                 [[tools.params]]\nname = \"id\"\ntype = \"text\"\n";
    let defaulted = "[[tools]]\nname = \"longer_than\"\ndescription = \"Films longer than.\"\n\
                     sql = \"SELECT title FROM film WHERE length > $1\"\n\
                     [[tools.params]]\nname = \"minutes\"\ntype = \"smallint\"\ndefault = \"long\"\n";
    // Array defaults are read by PostgreSQL too, element by element.
    let picks = |default: &str| {
        format!(
            "[[tools]]\nname = \"picks\"\ndescription = \"Some films.\"\n\
             sql = \"SELECT title FROM film WHERE film_id = ANY($1)\"\n\
             [[tools.params]]\nname = \"ids\"\ntype = \"integer[]\"\ndefault = {default}\n"
        )
    };
    let dir = tools_dir(&[
        ("films.tools.toml", FILMS),
        ("people.tools.toml", staff),
        ("lookup.tools.toml", typed),
        ("lengths.tools.toml", defaulted),
        ("picks.tools.toml", &picks("[1, 2]")),
        ("wrong-picks.tools.toml", &picks("[1, \"two\"]")),
    ]);
    let config = format!(
        "{GRANT}\n[plugins.grants.people]\nread = [\"public.actor\"]\n\n\
         [plugins.grants.lookup]\nread = [\"public.film\"]\n\n\
         [plugins.grants.lengths]\nread = [\"public.film\"]\n\n\
         [plugins.grants.picks]\nread = [\"public.film\"]\n\n\
         [plugins.grants.wrong-picks]\nread = [\"public.film\"]\n\n\
         [plugins.config.picks]\n\"sluice.declared.tool.picks\" = \"{{}}\"\n"
    );
    let (code, out) = check(&db.url, &config, dir.path());
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains(
            "declared tools of plugin people: tool staff_emails: denied (read-grant): relation \
             public.staff is not in plugin people's read grant"
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "declared tools of plugin lookup: tool film: invalid input: parameter $1 is declared \
             as text, and the statement uses it as integer"
        ),
        "{out}"
    );

    assert!(
        out.contains(
            "declared tools of plugin lengths: tool longer_than: invalid input: parameter $1 \
             (smallint): a default or enum value is not one: invalid input syntax for type \
             smallint: \"long\""
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "declared tools of plugin wrong-picks: tool picks: invalid input: parameter $1 \
             (integer[]): a default or enum value is not one: invalid input syntax for type \
             integer: \"two\""
        ),
        "{out}"
    );
    // The good array default passed the check; no config may then stand
    // in for the declaration that was checked.
    assert!(!out.contains("declared tools of plugin picks:"), "{out}");
    assert!(
        out.contains(
            "[plugins.config.picks] sluice.declared.tool.picks is reserved: sluice.declared.* \
             holds the declared tools sluice checked"
        ),
        "{out}"
    );
    // A tools file is the operator's, and a grant's digest binds to it.
    assert!(
        out.contains("declared tools (the operator's, served by the built-in sql-tools)"),
        "{out}"
    );
    let digest = format!("sha256:{}", sha256_hex(FILMS.as_bytes()));
    assert!(out.contains(&digest), "{out}");
    let bound = format!("{GRANT}digest = \"sha256:{}\"\n", "0".repeat(64));
    let films_only = tools_dir(&[("films.tools.toml", FILMS)]);
    let (_, out) = check(&db.url, &bound, films_only.path());
    assert!(out.contains("is bound to digest sha256:000"), "{out}");
    let bound = format!("{GRANT}digest = \"{digest}\"\n");
    let (code, out) = check(&db.url, &bound, films_only.path());
    assert_eq!(code, 0, "{out}");

    // Serving goes on with the files that passed; the others offer nothing.
    let log = tempfile::NamedTempFile::new().unwrap();
    let server = spawn_at(
        &db.url,
        &config,
        Some(dir.path()),
        Stdio::from(log.reopen().unwrap()),
    )
    .await;
    let names: Vec<String> = server
        .list_tools()
        .await
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    assert!(names.contains(&"films_by_rating".to_string()), "{names:?}");
    assert!(!names.contains(&"staff_emails".to_string()), "{names:?}");
    assert!(!names.contains(&"film".to_string()), "{names:?}");
    server.shutdown().await;
    let text = std::fs::read_to_string(log.path()).unwrap();
    assert!(
        text.contains("plugin not loaded: declared tools of plugin people"),
        "{text}"
    );

    // Inline in the config, the same mistake stops the start.
    let inline = "[plugins.tools.people]\ndescription = \"People\"\n\n[[plugins.tools.people.tools]]\n\
         name = \"staff_emails\"\ndescription = \"Staff e-mails.\"\nsql = \"SELECT email FROM staff\"\n\n\
         [plugins.grants.people]\nread = [\"public.actor\"]\n";
    let empty = tempfile::tempdir().unwrap();
    let (code, out) = check(&db.url, inline, empty.path());
    assert_ne!(code, 0, "{out}");
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("sluice.toml"), inline).unwrap();
    let serve = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["serve", "--database-url", &db.url])
        .current_dir(work.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!serve.status.success());
    let log = String::from_utf8_lossy(&serve.stderr);
    assert!(
        log.contains("[plugins.tools.people]: declared tools of plugin people: tool staff_emails"),
        "{log}"
    );
}

#[tokio::test]
async fn a_tools_file_is_reloaded_while_serving() {
    let Some(db) = pagila_or_skip("declared tools reload").await else {
        return;
    };
    let one = "[[tools]]\nname = \"film_count\"\ndescription = \"How many films.\"\n\
               sql = \"SELECT count(*) AS n FROM film\"\n";
    let two = format!(
        "{one}\n[[tools]]\nname = \"longest_film\"\ndescription = \"The longest film.\"\n\
         sql = \"SELECT title FROM film ORDER BY length DESC, film_id LIMIT 1\"\n"
    );
    let dir = tools_dir(&[("catalog.tools.toml", one)]);
    let config = "[plugins]\nexpected = [\"other\"]\n\n\
                  [plugins.grants.catalog]\nread = [\"public.film\"]\n\n\
                  [plugins.grants.other]\nread = [\"public.film\"]\n";
    let server = spawn(&db, config, Some(dir.path())).await;
    let out = structured(&server.call("film_count", json!({})).await);
    assert_eq!(out["rows"][0]["n"], 1000, "{out}");

    // Edited: the client hears of it and the new tool answers.
    let seen = server.tool_list_changes();
    let tmp = dir.path().join(".catalog.part");
    std::fs::write(&tmp, &two).unwrap();
    std::fs::rename(&tmp, dir.path().join("catalog.tools.toml")).unwrap();
    let seen = server.wait_tool_list_changed(seen).await;
    let out = structured(&server.call("longest_film", json!({})).await);
    assert_eq!(out["row_count"], 1, "{out}");

    // Broken: the previous version keeps serving. (The other file arriving
    // in the same change tells us the rescan ran.)
    std::fs::write(dir.path().join("catalog.tools.toml"), "[[tools]]\nname = ").unwrap();
    std::fs::write(
        dir.path().join("other.tools.toml"),
        one.replace("film_count", "film_total"),
    )
    .unwrap();
    let seen = server.wait_tool_list_changed(seen).await;
    let names: Vec<String> = server
        .list_tools()
        .await
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    assert!(names.contains(&"longest_film".to_string()), "{names:?}");
    assert!(names.contains(&"film_total".to_string()), "{names:?}");

    // Removed: its tools are gone.
    std::fs::remove_file(dir.path().join("catalog.tools.toml")).unwrap();
    server.wait_tool_list_changed(seen).await;
    let gone = server.try_call("film_count", json!({})).await;
    assert!(gone.is_err(), "{gone:?}");
    server.shutdown().await;
}

/// The TOML code blocks of README.md, in order.
fn readme_toml_blocks() -> Vec<String> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    let mut blocks = Vec::new();
    let mut lines = readme.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "```toml" {
            let body: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
            blocks.push(body.join("\n"));
        }
    }
    blocks
}

#[tokio::test]
async fn the_readme_tools_file_works_as_written() {
    let Some(db) = pagila_or_skip("the README's tools file").await else {
        return;
    };
    let blocks = readme_toml_blocks();
    let at = blocks
        .iter()
        .position(|b| b.starts_with("# films.tools.toml"))
        .expect("README.md shows a films.tools.toml");
    let (file, grant) = (&blocks[at], &blocks[at + 1]);
    assert!(grant.starts_with("[plugins.grants.films]"), "{grant}");
    let dir = tools_dir(&[("films.tools.toml", file)]);
    let server = spawn(&db, grant, Some(dir.path())).await;
    let out = structured(&server.call("films_by_rating", json!({"rating": "G"})).await);
    assert_eq!(out["row_count"], 10, "{out}");
    let out = structured(
        &server
            .call(
                "rename_category",
                json!({"category_id": 2, "name": "Cartoons"}),
            )
            .await,
    );
    assert_eq!(out["affected"], 1, "{out}");
    server.shutdown().await;
}
