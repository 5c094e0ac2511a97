//! The wasm runtime: one wasmtime engine, plugins compiled once, and a fresh
//! sandboxed instance for every call.
//!
//! A plugin gets WASI p2 with no directories, no network and no environment;
//! its only way out is the `sluice:plugin` imports, and every database import
//! goes through the [`Gate`]. Each call has a memory cap and a deadline; a
//! trap, timeout or exhausted limit becomes an error, never a host crash.

mod cache;
mod convert;
mod host;
mod inputs;
mod output;

pub use cache::{CompiledCache, Origin};

use crate::gate::Gate;
use crate::policy::{Grant, Limits};
use crate::principal::Principal;
use crate::registry::model::{
    CallError, CompletionOutput, CompletionRequest, Manifest, PromptOutput, PromptSpec,
    ResourceContents, ResourceSpec, ResourceTemplateSpec, ToolOutput, ToolSpec,
};
use bindings::sluice::plugin::types as wt;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tracing::Instrument;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreLimits,
    StoreLimitsBuilder, UpdateDeadline,
};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "plugin",
        imports: { default: async | trappable },
        exports: { default: async },
    });
}

/// How often the epoch advances; deadlines are counted in these ticks.
const EPOCH_TICK: Duration = Duration::from_millis(5);
/// Extra wall-clock time over a plugin's timeout before the host gives up on a
/// call that is stuck outside wasm (the database has its own timeout).
const CALL_GRACE: Duration = Duration::from_millis(1000);

/// Structured results longer than this (in bytes of JSON) are parsed on a
/// blocking thread.
const LARGE_OUTPUT: usize = 64 * 1024;

/// Plugin instances that may exist at once, across all plugins.
const MAX_INSTANCES: u32 = 1000;

/// Every call gets a fresh instance; the pool keeps the address-space
/// reservations of instances, memories, tables and fiber stacks across calls,
/// so a call maps and unmaps nothing: instantiation measured about 20 µs
/// instead of 32 µs at p50, 50 µs instead of 76 µs at p99 (BENCHMARKS.md).
/// Memory a call touched is still returned
/// (keeping it resident and zeroing it cost more than the page faults it
/// saved, and doubled RSS under load). Per-call memory is capped by each
/// plugin's `memory_mb` through [`StoreLimits`].
fn pool() -> PoolingAllocationConfig {
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(MAX_INSTANCES)
        .total_memories(MAX_INSTANCES)
        .total_stacks(MAX_INSTANCES)
        // A component is several core instances (its code, shims, adapters)
        // with a table each.
        .total_core_instances(MAX_INSTANCES * 8)
        .total_tables(MAX_INSTANCES * 4)
        // An interpreter compiled to wasm (componentize-py) has a large
        // function table.
        .table_elements(100_000);
    pool
}

/// Why a component could not be loaded.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LoadError {
    /// Not a component, or not one that implements sluice's world.
    #[error("not a valid sluice component: {message}")]
    Compile { message: String },
    /// Its `describe` export trapped, timed out or returned an error.
    #[error("describe failed: {0}")]
    Describe(CallError),
    /// A schema it declares is not a JSON object schema.
    #[error("{what} {problem}")]
    Schema { what: String, problem: String },
}

/// What every call's store holds.
pub(crate) struct CallState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
    plugin: Arc<PluginContext>,
    tool: Option<String>,
    /// Who the call is for: its database calls run under its role and
    /// identity.
    caller: Arc<Principal>,
    host_calls: u32,
    deadline: Instant,
    /// The denials the host answered this call's host calls with, as
    /// `(rule, message)`: a plugin that passes one on reports a policy
    /// denial; any other `denied` it returns is its own refusal.
    issued_denials: Vec<(String, String)>,
    /// The call's shared read transaction, once a statement calling a
    /// function that keeps session state opened it; rolled back, its
    /// connection closed, when the call's store is dropped.
    session: crate::gate::Session,
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// What a plugin's calls need to know about it.
pub(crate) struct PluginContext {
    name: Arc<str>,
    grant: Grant,
    config: BTreeMap<String, String>,
    /// None while the plugin describes itself: no database access then.
    gate: Option<Arc<Gate>>,
    /// One permit per call that may run at once (`max_concurrent_calls`).
    running: tokio::sync::Semaphore,
}

/// The engine and the linker shared by all plugins.
pub struct Runtime {
    engine: Engine,
    linker: Linker<CallState>,
    gate: Arc<Gate>,
    cache: Option<CompiledCache>,
}

/// What the plugin described about itself.
#[derive(Debug, Clone, Default)]
pub struct Description {
    pub manifest: Manifest,
    pub tools: Vec<ToolSpec>,
    pub resources: Vec<ResourceSpec>,
    pub resource_templates: Vec<ResourceTemplateSpec>,
    pub prompts: Vec<PromptSpec>,
}

/// A compiled plugin that has described itself, granted nothing yet.
pub struct DescribedComponent {
    pre: bindings::PluginPre<CallState>,
    description: Description,
}

impl DescribedComponent {
    /// What the plugin offers and asks for.
    pub fn description(&self) -> &Description {
        &self.description
    }

    /// Offers only the tools `keep` says yes to: the rest are neither
    /// listed nor callable.
    pub fn keep_tools(&mut self, keep: impl Fn(&str) -> bool) {
        self.description.tools.retain(|t| keep(&t.name));
    }
}

/// A compiled, described plugin, ready to be instantiated per call.
pub struct Plugin {
    pre: bindings::PluginPre<CallState>,
    engine: Engine,
    ctx: Arc<PluginContext>,
    description: Description,
}

impl Runtime {
    /// Builds the engine and starts the epoch ticker. With a `cache`,
    /// compiled plugins are kept on disk across restarts.
    pub fn new(gate: Arc<Gate>, cache: Option<CompiledCache>) -> anyhow::Result<Runtime> {
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .cranelift_opt_level(wasmtime::OptLevel::Speed)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool()));
        let engine = Engine::new(&config)?;

        let mut linker = Linker::<CallState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        bindings::Plugin::add_to_linker::<CallState, HasSelf<CallState>>(&mut linker, |s| s)?;

        // The ticker holds only a weak handle, so it ends with the engine.
        let weak = engine.weak();
        std::thread::Builder::new()
            .name("sluice-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })?;

        Ok(Runtime {
            engine,
            linker,
            gate,
            cache,
        })
    }

    /// The gate its plugins' database calls go through.
    pub fn gate(&self) -> &Arc<Gate> {
        &self.gate
    }

    /// The engine every plugin is compiled for (the bench times compiles
    /// and cache loads against it).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Whether `wasm` is compiled already, in the on-disk cache: loading it
    /// then takes milliseconds rather than a compile.
    pub fn is_cached(&self, wasm: &[u8]) -> bool {
        self.cache
            .as_ref()
            .is_some_and(|cache| cache.contains(&self.engine, wasm))
    }

    /// Compiles `wasm` (off the async threads) and instantiates it once to
    /// read its description, with no grant at all and `limits` for the call.
    /// `source` names the plugin in its logs until its manifest does.
    /// `config` is what its `describe` reads: empty, but for a component
    /// whose tools are data (declared tools).
    pub async fn load(
        &self,
        source: &str,
        wasm: Vec<u8>,
        limits: &Limits,
        config: BTreeMap<String, String>,
    ) -> Result<DescribedComponent, LoadError> {
        let compile_err = |message: String| LoadError::Compile { message };
        let component = self.compile(source, wasm).await?;
        let instance_pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| compile_err(format!("{e:#}")))?;
        let pre =
            bindings::PluginPre::new(instance_pre).map_err(|e| compile_err(format!("{e:#}")))?;
        let describing = Plugin {
            pre,
            engine: self.engine.clone(),
            ctx: self.context(source, Grant::nothing(*limits), config, None),
            description: Description::default(),
        };
        let raw = describing
            .call(None, &Arc::new(Principal::local()), |p, store| {
                Box::pin(async move { p.sluice_plugin_handler().call_describe(store).await })
            })
            .await
            .map_err(LoadError::Describe)?
            .0;
        let description = convert::description(raw)?;
        Ok(DescribedComponent {
            pre: describing.pre,
            description,
        })
    }

    /// Compiles `wasm` off the async threads, or loads it from the
    /// compiled cache, putting it there when it was not.
    pub async fn compile(&self, source: &str, wasm: Vec<u8>) -> Result<Component, LoadError> {
        let compile_err = |message: String| LoadError::Compile { message };
        let engine = self.engine.clone();
        let cache = self.cache.clone();
        let name = source.to_string();
        let (component, origin, took) = tokio::task::spawn_blocking(move || {
            let cached = cache.as_ref().is_some_and(|c| c.contains(&engine, &wasm));
            if !cached {
                // Seconds for a large plugin (an interpreter compiled to
                // wasm): say so before, not only after.
                tracing::info!(source = %name, "compiling {name} ({})…", size_text(wasm.len()));
            }
            let started = Instant::now();
            let loaded = match cache {
                Some(cache) => cache.load_or_compile(&engine, &wasm),
                None => Component::new(&engine, &wasm).map(|c| (c, Origin::Uncached)),
            };
            loaded.map(|(component, origin)| (component, origin, started.elapsed()))
        })
        .await
        .map_err(|e| compile_err(e.to_string()))?
        .map_err(|e| compile_err(format!("{e:#}")))?;
        let ms = took.as_millis() as u64;
        match origin {
            Origin::CacheHit => {
                tracing::info!(%source, ms, "loaded compiled plugin from the cache")
            }
            Origin::CacheMiss => {
                tracing::info!(%source, ms, "compiled {source} in {ms} ms (now cached)")
            }
            Origin::Uncached => {
                tracing::info!(%source, ms, "compiled {source} in {ms} ms (no cache)")
            }
        }
        Ok(component)
    }

    /// The loaded plugin, ready to serve under `grant` with `config`.
    pub fn activate(
        &self,
        loaded: DescribedComponent,
        grant: Grant,
        config: BTreeMap<String, String>,
    ) -> Plugin {
        Plugin {
            pre: loaded.pre,
            engine: self.engine.clone(),
            ctx: self.context(
                &loaded.description.manifest.name,
                grant,
                config,
                Some(self.gate.clone()),
            ),
            description: loaded.description,
        }
    }

    fn context(
        &self,
        name: &str,
        grant: Grant,
        config: BTreeMap<String, String>,
        gate: Option<Arc<Gate>>,
    ) -> Arc<PluginContext> {
        let running = tokio::sync::Semaphore::new(grant.limits.max_concurrent_calls as usize);
        Arc::new(PluginContext {
            name: Arc::from(name),
            grant,
            config,
            gate,
            running,
        })
    }
}

type CallFuture<'a, R> = std::pin::Pin<Box<dyn Future<Output = wasmtime::Result<R>> + Send + 'a>>;

impl Plugin {
    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.ctx.name
    }

    /// What the plugin offers.
    pub fn description(&self) -> &Description {
        &self.description
    }

    /// What its calls may do: the operator's grant narrowed by its manifest.
    pub fn grant(&self) -> &Grant {
        &self.ctx.grant
    }

    /// Sets up a fresh store and instance exactly as a call does, and drops
    /// them without running plugin code: the fixed cost of every call.
    pub async fn instantiate(&self) -> Result<(), CallError> {
        self.call(None, &Arc::new(Principal::local()), |_, _| {
            Box::pin(async { Ok(()) })
        })
        .await
        .map(|_| ())
    }

    /// [`Plugin::call`] of an export that answers with the WIT `error`,
    /// which becomes a [`CallError`] that says whose it is (see
    /// [`convert::call_error`]).
    async fn call_export<T>(
        &self,
        tool: Option<&str>,
        caller: &Arc<Principal>,
        f: impl for<'a> FnOnce(
            &'a bindings::Plugin,
            &'a mut Store<CallState>,
        ) -> CallFuture<'a, Result<T, wt::Error>>,
    ) -> Result<T, CallError> {
        let (result, issued) = self.call(tool, caller, f).await?;
        result.map_err(|e| convert::call_error(e, &self.ctx.name, &issued))
    }

    /// Runs `f` against a fresh instance in a fresh store with this plugin's
    /// limits, on behalf of `caller`, and turns traps and timeouts into
    /// [`CallError::Plugin`]. Returns what `f` did and the denials the host
    /// issued meanwhile.
    async fn call<R>(
        &self,
        tool: Option<&str>,
        caller: &Arc<Principal>,
        f: impl for<'a> FnOnce(&'a bindings::Plugin, &'a mut Store<CallState>) -> CallFuture<'a, R>,
    ) -> Result<(R, Vec<(String, String)>), CallError> {
        let limits = &self.ctx.grant.limits;
        // Refused rather than queued: a plugin at its limit is busy or stuck,
        // and a queue would only hide that from the client.
        let _permit = self
            .ctx
            .running
            .try_acquire()
            .map_err(|_| CallError::Denied {
                rule: "max_concurrent_calls".into(),
                message: format!(
                    "plugin {} is already running {} calls, its max_concurrent_calls limit; \
                     retry when one finishes",
                    self.ctx.name, limits.max_concurrent_calls
                ),
            })?;
        let timeout = Duration::from_millis(limits.timeout_ms);
        let budget = Arc::new(AtomicUsize::new(output::OUTPUT_BUDGET));
        let wasi = wasmtime_wasi::WasiCtxBuilder::new()
            .stdout(output::LogOutput::new(
                self.ctx.name.clone(),
                "stdout",
                budget.clone(),
            ))
            .stderr(output::LogOutput::new(
                self.ctx.name.clone(),
                "stderr",
                budget,
            ))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }))
            .build();
        let state = CallState {
            wasi,
            table: ResourceTable::new(),
            limits: StoreLimitsBuilder::new()
                .memory_size(usize::try_from(limits.memory_bytes()).unwrap_or(usize::MAX))
                .instances(32)
                .tables(64)
                .memories(16)
                .trap_on_grow_failure(true)
                .build(),
            plugin: self.ctx.clone(),
            tool: tool.map(str::to_string),
            caller: caller.clone(),
            host_calls: 0,
            deadline: Instant::now() + timeout,
            issued_denials: Vec::new(),
            session: crate::gate::Session::default(),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        // Yield to the executor every tick so a busy plugin cannot hog a worker
        // thread, and trap once the call's deadline has passed.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|ctx| {
            if Instant::now() >= ctx.data().deadline {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });

        let name = self.ctx.name.clone();
        // Every log line of the call, the host calls' and the gate's
        // included, carries which plugin, tool and call it belongs to.
        let span = tracing::info_span!(
            "plugin_call",
            plugin = %name,
            tool = %tool.unwrap_or("-"),
            call = CALL_IDS.fetch_add(1, Ordering::Relaxed),
        );
        let failed = |blame: Blame, message: String| {
            span.in_scope(|| tracing::info!(%blame, "plugin call failed: {message}"));
            CallError::Plugin {
                plugin: name.to_string(),
                message,
            }
        };
        let run = async {
            let instance = self.pre.instantiate_async(&mut store).await?;
            f(&instance, &mut store).await
        };
        match tokio::time::timeout(timeout + CALL_GRACE, run.instrument(span.clone())).await {
            // Stuck outside wasm past the grace: the host's side did not end it.
            Err(_) => Err(failed(Blame::Host, timed_out(limits))),
            Ok(Ok(value)) => Ok((value, std::mem::take(&mut store.data_mut().issued_denials))),
            Ok(Err(e)) => Err(failed(Blame::of(&e), describe_trap(&e, limits))),
        }
    }

    /// Calls tool `name` with JSON `arguments`, for `caller`.
    pub async fn call_tool(
        &self,
        name: &str,
        arguments: String,
        caller: &Arc<Principal>,
    ) -> Result<ToolOutput, CallError> {
        let owned = name.to_string();
        let result = self
            .call_export(Some(name), caller, |p, store| {
                Box::pin(async move {
                    p.sluice_plugin_handler()
                        .call_call_tool(store, &owned, &arguments)
                        .await
                })
            })
            .await?;
        let large = result
            .structured
            .as_ref()
            .is_some_and(|s| s.len() > LARGE_OUTPUT);
        if !large {
            return convert::tool_result(result);
        }
        // Parsing megabytes of a plugin's JSON is work for a blocking
        // thread, not an async worker.
        tokio::task::spawn_blocking(move || convert::tool_result(result))
            .await
            .map_err(|e| CallError::Internal(format!("reading the tool's result: {e}")))?
    }

    /// Reads a resource, for `caller`.
    pub async fn read_resource(
        &self,
        uri: &str,
        caller: &Arc<Principal>,
    ) -> Result<Vec<ResourceContents>, CallError> {
        let uri = uri.to_string();
        let result = self
            .call_export(None, caller, |p, store| {
                Box::pin(async move {
                    p.sluice_plugin_handler()
                        .call_read_resource(store, &uri)
                        .await
                })
            })
            .await;
        result.map(|contents| {
            contents
                .into_iter()
                .map(convert::resource_contents)
                .collect()
        })
    }

    /// Renders a prompt, for `caller`.
    pub async fn get_prompt(
        &self,
        name: &str,
        arguments: Vec<(String, String)>,
        caller: &Arc<Principal>,
    ) -> Result<PromptOutput, CallError> {
        let name = name.to_string();
        let result = self
            .call_export(None, caller, |p, store| {
                Box::pin(async move {
                    p.sluice_plugin_handler()
                        .call_get_prompt(store, &name, &arguments)
                        .await
                })
            })
            .await;
        result.map(convert::prompt_result)
    }

    /// Completes an argument, for `caller`.
    pub async fn complete(
        &self,
        request: CompletionRequest,
        caller: &Arc<Principal>,
    ) -> Result<CompletionOutput, CallError> {
        let request = convert::completion_request(request);
        let result = self
            .call_export(None, caller, |p, store| {
                Box::pin(async move {
                    p.sluice_plugin_handler()
                        .call_complete(store, &request)
                        .await
                })
            })
            .await;
        result.map(convert::completion)
    }
}

/// A byte count for people: `18.5 MB`, `940 KB`.
fn size_text(bytes: usize) -> String {
    let b = bytes as f64;
    if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else {
        format!("{:.0} KB", (b / 1e3).max(1.0))
    }
}

fn timed_out(limits: &Limits) -> String {
    format!(
        "timed out after {} ms, its timeout_ms limit",
        limits.timeout_ms
    )
}

/// Numbers plugin calls for the log, so a call's lines can be told apart.
static CALL_IDS: AtomicU64 = AtomicU64::new(1);

/// Whose fault a failed call was: the plugin's code (a trap, a limit it
/// reached, its deadline inside wasm) or the host's (a host function that
/// failed, or a call stuck outside wasm).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Blame {
    Guest,
    Host,
}

impl Blame {
    fn of(e: &wasmtime::Error) -> Blame {
        let guest = e.downcast_ref::<wasmtime::Trap>().is_some()
            || e.downcast_ref::<host::HostLimitExceeded>().is_some()
            || memory_refused(e);
        if guest { Blame::Guest } else { Blame::Host }
    }
}

impl std::fmt::Display for Blame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Blame::Guest => "guest",
            Blame::Host => "host",
        })
    }
}

/// A one-line account of why a call failed (without the wasm backtrace, which
/// goes to the log).
fn describe_trap(e: &wasmtime::Error, limits: &Limits) -> String {
    tracing::debug!("plugin call failed: {e:?}");
    if let Some(trap) = e.downcast_ref::<wasmtime::Trap>() {
        return match trap {
            wasmtime::Trap::Interrupt => timed_out(limits),
            wasmtime::Trap::UnreachableCodeReached => {
                "trapped (unreachable code reached: the plugin panicked or aborted)".to_string()
            }
            other => format!("trapped: {other}"),
        };
    }
    if let Some(limit) = e.downcast_ref::<host::HostLimitExceeded>() {
        return limit.to_string();
    }
    if memory_refused(e) {
        return format!("exceeded its memory_mb limit of {} MiB", limits.memory_mb);
    }
    format!("failed: {}", e.root_cause())
}

/// Whether the call ended because its store refused to grow memory past
/// `memory_mb` (StoreLimits reports it only as this message).
fn memory_refused(e: &wasmtime::Error) -> bool {
    e.root_cause()
        .to_string()
        .contains("forcing trap when growing memory")
}
