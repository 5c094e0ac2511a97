//! Throwaway databases: one of its own for each test, created on the server
//! that `SLUICE_TEST_DATABASE_URL` names (an admin URL whose role may
//! `CREATE DATABASE`), otherwise on one private cluster shared by every test
//! of the binary (see `cluster`).

use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::{AssertSqlSafe, Connection as _, PgConnection};

use crate::cluster::{ClusterLease, cluster_url};

/// Names an admin URL to create test databases with, instead of a private cluster.
pub const DATABASE_URL_ENV: &str = "SLUICE_TEST_DATABASE_URL";

/// A database of its own for one test, loaded with the demo schema and
/// dropped (best effort) when this is dropped.
pub struct TestDb {
    /// Where the server under test should connect.
    pub url: String,
    /// The database's name.
    pub name: String,
    /// Where to connect to create and drop databases.
    admin_url: String,
    // Declared last so the database is dropped before the cluster may stop.
    _lease: ClusterLease,
}

/// Creates a fresh database loaded with [`sluice::demo::SCHEMA_SQL`].
///
/// Panics when no database can be had: every e2e test needs one.
pub async fn fresh_db() -> TestDb {
    let db = empty_db().await;
    let mut conn = connect(&db.url).await;
    sqlx::raw_sql(sluice::demo::SCHEMA_SQL)
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("loading the demo schema into {}: {e}", db.name));
    let _ = conn.close().await;
    db
}

/// Runs `sql` (any number of statements, as one simple query) on `url` as
/// the test's admin: setup a test needs beyond the demo schema (roles,
/// policies, DDL). Panics with the statement on an error.
pub async fn run_sql(url: &str, sql: &str) {
    let mut conn = connect(url).await;
    sqlx::raw_sql(AssertSqlSafe(sql.to_string()))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let _ = conn.close().await;
}

/// Creates a fresh, empty database.
pub async fn empty_db() -> TestDb {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "sluice_e2e_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let db = match std::env::var(DATABASE_URL_ENV) {
        Ok(admin_url) if !admin_url.trim().is_empty() => TestDb {
            url: with_database(&admin_url, &name),
            name,
            admin_url,
            _lease: ClusterLease::external(),
        },
        _ => {
            let (lease, cluster) = ClusterLease::private();
            TestDb {
                admin_url: cluster_url(&cluster, "postgres").await,
                url: cluster_url(&cluster, &name).await,
                name,
                _lease: lease,
            }
        }
    };
    // `db` exists before the database does, so a failure below still drops it.
    let mut admin = connect(&db.admin_url).await;
    execute(
        &mut admin,
        &format!("CREATE DATABASE {}", quote_ident(&db.name)),
    )
    .await;
    let _ = admin.close().await;

    db
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let sql = format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            quote_ident(&self.name)
        );
        // Drop cannot await, and blocking on the test's own runtime would
        // stall it: run the statement on a runtime of its own.
        let outcome = std::thread::spawn(move || -> Result<(), String> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let mut admin = PgConnection::connect(&admin_url)
                    .await
                    .map_err(|e| e.to_string())?;
                sqlx::raw_sql(AssertSqlSafe(sql))
                    .execute(&mut admin)
                    .await
                    .map_err(|e| e.to_string())?;
                let _ = admin.close().await;
                Ok(())
            })
        })
        .join();
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("e2e: could not drop database {}: {e}", self.name),
            Err(_) => eprintln!("e2e: dropping database {} panicked", self.name),
        }
    }
}

/// `url` with its database (the path) replaced by `database`.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{database}", &base[..path_start]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Connects to `url`; panics, without the password, when it cannot.
pub(crate) async fn connect(url: &str) -> PgConnection {
    PgConnection::connect(url)
        .await
        .unwrap_or_else(|e| panic!("connecting to {}: {e}", redact(url)))
}

async fn execute(conn: &mut PgConnection, sql: &str) {
    sqlx::raw_sql(AssertSqlSafe(sql))
        .execute(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// `url` without its password, for messages.
fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => match rest[..at].find(':') {
            Some(colon) => format!(
                "{}{}:***{}",
                &url[..scheme_end],
                &rest[..colon],
                &rest[at..]
            ),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_database_of_a_url() {
        assert_eq!(
            with_database("postgres://u:p@h:5432/postgres?sslmode=disable", "x"),
            "postgres://u:p@h:5432/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h", "x"), "postgres://u@h/x");
        assert_eq!(
            with_database("postgresql:///postgres?host=/run/pg", "x"),
            "postgresql:///x?host=/run/pg"
        );
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
    }
}
