//! The plugin builder: typed tools, resources, templates, prompts, completions.
//!
//! The builder runs in every fresh instance: once when the host loads the
//! plugin (for `describe`) and once more in each call's new instance. Build
//! cheaply and deterministically; handlers do the work.

use crate::bindings::exports::sluice::plugin::handler as h;
use crate::template::{self, UriParams};
use crate::{Error, Requests, Result};
use schemars::JsonSchema;
use schemars::generate::{Contract, SchemaSettings};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value as JsonValue;

/// The most suggestions one completion returns (MCP's limit).
const MAX_COMPLETIONS: usize = 100;

/// Suggests values for an argument: `(typed so far, already-resolved arguments)`.
pub type Completer = Box<dyn Fn(&str, &[(String, String)]) -> Result<Vec<String>>>;

type ToolHandler = Box<dyn Fn(&str) -> Result<ToolResult>>;
type ToolMaker = Box<dyn Fn() -> Result<Tool>>;
type ResourceHandler = Box<dyn Fn(&str) -> Result<Vec<ResourceContents>>>;
type TemplateHandler = Box<dyn Fn(&str, &UriParams) -> Result<Vec<ResourceContents>>>;
type PromptHandler = Box<dyn Fn(&PromptArgs) -> Result<PromptResult>>;

/// Everything a plugin offers. Build it in the function given to
/// [`plugin!`](crate::plugin).
///
/// That function runs in every fresh instance of the plugin: once when the
/// host loads it, to describe it, and again for every call, since each call
/// gets a new instance. Keep it cheap and deterministic: declare tools,
/// resources and prompts, and leave database reads, config lookups and
/// anything slow to the handlers (describing happens without database
/// access or config values, so a plugin built from them would describe
/// itself differently from how it serves).
#[derive(Default)]
pub struct Plugin {
    name: Option<String>,
    version: Option<String>,
    description: Option<String>,
    requests: Requests,
    tools: Vec<Tool>,
    /// Tools made when needed, by name: see [`Plugin::lazy_tool`].
    lazy_tools: Vec<(String, ToolMaker)>,
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

    /// Adds a tool made only when it is needed: every such tool when the
    /// plugin is described, and in a call's instance only the one called.
    /// For tools made from data (a declaration read from config), where
    /// making all of them in every call's fresh instance would cost more
    /// than the call. `make` must return a tool named `name`; its error is
    /// the call's (and, when describing, a logged mistake that leaves the
    /// tool out).
    pub fn lazy_tool(
        mut self,
        name: impl Into<String>,
        make: impl Fn() -> Result<Tool> + 'static,
    ) -> Self {
        self.lazy_tools.push((name.into(), Box::new(make)));
        self
    }

    /// A lazy tool, made, checked to be the one its name promised.
    fn make_lazy(name: &str, make: &ToolMaker) -> Result<Tool> {
        let tool = make()?;
        if tool.spec.name != name {
            return Err(Error::internal(format!(
                "the lazy tool {name:?} was made as {:?}",
                tool.spec.name
            )));
        }
        Ok(tool)
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

    /// Mistakes in how the plugin was built, e.g. a completion for an
    /// argument no prompt declares. Such a completion is not offered, and
    /// the host logs each problem when it loads the plugin; call this in a
    /// unit test of the plugin's build function to catch them before that.
    pub fn check(&self) -> Result<()> {
        let problems = self.problems();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::internal(problems.join("; ")))
        }
    }

    fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for t in &self.templates {
            let variables = template::variables(&t.spec.uri_template);
            out.extend(completion_problems(
                &format!("resource template {}", t.spec.uri_template),
                "variable",
                &t.completers,
                |v| variables.iter().any(|x| x == v),
            ));
        }
        for p in &self.prompts {
            out.extend(completion_problems(
                &format!("prompt {}", p.spec.name),
                "argument",
                &p.completers,
                |a| p.declares(a),
            ));
        }
        out
    }

    #[doc(hidden)]
    pub fn describe(&self, name: &str, version: &str, description: &str) -> h::Description {
        for problem in self.problems() {
            crate::log::error(format!("plugin built with a mistake: {problem}"));
        }
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
            tools: self
                .tools
                .iter()
                .map(Tool::spec)
                .chain(self.lazy_tools.iter().filter_map(|(name, make)| {
                    Self::make_lazy(name, make)
                        .inspect_err(|e| {
                            crate::log::error(format!("tool {name} left out: {}", e.message()))
                        })
                        .ok()
                        .map(|tool| tool.spec())
                }))
                .collect(),
            resources: self.resources.iter().map(|r| r.spec.clone()).collect(),
            resource_templates: self.templates.iter().map(|t| t.spec.clone()).collect(),
            prompts: self.prompts.iter().map(|p| p.spec.clone()).collect(),
        }
    }

    #[doc(hidden)]
    pub fn call_tool(&self, name: &str, arguments: &str) -> Result<ToolResult> {
        if let Some(tool) = self.tools.iter().find(|t| t.spec.name == name) {
            return (tool.handler)(arguments);
        }
        let (_, make) = self
            .lazy_tools
            .iter()
            .find(|(n, _)| n == name)
            .ok_or_else(|| Error::not_found(format!("no tool named {name:?}")))?;
        let tool = Self::make_lazy(name, make)?;
        (tool.handler)(arguments)
    }

    #[doc(hidden)]
    pub fn read_resource(&self, uri: &str) -> Result<Vec<ResourceContents>> {
        if let Some(r) = self.resources.iter().find(|r| r.spec.uri == uri) {
            return (r.handler)(uri);
        }
        self.templates
            .iter()
            .find_map(|t| template::match_uri(&t.spec.uri_template, uri).map(|p| (t, p)))
            .ok_or_else(|| Error::not_found(format!("no resource {uri:?}")))
            .and_then(|(t, params)| (t.handler)(uri, &params))
    }

    #[doc(hidden)]
    pub fn get_prompt(&self, name: &str, arguments: Vec<(String, String)>) -> Result<PromptResult> {
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
        (prompt.handler)(&PromptArgs(arguments))
    }

    #[doc(hidden)]
    pub fn complete(&self, request: h::CompletionRequest) -> Result<h::Completion> {
        let found = match &request.target {
            h::CompletionTarget::Prompt(name) => self
                .prompts
                .iter()
                .find(|p| p.spec.name == *name)
                .map(|p| (&p.completers, p.declares(&request.argument))),
            h::CompletionTarget::ResourceTemplate(uri) => self
                .templates
                .iter()
                .find(|t| t.spec.uri_template == *uri)
                .map(|t| {
                    let declared =
                        template::variables(&t.spec.uri_template).contains(&request.argument);
                    (&t.completers, declared)
                }),
        };
        let Some((completers, declared)) = found else {
            return Err(Error::not_found("no such prompt or resource template"));
        };
        let completer = completers
            .iter()
            .find(|(arg, _)| *arg == request.argument)
            .filter(|_| declared);
        let Some((_, completer)) = completer else {
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

/// What is wrong with the completions `completers` registered on `owner`,
/// whose `kind`s (arguments, variables) `exists` knows.
fn completion_problems(
    owner: &str,
    kind: &str,
    completers: &[(String, Completer)],
    exists: impl Fn(&str) -> bool,
) -> Vec<String> {
    let mut out = Vec::new();
    for (i, (name, _)) in completers.iter().enumerate() {
        if !exists(name) {
            out.push(format!(
                "{owner} completes {kind} {name:?}, which it does not declare; \
                 that completion is not offered"
            ));
        } else if completers[..i].iter().any(|(n, _)| n == name) {
            out.push(format!(
                "{owner} completes {kind} {name:?} twice; the first completion is used"
            ));
        }
    }
    out
}

/// What a tool function may return.
///
/// `String` gives a text result. [`Json`] gives structured content (with the
/// output schema derived from its type) plus the same JSON as text, which is
/// what MCP clients that ignore structured content read. A [`ToolResult`]
/// says everything itself.
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
        Ok(ToolResult::text(self))
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
/// its text. `T` should serialize to a JSON object. The tool's output schema
/// is derived from `T` as JSON Schema draft-07, which clients validate
/// results against cheaply.
pub struct Json<T>(pub T);

impl<T: Serialize + JsonSchema> ToolOutput for Json<T> {
    fn output_schema() -> Option<JsonValue> {
        Some(output_schema_of::<T>())
    }
    fn into_tool_result(self) -> Result<ToolResult> {
        ToolResult::json(&self.0)
    }
}

/// The result of a tool call: content for the model, optionally structured
/// JSON, and whether the tool failed.
///
/// ```
/// use sluice_sdk::{Content, ToolResult};
/// let chart = ToolResult::new([
///     Content::text("Rentals per month"),
///     Content::image(vec![0x89, b'P', b'N', b'G'], "image/png"),
/// ]);
/// assert_eq!(chart.content().len(), 2);
/// let refused = ToolResult::error("the date range is empty; widen it");
/// assert!(refused.is_error());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ToolResult {
    content: Vec<Content>,
    structured: Option<String>,
    is_error: bool,
}

impl ToolResult {
    /// A result made of `content`.
    pub fn new(content: impl IntoIterator<Item = Content>) -> Self {
        ToolResult {
            content: content.into_iter().collect(),
            structured: None,
            is_error: false,
        }
    }

    /// A text result.
    pub fn text(text: impl Into<String>) -> Self {
        Self::new([Content::text(text)])
    }

    /// `value` as structured content, and the same JSON as the text that
    /// clients which ignore structured content read. `value` should
    /// serialize to a JSON object. It is serialized once, compactly: a
    /// large result costs one pass, and fewer tokens for the model.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<Self> {
        let json = serde_json::to_string(value)?;
        let mut result = Self::text(json.clone());
        result.structured = Some(json);
        Ok(result)
    }

    /// A failure the model should see and may correct (MCP's `isError`),
    /// in the tool's own words. Returning an `Err` fails the call too, with
    /// the error's text.
    pub fn error(text: impl Into<String>) -> Self {
        ToolResult {
            is_error: true,
            ..Self::text(text)
        }
    }

    /// Sets the structured content (matching the tool's output schema, if it
    /// declares one) to `value`.
    pub fn structured<T: Serialize + ?Sized>(mut self, value: &T) -> Result<Self> {
        self.structured = Some(serde_json::to_string(value)?);
        Ok(self)
    }

    /// The content, in order.
    pub fn content(&self) -> &[Content] {
        &self.content
    }

    /// The structured content, serialized.
    pub fn structured_json(&self) -> Option<&str> {
        self.structured.as_deref()
    }

    /// Whether this reports a failure.
    pub fn is_error(&self) -> bool {
        self.is_error
    }

    pub(crate) fn into_wit(self) -> h::ToolResult {
        h::ToolResult {
            content: self.content.into_iter().map(Content::into_wit).collect(),
            structured: self.structured,
            is_error: self.is_error,
        }
    }
}

/// One piece of content in a tool result.
#[derive(Debug, Clone, PartialEq)]
pub enum Content {
    /// Text.
    Text(String),
    /// An image: its bytes and MIME type.
    Image { data: Vec<u8>, mime_type: String },
    /// Audio: its bytes and MIME type.
    Audio { data: Vec<u8>, mime_type: String },
    /// A resource embedded in the result.
    Resource(ResourceContents),
}

impl Content {
    /// Text.
    pub fn text(text: impl Into<String>) -> Self {
        Content::Text(text.into())
    }

    /// An image, e.g. `image/png`.
    pub fn image(data: Vec<u8>, mime_type: &str) -> Self {
        Content::Image {
            data,
            mime_type: mime_type.to_string(),
        }
    }

    /// Audio, e.g. `audio/wav`.
    pub fn audio(data: Vec<u8>, mime_type: &str) -> Self {
        Content::Audio {
            data,
            mime_type: mime_type.to_string(),
        }
    }

    fn into_wit(self) -> h::Content {
        match self {
            Content::Text(text) => h::Content::Text(text),
            Content::Image { data, mime_type } => h::Content::Image(h::Media { data, mime_type }),
            Content::Audio { data, mime_type } => h::Content::Audio(h::Media { data, mime_type }),
            Content::Resource(contents) => h::Content::Resource(contents.0),
        }
    }
}

impl From<ResourceContents> for Content {
    fn from(contents: ResourceContents) -> Self {
        Content::Resource(contents)
    }
}

/// The JSON Schema dialect of every derived schema: draft-07. Validators
/// check a draft-07 schema several times faster than a 2020-12 one, and the
/// official Python SDK (mcp 1.x) checks a tool's output schema against its
/// meta-schema on every call (6 ms for a 2020-12 schema, 1 ms for the same
/// as draft-07; BENCHMARKS.md). schemars writes what draft-07 lacks
/// (`$defs`, `prefixItems`) in draft-07's own terms.
fn generator(contract: Contract) -> schemars::SchemaGenerator {
    let mut settings = SchemaSettings::draft07();
    settings.contract = contract;
    settings.into_generator()
}

/// The schema of a tool's arguments. It declares no `$schema`: clients hand
/// input schemas to models, which need none, and draft-07's `definitions`
/// read the same under MCP's default dialect.
fn schema_of<T: JsonSchema>() -> JsonValue {
    let mut schema = generator(Contract::Deserialize)
        .into_root_schema_for::<T>()
        .to_value();
    if let Some(obj) = schema.as_object_mut() {
        obj.remove("$schema");
    }
    drop_unknown_formats(&mut schema);
    schema
}

/// The schema of a tool's structured result: what serializing `T` writes
/// (an `Option` field is always present, maybe `null`), declaring draft-07,
/// so that a validator picks the cheap meta-schema rather than MCP's default.
fn output_schema_of<T: JsonSchema>() -> JsonValue {
    let mut schema = generator(Contract::Serialize)
        .into_root_schema_for::<T>()
        .to_value();
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

/// A tool call's arguments as `A` (`{}` when none were sent).
fn arguments<A: DeserializeOwned>(raw: &str) -> Result<A> {
    let raw = if raw.trim().is_empty() { "{}" } else { raw };
    serde_json::from_str(raw).map_err(|e| Error::invalid_input(format!("arguments: {e}")))
}

/// Where a tool's schemas come from.
enum Schemas {
    /// Derived from its types when described. Every call runs in a fresh
    /// instance that builds the plugin anew, and only `describe` needs the
    /// schemas: deriving them eagerly cost more than a point query's call.
    Derived(fn() -> (JsonValue, Option<JsonValue>)),
    /// Built from data when described ([`Tool::dynamic`]).
    Built(Box<dyn Fn() -> (JsonValue, Option<JsonValue>)>),
}

/// A tool: a typed function plus its metadata.
pub struct Tool {
    /// Name, title and annotations; [`Tool::spec`] adds the rest.
    spec: h::Tool,
    /// Set by [`Tool::description`]; otherwise the arguments' doc comment.
    description: Option<String>,
    /// The input and output schemas.
    schemas: Schemas,
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
        Tool::with(
            name,
            Schemas::Derived(|| (schema_of::<A>(), O::output_schema())),
            Box::new(move |raw| f(arguments(raw)?)?.into_tool_result()),
        )
    }

    fn with(name: &str, schemas: Schemas, handler: ToolHandler) -> Tool {
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
            schemas,
            handler,
        }
    }

    /// A tool whose arguments are described at run time rather than by a
    /// type: `schemas` builds its input schema (an object schema) and its
    /// output schema, only when the plugin is described, and `f` gets the
    /// arguments as JSON (an object, `{}` when none were sent), unchecked.
    /// For plugins whose tools come from data, as the declared tools of
    /// `*.tools.toml` files do; [`Tool::new`] is the way otherwise.
    pub fn dynamic<S, F>(name: &str, schemas: S, f: F) -> Tool
    where
        S: Fn() -> (JsonValue, Option<JsonValue>) + 'static,
        F: Fn(JsonValue) -> Result<ToolResult> + 'static,
    {
        Tool::with(
            name,
            Schemas::Built(Box::new(schemas)),
            Box::new(move |raw| f(arguments(raw)?)),
        )
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
        let (input, output) = match &self.schemas {
            Schemas::Derived(derive) => derive(),
            Schemas::Built(build) => build(),
        };
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

    /// Marks the tool read-only: it does not modify its environment (and
    /// so is idempotent and not destructive). MCP's `readOnlyHint`.
    pub fn read_only(mut self) -> Self {
        let a = &mut self.spec.annotations;
        a.read_only = Some(true);
        a.destructive = Some(false);
        a.idempotent = Some(true);
        a.open_world = Some(false);
        self
    }

    /// Marks the tool as one that modifies data only by adding to it, as
    /// an insert does: MCP's `destructiveHint: false`. Not idempotent unless
    /// [`Tool::idempotent`] says so.
    pub fn additive(self) -> Self {
        self.writes(false)
    }

    /// Marks the tool as one that may overwrite or delete existing data, as
    /// an update or a delete does: MCP's `destructiveHint: true`. Not
    /// idempotent unless [`Tool::idempotent`] says so.
    pub fn destructive(self) -> Self {
        self.writes(true)
    }

    /// Marks the tool idempotent: calling it again with the same arguments
    /// has no further effect. MCP's `idempotentHint`; it means something for
    /// tools that modify data ([`Tool::additive`], [`Tool::destructive`]), in
    /// either order.
    pub fn idempotent(mut self) -> Self {
        self.spec.annotations.idempotent = Some(true);
        self
    }

    fn writes(mut self, destructive: bool) -> Self {
        let a = &mut self.spec.annotations;
        if a.read_only == Some(true) {
            // Idempotence came with `read_only`; a writing tool states its own.
            a.idempotent = None;
        }
        a.read_only = Some(false);
        a.destructive = Some(destructive);
        a.idempotent.get_or_insert(false);
        a.open_world = Some(false);
        self
    }
}

/// Contents of a resource.
#[derive(Debug, Clone, PartialEq)]
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

    pub(crate) fn into_wit(self) -> h::ResourceContents {
        self.0
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
    /// A variable the template does not have is a mistake that
    /// [`Plugin::check`] reports; its completion is not offered.
    pub fn complete<F>(mut self, variable: &str, f: F) -> Self
    where
        F: Fn(&str, &[(String, String)]) -> Result<Vec<String>> + 'static,
    {
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

    pub(crate) fn into_wit(self) -> h::PromptResult {
        self.0
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

    /// Declares an argument the prompt needs: a call without it (or with
    /// it empty) fails before `f` runs.
    pub fn required_argument(self, name: &str, description: &str) -> Self {
        self.argument(name, description, true)
    }

    /// Declares an argument the prompt can do without.
    pub fn optional_argument(self, name: &str, description: &str) -> Self {
        self.argument(name, description, false)
    }

    fn argument(mut self, name: &str, description: &str, required: bool) -> Self {
        self.spec.arguments.push(h::PromptArgument {
            name: name.to_string(),
            title: None,
            description: Some(description.to_string()),
            required,
        });
        self
    }

    /// Completes the argument `argument` with `f`. The argument may be
    /// declared before or after; one never declared is a mistake that
    /// [`Plugin::check`] reports, and its completion is not offered.
    pub fn complete<F>(mut self, argument: &str, f: F) -> Self
    where
        F: Fn(&str, &[(String, String)]) -> Result<Vec<String>> + 'static,
    {
        self.completers.push((argument.to_string(), Box::new(f)));
        self
    }

    fn declares(&self, argument: &str) -> bool {
        self.spec.arguments.iter().any(|a| a.name == argument)
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

    /// Through the SDK's own re-exports, as a plugin without serde or
    /// schemars dependencies derives them.
    #[crate::json_derive(Deserialize, Serialize, JsonSchema)]
    #[derive(Debug, PartialEq)]
    struct Greeting {
        /// Who to greet.
        name: String,
        #[serde(default)]
        times: u32,
    }

    fn greet(args: Greeting) -> Result<Json<Greeting>> {
        if args.times > 3 {
            // `?` on a plain message.
            Err(format!("{} is too many greetings", args.times))?;
        }
        Ok(Json(args))
    }

    /// Fails the way plugin code does: `?` on serde_json, on parsing, and
    /// on a host call's error.
    fn fallible(args: Greeting) -> Result<String> {
        let n: u32 = args.name.parse()?;
        if n == 0 {
            let host: core::result::Result<(), crate::bindings::sluice::plugin::types::Error> =
                Err(crate::bindings::sluice::plugin::types::Error::Denied(
                    crate::bindings::sluice::plugin::types::Denial {
                        rule: "read-grant".into(),
                        message: "not granted".into(),
                    },
                ));
            host?;
        }
        let value: JsonValue = serde_json::from_str(&"[".repeat(n as usize))?;
        Ok(value.to_string())
    }

    fn prompt(_: &PromptArgs) -> Result<PromptResult> {
        Ok(PromptResult::new([PromptMessage::user("hi")]))
    }

    fn template(uri: &str, _: &UriParams) -> Result<Vec<ResourceContents>> {
        Ok(vec![ResourceContents::text(uri, "text/plain", "x")])
    }

    fn suggest(typed: &str, _: &[(String, String)]) -> Result<Vec<String>> {
        Ok(Completion::filter_prefix(["film", "rental"], typed))
    }

    fn completion(target: h::CompletionTarget, argument: &str) -> h::CompletionRequest {
        h::CompletionRequest {
            target,
            argument: argument.into(),
            value: String::new(),
            context: Vec::new(),
        }
    }

    #[derive(serde::Serialize, schemars::JsonSchema)]
    #[allow(dead_code)]
    struct Out {
        rows: Vec<Row>,
        comment: Option<String>,
    }

    #[derive(serde::Serialize, schemars::JsonSchema)]
    #[allow(dead_code)]
    struct Row {
        name: String,
    }

    #[test]
    fn output_schemas_declare_draft_07_and_say_what_serializing_writes() {
        let schema = output_schema_of::<Out>();
        assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
        // Draft-07 has no `$defs`: shared parts live under `definitions`.
        assert!(schema.get("$defs").is_none(), "{schema}");
        assert_eq!(schema["definitions"]["Row"]["type"], "object", "{schema}");
        assert_eq!(
            schema["properties"]["rows"]["items"]["$ref"],
            "#/definitions/Row"
        );
        // Serialized, an `Option` is always there, maybe null.
        let required = schema["required"].as_array().unwrap();
        assert!(required.contains(&"comment".into()), "{schema}");
        assert_eq!(
            schema["properties"]["comment"]["type"],
            serde_json::json!(["string", "null"])
        );

        // Arguments: no `$schema`, and an `Option` may be left out.
        let input = schema_of::<Out>();
        assert!(input.get("$schema").is_none(), "{input}");
        assert!(
            !input["required"]
                .as_array()
                .unwrap()
                .contains(&"comment".into()),
            "{input}"
        );
    }

    #[test]
    fn derives_through_the_reexports_work() {
        let schema = schema_of::<Greeting>();
        assert_eq!(schema["properties"]["name"]["description"], "Who to greet.");
        let parsed: Greeting = serde_json::from_str(r#"{"name": "Ada"}"#).unwrap();
        assert_eq!(
            parsed,
            Greeting {
                name: "Ada".into(),
                times: 0
            }
        );
        let result = Json(parsed).into_tool_result().unwrap();
        assert_eq!(
            result.structured_json(),
            Some(r#"{"name":"Ada","times":0}"#)
        );
    }

    #[test]
    fn tool_errors_convert_with_question_mark() {
        let plugin = Plugin::new()
            .tool(Tool::new("greet", greet))
            .tool(Tool::new("fallible", fallible));
        let ok = plugin.call_tool("greet", r#"{"name": "Ada"}"#).unwrap();
        assert!(!ok.is_error());
        assert_eq!(
            plugin.call_tool("greet", r#"{"name": "Ada", "times": 4}"#),
            Err(Error::Internal("4 is too many greetings".into()))
        );
        assert!(matches!(
            plugin.call_tool("greet", r#"{"times": 1}"#),
            Err(Error::InvalidInput(m)) if m.contains("name")
        ));
        assert!(matches!(
            plugin.call_tool("fallible", r#"{"name": "x"}"#),
            Err(Error::Internal(m)) if m.starts_with("parsing an integer: ")
        ));
        assert!(matches!(
            plugin.call_tool("fallible", r#"{"name": "0"}"#),
            Err(Error::Denied(crate::Denial { rule, .. })) if rule == "read-grant"
        ));
        assert!(matches!(
            plugin.call_tool("fallible", r#"{"name": "2"}"#),
            Err(Error::Internal(m)) if m.starts_with("JSON: ")
        ));
        assert!(matches!(
            plugin.call_tool("missing", "{}"),
            Err(Error::NotFound(_))
        ));
    }

    #[test]
    fn lazy_tools_are_made_only_when_described_or_called() {
        use std::cell::RefCell;
        use std::rc::Rc;
        let made = Rc::new(RefCell::new(Vec::new()));
        let mut plugin = Plugin::new().tool(Tool::new("greet", greet));
        for name in ["a", "b", "c"] {
            let made = made.clone();
            plugin = plugin.lazy_tool(name, move || {
                made.borrow_mut().push(name);
                Ok(Tool::new(name, greet).read_only())
            });
        }
        assert!(made.borrow().is_empty());
        let ok = plugin.call_tool("b", r#"{"name": "Ada"}"#).unwrap();
        assert!(!ok.is_error());
        assert_eq!(*made.borrow(), ["b"]);
        let described = plugin.describe("p", "1.0.0", "d");
        let names: Vec<&str> = described.tools.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["greet", "a", "b", "c"]);
        assert_eq!(*made.borrow(), ["b", "a", "b", "c"]);
        // A maker's error is the call's; a tool made under another name is
        // a mistake, and not reachable by that name either.
        let odd = Plugin::new()
            .lazy_tool("x", || Ok(Tool::new("y", greet)))
            .lazy_tool("z", || Err(Error::internal("no declaration")));
        assert!(matches!(
            odd.call_tool("x", "{}"),
            Err(Error::Internal(m)) if m.contains("made as \"y\"")
        ));
        assert!(matches!(odd.call_tool("y", "{}"), Err(Error::NotFound(_))));
        assert_eq!(
            odd.call_tool("z", "{}"),
            Err(Error::Internal("no declaration".into()))
        );
    }

    #[test]
    fn tool_results_become_the_interfaces() {
        let json = ToolResult::json(&serde_json::json!({"a": 1})).unwrap();
        assert_eq!(
            json.clone().into_wit(),
            h::ToolResult {
                content: vec![h::Content::Text(r#"{"a":1}"#.into())],
                structured: Some(r#"{"a":1}"#.into()),
                is_error: false,
            }
        );
        let mixed = ToolResult::new([
            Content::text("t"),
            Content::image(vec![1], "image/png"),
            Content::audio(vec![2], "audio/wav"),
            ResourceContents::blob("x://b", "application/octet-stream", vec![3]).into(),
        ])
        .into_wit();
        assert_eq!(
            mixed.content,
            vec![
                h::Content::Text("t".into()),
                h::Content::Image(h::Media {
                    data: vec![1],
                    mime_type: "image/png".into()
                }),
                h::Content::Audio(h::Media {
                    data: vec![2],
                    mime_type: "audio/wav".into()
                }),
                h::Content::Resource(h::ResourceContents {
                    uri: "x://b".into(),
                    mime_type: Some("application/octet-stream".into()),
                    body: h::ResourceBody::Blob(vec![3]),
                }),
            ]
        );
        let failed = ToolResult::error("try another year").into_wit();
        assert!(failed.is_error);
        assert_eq!(
            failed.content,
            vec![h::Content::Text("try another year".into())]
        );
    }

    fn annotations(tool: Tool) -> (Option<bool>, Option<bool>, Option<bool>, Option<bool>) {
        let a = tool.spec().annotations;
        (a.read_only, a.destructive, a.idempotent, a.open_world)
    }

    #[test]
    fn annotations_read_as_mcps_hints() {
        let t = || Tool::new("t", greet);
        let f = Some(false);
        let y = Some(true);
        assert_eq!(annotations(t()), (None, None, None, None));
        assert_eq!(annotations(t().read_only()), (y, f, y, f));
        assert_eq!(annotations(t().additive()), (f, f, f, f));
        assert_eq!(annotations(t().destructive()), (f, y, f, f));
        assert_eq!(annotations(t().destructive().idempotent()), (f, y, y, f));
        assert_eq!(annotations(t().idempotent().destructive()), (f, y, y, f));
        assert_eq!(annotations(t().idempotent().additive()), (f, f, y, f));
        assert_eq!(annotations(t().read_only().destructive()), (f, y, f, f));
    }

    #[test]
    fn prompt_arguments_are_named_for_what_they_are() {
        let p = Prompt::new("p", prompt)
            .required_argument("table", "The table")
            .optional_argument("focus", "What to look at");
        let args: Vec<(&str, bool)> = p
            .spec
            .arguments
            .iter()
            .map(|a| (a.name.as_str(), a.required))
            .collect();
        assert_eq!(args, vec![("table", true), ("focus", false)]);
        let plugin = Plugin::new().prompt(p);
        assert!(matches!(
            plugin.get_prompt("p", vec![("focus".into(), "nulls".into())]),
            Err(Error::InvalidInput(m)) if m.contains("table")
        ));
        assert!(
            plugin
                .get_prompt("p", vec![("table".into(), "film".into())])
                .is_ok()
        );
    }

    #[test]
    fn completions_for_what_does_not_exist_do_not_panic_and_are_reported() {
        // Each of these panicked in the builder, and so trapped `describe`.
        let plugin = Plugin::new()
            .prompt(
                Prompt::new("p", prompt)
                    // Before the argument is declared: fine.
                    .complete("table", suggest)
                    .required_argument("table", "The table")
                    .complete("missing", suggest),
            )
            .resource_template(
                ResourceTemplate::new("x://{+path}{?q}", "t", template)
                    .complete("path", suggest)
                    .complete("q", suggest)
                    .complete("nope", suggest)
                    .complete("q", suggest),
            );
        let description = plugin.describe("p", "1.0.0", "");
        assert_eq!(description.prompts.len(), 1);
        assert_eq!(description.resource_templates.len(), 1);

        let problems = plugin.check().unwrap_err().to_string();
        for expected in [
            r#"prompt p completes argument "missing", which it does not declare"#,
            r#"resource template x://{+path}{?q} completes variable "nope""#,
            r#"resource template x://{+path}{?q} completes variable "q" twice"#,
        ] {
            assert!(problems.contains(expected), "{problems}");
        }
        assert!(!problems.contains(r#""table""#), "{problems}");
        assert!(!problems.contains(r#""path""#), "{problems}");

        let prompt_target = || h::CompletionTarget::Prompt("p".into());
        let template_target = || h::CompletionTarget::ResourceTemplate("x://{+path}{?q}".into());
        for (target, argument, offered) in [
            (prompt_target(), "table", true),
            (prompt_target(), "missing", false),
            (template_target(), "path", true),
            (template_target(), "q", true),
            (template_target(), "nope", false),
        ] {
            let answer = plugin.complete(completion(target, argument)).unwrap();
            assert_eq!(!answer.values.is_empty(), offered, "{argument}: {answer:?}");
        }
        assert!(matches!(
            plugin.complete(completion(
                h::CompletionTarget::Prompt("other".into()),
                "table"
            )),
            Err(Error::NotFound(_))
        ));
    }

    #[test]
    fn a_well_built_plugin_passes_its_check() {
        let plugin = Plugin::new()
            .tool(Tool::new("greet", greet).read_only())
            .prompt(
                Prompt::new("p", prompt)
                    .required_argument("table", "The table")
                    .complete("table", suggest),
            )
            .resource_template(
                ResourceTemplate::new("x://{table}/schema", "t", template)
                    .complete("table", suggest),
            );
        assert_eq!(plugin.check(), Ok(()));
    }
}
