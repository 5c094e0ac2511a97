use crate::bindings::sluice::plugin::types::{DatabaseError, Denial};
use std::fmt;

/// Why a host call or a plugin export failed: `sluice:plugin/types.error`.
///
/// A tool that returns an `Err` gives the client a tool error whose text says
/// which kind of failure it was, so denials and database errors returned by
/// [`crate::db`] calls can simply be propagated with `?`.
pub use crate::bindings::sluice::plugin::types::Error;

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
        match self {
            Error::Denied(Denial { rule, message }) => format!("denied ({rule}): {message}"),
            Error::InvalidInput(m) => format!("invalid input: {m}"),
            Error::NotFound(m) => format!("not found: {m}"),
            Error::Database(DatabaseError {
                sqlstate,
                message,
                detail,
                hint,
            }) => {
                let mut out = match sqlstate {
                    Some(code) => format!("database error {code}: {message}"),
                    None => format!("database error: {message}"),
                };
                if let Some(detail) = detail {
                    out.push_str(&format!(" (detail: {detail})"));
                }
                if let Some(hint) = hint {
                    out.push_str(&format!(" (hint: {hint})"));
                }
                out
            }
            Error::Internal(m) => format!("internal error: {m}"),
        }
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Internal(format!("JSON: {e}"))
    }
}
