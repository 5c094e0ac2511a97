//! Log lines into the host's log, under the plugin's name.
//!
//! Plugin stdout and stderr also reach the log, but these calls carry a level.
//! Outside WebAssembly (a plugin's unit tests) the lines go to stderr.

use crate::bindings::sluice::plugin::log::Level;

fn log(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    crate::bindings::sluice::plugin::log::log(level, message);
    // The bindings' imports exist only in a component.
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("{level:?}: {message}");
}

/// Logs at debug level.
pub fn debug(message: impl AsRef<str>) {
    log(Level::Debug, message.as_ref());
}

/// Logs at info level.
pub fn info(message: impl AsRef<str>) {
    log(Level::Info, message.as_ref());
}

/// Logs at warn level.
pub fn warn(message: impl AsRef<str>) {
    log(Level::Warn, message.as_ref());
}

/// Logs at error level.
pub fn error(message: impl AsRef<str>) {
    log(Level::Error, message.as_ref());
}
