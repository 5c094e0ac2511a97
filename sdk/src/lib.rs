//! Write [sluice](https://example.invalid/sluice) plugins in Rust.
//!
//! A plugin is a WebAssembly component that offers MCP tools, resources,
//! resource templates and prompts, and reaches PostgreSQL only through the host's
//! capability-checked [`db`] calls. With this crate a tool is a typed function:
//! its arguments are a serde struct whose JSON Schema is derived with `schemars`.
//!
//! ```ignore
//! use schemars::JsonSchema;
//! use serde::Deserialize;
//! use sluice_sdk::prelude::*;
//!
//! #[derive(Deserialize, JsonSchema)]
//! struct Args {
//!     /// Who to greet.
//!     name: String,
//! }
//!
//! fn hello(args: Args) -> Result<String> {
//!     Ok(format!("Hello, {}!", args.name))
//! }
//!
//! sluice_sdk::plugin!(|| Plugin::new().tool(Tool::new("hello", hello).description("Greets someone").read_only()));
//! ```
//!
//! Build it with `cargo build --release --target wasm32-wasip2` and drop the
//! `.wasm` file into sluice's plugin directory.
//!
//! Every export call runs in a fresh instance, so a plugin keeps no state
//! between calls; everything lasting lives in the database.
//!
//! [`guide`] shows every feature by example: tools, database reads and
//! writes, resources, templates, prompts, completions, config values, logs
//! and the manifest.

// Lets generated code name this crate the same way inside it and in plugins.
extern crate self as sluice_sdk;

pub mod bindings;
pub mod config;
pub mod db;
mod error;
pub mod guide;
pub mod log;
mod manifest;
mod plugin;
mod template;
mod value;

pub use error::{Error, Result};
pub use manifest::Requests;
pub use plugin::{
    Completer, Completion, Json, Plugin, Prompt, PromptArgs, PromptMessage, PromptResult, Resource,
    ResourceContents, ResourceTemplate, Tool, ToolOutput, ToolResult,
};
pub use template::UriParams;
pub use value::{ArrayValue, Scalar, Value};

/// The names a plugin usually needs.
pub mod prelude {
    pub use crate::{
        Completion, Error, Json, Plugin, Prompt, PromptArgs, PromptMessage, PromptResult, Requests,
        Resource, ResourceContents, ResourceTemplate, Result, Scalar, Tool, ToolResult, UriParams,
        Value, db,
    };
}

/// Exports a plugin built by `$build` (a `fn() -> Plugin` or a closure without
/// captures) as the component's `handler`.
///
/// Invoke it once, at the top level of the plugin crate.
#[macro_export]
macro_rules! plugin {
    ($build:expr) => {
        struct __SluicePlugin;

        impl $crate::bindings::exports::sluice::plugin::handler::Guest for __SluicePlugin {
            fn describe() -> $crate::bindings::exports::sluice::plugin::handler::Description {
                // The plugin crate's own package metadata, unless the builder overrides it.
                $crate::__private::with_plugin($build, |p| {
                    p.describe(
                        env!("CARGO_PKG_NAME"),
                        env!("CARGO_PKG_VERSION"),
                        env!("CARGO_PKG_DESCRIPTION"),
                    )
                })
            }
            fn call_tool(
                name: ::std::string::String,
                arguments: ::std::string::String,
            ) -> ::core::result::Result<
                $crate::bindings::exports::sluice::plugin::handler::ToolResult,
                $crate::Error,
            > {
                $crate::__private::with_plugin($build, |p| p.call_tool(&name, &arguments))
            }
            fn read_resource(
                uri: ::std::string::String,
            ) -> ::core::result::Result<
                ::std::vec::Vec<
                    $crate::bindings::exports::sluice::plugin::handler::ResourceContents,
                >,
                $crate::Error,
            > {
                $crate::__private::with_plugin($build, |p| p.read_resource(&uri))
            }
            fn get_prompt(
                name: ::std::string::String,
                arguments: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
            ) -> ::core::result::Result<
                $crate::bindings::exports::sluice::plugin::handler::PromptResult,
                $crate::Error,
            > {
                $crate::__private::with_plugin($build, |p| p.get_prompt(&name, arguments))
            }
            fn complete(
                request: $crate::bindings::exports::sluice::plugin::handler::CompletionRequest,
            ) -> ::core::result::Result<
                $crate::bindings::exports::sluice::plugin::handler::Completion,
                $crate::Error,
            > {
                $crate::__private::with_plugin($build, |p| p.complete(request))
            }
        }

        $crate::bindings::__export_sluice_plugin!(__SluicePlugin);
    };
}

#[doc(hidden)]
pub mod __private {
    pub use wit_bindgen;

    use crate::Plugin;
    use std::cell::OnceCell;

    thread_local! {
        static PLUGIN: OnceCell<Plugin> = const { OnceCell::new() };
    }

    /// Builds the plugin once per instance and runs `f` on it.
    pub fn with_plugin<R>(build: impl FnOnce() -> Plugin, f: impl FnOnce(&Plugin) -> R) -> R {
        PLUGIN.with(|cell| f(cell.get_or_init(build)))
    }
}
