//! The MCP transport: maps MCP requests onto a [`PluginHost`] ([`McpServer`])
//! and serves them over stdio ([`serve_stdio`]); [`frame`] checks what
//! clients send before anything parses it, for stdio and HTTP alike.
//!
//! This module knows nothing of wasmtime or the database; everything it needs
//! comes through the [`PluginHost`] trait and the host-neutral types of
//! [`crate::registry::model`].

mod convert;
pub mod frame;
mod stdio;

pub use stdio::{StdioSettings, serve_stdio};

use convert::*;

use std::{collections::BTreeMap, sync::Arc};

use rmcp::{
    ErrorData as McpError, RoleServer, ServerHandler, model as mcp, service::RequestContext,
};

use crate::principal::Principal;
use crate::registry::model::{
    CallError, CompletionRequest, CompletionTarget, ListChanges, PluginHost,
};

/// Shown to clients at initialization; models read it to decide how to use us.
const INSTRUCTIONS: &str = "sluice exposes a PostgreSQL database through sandboxed \
WebAssembly plugins: every tool, resource and prompt comes from a plugin. Each database \
call a plugin makes is checked against the operator's grants, and queries run read-only \
unless a grant allows writes. A refused call comes back as a tool error naming the rule \
that refused it.";

/// An MCP server ([`rmcp::ServerHandler`]) backed by a [`PluginHost`].
///
/// Lists are read from the host on every request, so plugins that come and go
/// while the server runs are seen at once.
pub struct McpServer<P: PluginHost> {
    host: Arc<P>,
    /// The client of every request, when the transport fixed it for the
    /// whole session (the legacy SSE transport); otherwise it is read from
    /// each HTTP request, or is the local user on stdio.
    session_caller: Option<Arc<Principal>>,
}

impl<P: PluginHost> McpServer<P> {
    /// Serves `host`'s tools, resources and prompts.
    pub fn new(host: Arc<P>) -> Self {
        Self {
            host,
            session_caller: None,
        }
    }

    /// Serves `caller` alone, for the whole session: only what its scope
    /// allows.
    pub fn for_caller(host: Arc<P>, caller: Arc<Principal>) -> Self {
        Self {
            host,
            session_caller: Some(caller),
        }
    }

    fn caller(&self, extensions: &rmcp::model::Extensions) -> Arc<Principal> {
        match &self.session_caller {
            Some(caller) => caller.clone(),
            None => caller_of(extensions),
        }
    }
}

impl<P: PluginHost> Clone for McpServer<P> {
    fn clone(&self) -> Self {
        Self {
            host: Arc::clone(&self.host),
            session_caller: self.session_caller.clone(),
        }
    }
}

impl<P: PluginHost> ServerHandler for McpServer<P> {
    fn get_info(&self) -> mcp::ServerConfig {
        let capabilities = mcp::ServerCapabilities::builder()
            .enable_completions()
            .enable_prompts()
            .enable_prompts_list_changed()
            .enable_resources()
            .enable_resources_list_changed()
            .enable_tools()
            .enable_tool_list_changed()
            .build();
        mcp::ServerConfig::new(capabilities)
            // Without this rmcp would report its own crate name and version.
            .with_server_info(mcp::Implementation::new(
                "sluice",
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions(INSTRUCTIONS)
    }

    async fn initialize(
        &self,
        request: mcp::InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<mcp::InitializeResult, McpError> {
        tracing::info!(
            client = %request.client_info.name,
            client_version = %request.client_info.version,
            protocol = %request.protocol_version,
            "initialize"
        );
        // What the default `initialize` does; overridden only to log the client.
        context.peer.set_peer_info(request.clone());
        self.negotiate_initialize(&request)
    }

    async fn on_initialized(&self, context: rmcp::service::NotificationContext<RoleServer>) {
        // Each session hears of plugin changes until its client goes away.
        if let Some(changes) = self.host.list_changes() {
            tokio::spawn(notify_list_changes(changes, context.peer));
        }
    }

    async fn list_tools(
        &self,
        _request: Option<mcp::PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<mcp::ListToolsResult, McpError> {
        let caller = self.caller(&context.extensions);
        let tools = self
            .host
            .tools(&caller.scope)
            .into_iter()
            .map(tool_to_mcp)
            .collect();
        Ok(mcp::ListToolsResult::with_all_items(tools))
    }

    // `get_tool` stays at its default (`None`): arguments are not validated
    // here, so malformed ones reach the plugin, whose error the model sees as
    // a tool result it can correct rather than as an opaque protocol error.

    async fn call_tool(
        &self,
        request: mcp::CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<mcp::CallToolResponse, McpError> {
        let caller = self.caller(&context.extensions);
        let name = request.name;
        let arguments = request.arguments.unwrap_or_default();
        tracing::debug!(tool = %name, "tools/call");
        match unpanicked("tools/call", self.host.call_tool(&caller, &name, arguments)).await {
            Ok(output) => Ok(tool_output_to_mcp(output).into()),
            // Only a name nobody offers is a protocol error; a plugin that
            // reports something else missing is answered as a tool error.
            Err(error @ CallError::UnknownTool(_)) => {
                Err(McpError::invalid_params(error.to_string(), None))
            }
            Err(error) => {
                tracing::info!(tool = %name, %error, "tool call failed");
                Ok(
                    mcp::CallToolResult::error(vec![mcp::ContentBlock::text(error.to_string())])
                        .into(),
                )
            }
        }
    }

    async fn list_resources(
        &self,
        _request: Option<mcp::PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<mcp::ListResourcesResult, McpError> {
        let caller = self.caller(&context.extensions);
        let resources = self
            .host
            .resources(&caller.scope)
            .into_iter()
            .map(resource_to_mcp)
            .collect();
        Ok(mcp::ListResourcesResult::with_all_items(resources))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<mcp::PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<mcp::ListResourceTemplatesResult, McpError> {
        let caller = self.caller(&context.extensions);
        let templates = self
            .host
            .resource_templates(&caller.scope)
            .into_iter()
            .map(template_to_mcp)
            .collect();
        Ok(mcp::ListResourceTemplatesResult::with_all_items(templates))
    }

    async fn read_resource(
        &self,
        request: mcp::ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<mcp::ReadResourceResponse, McpError> {
        let caller = self.caller(&context.extensions);
        let uri = request.uri;
        tracing::debug!(%uri, "resources/read");
        match unpanicked("resources/read", self.host.read_resource(&caller, &uri)).await {
            Ok(contents) => {
                let contents = contents.into_iter().map(resource_contents_to_mcp).collect();
                Ok(mcp::ReadResourceResult::new(contents).into())
            }
            // rmcp turns -32002 into -32602 for peers on 2026-07-28 or later.
            Err(CallError::NotFound(detail)) => Err(McpError::resource_not_found(
                format!("resource not found: {detail}"),
                Some(serde_json::json!({ "uri": uri })),
            )),
            Err(CallError::InvalidInput(message)) => Err(McpError::invalid_params(message, None)),
            Err(error) => {
                tracing::info!(%uri, %error, "resource read failed");
                Err(McpError::internal_error(error.to_string(), None))
            }
        }
    }

    async fn list_prompts(
        &self,
        _request: Option<mcp::PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<mcp::ListPromptsResult, McpError> {
        let caller = self.caller(&context.extensions);
        let prompts = self
            .host
            .prompts(&caller.scope)
            .into_iter()
            .map(prompt_to_mcp)
            .collect();
        Ok(mcp::ListPromptsResult::with_all_items(prompts))
    }

    async fn get_prompt(
        &self,
        request: mcp::GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<mcp::GetPromptResponse, McpError> {
        let caller = self.caller(&context.extensions);
        let name = request.name;
        let arguments = prompt_arguments(request.arguments.unwrap_or_default());
        tracing::debug!(prompt = %name, "prompts/get");
        match unpanicked(
            "prompts/get",
            self.host.get_prompt(&caller, &name, arguments),
        )
        .await
        {
            Ok(output) => Ok(prompt_output_to_mcp(output).into()),
            Err(error @ (CallError::NotFound(_) | CallError::InvalidInput(_))) => {
                Err(McpError::invalid_params(error.to_string(), None))
            }
            Err(error) => {
                tracing::info!(prompt = %name, %error, "prompt failed");
                Err(McpError::internal_error(error.to_string(), None))
            }
        }
    }

    async fn complete(
        &self,
        request: mcp::CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<mcp::CompleteResult, McpError> {
        let caller = self.caller(&context.extensions);
        let target = match request.r#ref {
            mcp::Reference::Prompt(prompt) => CompletionTarget::Prompt(prompt.name),
            mcp::Reference::Resource(template) => CompletionTarget::ResourceTemplate(template.uri),
            other => {
                return Err(McpError::invalid_params(
                    format!(
                        "unsupported completion reference: {}",
                        other.reference_type()
                    ),
                    None,
                ));
            }
        };
        // Sorted, because the wire map has no order and plugins should see a
        // deterministic one.
        let context: BTreeMap<String, String> = request
            .context
            .and_then(|context| context.arguments)
            .unwrap_or_default()
            .into_iter()
            .collect();
        let completion = CompletionRequest {
            target,
            argument: request.argument.name,
            value: request.argument.value,
            context: context.into_iter().collect(),
        };
        match unpanicked(
            "completion/complete",
            self.host.complete(&caller, completion),
        )
        .await
        {
            Ok(output) => Ok(mcp::CompleteResult::new(completion_to_mcp(output))),
            Err(error @ (CallError::NotFound(_) | CallError::InvalidInput(_))) => {
                Err(McpError::invalid_params(error.to_string(), None))
            }
            Err(error) => {
                tracing::info!(%error, "completion failed");
                Err(McpError::internal_error(error.to_string(), None))
            }
        }
    }
}

/// Runs a request's work so that a panic in it (a bug) still answers the
/// request, with an internal error, instead of leaving the client waiting.
async fn unpanicked<T>(
    method: &'static str,
    work: impl Future<Output = Result<T, CallError>>,
) -> Result<T, CallError> {
    use futures::FutureExt as _;
    match std::panic::AssertUnwindSafe(work).catch_unwind().await {
        Ok(result) => result,
        Err(_) => {
            tracing::error!(method, "a request handler panicked");
            Err(CallError::Internal(format!(
                "sluice failed while answering {method}; the server carries on"
            )))
        }
    }
}

/// The client. An HTTP request carries the one its credentials established
/// (put there by the transport's authentication); stdio is the local user.
/// An HTTP request without one may use nothing, so a missing check fails
/// closed.
fn caller_of(extensions: &rmcp::model::Extensions) -> Arc<Principal> {
    match extensions.get::<http::request::Parts>() {
        Some(parts) => parts
            .extensions
            .get::<Arc<Principal>>()
            .cloned()
            .unwrap_or_else(|| Arc::new(Principal::nobody())),
        None => LOCAL.clone(),
    }
}

/// The local user of stdio, made once.
static LOCAL: std::sync::LazyLock<Arc<Principal>> =
    std::sync::LazyLock::new(|| Arc::new(Principal::local()));

/// How often a session's change notifier checks that the session is alive.
const SESSION_CHECK: std::time::Duration = std::time::Duration::from_secs(5);

/// Tells the client which lists changed when plugins come and go.
async fn notify_list_changes(
    mut changes: tokio::sync::broadcast::Receiver<ListChanges>,
    peer: rmcp::service::Peer<rmcp::RoleServer>,
) {
    use tokio::sync::broadcast::error::RecvError;
    // A session that ends quietly is noticed within this, so its task does
    // not wait for the next plugin change to find out.
    let mut check = tokio::time::interval(SESSION_CHECK);
    loop {
        let received = tokio::select! {
            received = changes.recv() => received,
            _ = check.tick() => {
                if peer.is_transport_closed() {
                    return;
                }
                continue;
            }
        };
        let change = match received {
            Ok(change) => change,
            // Missed some: say everything may have changed.
            Err(RecvError::Lagged(_)) => ListChanges {
                tools: true,
                resources: true,
                prompts: true,
            },
            Err(RecvError::Closed) => return,
        };
        let sent = async {
            if change.tools {
                peer.notify_tool_list_changed().await?;
            }
            if change.resources {
                peer.notify_resource_list_changed().await?;
            }
            if change.prompts {
                peer.notify_prompt_list_changed().await?;
            }
            Ok::<(), rmcp::service::ServiceError>(())
        };
        if let Err(e) = sent.await {
            tracing::debug!("list_changed notification not sent: {e}");
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use rmcp::{RoleClient, ServiceError, model::ErrorCode, service::RunningService};
    use serde_json::json;

    use super::*;
    use crate::registry::model::{
        CompletionOutput, Content, PromptArgumentSpec, PromptMessage, PromptOutput, PromptSpec,
        ResourceBody, ResourceContents, ResourceSpec, ResourceTemplateSpec, Role, Scope,
        ToolAnnotations, ToolOutput, ToolSpec,
    };
    use rmcp::ServiceExt as _;
    use serde_json::{Map, Value as Json};

    /// A host with one tool per interesting outcome.
    #[derive(Default)]
    struct FakeHost {
        /// The arguments of the last tool call.
        last_arguments: Mutex<Option<Map<String, Json>>>,
        /// The last completion request.
        last_completion: Mutex<Option<CompletionRequest>>,
    }

    fn object(value: Json) -> Map<String, Json> {
        match value {
            Json::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    impl PluginHost for FakeHost {
        fn tools(&self, _: &Scope) -> Vec<ToolSpec> {
            let tool = |name: &str| ToolSpec {
                name: name.into(),
                title: None,
                description: format!("the {name} tool"),
                input_schema: object(json!({"type": "object"})),
                output_schema: None,
                annotations: ToolAnnotations::default(),
            };
            vec![
                ToolSpec {
                    title: Some("Query".into()),
                    output_schema: Some(object(json!({"type": "object"}))),
                    annotations: ToolAnnotations {
                        read_only: Some(true),
                        destructive: Some(false),
                        idempotent: Some(true),
                        open_world: Some(false),
                    },
                    ..tool("query")
                },
                tool("secret"),
                tool("strict"),
                tool("lookup"),
            ]
        }

        fn resources(&self, _: &Scope) -> Vec<ResourceSpec> {
            vec![ResourceSpec {
                uri: "sluice://schema".into(),
                name: "schema".into(),
                title: None,
                description: Some("the schema".into()),
                mime_type: Some("text/plain".into()),
            }]
        }

        fn resource_templates(&self, _: &Scope) -> Vec<ResourceTemplateSpec> {
            vec![ResourceTemplateSpec {
                uri_template: "sluice://table/{name}".into(),
                name: "table".into(),
                title: None,
                description: None,
                mime_type: None,
            }]
        }

        fn prompts(&self, _: &Scope) -> Vec<PromptSpec> {
            vec![PromptSpec {
                name: "explain".into(),
                title: None,
                description: None,
                arguments: vec![PromptArgumentSpec {
                    name: "table".into(),
                    title: None,
                    description: None,
                    required: true,
                }],
            }]
        }

        async fn call_tool(
            &self,
            _: &Arc<Principal>,
            name: &str,
            arguments: Map<String, Json>,
        ) -> Result<ToolOutput, CallError> {
            *self.last_arguments.lock().unwrap() = Some(arguments.clone());
            match name {
                "query" => Ok(ToolOutput {
                    content: vec![
                        Content::Text("1 row".into()),
                        Content::Image {
                            data: vec![1, 2, 3],
                            mime_type: "image/png".into(),
                        },
                    ],
                    structured: Some(json!({"rows": [[1]]})),
                    is_error: false,
                }),
                "secret" => Err(CallError::Denied {
                    rule: "read-grant".into(),
                    message: "relation secret.x is not in this plugin's read grant".into(),
                }),
                "strict" => Err(CallError::InvalidInput("missing field `sql`".into())),
                "lookup" => Err(CallError::NotFound("table public.nope".into())),
                other => Err(CallError::UnknownTool(other.into())),
            }
        }

        async fn read_resource(
            &self,
            _: &Arc<Principal>,
            uri: &str,
        ) -> Result<Vec<ResourceContents>, CallError> {
            match uri {
                "sluice://schema" => Ok(vec![ResourceContents {
                    uri: uri.into(),
                    mime_type: None,
                    body: ResourceBody::Blob(b"hi".to_vec()),
                }]),
                "sluice://denied" => Err(CallError::Denied {
                    rule: "r".into(),
                    message: "m".into(),
                }),
                other => Err(CallError::NotFound(other.into())),
            }
        }

        async fn get_prompt(
            &self,
            _: &Arc<Principal>,
            name: &str,
            arguments: Vec<(String, String)>,
        ) -> Result<PromptOutput, CallError> {
            if name != "explain" {
                return Err(CallError::NotFound(name.into()));
            }
            Ok(PromptOutput {
                description: Some("explains".into()),
                messages: vec![PromptMessage {
                    role: Role::Assistant,
                    content: Content::Text(format!("{arguments:?}")),
                }],
            })
        }

        async fn complete(
            &self,
            _: &Arc<Principal>,
            request: CompletionRequest,
        ) -> Result<CompletionOutput, CallError> {
            *self.last_completion.lock().unwrap() = Some(request.clone());
            match &request.target {
                CompletionTarget::Prompt(name) if name == "explain" => Ok(CompletionOutput {
                    values: (0..150).map(|i| format!("t{i}")).collect(),
                    total: None,
                    has_more: false,
                }),
                _ => Err(CallError::NotFound("no such prompt".into())),
            }
        }
    }

    async fn connect(host: Arc<FakeHost>) -> RunningService<RoleClient, ()> {
        let (server_io, client_io) = tokio::io::duplex(64 * 1024);
        tokio::spawn(async move {
            let server = McpServer::new(host)
                .serve(server_io)
                .await
                .expect("server init");
            let _ = server.waiting().await;
        });
        ().serve(client_io).await.expect("client init")
    }

    #[tokio::test]
    async fn works_for_2026_07_28_peers() {
        use rmcp::{ClientLifecycleMode, ClientServiceExt as _};

        let (server_io, client_io) = tokio::io::duplex(64 * 1024);
        tokio::spawn(async move {
            let server = McpServer::new(Arc::new(FakeHost::default()))
                .serve(server_io)
                .await
                .expect("server init");
            let _ = server.waiting().await;
        });
        let lifecycle = ClientLifecycleMode::Discover {
            preferred_versions: vec![mcp::ProtocolVersion::V_2026_07_28],
        };
        let client = ().serve_with_lifecycle(client_io, lifecycle).await.unwrap();
        assert_eq!(client.list_all_tools().await.unwrap().len(), 4);
        let denied = client
            .call_tool(mcp::CallToolRequestParams::new("secret"))
            .await
            .unwrap();
        assert_eq!(denied.is_error, Some(true));
        // The new era reports a missing resource as invalid params.
        let missing = client
            .read_resource(mcp::ReadResourceRequestParams::new("sluice://missing"))
            .await
            .unwrap_err();
        assert_eq!(error_code(missing).0, ErrorCode::INVALID_PARAMS);
        client.cancel().await.unwrap();
    }

    fn error_code(error: ServiceError) -> (ErrorCode, String) {
        match error {
            ServiceError::McpError(data) => (data.code, data.message.into_owned()),
            other => panic!("expected an MCP error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn lists_and_info() {
        let client = connect(Arc::default()).await;
        let info = client.peer_info().expect("server info");
        let server = info.server_info.as_ref().expect("implementation");
        assert_eq!(server.name, "sluice");
        // The default protocol choice: the newest version that still has `initialize`.
        assert_eq!(info.protocol_version, mcp::ProtocolVersion::V_2025_11_25);
        assert!(
            info.instructions
                .as_deref()
                .unwrap_or("")
                .contains("read-only")
        );
        let caps = &info.capabilities;
        assert_eq!(caps.tools.as_ref().and_then(|c| c.list_changed), Some(true));
        assert_eq!(
            caps.resources.as_ref().and_then(|c| c.list_changed),
            Some(true)
        );
        assert_eq!(
            caps.prompts.as_ref().and_then(|c| c.list_changed),
            Some(true)
        );
        assert!(caps.completions.is_some());

        let tools = client.list_all_tools().await.unwrap();
        assert_eq!(tools.len(), 4);
        let query = &tools[0];
        assert_eq!(query.title.as_deref(), Some("Query"));
        let annotations = query.annotations.as_ref().expect("annotations");
        assert_eq!(annotations.title.as_deref(), Some("Query"));
        assert_eq!(annotations.read_only_hint, Some(true));
        assert_eq!(annotations.destructive_hint, Some(false));
        assert!(query.output_schema.is_some());
        assert!(tools[1].annotations.is_none());

        let resources = client.list_all_resources().await.unwrap();
        assert_eq!(resources[0].uri, "sluice://schema");
        let templates = client.list_all_resource_templates().await.unwrap();
        assert_eq!(templates[0].uri_template, "sluice://table/{name}");
        let prompts = client.list_all_prompts().await.unwrap();
        assert_eq!(
            prompts[0].arguments.as_ref().unwrap()[0].required,
            Some(true)
        );
        client.cancel().await.unwrap();
    }

    #[tokio::test]
    async fn tool_calls() {
        let host = Arc::new(FakeHost::default());
        let client = connect(Arc::clone(&host)).await;

        let ok = client
            .call_tool(mcp::CallToolRequestParams::new("query"))
            .await
            .unwrap();
        assert_eq!(ok.is_error, Some(false));
        assert_eq!(ok.structured_content, Some(json!({"rows": [[1]]})));
        assert_eq!(ok.content.len(), 2);
        let mcp::ContentBlock::Image(image) = &ok.content[1] else {
            panic!("expected an image: {:?}", ok.content[1]);
        };
        assert_eq!(image.data, "AQID");
        // Absent arguments reach the plugin as an empty object.
        assert_eq!(host.last_arguments.lock().unwrap().take(), Some(Map::new()));

        let denied = client
            .call_tool(
                mcp::CallToolRequestParams::new("secret").with_arguments(object(json!({"sql": 1}))),
            )
            .await
            .unwrap();
        assert_eq!(denied.is_error, Some(true));
        let text = denied.content[0].as_text().expect("text").text.clone();
        assert_eq!(
            text,
            "denied (read-grant): relation secret.x is not in this plugin's read grant"
        );

        let invalid = client
            .call_tool(mcp::CallToolRequestParams::new("strict"))
            .await
            .unwrap();
        assert_eq!(invalid.is_error, Some(true));

        // NotFound from a tool that exists is the tool's own answer.
        let missing_table = client
            .call_tool(mcp::CallToolRequestParams::new("lookup"))
            .await
            .unwrap();
        assert_eq!(missing_table.is_error, Some(true));

        let unknown = client
            .call_tool(mcp::CallToolRequestParams::new("nope"))
            .await
            .unwrap_err();
        assert_eq!(
            error_code(unknown),
            (ErrorCode::INVALID_PARAMS, "unknown tool: nope".into())
        );
        client.cancel().await.unwrap();
    }

    #[tokio::test]
    async fn resources_prompts_completions() {
        let host = Arc::new(FakeHost::default());
        let client = connect(Arc::clone(&host)).await;

        let read = client
            .read_resource(mcp::ReadResourceRequestParams::new("sluice://schema"))
            .await
            .unwrap();
        assert_eq!(
            read.contents,
            vec![mcp::ResourceContents::BlobResourceContents {
                uri: "sluice://schema".into(),
                mime_type: None,
                blob: "aGk=".into(),
                meta: None,
            }]
        );
        let missing = client
            .read_resource(mcp::ReadResourceRequestParams::new("sluice://missing"))
            .await
            .unwrap_err();
        assert_eq!(error_code(missing).0, ErrorCode::RESOURCE_NOT_FOUND);
        let denied = client
            .read_resource(mcp::ReadResourceRequestParams::new("sluice://denied"))
            .await
            .unwrap_err();
        assert_eq!(
            error_code(denied),
            (ErrorCode::INTERNAL_ERROR, "denied (r): m".into())
        );

        let prompt = client
            .get_prompt(
                mcp::GetPromptRequestParams::new("explain")
                    .with_arguments(object(json!({"table": "t", "n": 3, "x": null}))),
            )
            .await
            .unwrap();
        assert_eq!(prompt.description.as_deref(), Some("explains"));
        assert_eq!(prompt.messages[0].role, mcp::Role::Assistant);
        // Non-strings arrive as JSON text, nulls not at all (in map order,
        // which depends on serde_json's features).
        let text = &prompt.messages[0].content.as_text().unwrap().text;
        assert!(text.contains(r#"("n", "3")"#), "{text}");
        assert!(text.contains(r#"("table", "t")"#), "{text}");
        assert!(!text.contains(r#""x""#), "{text}");
        let missing = client
            .get_prompt(mcp::GetPromptRequestParams::new("nope"))
            .await
            .unwrap_err();
        assert_eq!(error_code(missing).0, ErrorCode::INVALID_PARAMS);

        let mut context = std::collections::HashMap::new();
        context.insert("schema".to_string(), "public".to_string());
        let completion = client
            .complete_prompt_argument(
                "explain",
                "table",
                "t",
                Some(mcp::CompletionContext::with_arguments(context)),
            )
            .await
            .unwrap();
        assert_eq!(completion.values.len(), MAX_COMPLETION_VALUES);
        assert_eq!(completion.total, Some(150));
        assert_eq!(completion.has_more, Some(true));
        assert_eq!(
            host.last_completion.lock().unwrap().take(),
            Some(CompletionRequest {
                target: CompletionTarget::Prompt("explain".into()),
                argument: "table".into(),
                value: "t".into(),
                context: vec![("schema".into(), "public".into())],
            })
        );
        let unknown = client
            .complete_resource_argument("sluice://nope/{x}", "x", "", None)
            .await
            .unwrap_err();
        assert_eq!(error_code(unknown).0, ErrorCode::INVALID_PARAMS);
        client.cancel().await.unwrap();
    }
}
