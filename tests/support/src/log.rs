//! A server's log, kept for a test to search.

use std::sync::{Arc, Mutex, PoisonError};

/// The log lines of a server started with [`spawn_http_logged`] (or
/// [`Sluice::start`]), as they arrive.
///
/// [`spawn_http_logged`]: crate::spawn_http_logged
/// [`Sluice::start`]: crate::pg::Sluice::start
#[derive(Clone, Default)]
pub struct ServerLog(Arc<Mutex<Vec<String>>>);

impl ServerLog {
    /// The lines so far that contain `needle`.
    pub fn lines_with(&self, needle: &str) -> Vec<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|line| line.contains(needle))
            .cloned()
            .collect()
    }

    pub(crate) fn push(&self, line: String) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(line);
    }
}
