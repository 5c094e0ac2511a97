use crate::bindings::sluice::plugin::types as wit;
use std::fmt;

/// Why a host call or a plugin export failed.
///
/// A tool that returns an `Err` gives the client a tool error whose text says
/// which kind of failure it was. `?` converts what plugin code usually meets:
/// the errors of [`crate::db`] calls and of the raw [`crate::bindings`] host
/// calls (kept as they are: a denial stays a denial), and, as
/// [`Error::Internal`], `serde_json` errors, formatting and UTF-8 errors,
/// number parsing errors and plain messages (`String`, `&str`). Map input
/// problems to [`Error::invalid_input`] yourself: only the plugin knows
/// which failures are the caller's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The host's policy or a limit refused the call; nothing was changed.
    Denied(Denial),
    /// Malformed or out-of-range arguments.
    InvalidInput(String),
    /// The named tool, resource, prompt or relation does not exist (or is
    /// not visible).
    NotFound(String),
    /// PostgreSQL rejected or failed the statement.
    Database(DatabaseError),
    /// Anything else; the message says what.
    Internal(String),
}

/// The reason the host's policy refused a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// The rule that refused it, e.g. `read-grant`, `single-statement`.
    pub rule: String,
    /// What was refused and why, fit to show to a user.
    pub message: String,
}

/// An error PostgreSQL itself reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseError {
    /// The five-character SQLSTATE, e.g. `23505` (unique violation).
    pub sqlstate: Option<String>,
    /// PostgreSQL's primary message.
    pub message: String,
    /// Its detail line, if any.
    pub detail: Option<String>,
    /// Its hint, if any.
    pub hint: Option<String>,
}

/// `Result` with the SDK's [`Error`].
pub type Result<T, E = Error> = core::result::Result<T, E>;

impl Error {
    /// Malformed or out-of-range arguments.
    pub fn invalid_input(message: impl fmt::Display) -> Self {
        Error::InvalidInput(message.to_string())
    }

    /// The thing asked for does not exist.
    pub fn not_found(message: impl fmt::Display) -> Self {
        Error::NotFound(message.to_string())
    }

    /// Anything else.
    pub fn internal(message: impl fmt::Display) -> Self {
        Error::Internal(message.to_string())
    }

    /// A one-line description, fit for a user.
    pub fn message(&self) -> String {
        self.to_string()
    }

    /// The interface's error, as an export returns it.
    pub(crate) fn into_wit(self) -> wit::Error {
        match self {
            Error::Denied(Denial { rule, message }) => {
                wit::Error::Denied(wit::Denial { rule, message })
            }
            Error::InvalidInput(m) => wit::Error::InvalidInput(m),
            Error::NotFound(m) => wit::Error::NotFound(m),
            Error::Database(DatabaseError {
                sqlstate,
                message,
                detail,
                hint,
            }) => wit::Error::Database(wit::DatabaseError {
                sqlstate,
                message,
                detail,
                hint,
            }),
            Error::Internal(m) => wit::Error::Internal(m),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Denied(Denial { rule, message }) => write!(f, "denied ({rule}): {message}"),
            Error::InvalidInput(m) => write!(f, "invalid input: {m}"),
            Error::NotFound(m) => write!(f, "not found: {m}"),
            Error::Database(DatabaseError {
                sqlstate,
                message,
                detail,
                hint,
            }) => {
                match sqlstate {
                    Some(code) => write!(f, "database error {code}: {message}")?,
                    None => write!(f, "database error: {message}")?,
                }
                if let Some(detail) = detail {
                    write!(f, " (detail: {detail})")?;
                }
                if let Some(hint) = hint {
                    write!(f, " (hint: {hint})")?;
                }
                Ok(())
            }
            Error::Internal(m) => write!(f, "internal error: {m}"),
        }
    }
}

impl std::error::Error for Error {}

/// A host call's error, as the raw bindings return it.
impl From<wit::Error> for Error {
    fn from(e: wit::Error) -> Self {
        match e {
            wit::Error::Denied(wit::Denial { rule, message }) => {
                Error::Denied(Denial { rule, message })
            }
            wit::Error::InvalidInput(m) => Error::InvalidInput(m),
            wit::Error::NotFound(m) => Error::NotFound(m),
            wit::Error::Database(wit::DatabaseError {
                sqlstate,
                message,
                detail,
                hint,
            }) => Error::Database(DatabaseError {
                sqlstate,
                message,
                detail,
                hint,
            }),
            wit::Error::Internal(m) => Error::Internal(m),
        }
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Internal(format!("JSON: {e}"))
    }
}

impl From<String> for Error {
    fn from(message: String) -> Self {
        Error::Internal(message)
    }
}

impl From<&str> for Error {
    fn from(message: &str) -> Self {
        Error::Internal(message.to_string())
    }
}

/// Errors whose own text says enough, prefixed with what failed.
macro_rules! internal_from {
    ($($t:ty => $what:literal),* $(,)?) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self {
                Error::Internal(format!(concat!($what, ": {}"), e))
            }
        }
    )*};
}

internal_from!(
    fmt::Error => "formatting",
    std::string::FromUtf8Error => "UTF-8",
    std::str::Utf8Error => "UTF-8",
    std::num::ParseIntError => "parsing an integer",
    std::num::ParseFloatError => "parsing a number",
);

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_int(s: &str) -> Result<i64> {
        Ok(s.parse::<i64>()?)
    }

    fn from_host(answer: core::result::Result<(), wit::Error>) -> Result<()> {
        answer?;
        Ok(())
    }

    #[test]
    fn question_mark_converts_what_plugin_code_meets() {
        let json = || -> Result<serde_json::Value> { Ok(serde_json::from_str("{")?) };
        assert!(
            matches!(json(), Err(Error::Internal(m)) if m.starts_with("JSON: ")),
            "{:?}",
            json()
        );
        assert!(matches!(parse_int("x"), Err(Error::Internal(m)) if m.starts_with("parsing")));
        let utf8 = || -> Result<String> { Ok(String::from_utf8(vec![0xff])?) };
        assert!(matches!(utf8(), Err(Error::Internal(m)) if m.starts_with("UTF-8: ")));
        let message = || -> Result<()> {
            let failed: core::result::Result<(), String> = Err(format!("no {}", "rows"));
            failed?;
            Ok(())
        };
        assert_eq!(message(), Err(Error::Internal("no rows".into())));
        let fixed = || -> Result<u8> { Ok(None.ok_or("empty")?) };
        assert_eq!(fixed(), Err(Error::Internal("empty".into())));
        let formatting = || -> Result<()> {
            let failed: fmt::Result = Err(fmt::Error);
            failed?;
            Ok(())
        };
        assert!(matches!(formatting(), Err(Error::Internal(m)) if m.starts_with("formatting")));
    }

    #[test]
    fn host_errors_keep_their_kind_both_ways() {
        let denied = wit::Error::Denied(wit::Denial {
            rule: "read-grant".into(),
            message: "relation public.x is not granted".into(),
        });
        let converted = from_host(Err(denied.clone())).unwrap_err();
        assert_eq!(
            converted,
            Error::Denied(Denial {
                rule: "read-grant".into(),
                message: "relation public.x is not granted".into(),
            })
        );
        assert_eq!(converted.clone().into_wit(), denied);
        let database = wit::Error::Database(wit::DatabaseError {
            sqlstate: Some("23505".into()),
            message: "duplicate key".into(),
            detail: Some("Key (id)=(1) already exists.".into()),
            hint: None,
        });
        let converted = Error::from(database.clone());
        assert_eq!(
            converted.message(),
            "database error 23505: duplicate key (detail: Key (id)=(1) already exists.)"
        );
        assert_eq!(converted.into_wit(), database);
        for e in [
            wit::Error::InvalidInput("a".into()),
            wit::Error::NotFound("b".into()),
            wit::Error::Internal("c".into()),
        ] {
            assert_eq!(Error::from(e.clone()).into_wit(), e);
        }
    }

    #[test]
    fn messages_say_which_kind_of_failure() {
        assert_eq!(
            Error::Denied(Denial {
                rule: "write-grant".into(),
                message: "no".into()
            })
            .message(),
            "denied (write-grant): no"
        );
        assert_eq!(Error::invalid_input("x").message(), "invalid input: x");
        assert_eq!(Error::not_found("y").to_string(), "not found: y");
        assert_eq!(Error::internal("z").to_string(), "internal error: z");
    }
}
