//! What plugins offer and answer, in host terms: no wasm types, no MCP JSON.
//!
//! The transport maps these to MCP messages; the runtime fills them from the
//! component's exports.

use super::error::NameError;
use crate::db::PgError;
use crate::policy::Requests;
use crate::principal::Principal;
use serde_json::{Map, Value as Json};
use std::sync::Arc;

/// Whether `name` may name an MCP tool or prompt: 1 to 128 of
/// `[A-Za-z0-9_.-]`.
pub fn valid_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Whether `name` may name a plugin: 1 to 64 lower-case letters, digits
/// and `-`, starting with a letter. The name keys config tables
/// (`[plugins.grants.<name>]`), file names and log lines, so it is kept to
/// what needs no quoting in any of them.
pub fn valid_plugin_name(name: &str) -> bool {
    name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// The names a plugin declares follow the rules: its own name is a plugin
/// name, each tool and prompt name an MCP name, and none declared twice.
pub fn check_declared_names(
    plugin: &str,
    tools: &[ToolSpec],
    prompts: &[PromptSpec],
) -> Result<(), NameError> {
    if !valid_plugin_name(plugin) {
        return Err(NameError::PluginName(plugin.to_string()));
    }
    // A set, not a scan per name: a plugin may declare any number of them.
    for (kind, names) in [
        ("tool", tools.iter().map(|t| &t.name).collect::<Vec<_>>()),
        ("prompt", prompts.iter().map(|p| &p.name).collect()),
    ] {
        let mut seen = std::collections::HashSet::with_capacity(names.len());
        for name in names {
            if !valid_name(name) {
                return Err(NameError::Invalid {
                    kind,
                    name: name.clone(),
                });
            }
            if !seen.insert(name) {
                return Err(NameError::Duplicate {
                    kind,
                    name: name.clone(),
                });
            }
        }
    }
    Ok(())
}

/// Which plugins a client may use: all of them (stdio, or a key without a
/// restriction), or those named.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Scope {
    #[default]
    All,
    Only(std::sync::Arc<[String]>),
}

impl Scope {
    /// Whether `plugin`'s tools, resources and prompts are visible.
    pub fn allows(&self, plugin: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Only(names) => names.iter().any(|n| n == plugin),
        }
    }
}

/// Which lists a plugin change altered (for MCP's `list_changed`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListChanges {
    pub tools: bool,
    pub resources: bool,
    pub prompts: bool,
}

impl ListChanges {
    /// Whether anything changed.
    pub fn any(&self) -> bool {
        self.tools || self.resources || self.prompts
    }
}

/// Who a plugin says it is and what it asks for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Manifest {
    /// The name grants and config use: `[a-z][a-z0-9-]*`.
    pub name: String,
    pub version: String,
    pub description: String,
    pub requests: Requests,
}

/// Behaviour hints of a tool (MCP `ToolAnnotations`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ToolAnnotations {
    pub read_only: Option<bool>,
    pub destructive: Option<bool>,
    pub idempotent: Option<bool>,
    pub open_world: Option<bool>,
}

/// A tool as listed to clients.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ToolSpec {
    pub name: String,
    pub title: Option<String>,
    pub description: String,
    /// JSON Schema object for the arguments.
    pub input_schema: Map<String, Json>,
    /// JSON Schema object for `structured` results.
    pub output_schema: Option<Map<String, Json>>,
    pub annotations: ToolAnnotations,
}

/// A concrete resource.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceSpec {
    pub uri: String,
    pub name: String,
    pub title: Option<String>,
    pub description: Option<String>,
    pub mime_type: Option<String>,
}

/// A resource template (RFC 6570).
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceTemplateSpec {
    pub uri_template: String,
    pub name: String,
    pub title: Option<String>,
    pub description: Option<String>,
    pub mime_type: Option<String>,
}

/// An argument of a prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptArgumentSpec {
    pub name: String,
    pub title: Option<String>,
    pub description: Option<String>,
    pub required: bool,
}

/// A prompt as listed to clients.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PromptSpec {
    pub name: String,
    pub title: Option<String>,
    pub description: Option<String>,
    pub arguments: Vec<PromptArgumentSpec>,
}

/// The body of a resource.
#[derive(Debug, Clone, PartialEq)]
pub enum ResourceBody {
    Text(String),
    Blob(Vec<u8>),
}

/// A resource's contents.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceContents {
    pub uri: String,
    pub mime_type: Option<String>,
    pub body: ResourceBody,
}

/// One piece of content in a tool result or prompt message.
#[derive(Debug, Clone, PartialEq)]
pub enum Content {
    Text(String),
    Image { data: Vec<u8>, mime_type: String },
    Audio { data: Vec<u8>, mime_type: String },
    Resource(ResourceContents),
}

/// The result of a tool that ran.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolOutput {
    pub content: Vec<Content>,
    /// Structured content matching the tool's output schema.
    pub structured: Option<Json>,
    /// The tool ran and reports a failure the model should see.
    pub is_error: bool,
}

/// Who speaks a prompt message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
}

/// One message of a rendered prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptMessage {
    pub role: Role,
    pub content: Content,
}

/// A rendered prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptOutput {
    pub description: Option<String>,
    pub messages: Vec<PromptMessage>,
}

/// What a completion request refers to.
#[derive(Debug, Clone, PartialEq)]
pub enum CompletionTarget {
    /// A prompt, by name.
    Prompt(String),
    /// A resource template, by URI template.
    ResourceTemplate(String),
}

/// A completion request.
#[derive(Debug, Clone, PartialEq)]
pub struct CompletionRequest {
    pub target: CompletionTarget,
    /// The prompt argument or template variable being completed.
    pub argument: String,
    /// What the user typed so far.
    pub value: String,
    /// Arguments already resolved.
    pub context: Vec<(String, String)>,
}

/// Suggested values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CompletionOutput {
    pub values: Vec<String>,
    pub total: Option<u32>,
    pub has_more: bool,
}

/// Why a request to a plugin failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CallError {
    /// No plugin offers a tool of that name (to this client).
    #[error("unknown tool: {0}")]
    UnknownTool(String),
    /// No plugin offers that resource, template or prompt, or a plugin
    /// reports something it was asked for missing.
    #[error("not found: {0}")]
    NotFound(String),
    /// The arguments were malformed.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The policy refused a database call the plugin made (or the call
    /// itself, at a plugin limit).
    #[error("denied ({rule}): {message}")]
    Denied { rule: String, message: String },
    /// The plugin refused the call by its own rule: not the host's policy.
    #[error("plugin {plugin} refused ({rule}): {message}")]
    Refused {
        plugin: String,
        rule: String,
        message: String,
    },
    /// PostgreSQL reported an error.
    #[error(transparent)]
    Database(PgError),
    /// The plugin trapped, ran out of time or memory, or misbehaved.
    #[error("plugin {plugin} failed: {message}")]
    Plugin { plugin: String, message: String },
    /// Anything else.
    #[error("internal error: {0}")]
    Internal(String),
}

/// What a transport needs from the plugins: listing and dispatch.
///
/// The MCP transport is written against this trait only, so it knows nothing
/// of wasmtime; the registry implements it. Lists are read on every request
/// because the set of plugins can change while the server runs.
/// Every list takes the client's [`Scope`], and every call the
/// [`Principal`](crate::principal::Principal) that carries it: what is
/// outside the scope does not exist for that client.
pub trait PluginHost: Send + Sync + 'static {
    /// Changes to the lists, as they happen; none for a host whose plugins
    /// never change.
    fn list_changes(&self) -> Option<tokio::sync::broadcast::Receiver<ListChanges>> {
        None
    }

    /// Plugin calls running now, for a shutdown that lets them finish.
    fn in_flight(&self) -> usize {
        0
    }

    fn tools(&self, scope: &Scope) -> Vec<ToolSpec>;
    fn resources(&self, scope: &Scope) -> Vec<ResourceSpec>;
    fn resource_templates(&self, scope: &Scope) -> Vec<ResourceTemplateSpec>;
    fn prompts(&self, scope: &Scope) -> Vec<PromptSpec>;

    fn call_tool(
        &self,
        caller: &Arc<Principal>,
        name: &str,
        arguments: Map<String, Json>,
    ) -> impl Future<Output = Result<ToolOutput, CallError>> + Send;

    fn read_resource(
        &self,
        caller: &Arc<Principal>,
        uri: &str,
    ) -> impl Future<Output = Result<Vec<ResourceContents>, CallError>> + Send;

    fn get_prompt(
        &self,
        caller: &Arc<Principal>,
        name: &str,
        arguments: Vec<(String, String)>,
    ) -> impl Future<Output = Result<PromptOutput, CallError>> + Send;

    fn complete(
        &self,
        caller: &Arc<Principal>,
        request: CompletionRequest,
    ) -> impl Future<Output = Result<CompletionOutput, CallError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(name: &str) -> ToolSpec {
        ToolSpec {
            name: name.into(),
            ..ToolSpec::default()
        }
    }

    #[test]
    fn declared_names_follow_the_rules() {
        assert!(check_declared_names("geo-tools", &[tool("a"), tool("b.c")], &[]).is_ok());
        for (plugin, tools, message) in [
            ("Geo", vec![tool("a")], "plugin name \"Geo\""),
            ("geo_tools", vec![], "plugin name \"geo_tools\""),
            ("geo", vec![tool("a b")], "tool name \"a b\""),
            ("geo", vec![tool("")], "tool name \"\""),
            (
                "geo",
                vec![tool("a"), tool("a")],
                "tool \"a\" is declared twice",
            ),
        ] {
            let e = check_declared_names(plugin, &tools, &[]).unwrap_err();
            assert!(e.to_string().starts_with(message), "{e}");
        }
        let twice = PromptSpec {
            name: "p".into(),
            ..PromptSpec::default()
        };
        let e = check_declared_names("geo", &[], &[twice.clone(), twice]).unwrap_err();
        assert_eq!(
            e,
            NameError::Duplicate {
                kind: "prompt",
                name: "p".into()
            }
        );
        assert_eq!(e.to_string(), "prompt \"p\" is declared twice");
        assert!(!valid_plugin_name(&"a".repeat(65)));
        assert!(valid_plugin_name("a1-b"));
    }
}
