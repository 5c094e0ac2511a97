//! Log lines about what clients send, rate-limited: a client that sends
//! thousands of bad requests must not be able to fill the disk or drown the
//! lines that matter. At most one line per interval; the next one says how
//! many were left out.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often a throttled line may be written.
const INTERVAL: Duration = Duration::from_secs(1);

/// One kind of log line, written at most once per second.
#[derive(Debug, Default)]
pub struct LogThrottle {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    last: Option<Instant>,
    suppressed: u64,
}

impl LogThrottle {
    /// Whether to write a line now; if so, how many were left out since
    /// the last one.
    pub fn admit(&self) -> Option<u64> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        if state
            .last
            .is_some_and(|last| now.duration_since(last) < INTERVAL)
        {
            state.suppressed = state.suppressed.saturating_add(1);
            return None;
        }
        state.last = Some(now);
        Some(std::mem::take(&mut state.suppressed))
    }
}

/// A `tracing` event at `$level` (`warn`, `info`, …) through a
/// [`LogThrottle`]: the line gets a `suppressed` field counting the ones
/// left out before it.
macro_rules! throttled {
    ($level:ident, $throttle:expr, $($arg:tt)+) => {
        if let Some(suppressed) = $throttle.admit() {
            tracing::$level!(suppressed, $($arg)+);
        }
    };
}
pub(crate) use throttled;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_then_the_count_of_those_left_out() {
        let throttle = LogThrottle::default();
        assert_eq!(throttle.admit(), Some(0));
        for _ in 0..5 {
            assert_eq!(throttle.admit(), None);
        }
        throttle.state.lock().unwrap().last = Some(Instant::now() - INTERVAL);
        assert_eq!(throttle.admit(), Some(5));
        assert_eq!(throttle.admit(), None);
    }
}
