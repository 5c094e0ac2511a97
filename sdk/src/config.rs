//! Operator-provided configuration values (`[plugins.config.<plugin>]`).

use crate::bindings::sluice::plugin::config;

/// The value the operator set for `key`, if any.
pub fn get(key: &str) -> Option<String> {
    config::get(key)
}
