//! The registry that serves, swapped whole when the plugin directory
//! changes: new versions compile off the request path, calls in flight
//! finish on the version they started with (they hold it), and clients
//! are told which lists changed.

use super::model::{
    CallError, CompletionOutput, CompletionRequest, ListChanges, PluginHost, PromptOutput,
    PromptSpec, ResourceContents, ResourceSpec, ResourceTemplateSpec, Scope, ToolOutput, ToolSpec,
};
use super::{Loader, Registry};
use crate::principal::Principal;
use serde_json::{Map, Value as Json};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};

/// How long the directory must be quiet before a rescan: a file being
/// copied in raises many events.
const SETTLE: Duration = Duration::from_millis(200);
/// How soon a file the database could not check is tried again, the first
/// time; the wait doubles up to [`RETRY_MAX`] while the database stays away.
const RETRY_FIRST: Duration = Duration::from_secs(2);
const RETRY_MAX: Duration = Duration::from_secs(60);

/// The current [`Registry`], replaceable while serving.
pub struct LiveRegistry {
    current: RwLock<Arc<Registry>>,
    changes: broadcast::Sender<ListChanges>,
    in_flight: Arc<AtomicUsize>,
}

/// Counts one call in flight for as long as it lives (also when the call's
/// future is dropped midway).
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn new(counter: &Arc<AtomicUsize>) -> InFlight {
        counter.fetch_add(1, Ordering::SeqCst);
        InFlight(counter.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl LiveRegistry {
    pub fn new(registry: Registry) -> LiveRegistry {
        LiveRegistry {
            current: RwLock::new(Arc::new(registry)),
            changes: broadcast::channel(16).0,
            in_flight: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The registry serving now.
    pub fn current(&self) -> Arc<Registry> {
        // A poisoned lock only means a panic elsewhere mid-swap; the Arc
        // inside is whole either way.
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Serves `registry` from now on and tells subscribers what changed.
    pub fn replace(&self, registry: Registry) -> ListChanges {
        let old = self.current();
        let all = Scope::All;
        let changes = ListChanges {
            tools: old.tools(&all) != registry.tools(&all),
            resources: old.resources(&all) != registry.resources(&all)
                || old.resource_templates(&all) != registry.resource_templates(&all),
            prompts: old.prompts(&all) != registry.prompts(&all),
        };
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(registry);
        if changes.any() {
            // No receivers is fine: no client is connected.
            let _ = self.changes.send(changes);
        }
        changes
    }
}

impl PluginHost for LiveRegistry {
    fn list_changes(&self) -> Option<broadcast::Receiver<ListChanges>> {
        Some(self.changes.subscribe())
    }

    fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    fn tools(&self, scope: &Scope) -> Vec<ToolSpec> {
        self.current().tools(scope)
    }

    fn resources(&self, scope: &Scope) -> Vec<ResourceSpec> {
        self.current().resources(scope)
    }

    fn resource_templates(&self, scope: &Scope) -> Vec<ResourceTemplateSpec> {
        self.current().resource_templates(scope)
    }

    fn prompts(&self, scope: &Scope) -> Vec<PromptSpec> {
        self.current().prompts(scope)
    }

    async fn call_tool(
        &self,
        caller: &Arc<Principal>,
        name: &str,
        arguments: Map<String, Json>,
    ) -> Result<ToolOutput, CallError> {
        let _call = InFlight::new(&self.in_flight);
        self.current().call_tool(caller, name, arguments).await
    }

    async fn read_resource(
        &self,
        caller: &Arc<Principal>,
        uri: &str,
    ) -> Result<Vec<ResourceContents>, CallError> {
        let _call = InFlight::new(&self.in_flight);
        self.current().read_resource(caller, uri).await
    }

    async fn get_prompt(
        &self,
        caller: &Arc<Principal>,
        name: &str,
        arguments: Vec<(String, String)>,
    ) -> Result<PromptOutput, CallError> {
        let _call = InFlight::new(&self.in_flight);
        self.current().get_prompt(caller, name, arguments).await
    }

    async fn complete(
        &self,
        caller: &Arc<Principal>,
        request: CompletionRequest,
    ) -> Result<CompletionOutput, CallError> {
        let _call = InFlight::new(&self.in_flight);
        self.current().complete(caller, request).await
    }
}

/// Watches the plugin directory and swaps in a new registry after each
/// change. With `compiling`, it first loads the directory's plugins that
/// [`Loader::new_ready`] left for later, then checks the config's plugin
/// names as a start without them could not: an entry naming no plugin
/// makes sluice serve nothing (fail closed), with the reason logged, until
/// a change of the directory or a restart sets it right. A tools file the
/// database could not check is loaded again after 2 s, then after waits
/// doubling up to a minute, until it can be. Runs until the returned
/// watcher is dropped.
pub fn watch(
    live: Arc<LiveRegistry>,
    mut loader: Loader,
    compiling: bool,
) -> anyhow::Result<Option<notify::RecommendedWatcher>> {
    use notify::Watcher as _;
    let Some(dir) = loader.plugin_dir().map(Path::to_path_buf) else {
        return Ok(None);
    };
    let (tx, mut rx) = mpsc::unbounded_channel::<()>();
    let mut watcher =
        notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
            Ok(event) if event.kind.is_access() => {}
            Ok(_) => {
                let _ = tx.send(());
            }
            Err(e) => tracing::warn!("watching the plugin directory: {e}"),
        })?;
    watcher.watch(&dir, notify::RecursiveMode::NonRecursive)?;
    tracing::info!(dir = %dir.display(), "watching the plugin directory");
    let mut names = loader.plugin_names();
    tokio::spawn(async move {
        // The first pass loads what the start left to compile, without
        // waiting for a change of the directory.
        let mut first = compiling;
        // Whether the config names a plugin that is not there, found when
        // the plugins the start could not wait for were loaded: then
        // nothing is served until that is set right.
        let mut closed = false;
        let mut retry = RETRY_FIRST;
        loop {
            let initial = std::mem::take(&mut first);
            if !initial {
                // A file the database could not check is tried again,
                // without waiting for a change of the directory.
                let event = if loader.awaiting_retry() {
                    let waited = tokio::time::timeout(retry, rx.recv()).await;
                    if waited.is_err() {
                        retry = (retry * 2).min(RETRY_MAX);
                    }
                    waited.unwrap_or(Some(()))
                } else {
                    retry = RETRY_FIRST;
                    rx.recv().await
                };
                if event.is_none() {
                    break;
                }
                // Wait for the directory to settle, then rescan once.
                while let Ok(Some(())) = tokio::time::timeout(SETTLE, rx.recv()).await {}
            }
            let changed = match loader.rescan().await {
                Ok(changed) => changed,
                Err(e) => {
                    tracing::error!("rescanning the plugin directory: {e:#}");
                    continue;
                }
            };
            if !(changed || initial || closed) {
                continue;
            }
            let check = loader.check_config_names();
            if (initial || closed) && !check.unknown.is_empty() {
                for problem in &check.unknown {
                    tracing::error!(
                        "{problem}; sluice serves no plugin until the config or the plugin \
                         directory is fixed"
                    );
                }
                live.replace(Registry::default());
                closed = true;
                names = loader.plugin_names();
                continue;
            }
            let (registry, _) = loader.registry();
            let changes = live.replace(registry);
            if initial || closed {
                check.log_awaited();
                tracing::info!(?changes, "all plugins loaded");
            } else {
                tracing::info!(?changes, "plugins reloaded");
                // The config was checked against the plugins at start; a
                // plugin gone (or come) can make one of its names point
                // nowhere. Serving goes on: the log says it.
                let now = loader.plugin_names();
                if now != names {
                    for problem in &check.unknown {
                        tracing::error!("after the plugin change: {problem}");
                    }
                    check.log_awaited();
                }
            }
            closed = false;
            names = loader.plugin_names();
        }
    });
    Ok(Some(watcher))
}
