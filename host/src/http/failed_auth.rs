//! Refused credentials, counted per client address (`[http.failed_auth]`).
//!
//! Each address may have `burst` credentials refused at once and
//! `per_minute` after that. Once it is over, every request from it is
//! answered 429 before any credential is looked at, so that while it is
//! limited a valid key cannot be told from an invalid one; that lasts until
//! its budget has room for one more refusal.
//!
//! IPv6 clients are counted by /64, the block one host usually holds.
//! Behind a reverse proxy every client has the proxy's address.

use crate::config::FailedAuthConfig;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Addresses tracked at most. Past it, addresses whose budget is full
/// again are forgotten; if that is not enough, a refused credential from
/// an address not yet tracked is answered 429 at once (a wrong key gets
/// nothing from it, and a right one is unaffected).
const MAX_TRACKED: usize = 100_000;
/// The slowest a full table is swept: sweeping walks all of it.
const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// What a client is told to wait when the table is full.
const FULL_WAIT: Duration = Duration::from_secs(60);

/// The address a client is counted by: IPv4 as is, IPv6 by its /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Client(IpAddr);

impl Client {
    pub fn of(addr: IpAddr) -> Client {
        match addr {
            IpAddr::V4(_) => Client(addr),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Client(IpAddr::V4(v4)),
                None => {
                    let prefix = u128::from(v6) & !u128::from(u64::MAX);
                    Client(IpAddr::V6(Ipv6Addr::from(prefix)))
                }
            },
        }
    }
}

impl std::fmt::Display for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V6(_) => write!(f, "{}/64", self.0),
            IpAddr::V4(_) => write!(f, "{}", self.0),
        }
    }
}

/// Refused credentials per client address.
#[derive(Debug)]
pub struct FailedAuth {
    limiter: DefaultKeyedRateLimiter<Client>,
    /// Addresses over their budget, and until when.
    limited: Mutex<HashMap<Client, Instant>>,
    last_sweep: Mutex<Option<Instant>>,
}

impl FailedAuth {
    pub fn new(config: &FailedAuthConfig) -> Result<FailedAuth, String> {
        let (Some(per_minute), Some(burst)) = (
            NonZeroU32::new(config.per_minute),
            NonZeroU32::new(config.burst),
        ) else {
            return Err("[http.failed_auth] per_minute and burst must be at least 1".into());
        };
        Ok(FailedAuth {
            limiter: RateLimiter::keyed(Quota::per_minute(per_minute).allow_burst(burst)),
            limited: Mutex::new(HashMap::new()),
            last_sweep: Mutex::new(None),
        })
    }

    fn limited(&self) -> MutexGuard<'_, HashMap<Client, Instant>> {
        self.limited.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Before any credential is checked: how long `client` must wait, if it
    /// is over its budget.
    pub fn check(&self, client: Client) -> Result<(), Duration> {
        let mut limited = self.limited();
        let Some(until) = limited.get(&client).copied() else {
            return Ok(());
        };
        let now = Instant::now();
        if until > now {
            return Err(until - now);
        }
        limited.remove(&client);
        Ok(())
    }

    /// A credential from `client` was refused. `Err` with the wait when
    /// that took it over its budget (the refusal is then a 429).
    pub fn refused(&self, client: Client) -> Result<(), Duration> {
        if self.limiter.len() >= MAX_TRACKED {
            self.sweep(false);
            if self.limiter.len() >= MAX_TRACKED {
                return Err(FULL_WAIT);
            }
        }
        let Err(not_until) = self.limiter.check_key(&client) else {
            return Ok(());
        };
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        let mut limited = self.limited();
        if limited.len() >= MAX_TRACKED {
            let now = Instant::now();
            limited.retain(|_, until| *until > now);
        }
        // When even that is full, the limiter alone still answers this
        // address's refused credentials with 429.
        if limited.len() < MAX_TRACKED {
            limited.insert(client, Instant::now() + wait);
        }
        Err(wait)
    }

    /// Forgets addresses whose budget is full again and whose limit has
    /// passed. `always`: even if the last sweep was less than a second ago.
    pub fn sweep(&self, always: bool) {
        {
            let mut last = self
                .last_sweep
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            if !always && last.is_some_and(|at| now.duration_since(at) < SWEEP_EVERY) {
                return;
            }
            *last = Some(now);
        }
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
        let now = Instant::now();
        let mut limited = self.limited();
        limited.retain(|_, until| *until > now);
        limited.shrink_to_fit();
    }

    /// Addresses tracked now.
    pub fn tracked(&self) -> usize {
        self.limiter.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed_auth(burst: u32) -> FailedAuth {
        FailedAuth::new(&FailedAuthConfig {
            per_minute: 1,
            burst,
        })
        .unwrap()
    }

    #[test]
    fn past_its_burst_an_address_is_limited_and_others_are_not() {
        let failed = failed_auth(2);
        let a = Client::of("10.0.0.1".parse().unwrap());
        let b = Client::of("10.0.0.2".parse().unwrap());
        assert_eq!(failed.check(a), Ok(()));
        assert_eq!(failed.refused(a), Ok(()));
        assert_eq!(failed.refused(a), Ok(()));
        let wait = failed.refused(a).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(60),
            "{wait:?}"
        );
        assert!(failed.check(a).is_err());
        assert_eq!(failed.check(b), Ok(()));
        assert_eq!(failed.refused(b), Ok(()));
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        let one = Client::of("2001:db8:1:2::1".parse().unwrap());
        let two = Client::of("2001:db8:1:2:ffff::9".parse().unwrap());
        let other = Client::of("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(one, two);
        assert_ne!(one, other);
        assert_eq!(one.to_string(), "2001:db8:1:2::/64");
        let mapped = Client::of("::ffff:10.0.0.1".parse().unwrap());
        assert_eq!(mapped, Client::of("10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn a_sweep_keeps_the_limited() {
        let failed = failed_auth(1);
        let a = Client::of("10.0.0.1".parse().unwrap());
        let _ = failed.refused(a);
        assert!(failed.refused(a).is_err());
        failed.sweep(true);
        assert!(failed.check(a).is_err());
        assert_eq!(failed.tracked(), 1);
        assert!(
            FailedAuth::new(&FailedAuthConfig {
                per_minute: 0,
                burst: 1
            })
            .is_err()
        );
    }
}
