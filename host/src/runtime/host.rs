//! The `sluice:plugin` imports: what a plugin may ask of the host.
//!
//! Every call's arguments pass the boundary checks of [`inputs`] first; then
//! database calls are translated and handed to the [`Gate`](crate::gate::Gate).
//! Nothing here talks to PostgreSQL or decides what is allowed.

use super::bindings::sluice::plugin::{config, database, log, types};
use super::inputs::{self, InvalidInput, List};
use super::{CallState, PluginContext, convert};
use crate::gate::{Caller, Gate};
use crate::principal::Principal;
use std::sync::Arc;

/// A plugin made more host calls in one call than it may.
#[derive(Debug, thiserror::Error)]
#[error("exceeded its max_host_calls limit of {limit} host calls in one call")]
pub struct HostLimitExceeded {
    limit: u32,
}

/// Denials of one call remembered to tell the host's from a plugin's own.
const ISSUED_DENIALS_KEPT: usize = 32;

/// What a database host call works with: the plugin's context, the gate,
/// and who the call is for.
type DbCall = (Arc<PluginContext>, Arc<Gate>, Arc<Principal>);

impl PluginContext {
    fn caller<'a>(&'a self, tool: Option<&'a str>, principal: &'a Principal) -> Caller<'a> {
        Caller {
            plugin: &self.name,
            tool,
            grant: &self.grant,
            principal,
        }
    }
}

impl CallState {
    /// Counts a database call and hands out the plugin's context and the
    /// gate for it, or the refusal when the plugin has no database: while
    /// it describes itself (see [`Runtime::load`](super::Runtime::load)).
    fn begin_db_call(&mut self, call: &str) -> wasmtime::Result<Result<DbCall, types::Error>> {
        self.count_host_call()?;
        let ctx = self.plugin.clone();
        let Some(gate) = ctx.gate.clone() else {
            return Ok(Err(self.issued(types::Error::Denied(types::Denial {
                rule: "describe".into(),
                message: format!(
                    "plugin {} called database::{call} while describing itself; \
                     describe runs with no database access",
                    ctx.name
                ),
            }))));
        };
        Ok(Ok((ctx, gate, self.caller.clone())))
    }

    /// The error for a call whose arguments failed the boundary checks,
    /// logged once; the call goes no further.
    fn refuse(&self, call: &str, e: &InvalidInput) -> types::Error {
        let plugin = &*self.plugin.name;
        tracing::warn!(
            plugin,
            tool = self.tool.as_deref(),
            call,
            "refused an invalid host call: {e}"
        );
        types::Error::InvalidInput(format!("invalid host call from plugin {plugin}: {e}"))
    }

    /// `error`, noted when it is a denial: the host's own, which the plugin
    /// may pass on as such (see [`convert::call_error`]). Only the latest
    /// [`ISSUED_DENIALS_KEPT`] are kept, so a plugin that collects refusals
    /// costs the host no memory; one passing on an older one is labelled as
    /// its own refusal, which says nothing false.
    fn issued(&mut self, error: types::Error) -> types::Error {
        if let types::Error::Denied(d) = &error {
            if self.issued_denials.len() >= ISSUED_DENIALS_KEPT {
                self.issued_denials.remove(0);
            }
            self.issued_denials
                .push((d.rule.clone(), d.message.clone()));
        }
        error
    }

    /// Counts a host call; past the limit the guest traps.
    fn count_host_call(&mut self) -> wasmtime::Result<()> {
        self.host_calls += 1;
        let limit = self.plugin.grant.limits.max_host_calls;
        if self.host_calls > limit {
            return Err(HostLimitExceeded { limit }.into());
        }
        Ok(())
    }
}

impl types::Host for CallState {}

impl database::Host for CallState {
    async fn query(
        &mut self,
        sql: String,
        params: Vec<types::Value>,
    ) -> wasmtime::Result<Result<database::Rows, types::Error>> {
        let (ctx, gate, principal) = match self.begin_db_call("query")? {
            Ok(both) => both,
            Err(e) => return Ok(Err(e)),
        };
        if let Err(e) = inputs::query(&sql, &params) {
            return Ok(Err(self.refuse("query", &e)));
        }
        let caller = ctx.caller(self.tool.as_deref(), &principal);
        let params: Vec<_> = params.into_iter().map(convert::value_in).collect();
        // The call's reads share its session once one opens it (create a
        // hypothetical index, then plan with it).
        let result = gate
            .query_in(&mut self.session, caller, &sql, &params)
            .await;
        Ok(result
            .map(convert::rows_out)
            .map_err(|e| self.issued(convert::gate_error(e))))
    }

    async fn insert(
        &mut self,
        table: String,
        values: Vec<(String, types::Value)>,
    ) -> wasmtime::Result<Result<database::Rows, types::Error>> {
        let (ctx, gate, principal) = match self.begin_db_call("insert")? {
            Ok(both) => both,
            Err(e) => return Ok(Err(e)),
        };
        if let Err(e) = inputs::write(&table, &[(List::Values, &values)]) {
            return Ok(Err(self.refuse("insert", &e)));
        }
        let caller = ctx.caller(self.tool.as_deref(), &principal);
        let values = convert::pairs_in(values);
        Ok(gate
            .insert(caller, &table, &values)
            .await
            .map(convert::rows_out)
            .map_err(|e| self.issued(convert::gate_error(e))))
    }

    async fn update(
        &mut self,
        table: String,
        filter: Vec<(String, types::Value)>,
        values: Vec<(String, types::Value)>,
        max_rows: Option<u32>,
    ) -> wasmtime::Result<Result<database::Rows, types::Error>> {
        let (ctx, gate, principal) = match self.begin_db_call("update")? {
            Ok(both) => both,
            Err(e) => return Ok(Err(e)),
        };
        if let Err(e) = inputs::write(&table, &[(List::Filter, &filter), (List::Values, &values)]) {
            return Ok(Err(self.refuse("update", &e)));
        }
        let caller = ctx.caller(self.tool.as_deref(), &principal);
        let filter = convert::pairs_in(filter);
        let values = convert::pairs_in(values);
        Ok(gate
            .update(caller, &table, &filter, &values, max_rows)
            .await
            .map(convert::rows_out)
            .map_err(|e| self.issued(convert::gate_error(e))))
    }

    async fn delete(
        &mut self,
        table: String,
        filter: Vec<(String, types::Value)>,
        max_rows: Option<u32>,
    ) -> wasmtime::Result<Result<database::Rows, types::Error>> {
        let (ctx, gate, principal) = match self.begin_db_call("delete")? {
            Ok(both) => both,
            Err(e) => return Ok(Err(e)),
        };
        if let Err(e) = inputs::write(&table, &[(List::Filter, &filter)]) {
            return Ok(Err(self.refuse("delete", &e)));
        }
        let caller = ctx.caller(self.tool.as_deref(), &principal);
        let filter = convert::pairs_in(filter);
        Ok(gate
            .delete(caller, &table, &filter, max_rows)
            .await
            .map(convert::rows_out)
            .map_err(|e| self.issued(convert::gate_error(e))))
    }

    async fn execute(
        &mut self,
        sql: String,
        params: Vec<types::Value>,
        max_rows: Option<u32>,
    ) -> wasmtime::Result<Result<database::WriteOutcome, types::Error>> {
        let (ctx, gate, principal) = match self.begin_db_call("execute")? {
            Ok(both) => both,
            Err(e) => return Ok(Err(e)),
        };
        // The same bounds as a query's statement and parameters.
        if let Err(e) = inputs::query(&sql, &params) {
            return Ok(Err(self.refuse("execute", &e)));
        }
        let caller = ctx.caller(self.tool.as_deref(), &principal);
        let params: Vec<_> = params.into_iter().map(convert::value_in).collect();
        Ok(gate
            .execute(caller, &sql, &params, max_rows)
            .await
            .map(|outcome| database::WriteOutcome {
                affected: outcome.affected,
                returned: convert::rows_out(outcome.rows),
            })
            .map_err(|e| self.issued(convert::gate_error(e))))
    }

    async fn list_relations(
        &mut self,
        schema: Option<String>,
    ) -> wasmtime::Result<Result<Vec<database::Relation>, types::Error>> {
        let (ctx, gate, principal) = match self.begin_db_call("list-relations")? {
            Ok(both) => both,
            Err(e) => return Ok(Err(e)),
        };
        if let Err(e) = inputs::schema(schema.as_deref()) {
            return Ok(Err(self.refuse("list-relations", &e)));
        }
        let caller = ctx.caller(self.tool.as_deref(), &principal);
        Ok(gate
            .list_relations(caller, schema.as_deref())
            .await
            .map(|rels| rels.into_iter().map(convert::relation_out).collect())
            .map_err(|e| self.issued(convert::gate_error(e))))
    }

    async fn describe_relation(
        &mut self,
        name: String,
    ) -> wasmtime::Result<Result<database::RelationDescription, types::Error>> {
        let (ctx, gate, principal) = match self.begin_db_call("describe-relation")? {
            Ok(both) => both,
            Err(e) => return Ok(Err(e)),
        };
        if let Err(e) = inputs::relation(&name) {
            return Ok(Err(self.refuse("describe-relation", &e)));
        }
        let caller = ctx.caller(self.tool.as_deref(), &principal);
        Ok(gate
            .describe_relation(caller, &name)
            .await
            .map(convert::description_out)
            .map_err(|e| self.issued(convert::gate_error(e))))
    }
}

impl log::Host for CallState {
    async fn log(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        self.count_host_call()?;
        let plugin = &*self.plugin.name;
        let message = log_line(&message);
        match level {
            log::Level::Trace => tracing::trace!(target: "sluice::plugin_log", plugin, "{message}"),
            log::Level::Debug => tracing::debug!(target: "sluice::plugin_log", plugin, "{message}"),
            log::Level::Info => tracing::info!(target: "sluice::plugin_log", plugin, "{message}"),
            log::Level::Warn => tracing::warn!(target: "sluice::plugin_log", plugin, "{message}"),
            log::Level::Error => tracing::error!(target: "sluice::plugin_log", plugin, "{message}"),
        }
        Ok(())
    }
}

impl config::Host for CallState {
    async fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        self.count_host_call()?;
        // `get` has no error to return: a key no config can hold is unset.
        if let Err(e) = inputs::config_key(&key) {
            self.refuse("config.get", &e);
            return Ok(None);
        }
        Ok(self.plugin.config.get(&key).cloned())
    }
}

/// Characters of a plugin's log message that reach the log.
const MAX_LOG_CHARS: usize = 4096;

/// A plugin's log message as one line of the host's log: cut at
/// [`MAX_LOG_CHARS`], with control characters escaped so that it can neither
/// forge log lines nor hide them (a carriage return, NUL or terminal escape).
pub(super) fn log_line(message: &str) -> String {
    let mut line = String::with_capacity(message.len().min(MAX_LOG_CHARS));
    for c in message.chars().take(MAX_LOG_CHARS) {
        if c.is_control() {
            line.extend(c.escape_default());
        } else {
            line.push(c);
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_message_stays_one_bounded_line() {
        assert_eq!(log_line("a\nb\r\0\u{1b}[2Jc"), "a\\nb\\r\\u{0}\\u{1b}[2Jc");
        assert_eq!(log_line("é😀"), "é😀");
        assert_eq!(log_line(&"x".repeat(10_000)).len(), MAX_LOG_CHARS);
    }
}
