//! Host-neutral plugin types ([`crate::registry::model`]) to MCP's, and
//! the few MCP values the host takes in.

use base64::{Engine as _, engine::general_purpose::STANDARD as BASE64};
use rmcp::model as mcp;
use serde_json::{Map, Value as Json};
use std::sync::Arc;

use crate::registry::model::{
    CompletionOutput, Content, PromptOutput, PromptSpec, ResourceBody, ResourceContents,
    ResourceSpec, ResourceTemplateSpec, Role, ToolOutput, ToolSpec,
};

/// MCP allows at most this many values in one completion result.
pub(super) const MAX_COMPLETION_VALUES: usize = 100;

pub(super) fn tool_to_mcp(spec: ToolSpec) -> mcp::Tool {
    let ToolSpec {
        name,
        title,
        description,
        input_schema,
        output_schema,
        annotations,
    } = spec;
    let description = (!description.is_empty()).then(|| description.into());
    let mut tool = mcp::Tool::new_with_raw(name, description, Arc::new(input_schema));
    if let Some(schema) = output_schema {
        tool = tool.with_raw_output_schema(Arc::new(schema));
    }
    let hints = [
        annotations.read_only,
        annotations.destructive,
        annotations.idempotent,
        annotations.open_world,
    ];
    if title.is_some() || hints.iter().any(Option::is_some) {
        // Clients that predate the top-level `title` read it from here.
        tool = tool.with_annotations(mcp::ToolAnnotations::from_raw(
            title.clone(),
            annotations.read_only,
            annotations.destructive,
            annotations.idempotent,
            annotations.open_world,
        ));
    }
    if let Some(title) = title {
        tool = tool.with_title(title);
    }
    tool
}

pub(super) fn tool_output_to_mcp(output: ToolOutput) -> mcp::CallToolResult {
    let content = output.content.into_iter().map(content_to_mcp).collect();
    let mut result = if output.is_error {
        mcp::CallToolResult::error(content)
    } else {
        mcp::CallToolResult::success(content)
    };
    result.structured_content = output.structured;
    result
}

pub(super) fn content_to_mcp(content: Content) -> mcp::ContentBlock {
    match content {
        Content::Text(text) => mcp::ContentBlock::text(text),
        Content::Image { data, mime_type } => {
            mcp::ContentBlock::image(BASE64.encode(data), mime_type)
        }
        Content::Audio { data, mime_type } => {
            mcp::ContentBlock::audio(BASE64.encode(data), mime_type)
        }
        Content::Resource(contents) => {
            mcp::ContentBlock::resource(resource_contents_to_mcp(contents))
        }
    }
}

pub(super) fn resource_contents_to_mcp(contents: ResourceContents) -> mcp::ResourceContents {
    let ResourceContents {
        uri,
        mime_type,
        body,
    } = contents;
    // Built directly: the helper constructors invent a mime type when we have none.
    match body {
        ResourceBody::Text(text) => mcp::ResourceContents::TextResourceContents {
            uri,
            mime_type,
            text,
            meta: None,
        },
        ResourceBody::Blob(bytes) => mcp::ResourceContents::BlobResourceContents {
            uri,
            mime_type,
            blob: BASE64.encode(bytes),
            meta: None,
        },
    }
}

pub(super) fn resource_to_mcp(spec: ResourceSpec) -> mcp::Resource {
    let mut resource = mcp::Resource::new(spec.uri, spec.name);
    resource.title = spec.title;
    resource.description = spec.description;
    resource.mime_type = spec.mime_type;
    resource
}

pub(super) fn template_to_mcp(spec: ResourceTemplateSpec) -> mcp::ResourceTemplate {
    let mut template = mcp::ResourceTemplate::new(spec.uri_template, spec.name);
    template.title = spec.title;
    template.description = spec.description;
    template.mime_type = spec.mime_type;
    template
}

pub(super) fn prompt_to_mcp(spec: PromptSpec) -> mcp::Prompt {
    let arguments = spec
        .arguments
        .into_iter()
        .map(|argument| {
            let mut out = mcp::PromptArgument::new(argument.name).with_required(argument.required);
            out.title = argument.title;
            out.description = argument.description;
            out
        })
        .collect::<Vec<_>>();
    let mut prompt = mcp::Prompt::new(
        spec.name,
        spec.description,
        (!arguments.is_empty()).then_some(arguments),
    );
    prompt.title = spec.title;
    prompt
}

/// MCP prompt arguments are strings; other JSON values are passed on as their
/// JSON text rather than refused, and nulls count as absent.
pub(super) fn prompt_arguments(arguments: Map<String, Json>) -> Vec<(String, String)> {
    arguments
        .into_iter()
        .filter_map(|(name, value)| match value {
            Json::Null => None,
            Json::String(text) => Some((name, text)),
            other => Some((name, other.to_string())),
        })
        .collect()
}

pub(super) fn prompt_output_to_mcp(output: PromptOutput) -> mcp::GetPromptResult {
    let messages = output
        .messages
        .into_iter()
        .map(|message| {
            let role = match message.role {
                Role::User => mcp::Role::User,
                Role::Assistant => mcp::Role::Assistant,
            };
            mcp::PromptMessage::new(role, content_to_mcp(message.content))
        })
        .collect();
    let mut result = mcp::GetPromptResult::new(messages);
    result.description = output.description;
    result
}

pub(super) fn completion_to_mcp(output: CompletionOutput) -> mcp::CompletionInfo {
    let CompletionOutput {
        mut values,
        mut total,
        mut has_more,
    } = output;
    if values.len() > MAX_COMPLETION_VALUES {
        total = Some(
            total
                .unwrap_or(0)
                .max(u32::try_from(values.len()).unwrap_or(u32::MAX)),
        );
        values.truncate(MAX_COMPLETION_VALUES);
        has_more = true;
    }
    let mut info = mcp::CompletionInfo::default();
    info.values = values;
    info.total = total;
    info.has_more = Some(has_more);
    info
}
