//! Reading MCP results in assertions.

use rmcp::{
    ServiceError,
    model::{CallToolResult, ContentBlock, ErrorData},
};
use serde::Serialize;
use serde_json::Value;

/// The text contents of a tool result, joined by newlines.
pub fn text_of(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(ContentBlock::as_text)
        .map(|text| text.text.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The structured content of a tool result; panics with the text when it has none.
pub fn structured(result: &CallToolResult) -> Value {
    match &result.structured_content {
        Some(value) => value.clone(),
        None => panic!(
            "the tool result has no structured content (is_error: {:?}): {}",
            result.is_error,
            text_of(result)
        ),
    }
}

/// Any MCP value as JSON, the way it goes over the wire (camelCase fields).
pub fn json<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("MCP values serialize to JSON")
}

/// The JSON-RPC error inside a [`ServiceError`]; panics on other failures.
pub fn error_data(error: &ServiceError) -> &ErrorData {
    match error {
        ServiceError::McpError(data) => data,
        other => panic!("expected a JSON-RPC error, got: {other}"),
    }
}
