//! The limits on one plugin's calls, named once.
//!
//! [`each_limit!`] is the one list of them: each limit's config key, type,
//! default and meaning. [`Limits`] (what a call runs under) and
//! [`LimitSettings`] (what a config table or a manifest sets) are generated
//! from it, and so are the limit keys of `[plugins]` and of every
//! `[plugins.grants.<name>]` (see `crate::config`). Adding a limit is one
//! line here plus the code that enforces it.

use serde::Deserialize;

/// Calls `$then! { { $($args)* } <the limits> }` with every limit as
/// `/// doc  key: type = default;`. The key is the config key, the field
/// name in [`Limits`] and [`LimitSettings`], and the name an error uses
/// when a call reaches the limit.
macro_rules! each_limit {
    ($then:ident! { $($args:tt)* }) => {
        $then! {
            { $($args)* }
            /// Statement timeout in milliseconds, and the deadline of a whole
            /// call, wasm and database time together.
            timeout_ms: u64 = 5_000;
            /// Rows a query returns; more are dropped and the result is
            /// flagged as truncated.
            max_rows: u32 = 1_000;
            /// Rows one update or delete may touch; more roll it back.
            max_write_rows: u32 = 100;
            /// Bytes of one statement's result as it comes off the wire; a
            /// bigger result is an error.
            max_result_bytes: u64 = 8 * 1024 * 1024;
            /// Linear memory of one call, in MiB.
            memory_mb: u64 = 64;
            /// Host calls one plugin call may make.
            max_host_calls: u32 = 10_000;
            /// Calls of one plugin running at once.
            max_concurrent_calls: u32 = 64;
        }
    };
}
pub(crate) use each_limit;

/// The most `memory_mb` may be: a 32-bit wasm memory holds 4 GiB.
pub const MAX_MEMORY_MB: u64 = 4 * 1024;

macro_rules! define_limits {
    ({} $( $(#[doc = $doc:literal])* $key:ident : $ty:ty = $default:expr ; )*) => {
        /// Limits that apply to one plugin's calls. Each is named in the
        /// error a call gets when it reaches it, by its config key.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct Limits {
            $( $(#[doc = $doc])* pub $key: $ty, )*
        }

        impl Default for Limits {
            /// What applies where the config sets nothing.
            fn default() -> Self {
                Limits { $( $key: $default, )* }
            }
        }

        /// Any of the [`Limits`], each set or not: what one config table or
        /// a plugin's manifest says.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct LimitSettings {
            $( $(#[doc = $doc])* pub $key: Option<$ty>, )*
        }

        impl LimitSettings {
            /// Every limit's config key.
            pub const KEYS: &[&str] = &[$( stringify!($key), )*];

            /// Each limit from `self` where set, else from `fallback`.
            pub fn or(self, fallback: LimitSettings) -> LimitSettings {
                LimitSettings { $( $key: self.$key.or(fallback.$key), )* }
            }

            /// `base` with each limit set here replacing its value.
            pub fn over(self, base: Limits) -> Limits {
                Limits { $( $key: self.$key.unwrap_or(base.$key), )* }
            }

            /// The limits set here, by config key, widened to `u64`.
            pub fn values(&self) -> Vec<(&'static str, u64)> {
                let mut out = Vec::new();
                $( if let Some(v) = self.$key { out.push((stringify!($key), u64::from(v))); } )*
                out
            }
        }

        impl Limits {
            /// Each limit the lower of its value and `requested`'s (where
            /// set): a plugin runs under no more than it asked for. Also
            /// returns each request above what it got, as
            /// `key requested (granted value)`.
            pub fn lowered(self, requested: LimitSettings) -> (Limits, Vec<String>) {
                let mut unmet = Vec::new();
                let lowered = Limits {
                    $( $key: match requested.$key {
                        Some(asked) => {
                            if asked > self.$key {
                                unmet.push(format!(
                                    "{} {asked} (granted {})", stringify!($key), self.$key
                                ));
                            }
                            asked.min(self.$key)
                        }
                        None => self.$key,
                    }, )*
                };
                (lowered, unmet)
            }
        }
    };
}

each_limit!(define_limits! {});

impl Limits {
    /// `memory_mb` in bytes (it is at most [`MAX_MEMORY_MB`] once the config
    /// is checked; larger values saturate rather than wrap).
    pub fn memory_bytes(&self) -> u64 {
        self.memory_mb.saturating_mul(1024 * 1024)
    }
}

impl LimitSettings {
    /// Every limit set must allow something (zero would refuse every call)
    /// and fit what enforces it. `section` names the table in the message.
    pub fn check(&self, section: &str) -> Result<(), String> {
        for (key, value) in self.values() {
            if value == 0 {
                return Err(format!("{section} {key} must be at least 1"));
            }
        }
        if let Some(mb) = self.memory_mb
            && mb > MAX_MEMORY_MB
        {
            return Err(format!(
                "{section} memory_mb must be at most {MAX_MEMORY_MB} (a wasm memory holds 4 GiB)"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_layer_over_the_defaults() {
        let grant = LimitSettings {
            max_rows: Some(10),
            ..LimitSettings::default()
        };
        let plugins = LimitSettings {
            max_rows: Some(500),
            timeout_ms: Some(2_000),
            ..LimitSettings::default()
        };
        let limits = grant.or(plugins).over(Limits::default());
        assert_eq!(limits.max_rows, 10);
        assert_eq!(limits.timeout_ms, 2_000);
        assert_eq!(limits.max_write_rows, Limits::default().max_write_rows);
    }

    #[test]
    fn lowering_keeps_the_lower_and_names_what_was_not_met() {
        let requested = LimitSettings {
            timeout_ms: Some(30_000),
            max_rows: Some(50),
            ..LimitSettings::default()
        };
        let (limits, unmet) = Limits::default().lowered(requested);
        assert_eq!(limits.timeout_ms, 5_000);
        assert_eq!(limits.max_rows, 50);
        assert_eq!(limits.memory_mb, 64, "not requested, not changed");
        assert_eq!(unmet, vec!["timeout_ms 30000 (granted 5000)"]);
    }

    #[test]
    fn every_key_is_listed_once_and_checked() {
        assert_eq!(LimitSettings::KEYS.len(), 7);
        let mut keys = LimitSettings::KEYS.to_vec();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), LimitSettings::KEYS.len());
        let zero = LimitSettings {
            max_concurrent_calls: Some(0),
            ..LimitSettings::default()
        };
        assert_eq!(
            zero.check("[plugins]").unwrap_err(),
            "[plugins] max_concurrent_calls must be at least 1"
        );
        let huge = LimitSettings {
            memory_mb: Some(u64::MAX),
            ..LimitSettings::default()
        };
        assert!(
            huge.check("[plugins]")
                .unwrap_err()
                .contains("at most 4096")
        );
        assert_eq!(
            Limits {
                memory_mb: u64::MAX,
                ..Limits::default()
            }
            .memory_bytes(),
            u64::MAX
        );
    }
}
