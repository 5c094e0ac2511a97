//! The plugin builder: typed tools, resources, templates, prompts, completions.

use crate::bindings::exports::sluice::plugin::handler as h;
use crate::template::{self, UriParams};
use crate::{Error, Requests, Result};
use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value as JsonValue;

pub use h::ToolResult;

/// The most suggestions one completion returns (MCP's limit).
const MAX_COMPLETIONS: usize = 100;

/// Suggests values for an argument: `(typed so far, already-resolved arguments)`.
pub type Completer = Box<dyn Fn(&str, &[(String, String)]) -> Result<Vec<String>>>;

type ToolHandler = Box<dyn Fn(&str) -> Result<ToolResult>>;
type ResourceHandler = Box<dyn Fn(&str) -> Result<Vec<ResourceContents>>>;
type TemplateHandler = Box<dyn Fn(&str, &UriParams) -> Result<Vec<ResourceContents>>>;
type PromptHandler = Box<dyn Fn(&PromptArgs) -> Result<PromptResult>>;

/// Everything a plugin offers. Build it in the function given to
/// [`plugin!`](crate::plugin).
#[derive(Default)]
pub struct Plugin {
    name: Option<String>,
    version: Option<String>,
    description: Option<String>,
    requests: Requests,
    tools: Vec<Tool>,
    resources: Vec<Resource>,
    templates: Vec<ResourceTemplate>,
    prompts: Vec<Prompt>,
}

impl Plugin {
    /// A plugin that offers nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The plugin's name, by which the operator grants it access. Defaults to
    /// the crate's package name: lower-case letters, digits and `-`.
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }

    /// The plugin's version. Defaults to the crate's version.
    pub fn version(mut self, version: &str) -> Self {
        self.version = Some(version.to_string());
        self
    }

    /// What the plugin is for. Defaults to the crate's description.
    pub fn description(mut self, description: &str) -> Self {
        self.description = Some(description.to_string());
        self
    }

    /// What the plugin asks the operator for. Without it, a plugin may not
    /// touch the database whatever the operator grants.
    pub fn requests(mut self, requests: Requests) -> Self {
        self.requests = requests;
        self
    }

    /// Adds a tool.
    pub fn tool(mut self, tool: Tool) -> Self {
        self.tools.push(tool);
        self
    }

    /// Adds a concrete resource.
    pub fn resource(mut self, resource: Resource) -> Self {
        self.resources.push(resource);
        self
    }

    /// Adds a resource template.
    pub fn resource_template(mut self, template: ResourceTemplate) -> Self {
        self.templates.push(template);
        self
    }

    /// Adds a prompt.
    pub fn prompt(mut self, prompt: Prompt) -> Self {
        self.prompts.push(prompt);
        self
    }

    #[doc(hidden)]
    pub fn describe(&self, name: &str, version: &str, description: &str) -> h::Description {
        h::Description {
            manifest: h::Manifest {
                name: self.name.clone().unwrap_or_else(|| name.to_string()),
                version: self.version.clone().unwrap_or_else(|| version.to_string()),
                description: self
                    .description
                    .clone()
                    .unwrap_or_else(|| description.to_string()),
                requests: self.requests.0.clone(),
            },
            tools: self.tools.iter().map(Tool::spec).collect(),
            resources: self.resources.iter().map(|r| r.spec.clone()).collect(),
            resource_templates: self.templates.iter().map(|t| t.spec.clone()).collect(),
            prompts: self.prompts.iter().map(|p| p.spec.clone()).collect(),
        }
    }

    #[doc(hidden)]
    pub fn call_tool(&self, name: &str, arguments: &str) -> Result<ToolResult> {
        let tool = self
            .tools
            .iter()
            .find(|t| t.spec.name == name)
            .ok_or_else(|| Error::not_found(format!("no tool named {name:?}")))?;
        (tool.handler)(arguments)
    }

    #[doc(hidden)]
    pub fn read_resource(&self, uri: &str) -> Result<Vec<h::ResourceContents>> {
        let contents = if let Some(r) = self.resources.iter().find(|r| r.spec.uri == uri) {
            (r.handler)(uri)?
        } else {
            self.templates
                .iter()
                .find_map(|t| template::match_uri(&t.spec.uri_template, uri).map(|p| (t, p)))
                .ok_or_else(|| Error::not_found(format!("no resource {uri:?}")))
                .and_then(|(t, params)| (t.handler)(uri, &params))?
        };
        Ok(contents.into_iter().map(|c| c.0).collect())
    }

    #[doc(hidden)]
    pub fn get_prompt(
        &self,
        name: &str,
        arguments: Vec<(String, String)>,
    ) -> Result<h::PromptResult> {
        let prompt = self
            .prompts
            .iter()
            .find(|p| p.spec.name == name)
            .ok_or_else(|| Error::not_found(format!("no prompt named {name:?}")))?;
        for arg in prompt.spec.arguments.iter().filter(|a| a.required) {
            if !arguments
                .iter()
                .any(|(k, v)| *k == arg.name && !v.is_empty())
            {
                return Err(Error::invalid_input(format!(
                    "prompt {name:?} needs the argument {:?}",
                    arg.name
                )));
            }
        }
        (prompt.handler)(&PromptArgs(arguments)).map(|r| r.0)
    }

    #[doc(hidden)]
    pub fn complete(&self, request: h::CompletionRequest) -> Result<h::Completion> {
        let completers = match &request.target {
            h::CompletionTarget::Prompt(name) => self
                .prompts
                .iter()
                .find(|p| p.spec.name == *name)
                .map(|p| &p.completers),
            h::CompletionTarget::ResourceTemplate(uri) => self
                .templates
                .iter()
                .find(|t| t.spec.uri_template == *uri)
                .map(|t| &t.completers),
        };
        let Some(completers) = completers else {
            return Err(Error::not_found("no such prompt or resource template"));
        };
        let Some((_, completer)) = completers.iter().find(|(arg, _)| *arg == request.argument)
        else {
            // Nothing to suggest is an empty answer, not an error.
            return Ok(h::Completion {
                values: Vec::new(),
                total: Some(0),
                has_more: false,
            });
        };
        let mut values = completer(&request.value, &request.context)?;
        let total = u32::try_from(values.len()).ok();
        let has_more = values.len() > MAX_COMPLETIONS;
        values.truncate(MAX_COMPLETIONS);
        Ok(h::Completion {
            values,
            total,
            has_more,
        })
    }
}

/// What a tool function may return.
///
/// `String` gives a text result. [`Json`] gives structured content (with the
/// output schema derived from its type) plus the same JSON as text, which is
/// what MCP clients that ignore structured content read.
pub trait ToolOutput {
    /// The JSON Schema of structured results, if the output is structured.
    fn output_schema() -> Option<JsonValue>;
    /// Converts the value into a tool result.
    fn into_tool_result(self) -> Result<ToolResult>;
}

impl ToolOutput for String {
    fn output_schema() -> Option<JsonValue> {
        None
    }
    fn into_tool_result(self) -> Result<ToolResult> {
        Ok(ToolResult {
            content: vec![h::Content::Text(self)],
            structured: None,
            is_error: false,
        })
    }
}

impl ToolOutput for ToolResult {
    fn output_schema() -> Option<JsonValue> {
        None
    }
    fn into_tool_result(self) -> Result<ToolResult> {
        Ok(self)
    }
}

/// Structured tool output: serialized as the result's `structuredContent` and as
/// its text. `T` should serialize to a JSON object.
pub struct Json<T>(pub T);

impl<T: Serialize + JsonSchema> ToolOutput for Json<T> {
    fn output_schema() -> Option<JsonValue> {
        Some(schema_of::<T>())
    }
    fn into_tool_result(self) -> Result<ToolResult> {
        let text = serde_json::to_string_pretty(&self.0)?;
        let structured = serde_json::to_string(&self.0)?;
        Ok(ToolResult {
            content: vec![h::Content::Text(text)],
            structured: Some(structured),
            is_error: false,
        })
    }
}

fn schema_of<T: JsonSchema>() -> JsonValue {
    let mut schema = schemars::schema_for!(T).to_value();
    if let Some(obj) = schema.as_object_mut() {
        // Clients read the schema inline; the meta-schema URL only adds noise.
        obj.remove("$schema");
    }
    drop_unknown_formats(&mut schema);
    schema
}

/// `format` values clients' validators know: JSON Schema's own, and the
/// OpenAPI number formats.
const KNOWN_FORMATS: &[&str] = &[
    "date-time",
    "date",
    "time",
    "duration",
    "email",
    "idn-email",
    "hostname",
    "idn-hostname",
    "ipv4",
    "ipv6",
    "uri",
    "uri-reference",
    "iri",
    "iri-reference",
    "uuid",
    "uri-template",
    "json-pointer",
    "relative-json-pointer",
    "regex",
    "int32",
    "int64",
    "float",
    "double",
];

/// Removes the `format`s schemars invents for Rust types (`uint`, `uint32`,
/// ...): clients such as the TypeScript SDK's validator warn about every
/// one they do not know. Instance data (`default`, `examples`, `const`,
/// `enum`) is left as it is.
fn drop_unknown_formats(schema: &mut JsonValue) {
    match schema {
        JsonValue::Object(map) => {
            if map
                .get("format")
                .and_then(JsonValue::as_str)
                .is_some_and(|f| !KNOWN_FORMATS.contains(&f))
            {
                map.remove("format");
            }
            for (key, value) in map.iter_mut() {
                if !matches!(key.as_str(), "default" | "examples" | "const" | "enum") {
                    drop_unknown_formats(value);
                }
            }
        }
        JsonValue::Array(items) => items.iter_mut().for_each(drop_unknown_formats),
        _ => {}
    }
}

/// A tool: a typed function plus its metadata.
pub struct Tool {
    /// Name, title and annotations; [`Tool::spec`] adds the rest.
    spec: h::Tool,
    /// Set by [`Tool::description`]; otherwise the arguments' doc comment.
    description: Option<String>,
    /// Derives the input and output schemas. Every call runs in a fresh
    /// instance that builds the plugin anew, and only `describe` needs the
    /// schemas: deriving them eagerly cost more than a point query's call.
    schemas: fn() -> (JsonValue, Option<JsonValue>),
    handler: ToolHandler,
}

impl Tool {
    /// A tool named `name` that deserializes its arguments into `A` and runs `f`.
    ///
    /// The input schema is derived from `A`, the output schema from `O` (see
    /// [`ToolOutput`]). Arguments that do not match `A` give an
    /// [`Error::InvalidInput`] without calling `f`.
    pub fn new<A, O, F>(name: &str, f: F) -> Tool
    where
        A: DeserializeOwned + JsonSchema,
        O: ToolOutput,
        F: Fn(A) -> Result<O> + 'static,
    {
        Tool {
            spec: h::Tool {
                name: name.to_string(),
                title: None,
                description: String::new(),
                input_schema: String::new(),
                output_schema: None,
                annotations: h::ToolAnnotations {
                    read_only: None,
                    destructive: None,
                    idempotent: None,
                    open_world: None,
                },
            },
            description: None,
            schemas: || (schema_of::<A>(), O::output_schema()),
            handler: Box::new(move |raw| {
                let raw = if raw.trim().is_empty() { "{}" } else { raw };
                let args: A = serde_json::from_str(raw)
                    .map_err(|e| Error::invalid_input(format!("arguments: {e}")))?;
                f(args)?.into_tool_result()
            }),
        }
    }

    /// A human-readable title.
    pub fn title(mut self, title: &str) -> Self {
        self.spec.title = Some(title.to_string());
        self
    }

    /// What the tool does, for the model. Defaults to the doc comment of the
    /// arguments struct.
    pub fn description(mut self, description: &str) -> Self {
        self.description = Some(description.to_string());
        self
    }

    /// The whole description, schemas included.
    fn spec(&self) -> h::Tool {
        let (input, output) = (self.schemas)();
        let description = self.description.clone().unwrap_or_else(|| {
            input
                .get("description")
                .and_then(JsonValue::as_str)
                .unwrap_or_default()
                .to_string()
        });
        h::Tool {
            description,
            input_schema: input.to_string(),
            output_schema: output.map(|s| s.to_string()),
            ..self.spec.clone()
        }
    }

    /// Marks the tool read-only, idempotent and closed-world.
    pub fn read_only(mut self) -> Self {
        let a = &mut self.spec.annotations;
        a.read_only = Some(true);
        a.destructive = Some(false);
        a.idempotent = Some(true);
        a.open_world = Some(false);
        self
    }

    /// Marks the tool as one that modifies data; `destructive` says whether it may
    /// overwrite or delete what exists (an insert is not destructive).
    pub fn writes(mut self, destructive: bool, idempotent: bool) -> Self {
        let a = &mut self.spec.annotations;
        a.read_only = Some(false);
        a.destructive = Some(destructive);
        a.idempotent = Some(idempotent);
        a.open_world = Some(false);
        self
    }
}

/// Contents of a resource.
#[derive(Debug, Clone)]
pub struct ResourceContents(h::ResourceContents);

impl ResourceContents {
    /// Text contents.
    pub fn text(uri: &str, mime_type: &str, text: impl Into<String>) -> Self {
        ResourceContents(h::ResourceContents {
            uri: uri.to_string(),
            mime_type: Some(mime_type.to_string()),
            body: h::ResourceBody::Text(text.into()),
        })
    }

    /// A JSON document, pretty-printed, as `application/json`.
    pub fn json<T: Serialize>(uri: &str, value: &T) -> Result<Self> {
        Ok(Self::text(
            uri,
            "application/json",
            serde_json::to_string_pretty(value)?,
        ))
    }

    /// Binary contents.
    pub fn blob(uri: &str, mime_type: &str, data: Vec<u8>) -> Self {
        ResourceContents(h::ResourceContents {
            uri: uri.to_string(),
            mime_type: Some(mime_type.to_string()),
            body: h::ResourceBody::Blob(data),
        })
    }
}

/// A concrete resource with a fixed URI.
pub struct Resource {
    spec: h::Resource,
    handler: ResourceHandler,
}

impl Resource {
    /// A resource at `uri` whose contents `f` produces on each read.
    pub fn new<F>(uri: &str, name: &str, f: F) -> Self
    where
        F: Fn(&str) -> Result<Vec<ResourceContents>> + 'static,
    {
        Resource {
            spec: h::Resource {
                uri: uri.to_string(),
                name: name.to_string(),
                title: None,
                description: None,
                mime_type: None,
            },
            handler: Box::new(f),
        }
    }

    /// A human-readable title.
    pub fn title(mut self, title: &str) -> Self {
        self.spec.title = Some(title.to_string());
        self
    }

    /// What the resource holds.
    pub fn description(mut self, description: &str) -> Self {
        self.spec.description = Some(description.to_string());
        self
    }

    /// The MIME type of its contents.
    pub fn mime_type(mut self, mime_type: &str) -> Self {
        self.spec.mime_type = Some(mime_type.to_string());
        self
    }
}

/// A family of resources addressed by a URI template such as
/// `db://tables/{table}/schema`.
pub struct ResourceTemplate {
    spec: h::ResourceTemplate,
    handler: TemplateHandler,
    completers: Vec<(String, Completer)>,
}

impl ResourceTemplate {
    /// A template whose matching URIs `f` reads, given the bound variables.
    pub fn new<F>(uri_template: &str, name: &str, f: F) -> Self
    where
        F: Fn(&str, &UriParams) -> Result<Vec<ResourceContents>> + 'static,
    {
        ResourceTemplate {
            spec: h::ResourceTemplate {
                uri_template: uri_template.to_string(),
                name: name.to_string(),
                title: None,
                description: None,
                mime_type: None,
            },
            handler: Box::new(f),
            completers: Vec::new(),
        }
    }

    /// A human-readable title.
    pub fn title(mut self, title: &str) -> Self {
        self.spec.title = Some(title.to_string());
        self
    }

    /// What the resources hold.
    pub fn description(mut self, description: &str) -> Self {
        self.spec.description = Some(description.to_string());
        self
    }

    /// The MIME type of the resources' contents.
    pub fn mime_type(mut self, mime_type: &str) -> Self {
        self.spec.mime_type = Some(mime_type.to_string());
        self
    }

    /// Completes the template variable `variable` with `f`.
    ///
    /// # Panics
    /// When the template has no such variable: a programming error.
    pub fn complete<F>(mut self, variable: &str, f: F) -> Self
    where
        F: Fn(&str, &[(String, String)]) -> Result<Vec<String>> + 'static,
    {
        assert!(
            template::variables(&self.spec.uri_template)
                .iter()
                .any(|v| v == variable),
            "template {} has no variable {variable}",
            self.spec.uri_template
        );
        self.completers.push((variable.to_string(), Box::new(f)));
        self
    }
}

/// Arguments given to a prompt.
#[derive(Debug, Clone, Default)]
pub struct PromptArgs(Vec<(String, String)>);

impl PromptArgs {
    /// The argument `name`, if given and not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }
}

/// One message of a rendered prompt.
pub struct PromptMessage(h::PromptMessage);

impl PromptMessage {
    /// A text message from the user.
    pub fn user(text: impl Into<String>) -> Self {
        PromptMessage(h::PromptMessage {
            role: h::Role::User,
            content: h::Content::Text(text.into()),
        })
    }

    /// A text message from the assistant.
    pub fn assistant(text: impl Into<String>) -> Self {
        PromptMessage(h::PromptMessage {
            role: h::Role::Assistant,
            content: h::Content::Text(text.into()),
        })
    }
}

/// A rendered prompt.
pub struct PromptResult(h::PromptResult);

impl PromptResult {
    /// A prompt result made of `messages`.
    pub fn new(messages: impl IntoIterator<Item = PromptMessage>) -> Self {
        PromptResult(h::PromptResult {
            description: None,
            messages: messages.into_iter().map(|m| m.0).collect(),
        })
    }

    /// Describes the rendered prompt.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.0.description = Some(description.into());
        self
    }
}

/// A prompt template.
pub struct Prompt {
    spec: h::Prompt,
    handler: PromptHandler,
    completers: Vec<(String, Completer)>,
}

impl Prompt {
    /// A prompt named `name` rendered by `f`.
    pub fn new<F>(name: &str, f: F) -> Self
    where
        F: Fn(&PromptArgs) -> Result<PromptResult> + 'static,
    {
        Prompt {
            spec: h::Prompt {
                name: name.to_string(),
                title: None,
                description: None,
                arguments: Vec::new(),
            },
            handler: Box::new(f),
            completers: Vec::new(),
        }
    }

    /// A human-readable title.
    pub fn title(mut self, title: &str) -> Self {
        self.spec.title = Some(title.to_string());
        self
    }

    /// What the prompt is for.
    pub fn description(mut self, description: &str) -> Self {
        self.spec.description = Some(description.to_string());
        self
    }

    /// Declares an argument; required ones are checked before `f` runs.
    pub fn argument(mut self, name: &str, description: &str, required: bool) -> Self {
        self.spec.arguments.push(h::PromptArgument {
            name: name.to_string(),
            title: None,
            description: Some(description.to_string()),
            required,
        });
        self
    }

    /// Completes the argument `argument` with `f`.
    ///
    /// # Panics
    /// When the argument was not declared first: a programming error.
    pub fn complete<F>(mut self, argument: &str, f: F) -> Self
    where
        F: Fn(&str, &[(String, String)]) -> Result<Vec<String>> + 'static,
    {
        assert!(
            self.spec.arguments.iter().any(|a| a.name == argument),
            "prompt {} has no argument {argument}",
            self.spec.name
        );
        self.completers.push((argument.to_string(), Box::new(f)));
        self
    }
}

/// Helpers for writing completers.
pub struct Completion;

impl Completion {
    /// The candidates that start with `prefix` (case-insensitively), sorted.
    pub fn filter_prefix<I, S>(candidates: I, prefix: &str) -> Vec<String>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let prefix = prefix.to_lowercase();
        let mut out: Vec<String> = candidates
            .into_iter()
            .map(Into::into)
            .filter(|c| c.to_lowercase().starts_with(&prefix))
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(schemars::JsonSchema)]
    #[allow(dead_code)]
    struct Args {
        count: u32,
        size: usize,
        id: i64,
        /// An argument that happens to be called `format`.
        format: String,
    }

    #[test]
    fn invented_formats_go_and_properties_named_format_stay() {
        let schema = schema_of::<Args>();
        let props = &schema["properties"];
        assert!(props["count"].get("format").is_none(), "{schema}");
        assert!(props["size"].get("format").is_none(), "{schema}");
        assert_eq!(props["id"]["format"], "int64");
        assert_eq!(props["format"]["type"], "string");
        assert_eq!(props["count"]["minimum"], 0, "the meaning stays: {schema}");
    }
}
