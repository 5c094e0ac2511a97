//! The database's errors, and the one shape PostgreSQL's own error takes on
//! its way up.
//!
//! The chain a failure travels is [`DbError`] (this driver) →
//! [`crate::gate::GateError`] (a host call: adds the policy's denials) →
//! the WIT `error` a plugin sees (the same cases, on the wire) →
//! [`crate::registry::CallError`] (what a client sees: adds whose fault it
//! was). PostgreSQL's report is one [`PgError`] all the way, so its fields
//! and its wording are written once.

use std::fmt;

/// What PostgreSQL reported: its SQLSTATE, message, detail and hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgError {
    pub sqlstate: Option<String>,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

impl PgError {
    /// An error with only a code and a message.
    pub fn new(sqlstate: Option<&str>, message: impl Into<String>) -> PgError {
        PgError {
            sqlstate: sqlstate.map(str::to_string),
            message: message.into(),
            detail: None,
            hint: None,
        }
    }
}

/// `database error 42P01: relation "x" does not exist (hint: …)`: everything
/// PostgreSQL said, since a model fixes its SQL from the detail and the hint.
impl fmt::Display for PgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.sqlstate {
            Some(code) => write!(f, "database error {code}: {}", self.message)?,
            None => write!(f, "database error: {}", self.message)?,
        }
        if let Some(d) = &self.detail {
            write!(f, " (detail: {d})")?;
        }
        if let Some(h) = &self.hint {
            write!(f, " (hint: {h})")?;
        }
        Ok(())
    }
}

impl std::error::Error for PgError {}

/// A database failure.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// PostgreSQL reported an error.
    #[error(transparent)]
    Postgres(PgError),
    /// A value could not be converted to or from the wire format.
    #[error("{0}")]
    Value(String),
    /// Connection, pool or protocol trouble. The text is complete as it
    /// stands (`database unreachable: …`, `all … connections are in use …`),
    /// since layers above pass it on.
    #[error("{0}")]
    Connection(String),
    /// The result grew past [`super::ResultLimits::max_bytes`].
    #[error("the result is larger than {limit} bytes")]
    ResultTooLarge { limit: u64 },
}

impl From<sqlx::Error> for DbError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::Database(db) => {
                let pg = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>();
                DbError::Postgres(PgError {
                    sqlstate: db.code().map(|c| c.into_owned()),
                    message: db.message().to_string(),
                    detail: pg.and_then(|p| p.detail()).map(str::to_string),
                    hint: pg.and_then(|p| p.hint()).map(str::to_string),
                })
            }
            sqlx::Error::PoolTimedOut => {
                DbError::Connection("timed out waiting for a database connection".into())
            }
            // The server went away in the middle of a call.
            sqlx::Error::Io(e) => DbError::Connection(format!(
                "database unreachable: the connection was lost ({e})"
            )),
            other => DbError::Connection(other.to_string()),
        }
    }
}

impl From<tokio_postgres::Error> for DbError {
    fn from(e: tokio_postgres::Error) -> Self {
        if let Some(db) = e.as_db_error() {
            return DbError::Postgres(PgError {
                sqlstate: Some(db.code().code().to_string()),
                message: db.message().to_string(),
                detail: db.detail().map(str::to_string),
                hint: db.hint().map(str::to_string),
            });
        }
        if e.is_closed() || super::reads::io_error(&e).is_some() {
            return DbError::Connection(format!(
                "database unreachable: the connection was lost ({e})"
            ));
        }
        DbError::Connection(e.to_string())
    }
}

impl From<super::codec::CodecError> for DbError {
    fn from(e: super::codec::CodecError) -> Self {
        DbError::Value(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_errors_read_with_everything_postgres_said() {
        let mut e = PgError::new(Some("42P01"), "relation \"nope\" does not exist");
        assert_eq!(
            e.to_string(),
            "database error 42P01: relation \"nope\" does not exist"
        );
        e.detail = Some("d".into());
        e.hint = Some("h".into());
        assert_eq!(
            DbError::Postgres(e).to_string(),
            "database error 42P01: relation \"nope\" does not exist (detail: d) (hint: h)"
        );
        assert_eq!(
            PgError::new(None, "boom").to_string(),
            "database error: boom"
        );
    }
}
