//! `sluice serve` over stdio, driven by an rmcp client.

use std::{path::Path, process::Stdio, time::Duration};

use rmcp::{
    RoleClient, ServiceError, ServiceExt as _,
    model::{
        CallToolRequestParams, CallToolResult, GetPromptRequestParams, GetPromptResult, Prompt,
        ReadResourceRequestParams, ReadResourceResult, Resource, ResourceTemplate, Tool,
    },
    service::RunningService,
    transport::TokioChildProcess,
};
use serde_json::{Map, Value};

use crate::{REQUEST_TIMEOUT, TestDb, serve_command, text_of};

/// A running `sluice serve` child process with an initialized MCP client.
///
/// Dropping it kills the child; [`Server::shutdown`] lets it exit cleanly.
pub struct Server {
    pub(crate) client: RunningService<RoleClient, Recorder>,
    pub(crate) _config: tempfile::NamedTempFile,
}

/// The test client's handler: counts `notifications/tools/list_changed`.
#[derive(Clone)]
pub struct Recorder {
    tool_list_changes: std::sync::Arc<tokio::sync::watch::Sender<u32>>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            tool_list_changes: std::sync::Arc::new(tokio::sync::watch::channel(0).0),
        }
    }
}

impl Recorder {
    /// How many `notifications/tools/list_changed` arrived, as it changes.
    pub fn tool_list_changes(&self) -> tokio::sync::watch::Receiver<u32> {
        self.tool_list_changes.subscribe()
    }
}

impl rmcp::ClientHandler for Recorder {
    async fn on_tool_list_changed(&self, _: rmcp::service::NotificationContext<RoleClient>) {
        self.tool_list_changes.send_modify(|n| *n += 1);
    }
}

/// Starts `sluice serve` on `db` with `config_toml` as its configuration and,
/// when given, plugins from `plugin_dir`, and initializes an MCP session.
///
/// The child's stderr is inherited so its logs show up with a failing test;
/// `RUST_LOG` defaults to `info,sluice=debug`.
pub async fn spawn(db: &TestDb, config_toml: &str, plugin_dir: Option<&Path>) -> Server {
    spawn_at(&db.url, config_toml, plugin_dir, Stdio::inherit()).await
}

/// As [`spawn`], against the database at `url`, with the child's stderr
/// going to `stderr`.
pub async fn spawn_at(
    url: &str,
    config_toml: &str,
    plugin_dir: Option<&Path>,
    stderr: Stdio,
) -> Server {
    let (command, config) = serve_command(url, config_toml, plugin_dir, "info,sluice=debug", true);
    let (transport, _) = TokioChildProcess::builder(command)
        .stderr(stderr)
        .spawn()
        .expect("spawning sluice");
    let client = tokio::time::timeout(REQUEST_TIMEOUT, Recorder::default().serve(transport))
        .await
        .expect("sluice did not initialize in time")
        .unwrap_or_else(|e| panic!("MCP initialization with sluice failed: {e}"));
    Server {
        client,
        _config: config,
    }
}

/// Bounds a request so a wedged server fails the test instead of hanging it.
async fn timed<T>(what: &str, request: impl Future<Output = T>) -> T {
    tokio::time::timeout(REQUEST_TIMEOUT, request)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {REQUEST_TIMEOUT:?}"))
}

impl Server {
    /// How many `tools/list_changed` notifications arrived so far.
    pub fn tool_list_changes(&self) -> u32 {
        *self.client.service().tool_list_changes.borrow()
    }

    /// Waits until more than `seen` `tools/list_changed` notifications
    /// arrived; panics after [`REQUEST_TIMEOUT`].
    pub async fn wait_tool_list_changed(&self, seen: u32) -> u32 {
        let mut rx = self.client.service().tool_list_changes.subscribe();
        timed(
            "notifications/tools/list_changed",
            rx.wait_for(|n| *n > seen),
        )
        .await
        .map(|n| *n)
        .expect("the recorder outlives the client")
    }

    /// Every tool the server lists.
    pub async fn list_tools(&self) -> Vec<Tool> {
        timed("tools/list", self.client.list_all_tools())
            .await
            .unwrap_or_else(|e| panic!("tools/list: {e}"))
    }

    /// Calls a tool; `args` must be a JSON object or null. Tool failures come
    /// back as results with `is_error`; panics on protocol errors.
    pub async fn call(&self, name: &str, args: Value) -> CallToolResult {
        self.try_call(name, args)
            .await
            .unwrap_or_else(|e| panic!("tools/call {name}: {e}"))
    }

    /// Calls a tool that must fail with a protocol error, and returns it.
    pub async fn call_err(&self, name: &str, args: Value) -> ServiceError {
        match self.try_call(name, args).await {
            Ok(result) => panic!(
                "tools/call {name} was expected to fail, but answered: {}",
                text_of(&result)
            ),
            Err(e) => e,
        }
    }

    /// Calls a tool and returns the protocol outcome as is.
    pub async fn try_call(&self, name: &str, args: Value) -> Result<CallToolResult, ServiceError> {
        let arguments = match args {
            Value::Object(map) => map,
            Value::Null => Map::new(),
            other => panic!("tool arguments must be a JSON object, not {other}"),
        };
        let params = CallToolRequestParams::new(name.to_owned()).with_arguments(arguments);
        timed(&format!("tools/call {name}"), self.client.call_tool(params)).await
    }

    /// Every resource the server lists.
    pub async fn list_resources(&self) -> Vec<Resource> {
        timed("resources/list", self.client.list_all_resources())
            .await
            .unwrap_or_else(|e| panic!("resources/list: {e}"))
    }

    /// Every resource template the server lists.
    pub async fn list_resource_templates(&self) -> Vec<ResourceTemplate> {
        timed(
            "resources/templates/list",
            self.client.list_all_resource_templates(),
        )
        .await
        .unwrap_or_else(|e| panic!("resources/templates/list: {e}"))
    }

    /// Reads a resource.
    pub async fn read_resource(&self, uri: &str) -> Result<ReadResourceResult, ServiceError> {
        let params = ReadResourceRequestParams::new(uri);
        timed(
            &format!("resources/read {uri}"),
            self.client.read_resource(params),
        )
        .await
    }

    /// Every prompt the server lists.
    pub async fn list_prompts(&self) -> Vec<Prompt> {
        timed("prompts/list", self.client.list_all_prompts())
            .await
            .unwrap_or_else(|e| panic!("prompts/list: {e}"))
    }

    /// Renders a prompt.
    pub async fn get_prompt(
        &self,
        name: &str,
        args: &[(&str, &str)],
    ) -> Result<GetPromptResult, ServiceError> {
        let arguments = args
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::String((*v).to_owned())))
            .collect();
        let params = GetPromptRequestParams::new(name).with_arguments(arguments);
        timed(
            &format!("prompts/get {name}"),
            self.client.get_prompt(params),
        )
        .await
    }

    /// Completion values for argument `arg` of prompt `prompt`; panics on errors.
    pub async fn complete_prompt_arg(&self, prompt: &str, arg: &str, value: &str) -> Vec<String> {
        timed(
            "completion/complete",
            self.client.complete_prompt_simple(prompt, arg, value),
        )
        .await
        .unwrap_or_else(|e| panic!("completing {prompt}.{arg}: {e}"))
    }

    /// Completion values for variable `var` of a resource template; panics on errors.
    pub async fn complete_template_var(
        &self,
        uri_template: &str,
        var: &str,
        value: &str,
    ) -> Vec<String> {
        timed(
            "completion/complete",
            self.client
                .complete_resource_simple(uri_template, var, value),
        )
        .await
        .unwrap_or_else(|e| panic!("completing {var} of {uri_template}: {e}"))
    }

    /// Closes the session and waits for the child to exit (rmcp closes its
    /// stdin, then sends SIGTERM, then kills it, waiting a few seconds each).
    pub async fn shutdown(mut self) {
        match tokio::time::timeout(Duration::from_secs(30), self.client.close()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("closing the MCP session: {e}"),
            Err(_) => panic!("sluice did not shut down within 30s"),
        }
    }
}
