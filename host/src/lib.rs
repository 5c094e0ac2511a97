//! sluice: a PostgreSQL MCP server whose tools, resources and prompts are
//! sandboxed WebAssembly components.
//!
//! The request path, and the module that owns each step:
//! MCP client → [`mcp`] (rmcp transport) → [`registry`] (which plugin answers)
//! → [`runtime`] (wasmtime instance per call) → host call → [`gate`] (the one
//! checkpoint, applying [`policy`]) → [`db`] (sqlx) → PostgreSQL.

pub mod app;
pub mod audit;
pub mod config;
pub mod db;
pub mod declared;
pub mod demo;
pub mod gate;
pub mod http;
pub mod identity;
pub mod mcp;
pub mod oci;
pub mod pgcluster;
pub mod plugins_cmd;
pub mod policy;
pub mod principal;
pub mod publish;
pub mod registry;
pub mod runtime;
pub mod scaffold;
pub mod shutdown;

/// Installs ring as rustls's process-wide crypto provider, once. HTTP
/// clients built without a provider of their own (reqwest, as the OCI
/// registry client and the tests use it) need one; the PostgreSQL
/// connections pass theirs explicitly. Calling it again does nothing.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
