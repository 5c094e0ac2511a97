//! Fuzzing of every host import by a hostile plugin (`tests/plugins/fuzzer`).
//!
//! The `test-fuzzer` plugin's `fuzz` tool makes `calls` host calls generated
//! from a seed: arbitrary strings (NUL, Unicode, SQL fragments, very long),
//! scalars of every case, arrays of odd, deep, huge and inconsistent shapes,
//! random relation and column names, long pair and parameter lists, random
//! `max-rows`, nested JSON text, to `query`, `insert`, `update`, `delete`,
//! `list-relations`, `describe-relation`, `log` and `config.get`. For every
//! seed the tool call must return a summary, the server must stay up and
//! answer the next query, and its log must show no panic.
//!
//! Every seed in `tests/fuzz/host-imports/seeds.txt` runs, plus a few fresh
//! random ones printed in the test output. To run longer or reproduce:
//!
//! - `SLUICE_FUZZ_SEEDS=200`: fresh random seeds to run (default 3);
//! - `SLUICE_FUZZ_CALLS=2000`: host calls per seed (default 150);
//! - `SLUICE_FUZZ_SEED=1234`: run only this seed (the corpus is skipped).
//!
//! e.g. `SLUICE_FUZZ_SEEDS=500 cargo test -p sluice --test e2e host_fuzz -- --nocapture`.
//! The server's log goes to a file named in the output; it is kept when the
//! test fails, and its last `fuzz seed S call N` line is the call that was
//! being made.

use crate::support::{empty_db, plugin_dir_with, spawn_at, structured, text_of};
use serde_json::json;
use sqlx::Connection as _;
use std::hash::{BuildHasher as _, Hasher as _};
use std::path::PathBuf;

/// The corpus: seeds that found problems, and seeds that cover a lot.
const SEEDS: &str = include_str!("../fuzz/host-imports/seeds.txt");

const SCHEMA: &str = r#"
CREATE TABLE fuzz_items (
    id serial PRIMARY KEY,
    name text NOT NULL,
    score numeric(10, 2),
    tags text[],
    grid int[],
    doc jsonb,
    docs json[],
    created timestamptz DEFAULT now(),
    day date,
    span interval,
    uid uuid,
    flag boolean,
    blob bytea,
    ratio float8,
    small int2
);
INSERT INTO fuzz_items (name, score, tags, grid, doc, docs, day, span, uid, flag, blob, ratio, small)
VALUES ('a', 1.5, '{x,y}', '{{1,2},{3,4}}', '{"a": 1}', ARRAY['[1]'::json], '2024-05-01',
        '1 day', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', true, '\x00ff', 0.5, 7),
       ('b', NULL, '{}', NULL, '[1, [2]]', NULL, NULL, NULL, NULL, false, NULL, 'NaN', -1);
CREATE TABLE fuzz_scratch (
    id serial PRIMARY KEY,
    name text UNIQUE,
    score numeric(10, 2),
    total numeric GENERATED ALWAYS AS (score * 2) STORED,
    tags text[],
    grid int[],
    doc jsonb,
    docs json[],
    created timestamptz DEFAULT now(),
    day date,
    span interval,
    uid uuid,
    flag boolean,
    blob bytea,
    ratio float8,
    small int2 CHECK (small > -100)
);
INSERT INTO fuzz_scratch (name, score) SELECT 'row' || i, i FROM generate_series(1, 20) AS i;
"#;

const CONFIG: &str = r#"
[plugins.grants.test-fuzzer]
read = ["public.fuzz_items", "public.fuzz_scratch"]
write = ["public.fuzz_scratch"]
catalog = true
max_host_calls = 1000000
timeout_ms = 20000
memory_mb = 128

[plugins.config.test-fuzzer]
greeting = "hello"
"#;

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

/// The seeds of the corpus file: one per line, `#` starts a comment.
fn corpus() -> Vec<u64> {
    SEEDS
        .lines()
        .map(|line| line.split('#').next().unwrap_or("").trim())
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse()
                .unwrap_or_else(|_| panic!("seeds.txt: {s:?} is not a seed"))
        })
        .collect()
}

fn random_seed() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0);
    h.finish()
}

/// Removes the log file unless the test is failing.
struct Log(PathBuf);

impl Drop for Log {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("host fuzz: the server's log is in {}", self.0.display());
        } else {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

#[tokio::test]
async fn every_host_import_survives_fuzzing() {
    let calls = env_number("SLUICE_FUZZ_CALLS", 150);
    let seeds: Vec<(u64, &str)> = match std::env::var("SLUICE_FUZZ_SEED") {
        Ok(seed) => vec![(
            seed.trim().parse().expect("SLUICE_FUZZ_SEED is a number"),
            "given",
        )],
        Err(_) => {
            let fresh = env_number("SLUICE_FUZZ_SEEDS", 3);
            let mut seeds: Vec<(u64, &str)> = corpus().into_iter().map(|s| (s, "corpus")).collect();
            assert!(!seeds.is_empty(), "seeds.txt holds no seeds");
            for _ in 0..fresh {
                let seed = random_seed();
                eprintln!("host fuzz: fresh seed {seed} (rerun with SLUICE_FUZZ_SEED={seed})");
                seeds.push((seed, "fresh"));
            }
            seeds
        }
    };

    let db = empty_db().await;
    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    sqlx::raw_sql(SCHEMA).execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();

    let log =
        Log(std::env::temp_dir().join(format!("sluice-host-fuzz-{}.log", std::process::id())));
    let log_file = std::fs::File::create(&log.0).unwrap();
    let dir = plugin_dir_with(&["test-fuzzer"]);
    let server = spawn_at(&db.url, CONFIG, Some(dir.path()), log_file.into()).await;

    for (seed, origin) in seeds {
        let what = format!("seed {seed} ({origin}, {calls} calls)");
        let r = server
            .try_call(
                "fuzz",
                json!({"seed": seed, "calls": calls, "verbose": true}),
            )
            .await
            .unwrap_or_else(|e| panic!("{what}: the server failed: {e}"));
        assert_ne!(r.is_error, Some(true), "{what}: {}", text_of(&r));
        let summary = structured(&r);
        let made: u64 = summary["imports"]
            .as_object()
            .unwrap_or_else(|| panic!("{what}: no summary: {summary}"))
            .values()
            .map(|s| s["calls"].as_u64().unwrap_or(0))
            .sum();
        assert_eq!(made, calls, "{what}: {summary}");
        eprintln!("host fuzz: {what}: {}", summary["imports"]);

        let alive = server
            .try_call("query", json!({"sql": "SELECT 1 AS alive"}))
            .await
            .unwrap_or_else(|e| panic!("{what}: the server failed after the run: {e}"));
        assert_eq!(structured(&alive)["rows"], json!([{"alive": 1}]), "{what}");
    }
    server.shutdown().await;

    let text = String::from_utf8_lossy(&std::fs::read(&log.0).unwrap()).into_owned();
    // The host's own panics; a plugin's (logged as its output) are traps.
    let panics: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("panicked at") && !l.contains("sluice::plugin_"))
        .collect();
    assert!(panics.is_empty(), "the server panicked: {panics:#?}");
}
