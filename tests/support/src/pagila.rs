//! The Pagila sample database, for the tests and the benchmark that want
//! realistic data, and a loader for plain `pg_dump` scripts.

use std::path::{Path, PathBuf};

use sqlx::{AssertSqlSafe, Connection as _, PgConnection};

use crate::db::{TestDb, connect, empty_db};

/// Where the Pagila sample database is: `SLUICE_PAGILA_DIR`, else
/// `shared/datasets/pagila` beside the checkout.
pub fn pagila_dir() -> Result<PathBuf, String> {
    let dir = match std::env::var_os("SLUICE_PAGILA_DIR") {
        Some(dir) => PathBuf::from(dir),
        // This crate is tests/support/ in the checkout.
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets/pagila"),
    };
    for file in ["pagila-schema.sql", "pagila-data.sql"] {
        if !dir.join(file).is_file() {
            return Err(format!(
                "{} not found (set SLUICE_PAGILA_DIR to the directory holding the Pagila dataset)",
                dir.join(file).display()
            ));
        }
    }
    Ok(dir)
}

/// A fresh database loaded with Pagila, or why there is none (the dataset
/// is not beside the checkout).
pub async fn pagila_db() -> Result<TestDb, String> {
    let dir = pagila_dir()?;
    let db = empty_db().await;
    let mut conn = connect(&db.url).await;
    for file in ["pagila-schema.sql", "pagila-data.sql"] {
        let text =
            std::fs::read_to_string(dir.join(file)).map_err(|e| format!("reading {file}: {e}"))?;
        load_dump(&mut conn, &text)
            .await
            .unwrap_or_else(|e| panic!("loading {file} into {}: {e}", db.name));
    }
    let _ = conn.close().await;
    Ok(db)
}

/// Loads a plain-format `pg_dump` script without psql: SQL runs as simple
/// queries, `COPY … FROM stdin` blocks go through the COPY protocol.
/// `OWNER TO` lines are skipped, so the dump's roles need not exist.
pub async fn load_dump(conn: &mut PgConnection, text: &str) -> Result<(), sqlx::Error> {
    let mut sql = String::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.starts_with("ALTER ") && line.contains(" OWNER TO ") {
            continue;
        }
        if line.starts_with("COPY ") && line.ends_with("FROM stdin;") {
            sqlx::raw_sql(AssertSqlSafe(std::mem::take(&mut sql)))
                .execute(&mut *conn)
                .await?;
            let mut data = String::new();
            for row in lines.by_ref().take_while(|l| *l != "\\.") {
                data.push_str(row);
                data.push('\n');
            }
            let mut copy = conn.copy_in_raw(line).await?;
            copy.send(data.as_bytes()).await?;
            copy.finish().await?;
            continue;
        }
        sql.push_str(line);
        sql.push('\n');
    }
    sqlx::raw_sql(AssertSqlSafe(sql))
        .execute(&mut *conn)
        .await?;
    Ok(())
}
