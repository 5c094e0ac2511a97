//! End-to-end tests: each test runs the real `sluice` binary as an MCP stdio
//! server against a database of its own (see `support`, the
//! `sluice-test-support` crate in tests/support).

// Only this target knows where cargo put the binary and the plugins.
sluice_test_support::register_paths!();

use sluice_test_support as support;

// test modules are added below
mod audit;
mod cli;
mod config_errors;
mod connect;
mod declared;
mod denials;
mod first_run;
mod host_fuzz;
mod hostile;
mod http;
mod http_robustness;
mod insight;
mod limits;
mod oauth;
mod outage;
mod plugins;
mod readme;
mod reads;
mod refusals;
mod reload;
mod replicas;
mod resources;
mod robustness;
mod roles;
mod scaffold;
mod security;
mod security_corpus;
mod signing;
mod startup;
mod tools;
mod types;
mod writes;
