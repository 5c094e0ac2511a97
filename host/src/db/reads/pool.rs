//! The read path's connections: each checked out by one read at a time,
//! with what was prepared on it, and a ROLLBACK that is sent but never
//! waited for when the read gives it back.

use super::Prepared;
use crate::db::DbError;
use futures::FutureExt as _;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::OwnedSemaphorePermit;
use tokio_postgres::Client;

/// Statements kept prepared per connection; past that the connection
/// forgets them all and starts over (a plugin that sends endless distinct
/// statements must not grow the server's memory or ours).
const STATEMENTS_KEPT: usize = 256;

/// An idle connection older than this is closed rather than reused, as
/// the sqlx pool does.
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// One connection of the read path.
pub(super) struct Conn {
    pub(super) client: Client,
    /// What was prepared on it, by SQL text.
    pub(super) statements: HashMap<String, Arc<Prepared>>,
    idle_since: Instant,
}

impl Conn {
    pub(super) fn new(client: Client) -> Conn {
        Conn {
            client,
            statements: HashMap::new(),
            idle_since: Instant::now(),
        }
    }

    pub(super) fn remember(&mut self, sql: &str, prepared: Arc<Prepared>) {
        if self.statements.len() >= STATEMENTS_KEPT {
            self.statements.clear();
        }
        self.statements.insert(sql.to_string(), prepared);
    }
}

/// The idle connections. How many are in use is bounded by the permits a
/// [`Lease`] holds, which the sqlx pool's checkouts share.
#[derive(Default)]
pub(super) struct Pool {
    idle: Mutex<Vec<Conn>>,
}

impl Pool {
    /// The most recently used idle connection that is still open.
    pub(super) fn take_idle(&self) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        // Oldest first: the ones past their time are at the front.
        idle.retain(|c| !c.client.is_closed() && c.idle_since.elapsed() < IDLE_TIMEOUT);
        idle.pop()
    }

    fn give_back(&self, mut conn: Conn) {
        conn.idle_since = Instant::now();
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(conn);
    }
}

/// A connection checked out by one read. Dropped, it goes back to the
/// pool only if every request on it was answered in full; a transaction
/// still open then is rolled back by a ROLLBACK queued ahead of anything
/// the next read sends. A read abandoned in the middle (its caller gone)
/// closes the connection instead, so that nobody waits behind a statement
/// still running.
pub(super) struct Lease<'p> {
    pub(super) conn: Option<Conn>,
    pool: &'p Pool,
    _permit: OwnedSemaphorePermit,
    /// A transaction was begun on it.
    pub(super) in_tx: bool,
    /// Every request sent has been answered.
    pub(super) settled: bool,
}

impl<'p> Lease<'p> {
    pub(super) fn new(conn: Conn, pool: &'p Pool, permit: OwnedSemaphorePermit) -> Lease<'p> {
        Lease {
            conn: Some(conn),
            pool,
            _permit: permit,
            in_tx: false,
            settled: true,
        }
    }

    pub(super) fn conn(&mut self) -> Result<&mut Conn, DbError> {
        self.conn
            .as_mut()
            .ok_or_else(|| DbError::Connection("the read connection was already given back".into()))
    }

    /// Closes the connection instead of giving it back.
    pub(super) fn discard(&mut self) {
        self.conn = None;
    }

    /// The same connection for another try: its transaction, if any, is
    /// rolled back ahead of whatever the try sends. A connection still busy
    /// is closed, and the try gets none (it takes another).
    pub(super) fn restart(mut self) -> Lease<'p> {
        self.end_session();
        self
    }

    /// Ends what this lease did on its connection without waiting: a
    /// connection with a request unanswered, or closed, is dropped; an open
    /// transaction gets a ROLLBACK queued (its answer is read and dropped by
    /// the connection task), and the connection is dropped if even that
    /// cannot be queued.
    fn end_session(&mut self) {
        let usable = self
            .conn
            .as_ref()
            .is_some_and(|c| self.settled && !c.client.is_closed());
        if !usable {
            self.conn = None;
        } else if self.in_tx
            && let Some(conn) = &self.conn
            // The first poll writes the ROLLBACK into the connection's
            // queue; only a failure completes at once.
            && let Some(Err(e)) = conn.client.batch_execute("ROLLBACK").now_or_never()
        {
            tracing::debug!("the read connection could not queue its ROLLBACK: {e}");
            self.conn = None;
        }
        self.in_tx = false;
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        self.end_session();
        if let Some(conn) = self.conn.take() {
            self.pool.give_back(conn);
        }
    }
}
