//! Loading plugins: the embedded first-party ones and every `*.wasm` in the
//! plugin directory, each granted what both its manifest requests and the
//! operator allows. The same pass serves `sluice serve` and `sluice plugins`.

use super::{FIRST_PARTY, Registry};
use crate::config::Config;
use crate::policy::{FunctionRules, Grant, Limits};
use crate::registry::model::Manifest;
use crate::runtime::Runtime;
use std::path::Path;
use std::sync::Arc;

/// The default limits from the config.
pub fn default_limits(config: &Config) -> Limits {
    let p = &config.plugins;
    Limits {
        timeout_ms: p.timeout_ms.unwrap_or(config.database.statement_timeout_ms),
        max_rows: config.database.max_rows,
        max_write_rows: p
            .max_write_rows
            .unwrap_or(crate::config::DEFAULT_MAX_WRITE_ROWS),
        max_result_bytes: p
            .max_result_bytes
            .unwrap_or(crate::config::DEFAULT_MAX_RESULT_BYTES),
        memory_bytes: p.memory_mb.unwrap_or(crate::config::DEFAULT_MEMORY_MB) * 1024 * 1024,
        max_host_calls: p
            .max_host_calls
            .unwrap_or(crate::config::DEFAULT_MAX_HOST_CALLS),
        max_concurrent_calls: p
            .max_concurrent_calls
            .unwrap_or(crate::config::DEFAULT_MAX_CONCURRENT_CALLS),
    }
}

/// One plugin as loaded: who it is, what it asked for, what it got.
#[derive(Debug, Clone)]
pub struct Loaded {
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
    /// Listed in `[plugins] disabled`: described, but not serving.
    pub disabled: bool,
}

/// What happened to one plugin source at load.
#[derive(Debug, Clone)]
pub struct LoadReport {
    /// `embedded sql-read` or the file's path.
    pub source: String,
    /// The plugin, or why it was not loaded.
    pub outcome: Result<Loaded, String>,
}

/// Loads the first-party plugins (unless `first_party = false`) and every
/// `*.wasm` in the plugin directory. A directory plugin that fails to load,
/// or whose names collide with a loaded one, is reported and skipped so that
/// the others keep working; a first-party one failing is a bug and an error.
pub async fn load(
    runtime: &Runtime,
    config: &Config,
) -> anyhow::Result<(Registry, Vec<LoadReport>)> {
    let limits = default_limits(config);
    let functions = Arc::new(
        FunctionRules::new(
            config.policy.allow_functions.as_deref(),
            &config.policy.deny_functions,
        )
        .map_err(anyhow::Error::msg)?,
    );
    let mut sources: Vec<(String, Vec<u8>, bool)> = Vec::new();
    if config.plugins.first_party {
        for (name, wasm) in FIRST_PARTY {
            sources.push((format!("embedded {name}"), wasm.to_vec(), true));
        }
    }
    if let Some(dir) = &config.plugins.dir {
        for (file, wasm) in read_plugin_dir(dir)? {
            sources.push((dir.join(file).display().to_string(), wasm, false));
        }
    }

    let mut registry = Registry::default();
    let mut reports = Vec::with_capacity(sources.len());
    for (source, wasm, first_party) in sources {
        let outcome = load_one(runtime, config, &limits, &functions, &source, wasm).await;
        let outcome = match outcome {
            Ok((plugin, loaded)) if !loaded.disabled => match registry.add(plugin) {
                Ok(()) => {
                    tracing::info!(plugin = %loaded.manifest.name, version = %loaded.manifest.version, %source, "loaded plugin");
                    if !loaded.unmet.is_empty() {
                        tracing::warn!(plugin = %loaded.manifest.name, "requested but not granted: {}", loaded.unmet.join("; "));
                    }
                    Ok(loaded)
                }
                Err(e) => Err(e),
            },
            Ok((_, loaded)) => {
                tracing::info!(plugin = %loaded.manifest.name, "disabled by [plugins] disabled");
                Ok(loaded)
            }
            Err(e) => Err(e),
        };
        if let Err(e) = &outcome {
            if first_party {
                anyhow::bail!("{source}: {e}");
            }
            tracing::error!(%source, "plugin not loaded: {e}");
        }
        reports.push(LoadReport { source, outcome });
    }
    Ok((registry, reports))
}

async fn load_one(
    runtime: &Runtime,
    config: &Config,
    limits: &Limits,
    functions: &Arc<FunctionRules>,
    source: &str,
    wasm: Vec<u8>,
) -> Result<(crate::runtime::Plugin, Loaded), String> {
    let loaded = runtime
        .load(source, wasm, limits)
        .await
        .map_err(|e| e.to_string())?;
    let d = loaded.description();
    let manifest = d.manifest.clone();
    let name = &manifest.name;
    let granted = Grant::from_config(
        name,
        config.plugins.grants.get(name),
        limits,
        functions.clone(),
    );
    let (effective, unmet) = granted
        .clone()
        .narrowed(&manifest.requests)
        .map_err(|e| format!("plugin {name} requests an invalid pattern: {e}"))?;
    let summary = Loaded {
        granted,
        effective: effective.clone(),
        unmet,
        tools: d.tools.iter().map(|t| t.name.clone()).collect(),
        resources: d.resources.iter().map(|r| r.uri.clone()).collect(),
        resource_templates: d
            .resource_templates
            .iter()
            .map(|t| t.uri_template.clone())
            .collect(),
        prompts: d.prompts.iter().map(|p| p.name.clone()).collect(),
        disabled: config.plugins.disabled.iter().any(|n| n == name),
        manifest: manifest.clone(),
    };
    let plugin_config = config.plugins.config.get(name).cloned().unwrap_or_default();
    Ok((runtime.activate(loaded, effective, plugin_config), summary))
}

/// `(file name, bytes)` of every `*.wasm` file directly in `dir`, sorted by
/// name. The directory is opened as a capability, so a symlink in it cannot
/// reach files outside it.
fn read_plugin_dir(dir: &Path) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let handle = cap_std::fs::Dir::open_ambient_dir(dir, cap_std::ambient_authority())
        .map_err(|e| anyhow::anyhow!("cannot open plugin directory {}: {e}", dir.display()))?;
    let mut out = Vec::new();
    for entry in handle.entries()? {
        let entry = entry?;
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            continue;
        };
        let Some(stem) = file_name.strip_suffix(".wasm") else {
            continue;
        };
        let kind = entry.file_type()?;
        if stem.is_empty() || !(kind.is_file() || kind.is_symlink()) {
            continue;
        }
        match handle.read(file_name) {
            Ok(bytes) => out.push((file_name.to_string(), bytes)),
            Err(e) => tracing::error!(file = %file_name, "cannot read plugin: {e}"),
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}
