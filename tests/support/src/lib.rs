//! The end-to-end harness of sluice's tests and its benchmark: throwaway
//! databases, `sluice serve` children driven by an rmcp client (or by raw
//! JSON-RPC lines, or over HTTP), and helpers for assertions.
//!
//! A binary that uses it first registers where the `sluice` binary and the
//! built plugins are, with [`register_paths!`] (why a macro: see the
//! `paths` module). Its tests then get a database of their own
//! ([`fresh_db`]; see the `db` module for where it lives), start a server
//! on it ([`spawn`], [`spawn_http`], [`raw::RawServer`], or [`pg::Sluice`]
//! for a database of the test's own making), and read what it answers
//! ([`text_of`], [`structured`], [`fingerprint()`] for "nothing changed").
//! The OAuth tests get tokens from a real authorization server,
//! [`oidc::OidcProvider`].

mod cluster;
mod command;
mod db;
mod fingerprint;
mod http;
mod log;
mod pagila;
mod paths;
mod results;
mod stdio;

pub mod oidc;
pub mod pg;
pub mod raw;
pub mod replicas;
pub mod sse;

use std::time::Duration;

pub use command::{config_file, needed_here, new_key, serve_command, tool_available};
pub use db::{DATABASE_URL_ENV, TestDb, empty_db, fresh_db, run_sql};
pub use fingerprint::fingerprint;
pub use http::{
    HttpServer, free_port, http_client, spawn_http, spawn_http_logged, spawn_http_logged_at,
};
pub use log::ServerLog;
pub use pagila::{load_dump, pagila_db, pagila_dir};
pub use paths::{Paths, paths, plugin_dir_with, plugin_wasm, sluice_bin};
pub use results::{error_data, json, structured, text_of};
pub use stdio::{Recorder, Server, spawn, spawn_at};

/// How long one MCP request may take before the test fails instead of hanging.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// What [`register_paths!`] expands to needs, by paths that work from any crate.
#[doc(hidden)]
pub mod __private {
    pub use crate::paths::REGISTERED;
    pub use linkme;
}
