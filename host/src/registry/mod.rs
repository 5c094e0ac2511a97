//! The plugin registry: which plugins are loaded and which of them answers a
//! given tool, resource, template or prompt.

mod live;
mod load;
pub mod model;

pub use live::{LiveRegistry, watch};
pub use load::{LoadReport, Loaded, Loader, default_limits, load};

use crate::runtime::Plugin;
use model::{
    CallError, CompletionOutput, CompletionRequest, CompletionTarget, PluginHost, PromptOutput,
    PromptSpec, ResourceContents, ResourceSpec, ResourceTemplateSpec, ToolOutput, ToolSpec,
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
];

/// The loaded plugins and their names.
#[derive(Default)]
pub struct Registry {
    plugins: Vec<Arc<Plugin>>,
}

impl Registry {
    /// Adds a loaded plugin unless one of its names is already taken, in which
    /// case it is refused whole (a half-loaded plugin would be confusing).
    pub fn add(&mut self, plugin: Arc<Plugin>) -> Result<(), String> {
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
        self.plugins.push(plugin);
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
