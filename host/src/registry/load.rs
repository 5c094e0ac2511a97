//! Loading plugins: the embedded first-party ones and every `*.wasm` in the
//! plugin directory, each granted what both its manifest requests and the
//! operator allows. The same pass serves `sluice serve` and `sluice plugins`.

use super::names::{NameCheck, check_names};
use super::{FIRST_PARTY, PluginError, Registry, SQL_TOOLS};
use crate::config::Config;
use crate::declared::{self, ToolsFile};
use crate::gate::Caller;
use crate::identity::{self, Identity, Publishers};
use crate::policy::{FunctionRules, Grant, Limits, Pattern, Requests};
use crate::principal::Principal;
use crate::registry::model::Manifest;
use crate::runtime::{Plugin, Runtime};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

/// One plugin as loaded, for `plugins list/check` and the start-up report:
/// who it is, what it asked for, what it got.
#[derive(Debug, Clone)]
pub struct PluginSummary {
    pub manifest: Manifest,
    /// What the operator's config grants it.
    pub granted: Grant,
    /// What it runs under: the grant narrowed to its requests.
    pub effective: Grant,
    /// What it requested and was not granted, one line each.
    pub unmet: Vec<String>,
    pub tools: Vec<String>,
    pub resources: Vec<String>,
    pub resource_templates: Vec<String>,
    pub prompts: Vec<String>,
    /// The keys of its `[plugins.config.<name>]` (values are never shown).
    pub config_keys: Vec<String>,
    /// Listed in `[plugins] disabled`: described, but not serving.
    pub disabled: bool,
    /// Granted none of the database access it requests (see [`is_idle`]):
    /// described, but not serving, since none of its calls could succeed.
    pub idle: bool,
    /// Its digest and who signed it.
    pub identity: Identity,
    /// Why its grant was withheld: the grant is bound to a publisher or a
    /// digest that this plugin does not meet. It is then granted nothing
    /// and not served.
    pub withheld: Option<String>,
}

impl PluginSummary {
    /// Whether clients are offered its tools, resources and prompts. A
    /// plugin whose grant was withheld is not: it claims a name bound to
    /// another publisher or content, and served, it would hold that name
    /// against the plugin the grant is for.
    pub fn serving(&self) -> bool {
        !self.disabled && !self.idle && self.withheld.is_none()
    }

    /// The capabilities it requests, one item each (`read public.*`,
    /// `write *.*`, `catalog`).
    pub fn requested(&self) -> Vec<String> {
        let q = &self.manifest.requests;
        let read = q.read.iter().map(|p| format!("read {p}"));
        let write = q.write.iter().map(|p| format!("write {p}"));
        read.chain(write)
            .chain(q.catalog.then(|| "catalog".to_string()))
            .collect()
    }

    /// The config table that would grant what it requests, one TOML line
    /// each, for an idle plugin's report. A pattern on every schema
    /// (`*.*`) is narrowed to `public`: a safe start the operator widens.
    pub fn enabling_config(&self) -> Vec<String> {
        let q = &self.manifest.requests;
        let list = |patterns: &[String]| {
            let mut out: Vec<String> = Vec::new();
            for p in patterns {
                let text = Pattern::parse(p).map_or_else(|_| p.clone(), |p| p.to_string());
                let text = match text.strip_prefix("*.") {
                    Some(name) => format!("\"public.{name}\""),
                    None => format!("{text:?}"),
                };
                if !out.contains(&text) {
                    out.push(text);
                }
            }
            out.join(", ")
        };
        let mut lines = vec![format!("[plugins.grants.{}]", self.manifest.name)];
        if !q.read.is_empty() {
            lines.push(format!("read = [{}]", list(&q.read)));
        }
        if !q.write.is_empty() {
            lines.push(format!("write = [{}]", list(&q.write)));
        }
        if q.catalog {
            lines.push("catalog = true".to_string());
        }
        lines
    }
}

/// Whether a plugin is idle: its manifest requests database access (a
/// read or write pattern, or catalog) and `granted` meets none of it, by
/// the same rule as the NOT GRANTED lines of `plugins check`. A plugin that
/// requests no access (pure computation; limits do not count) is never
/// idle; one granted part of what it requests is served, short of the rest.
fn is_idle(granted: &Grant, requests: &Requests) -> bool {
    let met = |request: Requests| {
        granted
            .clone()
            .narrowed(&request)
            .is_ok_and(|(_, unmet)| unmet.is_empty())
    };
    let asks = !requests.read.is_empty() || !requests.write.is_empty() || requests.catalog;
    let gets = requests.read.iter().any(|p| {
        met(Requests {
            read: vec![p.clone()],
            ..Requests::default()
        })
    }) || requests.write.iter().any(|p| {
        met(Requests {
            write: vec![p.clone()],
            ..Requests::default()
        })
    }) || (requests.catalog && granted.catalog);
    asks && !gets
}

/// What happened to one plugin source at load.
#[derive(Debug, Clone)]
pub struct LoadReport {
    /// `embedded sql-read` or the file's path.
    pub source: String,
    /// The plugin, or why it was not loaded.
    pub outcome: Result<PluginSummary, PluginError>,
}

/// A plugin file in the plugin directory, as last read.
struct FileState {
    /// SHA-256 of its bytes and its detached signature: an unchanged file
    /// is not loaded (or verified) again.
    hash: [u8; 32],
    /// The version in use, and what it was when loaded: the file's, or the
    /// previous one when the file became unloadable.
    plugin: Option<(Arc<Plugin>, PluginSummary)>,
    /// What happened when the current bytes were loaded.
    outcome: Result<PluginSummary, PluginError>,
}

/// Loads plugins and keeps what it loaded, so that a rescan of the plugin
/// directory loads only files that changed.
pub struct Loader {
    runtime: Arc<Runtime>,
    config: Config,
    publishers: Publishers,
    limits: Limits,
    functions: Arc<FunctionRules>,
    first_party: Vec<(String, Arc<Plugin>, PluginSummary)>,
    files: BTreeMap<String, FileState>,
}

impl Loader {
    /// Loads the first-party plugins (unless `first_party = false`) and every
    /// `*.wasm` in the plugin directory. A first-party plugin failing is a
    /// bug and an error; a directory plugin failing is reported and skipped.
    pub async fn new(runtime: Arc<Runtime>, config: &Config) -> anyhow::Result<Loader> {
        let mut loader = Loader::first_party(runtime, config).await?;
        loader.rescan().await?;
        Ok(loader)
    }

    /// As [`Loader::new`], but leaves the directory's plugins that would
    /// need a compile (those not in the compiled cache) for a later
    /// [`Loader::rescan`], so that serving can start at once. Returns
    /// whether any were left.
    pub async fn new_ready(
        runtime: Arc<Runtime>,
        config: &Config,
    ) -> anyhow::Result<(Loader, bool)> {
        let mut loader = Loader::first_party(runtime, config).await?;
        let deferred = loader.scan(true).await?.1;
        Ok((loader, deferred))
    }

    /// The first-party plugins alone.
    async fn first_party(runtime: Arc<Runtime>, config: &Config) -> anyhow::Result<Loader> {
        let functions = Arc::new(
            FunctionRules::new(
                config.policy.allow_functions.as_deref(),
                &config.policy.deny_functions,
            )
            .map_err(anyhow::Error::msg)?,
        );
        let publishers = Publishers::new(&config.plugins.publishers)?;
        if config.plugins.signature_required()
            && publishers.is_empty()
            && config.plugins.dir.is_some()
        {
            tracing::warn!(
                "[plugins] require_signature = true and no [plugins.publishers]: every file in \
                 the plugin directory will be refused; trust a publisher's key there \
                 (`sluice plugins keygen` prints the line)"
            );
        }
        let mut loader = Loader {
            runtime,
            config: config.clone(),
            publishers,
            limits: config.plugin_limits(),
            functions,
            first_party: Vec::new(),
            files: BTreeMap::new(),
        };
        if config.plugins.first_party {
            for (name, wasm) in FIRST_PARTY {
                let source = format!("embedded {name}");
                let identity = Identity::first_party(wasm);
                let (plugin, loaded) = loader
                    .load_one(&source, wasm.to_vec(), identity, None)
                    .await
                    .map_err(|e| anyhow::anyhow!("{source}: {e}"))?;
                loader.first_party.push((source, Arc::new(plugin), loaded));
            }
        }
        // The operator's own, so a mistake in them stops the start as a
        // config error would.
        for (name, file) in &config.plugins.tools {
            let source = format!("[plugins.tools.{name}]");
            let (plugin, loaded) = loader
                .load_declared(&source, name, file, None)
                .await
                .map_err(|e| anyhow::anyhow!("{source}: {e}"))?;
            loader.first_party.push((source, Arc::new(plugin), loaded));
        }
        Ok(loader)
    }

    /// Reads the plugin directory again and loads what is new or changed.
    /// Returns whether anything changed. A file that no longer loads keeps
    /// its previous version serving.
    pub async fn rescan(&mut self) -> anyhow::Result<bool> {
        Ok(self.scan(false).await?.0)
    }

    /// [`Loader::rescan`]; with `defer_compiles`, files not in the compiled
    /// cache are left unread (so the next scan loads them). Returns whether
    /// anything changed and whether anything was deferred. The files that
    /// need loading are loaded side by side: compiles run in parallel.
    async fn scan(&mut self, defer_compiles: bool) -> anyhow::Result<(bool, bool)> {
        let Some(dir) = self.config.plugins.dir.clone() else {
            return Ok((false, false));
        };
        let max_bytes = self.config.plugins.max_file_mb.saturating_mul(1024 * 1024);
        let listing = dir.clone();
        let runtime = self.runtime.clone();
        let publishers = self.publishers.clone();
        // A file whose load may pass now without a change is loaded again.
        let known: BTreeMap<String, [u8; 32]> = self
            .files
            .iter()
            .filter(|(_, state)| !state.outcome.as_ref().is_err_and(PluginError::retried))
            .map(|(name, state)| (name.clone(), state.hash))
            .collect();
        // Reading, hashing and verifying files, and looking each up in the
        // compiled cache (which hashes it again, with the engine), is
        // blocking work, kept off the async workers. An unchanged file is
        // neither verified nor looked up again.
        let files = tokio::task::spawn_blocking(move || {
            read_plugin_dir(&listing, max_bytes).map(|files| {
                files
                    .into_iter()
                    .map(|file| {
                        let code: &[u8] = if file.declared {
                            SQL_TOOLS
                        } else {
                            &file.bytes
                        };
                        if known.get(&file.name) == Some(&file.hash) {
                            Scanned::Unchanged(file.name)
                        } else if defer_compiles && !runtime.is_cached(code) {
                            Scanned::Deferred(file.name)
                        } else if file.declared {
                            let identity = Identity::declared(&file.bytes);
                            Scanned::Load(file, identity)
                        } else {
                            let identity = identity::identify_hashed(
                                &file.sha256,
                                &file.bytes,
                                file.detached.as_deref(),
                                &publishers,
                            );
                            Scanned::Load(file, identity)
                        }
                    })
                    .collect::<Vec<_>>()
            })
        })
        .await
        .map_err(|e| anyhow::anyhow!("reading the plugin directory: {e}"))??;
        let mut seen = BTreeMap::new();
        let mut changed = false;
        let mut deferred = false;
        let mut to_load = Vec::new();
        for scanned in files {
            match scanned {
                Scanned::Unchanged(name) => {
                    if let Some(state) = self.files.remove(&name) {
                        seen.insert(name, state);
                    }
                }
                Scanned::Deferred(name) => {
                    self.files.remove(&name);
                    tracing::info!(file = %name, "not compiled yet: served once it is");
                    deferred = true;
                }
                Scanned::Load(file, identity) => {
                    let previous = self.files.remove(&file.name);
                    to_load.push((file, identity, previous));
                }
            }
        }
        let this = &*self;
        let loads = to_load.into_iter().map(|(file, identity, previous)| {
            let source = dir.join(&file.name).display().to_string();
            async move {
                let loaded = match declared::file_stem(&file.name).filter(|_| file.declared) {
                    Some(stem) => this.load_tools_file(&source, stem, &file.bytes).await,
                    None => this.load_one(&source, file.bytes, identity, None).await,
                };
                (file.name, file.hash, source, previous, loaded)
            }
        });
        let results = futures::future::join_all(loads).await;
        for (name, hash, source, previous, loaded) in results {
            // The same file failing again the same retried way changes nothing.
            let again = |e: &PluginError| {
                e.retried()
                    && previous.as_ref().is_some_and(|p| {
                        p.hash == hash && p.outcome.as_ref().is_err_and(PluginError::retried)
                    })
            };
            changed |= !loaded.as_ref().is_err_and(&again);
            let state = match loaded {
                Ok((plugin, loaded)) => FileState {
                    hash,
                    plugin: Some((Arc::new(plugin), loaded.clone())),
                    outcome: Ok(loaded),
                },
                Err(e) => {
                    let repeated = again(&e);
                    let kept = previous.and_then(|p| p.plugin);
                    if repeated {
                        tracing::debug!(%source, "plugin still not checked: {e}");
                    } else if kept.is_some() {
                        tracing::error!(%source, "plugin not reloaded, the previous version keeps serving: {e}");
                    } else {
                        tracing::error!(%source, "plugin not loaded: {e}");
                    }
                    FileState {
                        hash,
                        plugin: kept,
                        outcome: Err(e),
                    }
                }
            };
            seen.insert(name, state);
        }
        changed |= !self.files.is_empty();
        for file in self.files.keys() {
            tracing::info!(%file, "plugin file removed");
        }
        self.files = seen;
        Ok((changed, deferred))
    }

    /// Whether a file failed in a way that a later [`Loader::rescan`] may
    /// get past without the file changing (the database could not answer).
    pub fn awaiting_retry(&self) -> bool {
        self.files
            .values()
            .any(|state| state.outcome.as_ref().is_err_and(PluginError::retried))
    }

    /// The directory it loads plugins from, if any.
    pub fn plugin_dir(&self) -> Option<&Path> {
        self.config.plugins.dir.as_deref()
    }

    /// The name of every plugin loaded, served or not (disabled, idle, or
    /// clashing): the names the config may use.
    pub fn plugin_names(&self) -> BTreeSet<String> {
        let first_party = self.first_party.iter().map(|(_, p, _)| p.name());
        let files = self
            .files
            .values()
            .filter_map(|f| f.plugin.as_ref().map(|(p, _)| p.name()));
        first_party.chain(files).map(str::to_string).collect()
    }

    /// The config's plugin names checked against the plugins loaded now.
    pub fn check_config_names(&self) -> NameCheck {
        let dir = self.config.plugins.dir.as_deref().unwrap_or(Path::new(""));
        let failed: Vec<String> = self
            .files
            .iter()
            .filter(|(_, f)| f.plugin.is_none())
            .map(|(file, _)| dir.join(file).display().to_string())
            .collect();
        // A tools file's name is its plugin's, loaded or not: its failure
        // is reported as such, not as the config naming nothing.
        let mut names = self.plugin_names();
        names.extend(
            self.files
                .keys()
                .filter_map(|file| declared::file_stem(file))
                .map(str::to_string),
        );
        check_names(&self.config, &names, &failed)
    }

    /// The registry of what serves now, and a report per plugin source. A
    /// plugin whose names collide with one before it is left out.
    pub fn registry(&self) -> (Registry, Vec<LoadReport>) {
        let dir = self.config.plugins.dir.as_deref().unwrap_or(Path::new(""));
        let mut registry = Registry::default();
        let mut reports = Vec::new();
        let first_party = self.first_party.iter().map(|(source, plugin, loaded)| {
            (
                source.clone(),
                Some((plugin.clone(), loaded.clone())),
                Ok(loaded.clone()),
            )
        });
        let files = self.files.iter().map(|(file, state)| {
            (
                dir.join(file).display().to_string(),
                state.plugin.clone(),
                state.outcome.clone(),
            )
        });
        for (source, plugin, outcome) in first_party.chain(files) {
            let outcome = match (plugin, outcome) {
                // `in_use` is the outcome's plugin, or the previous version
                // of a file that broke.
                (Some((plugin, in_use)), outcome) => {
                    if in_use.serving() {
                        let prefix = self.config.plugins.prefix_for(plugin.name());
                        match registry.add(plugin, prefix) {
                            Ok(()) => outcome,
                            Err(e) => {
                                tracing::error!(%source, "plugin not served: {e}");
                                Err(e)
                            }
                        }
                    } else {
                        outcome
                    }
                }
                (None, outcome) => outcome,
            };
            reports.push(LoadReport { source, outcome });
        }
        (registry, reports)
    }

    /// Loads a tools file's text as plugin `name`.
    async fn load_tools_file(
        &self,
        source: &str,
        name: &str,
        text: &[u8],
    ) -> Result<(Plugin, PluginSummary), PluginError> {
        let owned = std::str::from_utf8(text)
            .map_err(|_| declared_error(name, "the file is not UTF-8 text"))?
            .to_string();
        // Up to declared::MAX_FILE_BYTES of TOML: parsed off the async workers.
        let file = tokio::task::spawn_blocking(move || declared::parse(&owned))
            .await
            .map_err(|e| declared_error(name, e))?
            .map_err(|e| declared_error(name, e))?;
        self.load_declared(source, name, &file, Some(text)).await
    }

    /// Loads declared tools as plugin `name`: checked here and by the gate
    /// against the database under the plugin's grant, then served by the
    /// `sql-tools` component. `content` is the file's text, which its
    /// digest is of (inline tools: the checked declaration's).
    async fn load_declared(
        &self,
        source: &str,
        name: &str,
        file: &ToolsFile,
        content: Option<&[u8]>,
    ) -> Result<(Plugin, PluginSummary), PluginError> {
        if !crate::registry::model::valid_plugin_name(name) {
            return Err(declared_error(
                name,
                format!(
                    "{name:?} cannot be a plugin name (lower-case letters, digits and `-`, \
                     starting with a letter); rename the file"
                ),
            ));
        }
        if FIRST_PARTY.iter().any(|(n, _)| *n == name) || name == "sql-tools" {
            return Err(declared_error(
                name,
                format!(
                    "{name} is a first-party plugin's name; give the tools a name of their own"
                ),
            ));
        }
        let limits = crate::policy::StatementLimits {
            max_bytes: self.config.policy.max_statement_bytes,
            max_depth: self.config.policy.max_statement_depth,
        };
        // Tokenizes every statement: off the async workers.
        let to_check = file.clone();
        tokio::task::spawn_blocking(move || to_check.check(limits))
            .await
            .map_err(|e| declared_error(name, e))?
            .map_err(|e| declared_error(name, e))?;
        let settings = self
            .config
            .plugins
            .grants
            .get(name)
            .map(|g| g.settings())
            .unwrap_or_default();
        let granted = Grant::new(name, &settings, self.limits, self.functions.clone());
        let principal = Principal::local();
        let gate = self.runtime.gate();
        let mut facts = Vec::with_capacity(file.tools.len());
        for tool in &file.tools {
            let caller = Caller {
                plugin: name,
                tool: Some(&tool.name),
                grant: &granted,
                principal: &principal,
            };
            let types: Vec<String> = tool.params.iter().map(|p| p.type_name.clone()).collect();
            let values: Vec<Vec<String>> = tool
                .params
                .iter()
                .map(declared::ParamDecl::values_as_text)
                .collect();
            let write = tool.kind == declared::Kind::Write;
            let vetted = gate
                .vet(caller, &tool.sql, write, &types, &values)
                .await
                .map_err(|e| {
                    let problem = format!("tool {}: {e}", tool.name);
                    if e.is_transient() {
                        PluginError::Unchecked {
                            plugin: name.to_string(),
                            problem,
                        }
                    } else {
                        declared_error(name, problem)
                    }
                })?;
            facts.push(declared::StatementFacts {
                written: vetted.written,
                read: vetted.read,
                parameter_types: vetted.parameter_types,
                inserts: vetted.verb == Some(crate::policy::WriteVerb::Insert),
            });
        }
        let config = file.component_config(name, &facts);
        // Inline tools are digested as the checked declaration (its keys
        // in order, so the same declaration has the same digest).
        let identity = match content {
            Some(text) => Identity::declared(text),
            None => Identity::declared(
                serde_json::to_string(&config)
                    .unwrap_or_default()
                    .as_bytes(),
            ),
        };
        self.load_one(source, SQL_TOOLS.to_vec(), identity, Some((name, config)))
            .await
    }

    /// Loads one component. `declared` is a declaration's plugin name and
    /// checked config, for the `sql-tools` component.
    async fn load_one(
        &self,
        source: &str,
        wasm: Vec<u8>,
        identity: Identity,
        declared: Option<(&str, BTreeMap<String, String>)>,
    ) -> Result<(Plugin, PluginSummary), PluginError> {
        let (config, limits, functions, runtime) =
            (&self.config, &self.limits, &self.functions, &self.runtime);
        // Refused before compiling: code nobody vouches for never runs.
        if config.plugins.signature_required() && !identity.trusted() {
            return Err(PluginError::Untrusted {
                signature: identity.describe(),
                digest: identity.digest,
            });
        }
        let describe_config: BTreeMap<String, String> = declared
            .as_ref()
            .map(|(_, config)| config.clone())
            .unwrap_or_default();
        let mut loaded = runtime
            .load(source, wasm, limits, describe_config.clone())
            .await?;
        let d = loaded.description();
        if let Some((name, _)) = &declared
            && d.manifest.name != *name
        {
            return Err(PluginError::Declared {
                plugin: name.to_string(),
                problem: format!("the component described itself as {}", d.manifest.name),
            });
        }
        crate::registry::model::check_declared_names(&d.manifest.name, &d.tools, &d.prompts)?;
        let manifest = d.manifest.clone();
        let name = &manifest.name;
        let grant = config.plugins.grants.get(name);
        if let Some(toolset) = grant.and_then(|g| g.tools.as_ref()) {
            apply_toolset(&mut loaded, name, toolset)?;
        }
        let d = loaded.description();
        let withheld = grant.and_then(|g| unmet_binding(name, g, &identity));
        let mut settings = grant.map(|g| g.settings()).unwrap_or_default();
        if withheld.is_some() {
            // Nothing, explicitly: unset would mean the defaults, and the
            // default reader's default is `public.*`. Limits stay the
            // operator's, so withholding never loosens one.
            settings.read = Some(Vec::new());
            settings.write = Some(Vec::new());
            settings.catalog = Some(false);
            settings.analyze = Some(false);
            settings.functions = None;
            settings.role = None;
        }
        if let Some(why) = &withheld {
            tracing::warn!(plugin = %name, %source, "grant withheld: {why}");
        }
        let granted = Grant::new(name, &settings, *limits, functions.clone());
        let (effective, unmet) =
            granted
                .clone()
                .narrowed(&manifest.requests)
                .map_err(|problem| PluginError::Request {
                    plugin: name.clone(),
                    problem,
                })?;
        let idle = is_idle(&granted, &manifest.requests);
        let prefix = config.plugins.prefix_for(name);
        let summary = PluginSummary {
            granted,
            effective: effective.clone(),
            unmet,
            tools: d
                .tools
                .iter()
                .map(|t| format!("{prefix}{}", t.name))
                .collect(),
            resources: d.resources.iter().map(|r| r.uri.clone()).collect(),
            resource_templates: d
                .resource_templates
                .iter()
                .map(|t| t.uri_template.clone())
                .collect(),
            prompts: d
                .prompts
                .iter()
                .map(|p| format!("{prefix}{}", p.name))
                .collect(),
            config_keys: config
                .plugins
                .config
                .get(name)
                .map(|c| c.keys().cloned().collect())
                .unwrap_or_default(),
            disabled: config.plugins.disabled.iter().any(|n| n == name),
            idle,
            manifest: manifest.clone(),
            identity,
            withheld,
        };
        let mut plugin_config = describe_config;
        for (key, value) in config.plugins.config.get(name).into_iter().flatten() {
            // The declaration was checked; no config may stand in for it.
            if declared.is_some() && key.starts_with(declared::CONFIG_KEY) {
                return Err(PluginError::Config {
                    plugin: name.clone(),
                    key: key.clone(),
                    problem: format!(
                        "is reserved: {}.* holds the declared tools sluice checked",
                        declared::CONFIG_KEY
                    ),
                });
            }
            let value =
                crate::config::expand_env(value).map_err(|problem| PluginError::Config {
                    plugin: name.clone(),
                    key: key.clone(),
                    problem,
                })?;
            plugin_config.insert(key.clone(), value);
        }
        tracing::info!(plugin = %name, version = %manifest.version, %source, "loaded plugin");
        // A disabled plugin is the operator's choice, and so is an idle
        // one: neither is worth a warning about its grants. A withheld
        // grant was warned about above.
        if !summary.disabled && summary.withheld.is_none() {
            if summary.idle {
                tracing::info!(
                    plugin = %name,
                    "idle: nothing grants what it requests ({}), so its tools, resources and \
                     prompts are not offered; to serve it, grant it: {}",
                    summary.requested().join(", "),
                    summary.enabling_config().join(" ")
                );
            } else if !summary.unmet.is_empty() {
                tracing::warn!(plugin = %name, "requested but not granted: {}", summary.unmet.join("; "));
            }
        }
        Ok((runtime.activate(loaded, effective, plugin_config), summary))
    }
}

/// Why the declared tools of plugin `name` cannot be served.
fn declared_error(name: &str, problem: impl std::fmt::Display) -> PluginError {
    PluginError::Declared {
        plugin: name.to_string(),
        problem: problem.to_string(),
    }
}

/// Trims `loaded` to the tools its grant's `tools` names, every one of
/// which it must declare.
fn apply_toolset(
    loaded: &mut crate::runtime::DescribedComponent,
    name: &str,
    toolset: &[String],
) -> Result<(), PluginError> {
    let declared: Vec<&str> = loaded
        .description()
        .tools
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    let unknown: Vec<&str> = toolset
        .iter()
        .map(String::as_str)
        .filter(|t| !declared.contains(t))
        .collect();
    if !unknown.is_empty() {
        let list = |names: &[&str]| {
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        };
        return Err(PluginError::Toolset {
            plugin: name.to_string(),
            unknown: list(&unknown),
            known: list(&declared),
        });
    }
    loaded.keep_tools(|tool| toolset.iter().any(|t| t == tool));
    Ok(())
}

/// Why a grant bound to a publisher or a digest does not apply to a plugin
/// of its name with `identity`, or `None` when it applies.
fn unmet_binding(
    name: &str,
    grant: &crate::config::GrantConfig,
    identity: &Identity,
) -> Option<String> {
    let section = format!("[plugins.grants.{name}]");
    if let Some(publisher) = &grant.publisher
        && !identity.signed_by(publisher)
    {
        return Some(format!(
            "{section} is bound to publisher {publisher}, and this plugin's signature is {}",
            identity.describe()
        ));
    }
    if let Some(digest) = &grant.digest
        && *digest != identity.digest
    {
        return Some(format!(
            "{section} is bound to digest {digest}, and this plugin is {}",
            identity.digest
        ));
    }
    None
}

/// A `*.wasm` or `*.tools.toml` file of the plugin directory, as read.
struct PluginFile {
    name: String,
    /// A tools file (`*.tools.toml`), served by the `sql-tools` component.
    declared: bool,
    bytes: Vec<u8>,
    /// Its detached signature, `NAME.wasm.sig`, if any.
    detached: Option<Vec<u8>>,
    /// SHA-256 of `bytes`.
    sha256: [u8; 32],
    /// What changes when the file or its detached signature does.
    hash: [u8; 32],
}

/// A plugin file, by what a scan must do with it.
enum Scanned {
    /// The same bytes and signature as the version loaded.
    Unchanged(String),
    /// Not in the compiled cache, and compiles are deferred.
    Deferred(String),
    /// New or changed: to load, with who it is.
    Load(PluginFile, Identity),
}

/// Every `*.wasm` regular file directly in `dir`, sorted by name, each at
/// most `max_bytes` long, with its detached signature (`NAME.wasm.sig`),
/// and every `*.tools.toml` file, at most [`declared::MAX_FILE_BYTES`]. The directory is opened as a capability, so a
/// symlink in it cannot reach files outside it. Anything that is not a
/// regular file (a FIFO, a socket, a device, a directory) is skipped with a
/// log line without waiting on it: files are opened non-blocking and checked
/// before they are read. Blocking: call it off the async runtime.
fn read_plugin_dir(dir: &Path, max_bytes: u64) -> anyhow::Result<Vec<PluginFile>> {
    let handle = cap_std::fs::Dir::open_ambient_dir(dir, cap_std::ambient_authority())
        .map_err(|e| anyhow::anyhow!("cannot open plugin directory {}: {e}", dir.display()))?;
    let limit = format!(
        "{} MiB, the [plugins] max_file_mb limit",
        max_bytes / (1024 * 1024)
    );
    let tools_limit = format!(
        "{} KiB, the largest tools file read",
        declared::MAX_FILE_BYTES / 1024
    );
    let signature_limit = format!(
        "{} KiB, the largest signature read",
        identity::MAX_SIGNATURE_BYTES / 1024
    );
    let mut out = Vec::new();
    for entry in handle.entries()? {
        let entry = entry?;
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            continue;
        };
        if declared::file_stem(file_name).is_some() {
            match read_regular(&handle, file_name, declared::MAX_FILE_BYTES, &tools_limit) {
                Ok(Some(bytes)) => {
                    let sha256: [u8; 32] = Sha256::digest(&bytes).into();
                    out.push(PluginFile {
                        name: file_name.to_string(),
                        declared: true,
                        bytes,
                        detached: None,
                        sha256,
                        hash: sha256,
                    });
                }
                Ok(None) => tracing::warn!(file = %file_name, "skipped: not a regular file"),
                Err(e) => tracing::error!(file = %file_name, "cannot read tools file: {e}"),
            }
            continue;
        }
        let Some(stem) = file_name.strip_suffix(".wasm") else {
            continue;
        };
        if stem.is_empty() {
            continue;
        }
        match read_regular(&handle, file_name, max_bytes, &limit) {
            Ok(Some(bytes)) => {
                let sig_name = format!("{file_name}{}", identity::DETACHED_SUFFIX);
                let detached = match read_regular(
                    &handle,
                    &sig_name,
                    identity::MAX_SIGNATURE_BYTES as u64,
                    &signature_limit,
                ) {
                    Ok(sig) => sig,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                    Err(e) => {
                        tracing::error!(file = %sig_name, "cannot read the detached signature: {e}");
                        None
                    }
                };
                // The file is hashed once; a detached signature changes
                // the hash of its hash.
                let sha256: [u8; 32] = Sha256::digest(&bytes).into();
                let hash = match &detached {
                    None => sha256,
                    Some(sig) => {
                        let mut hasher = Sha256::new();
                        hasher.update(sha256);
                        hasher.update(sig);
                        hasher.finalize().into()
                    }
                };
                out.push(PluginFile {
                    name: file_name.to_string(),
                    declared: false,
                    bytes,
                    detached,
                    sha256,
                    hash,
                });
            }
            Ok(None) => {
                tracing::warn!(file = %file_name, "skipped: not a regular file");
            }
            Err(e) => tracing::error!(file = %file_name, "cannot read plugin: {e}"),
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The contents of `name` in `dir`, or `None` when it is not a regular
/// file. Opening is non-blocking, so a FIFO does not wait for a writer.
/// `limit` says what `max_bytes` is, for the error of a larger file.
fn read_regular(
    dir: &cap_std::fs::Dir,
    name: &str,
    max_bytes: u64,
    limit: &str,
) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::Read as _;
    let mut options = cap_std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use cap_std::fs::OpenOptionsExt as _;
        options.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
    }
    let file = dir.open_with(name, &options)?;
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Ok(None);
    }
    let too_large = || std::io::Error::other(format!("it is larger than {limit}"));
    if metadata.len() > max_bytes {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max_bytes {
        return Err(too_large());
    }
    Ok(Some(bytes))
}
