//! The plugin registry: which plugins are loaded and which of them answers a
//! given tool, resource, template or prompt.

mod error;
mod live;
mod load;
pub mod model;
mod names;

pub use error::{NameError, PluginError};
pub use live::{LiveRegistry, watch};
pub use load::{LoadReport, Loader, PluginSummary};
pub use names::{NameCheck, UnknownName, UnknownNames, check_names};

use crate::principal::Principal;
use crate::runtime::Plugin;
use model::{
    CallError, CompletionOutput, CompletionRequest, CompletionTarget, PluginHost, PromptOutput,
    PromptSpec, ResourceContents, ResourceSpec, ResourceTemplateSpec, Scope, ToolOutput, ToolSpec,
};
use serde_json::{Map, Value as Json};
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
    (
        "sql-insight",
        include_bytes!(concat!(env!("SLUICE_PLUGIN_OUT_DIR"), "/sql-insight.wasm")),
    ),
];

/// The embedded component that serves declared tools (`*.tools.toml`),
/// one instance per declaration; never loaded by itself.
pub const SQL_TOOLS: &[u8] =
    include_bytes!(concat!(env!("SLUICE_PLUGIN_OUT_DIR"), "/sql-tools.wasm"));

/// A serving plugin and the names it serves under.
struct Entry {
    plugin: Arc<Plugin>,
    /// Put before each of its tool and prompt names (empty: none).
    prefix: String,
    tools: Vec<ToolSpec>,
    prompts: Vec<PromptSpec>,
}

impl Entry {
    /// The plugin's own name for a served `name`, if it is one of its.
    fn own_name<'a>(&self, name: &'a str) -> Option<&'a str> {
        name.strip_prefix(self.prefix.as_str())
    }
}

/// The serving plugins and their names. Tool and prompt names are the
/// plugin's own, behind the operator's prefix for it, if any; every name
/// is served by exactly one plugin.
#[derive(Default)]
pub struct Registry {
    entries: Vec<Entry>,
}

impl Registry {
    /// Adds a plugin, its tool and prompt names behind `prefix`, unless one
    /// of its names is taken, in which case it is refused whole (a
    /// half-loaded plugin would be confusing).
    pub fn add(&mut self, plugin: Arc<Plugin>, prefix: &str) -> Result<(), PluginError> {
        let name = plugin.name().to_string();
        if self.entries.iter().any(|e| e.plugin.name() == name) {
            return Err(PluginError::AlreadyLoaded(name));
        }
        let d = plugin.description();
        let tools: Vec<ToolSpec> = d
            .tools
            .iter()
            .map(|t| ToolSpec {
                name: format!("{prefix}{}", t.name),
                ..t.clone()
            })
            .collect();
        let prompts: Vec<PromptSpec> = d
            .prompts
            .iter()
            .map(|p| PromptSpec {
                name: format!("{prefix}{}", p.name),
                ..p.clone()
            })
            .collect();
        if let Some(bad) = tools
            .iter()
            .map(|t| &t.name)
            .chain(prompts.iter().map(|p| &p.name))
            .find(|n| !model::valid_name(n))
        {
            return Err(PluginError::PrefixedName {
                plugin: name,
                name: bad.clone(),
            });
        }
        for other in &self.entries {
            let od = other.plugin.description();
            let clash = tools
                .iter()
                .find(|t| other.tools.iter().any(|o| o.name == t.name))
                .map(|t| format!("tool {}", t.name))
                .or_else(|| {
                    prompts
                        .iter()
                        .find(|x| other.prompts.iter().any(|o| o.name == x.name))
                        .map(|x| format!("prompt {}", x.name))
                })
                .or_else(|| {
                    d.resources
                        .iter()
                        .find(|x| od.resources.iter().any(|o| o.uri == x.uri))
                        .map(|x| format!("resource {}", x.uri))
                })
                .or_else(|| {
                    d.resource_templates
                        .iter()
                        .find(|x| {
                            od.resource_templates
                                .iter()
                                .any(|o| o.uri_template == x.uri_template)
                        })
                        .map(|x| format!("resource template {}", x.uri_template))
                });
            if let Some(what) = clash {
                return Err(PluginError::Clash {
                    plugin: name,
                    what,
                    other: other.plugin.name().to_string(),
                });
            }
        }
        self.entries.push(Entry {
            plugin,
            prefix: prefix.to_string(),
            tools,
            prompts,
        });
        Ok(())
    }

    /// The serving plugins, in load order.
    pub fn plugins(&self) -> impl Iterator<Item = &Arc<Plugin>> {
        self.entries.iter().map(|e| &e.plugin)
    }

    /// The entries `scope` may see.
    fn visible<'a>(&'a self, scope: &'a Scope) -> impl Iterator<Item = &'a Entry> {
        self.entries
            .iter()
            .filter(|e| scope.allows(e.plugin.name()))
    }
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
    fn tools(&self, scope: &Scope) -> Vec<ToolSpec> {
        self.visible(scope).flat_map(|e| e.tools.clone()).collect()
    }

    fn resources(&self, scope: &Scope) -> Vec<ResourceSpec> {
        self.visible(scope)
            .flat_map(|e| e.plugin.description().resources.clone())
            .collect()
    }

    fn resource_templates(&self, scope: &Scope) -> Vec<ResourceTemplateSpec> {
        self.visible(scope)
            .flat_map(|e| e.plugin.description().resource_templates.clone())
            .collect()
    }

    fn prompts(&self, scope: &Scope) -> Vec<PromptSpec> {
        self.visible(scope)
            .flat_map(|e| e.prompts.clone())
            .collect()
    }

    async fn call_tool(
        &self,
        caller: &Arc<Principal>,
        name: &str,
        arguments: Map<String, Json>,
    ) -> Result<ToolOutput, CallError> {
        let entry = self
            .visible(&caller.scope)
            .find(|e| e.tools.iter().any(|t| t.name == name))
            .ok_or_else(|| CallError::UnknownTool(name.to_string()))?;
        let own = entry.own_name(name).unwrap_or(name);
        entry
            .plugin
            .call_tool(own, Json::Object(arguments).to_string(), caller)
            .await
    }

    async fn read_resource(
        &self,
        caller: &Arc<Principal>,
        uri: &str,
    ) -> Result<Vec<ResourceContents>, CallError> {
        if let Some(entry) = self.visible(&caller.scope).find(|e| {
            e.plugin
                .description()
                .resources
                .iter()
                .any(|r| r.uri == uri)
        }) {
            return entry.plugin.read_resource(uri, caller).await;
        }
        let candidates = self.visible(&caller.scope).filter(|e| {
            e.plugin
                .description()
                .resource_templates
                .iter()
                .any(|t| template_may_match(&t.uri_template, uri))
        });
        for entry in candidates {
            match entry.plugin.read_resource(uri, caller).await {
                Err(CallError::NotFound(_)) => continue,
                other => return other,
            }
        }
        Err(CallError::NotFound(uri.to_string()))
    }

    async fn get_prompt(
        &self,
        caller: &Arc<Principal>,
        name: &str,
        arguments: Vec<(String, String)>,
    ) -> Result<PromptOutput, CallError> {
        let entry = self
            .visible(&caller.scope)
            .find(|e| e.prompts.iter().any(|p| p.name == name))
            .ok_or_else(|| CallError::NotFound(format!("prompt {name}")))?;
        let own = entry.own_name(name).unwrap_or(name);
        entry.plugin.get_prompt(own, arguments, caller).await
    }

    async fn complete(
        &self,
        caller: &Arc<Principal>,
        request: CompletionRequest,
    ) -> Result<CompletionOutput, CallError> {
        let not_found = || CallError::NotFound("no such prompt or resource template".into());
        match &request.target {
            CompletionTarget::Prompt(name) => {
                let entry = self
                    .visible(&caller.scope)
                    .find(|e| e.prompts.iter().any(|p| p.name == *name))
                    .ok_or_else(not_found)?;
                let own = entry.own_name(name).unwrap_or(name).to_string();
                let request = CompletionRequest {
                    target: CompletionTarget::Prompt(own),
                    ..request
                };
                entry.plugin.complete(request, caller).await
            }
            CompletionTarget::ResourceTemplate(uri) => {
                let entry = self
                    .visible(&caller.scope)
                    .find(|e| {
                        e.plugin
                            .description()
                            .resource_templates
                            .iter()
                            .any(|t| t.uri_template == *uri)
                    })
                    .ok_or_else(not_found)?;
                entry.plugin.complete(request, caller).await
            }
        }
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
