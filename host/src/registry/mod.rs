//! The plugin registry: which plugins are loaded and which of them answers a
//! given tool, resource, template or prompt.

pub mod model;

use crate::config::Config;
use crate::policy::{FunctionRules, Grant, Limits};
use crate::runtime::{Plugin, Runtime};
use model::{
    CallError, CompletionOutput, CompletionRequest, CompletionTarget, PluginHost, PromptOutput,
    PromptSpec, ResourceContents, ResourceSpec, ResourceTemplateSpec, ToolOutput, ToolSpec,
};
use serde_json::{Map, Value as Json};
use std::path::Path;
use std::sync::Arc;

/// The plugins embedded in the binary, built from `plugins/` by the build script.
pub const FIRST_PARTY: &[(&str, &[u8])] = &[
    (
        "sql-read",
        include_bytes!(concat!(env!("SLUICE_PLUGIN_OUT_DIR"), "/sql-read.wasm")),
    ),
    (
        "sql-write",
        include_bytes!(concat!(env!("SLUICE_PLUGIN_OUT_DIR"), "/sql-write.wasm")),
    ),
];

/// The loaded plugins and their names.
#[derive(Default)]
pub struct Registry {
    plugins: Vec<Arc<Plugin>>,
}

impl Registry {
    /// Adds a loaded plugin unless one of its names is already taken, in which
    /// case it is refused whole (a half-loaded plugin would be confusing).
    pub fn add(&mut self, plugin: Plugin) -> Result<(), String> {
        if self.plugins.iter().any(|p| p.name() == plugin.name()) {
            return Err(format!(
                "a plugin named {} is already loaded",
                plugin.name()
            ));
        }
        let d = plugin.description();
        for p in &self.plugins {
            let other = p.description();
            let clash = d
                .tools
                .iter()
                .find(|t| other.tools.iter().any(|o| o.name == t.name))
                .map(|t| format!("tool {}", t.name))
                .or_else(|| {
                    d.prompts
                        .iter()
                        .find(|x| other.prompts.iter().any(|o| o.name == x.name))
                        .map(|x| format!("prompt {}", x.name))
                })
                .or_else(|| {
                    d.resources
                        .iter()
                        .find(|x| other.resources.iter().any(|o| o.uri == x.uri))
                        .map(|x| format!("resource {}", x.uri))
                })
                .or_else(|| {
                    d.resource_templates
                        .iter()
                        .find(|x| {
                            other
                                .resource_templates
                                .iter()
                                .any(|o| o.uri_template == x.uri_template)
                        })
                        .map(|x| format!("resource template {}", x.uri_template))
                });
            if let Some(what) = clash {
                return Err(format!(
                    "plugin {} offers {what}, which plugin {} already offers",
                    plugin.name(),
                    p.name()
                ));
            }
        }
        self.plugins.push(Arc::new(plugin));
        Ok(())
    }

    /// The loaded plugins, in load order.
    pub fn plugins(&self) -> &[Arc<Plugin>] {
        &self.plugins
    }

    fn owner(&self, pred: impl Fn(&Plugin) -> bool) -> Option<Arc<Plugin>> {
        self.plugins.iter().find(|p| pred(p)).cloned()
    }
}

/// The default limits from the config.
pub fn default_limits(config: &Config) -> Limits {
    let p = &config.plugins;
    Limits {
        timeout_ms: config
            .plugins
            .timeout_ms
            .unwrap_or(config.database.statement_timeout_ms),
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

/// Loads the first-party plugins (unless disabled) and every `*.wasm` in the
/// plugin directory. A directory plugin that fails to load is logged and
/// skipped so that the others keep working; a first-party one failing is a bug
/// and an error.
pub async fn load(runtime: &Runtime, config: &Config) -> anyhow::Result<Registry> {
    let limits = default_limits(config);
    let functions = Arc::new(
        FunctionRules::new(
            config.policy.allow_functions.as_deref(),
            &config.policy.deny_functions,
        )
        .map_err(anyhow::Error::msg)?,
    );
    let mut registry = Registry::default();
    let grant_for = |name: &str| {
        Grant::from_config(
            name,
            config.plugins.grants.get(name),
            &limits,
            functions.clone(),
        )
    };
    let config_for = |name: &str| config.plugins.config.get(name).cloned().unwrap_or_default();

    if config.plugins.first_party {
        for (name, wasm) in FIRST_PARTY {
            let plugin = runtime
                .load(name, wasm.to_vec(), grant_for(name), config_for(name))
                .await?;
            registry.add(plugin).map_err(anyhow::Error::msg)?;
        }
    }
    if let Some(dir) = &config.plugins.dir {
        for (name, wasm) in read_plugin_dir(dir)? {
            match runtime
                .load(&name, wasm, grant_for(&name), config_for(&name))
                .await
            {
                Ok(plugin) => match registry.add(plugin) {
                    Ok(()) => tracing::info!(plugin = %name, "loaded plugin"),
                    Err(e) => tracing::error!(plugin = %name, "not loaded: {e}"),
                },
                Err(e) => tracing::error!(plugin = %name, "not loaded: {e}"),
            }
        }
    }
    Ok(registry)
}

/// `(name, bytes)` of every `*.wasm` file directly in `dir`, sorted by name.
/// The directory is opened as a capability, so a symlink in it cannot reach
/// files outside it.
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
            Ok(bytes) => out.push((stem.to_string(), bytes)),
            Err(e) => tracing::error!(file = %file_name, "cannot read plugin: {e}"),
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Whether `uri` could come from `template`: its fixed text before the first
/// variable and after the last one. The owning plugin does the exact match.
fn template_may_match(template: &str, uri: &str) -> bool {
    match (template.find('{'), template.rfind('}')) {
        (Some(open), Some(close)) => {
            let (head, tail) = (&template[..open], &template[close + 1..]);
            uri.len() >= head.len() + tail.len() && uri.starts_with(head) && uri.ends_with(tail)
        }
        _ => template == uri,
    }
}

impl PluginHost for Registry {
    fn tools(&self) -> Vec<ToolSpec> {
        self.plugins
            .iter()
            .flat_map(|p| p.description().tools.clone())
            .collect()
    }

    fn resources(&self) -> Vec<ResourceSpec> {
        self.plugins
            .iter()
            .flat_map(|p| p.description().resources.clone())
            .collect()
    }

    fn resource_templates(&self) -> Vec<ResourceTemplateSpec> {
        self.plugins
            .iter()
            .flat_map(|p| p.description().resource_templates.clone())
            .collect()
    }

    fn prompts(&self) -> Vec<PromptSpec> {
        self.plugins
            .iter()
            .flat_map(|p| p.description().prompts.clone())
            .collect()
    }

    async fn call_tool(
        &self,
        name: &str,
        arguments: Map<String, Json>,
    ) -> Result<ToolOutput, CallError> {
        let plugin = self
            .owner(|p| p.description().tools.iter().any(|t| t.name == name))
            .ok_or_else(|| CallError::NotFound(format!("tool {name}")))?;
        plugin
            .call_tool(name, Json::Object(arguments).to_string())
            .await
    }

    async fn read_resource(&self, uri: &str) -> Result<Vec<ResourceContents>, CallError> {
        if let Some(plugin) = self.owner(|p| p.description().resources.iter().any(|r| r.uri == uri))
        {
            return plugin.read_resource(uri).await;
        }
        let candidates = self.plugins.iter().filter(|p| {
            p.description()
                .resource_templates
                .iter()
                .any(|t| template_may_match(&t.uri_template, uri))
        });
        for plugin in candidates {
            match plugin.read_resource(uri).await {
                Err(CallError::NotFound(_)) => continue,
                other => return other,
            }
        }
        Err(CallError::NotFound(uri.to_string()))
    }

    async fn get_prompt(
        &self,
        name: &str,
        arguments: Vec<(String, String)>,
    ) -> Result<PromptOutput, CallError> {
        let plugin = self
            .owner(|p| p.description().prompts.iter().any(|x| x.name == name))
            .ok_or_else(|| CallError::NotFound(format!("prompt {name}")))?;
        plugin.get_prompt(name, arguments).await
    }

    async fn complete(&self, request: CompletionRequest) -> Result<CompletionOutput, CallError> {
        let plugin = match &request.target {
            CompletionTarget::Prompt(name) => {
                self.owner(|p| p.description().prompts.iter().any(|x| x.name == *name))
            }
            CompletionTarget::ResourceTemplate(uri) => self.owner(|p| {
                p.description()
                    .resource_templates
                    .iter()
                    .any(|t| t.uri_template == *uri)
            }),
        }
        .ok_or_else(|| CallError::NotFound("no such prompt or resource template".into()))?;
        plugin.complete(request).await
    }
}

#[cfg(test)]
mod tests {
    use super::template_may_match;

    #[test]
    fn template_prefilter() {
        assert!(template_may_match(
            "db://tables/{table}/schema",
            "db://tables/film/schema"
        ));
        assert!(!template_may_match(
            "db://tables/{table}/schema",
            "db://overview"
        ));
        assert!(!template_may_match(
            "db://tables/{table}/schema",
            "db://tables/schema"
        ));
    }
}
