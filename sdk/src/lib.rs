//! Write [sluice](https://example.invalid/sluice) plugins in Rust.
//!
//! A plugin is a WebAssembly component that offers MCP tools, resources,
//! resource templates and prompts, and reaches PostgreSQL only through the host's
//! capability-checked [`db`] calls. With this crate a tool is a typed function:
//! its arguments are a struct that serde deserializes and whose JSON Schema
//! schemars derives.
//!
//! ```
//! use sluice_sdk::prelude::*;
//!
//! /// Greets someone by name.
//! #[sluice_sdk::json_derive(Deserialize, JsonSchema)]
//! struct Args {
//!     /// Who to greet.
//!     name: String,
//! }
//!
//! fn hello(args: Args) -> Result<String> {
//!     Ok(format!("Hello, {}!", args.name))
//! }
//!
//! sluice_sdk::plugin!(|| Plugin::new().tool(Tool::new("hello", hello).title("Hello").read_only()));
//! ```
//!
//! The plugin's `Cargo.toml` needs `crate-type = ["cdylib"]` and one
//! dependency, `sluice-sdk`: the SDK re-exports [`serde`], [`schemars`] and
//! [`serde_json`], and [`json_derive`] derives their traits through those
//! re-exports. Build it with `cargo build --release --target wasm32-wasip2`
//! and drop the `.wasm` file into sluice's plugin directory.
//!
//! Every export call runs in a fresh instance, so a plugin keeps no state
//! between calls; everything lasting lives in the database. The function
//! given to [`plugin!`] runs in each of those instances (see [`Plugin`]), so
//! it must be cheap and deterministic.
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

#[doc(no_inline)]
pub use schemars;
#[doc(no_inline)]
pub use serde;
#[doc(no_inline)]
pub use serde_json;

/// Derives serde's and schemars' traits through the SDK's re-exports, so
/// that a plugin needs no `serde` or `schemars` dependency of its own.
///
/// Name any of `Serialize`, `Deserialize` and `JsonSchema`; other traits
/// take a `#[derive]` of their own, as usual. Field and container
/// attributes such as `#[serde(default)]` and doc comments work as with
/// serde's and schemars' own derives.
///
/// ```
/// /// Films of one rating.
/// #[sluice_sdk::json_derive(Deserialize, JsonSchema)]
/// #[derive(Debug, Clone)]
/// struct Args {
///     /// An MPAA rating, e.g. `PG-13`.
///     rating: String,
///     /// How many films.
///     #[serde(default)]
///     limit: Option<u32>,
/// }
/// ```
///
/// Other traits are refused, so that this reads as what it is:
///
/// ```compile_fail
/// #[sluice_sdk::json_derive(Deserialize, Debug)]
/// struct Args {
///     rating: String,
/// }
/// ```
///
/// It expands to those derives with `#[serde(crate = "::sluice_sdk::serde")]`
/// and `#[schemars(crate = "::sluice_sdk::schemars")]`, which can be
/// written out by hand instead. Either way the dependency must keep its
/// name, `sluice_sdk`.
pub use sluice_sdk_macros::json_derive;

pub use error::{DatabaseError, Denial, Error, Result};
pub use manifest::Requests;
pub use plugin::{
    Completer, Completion, Content, Json, Plugin, Prompt, PromptArgs, PromptMessage, PromptResult,
    Resource, ResourceContents, ResourceTemplate, Tool, ToolOutput, ToolResult,
};
pub use template::UriParams;
pub use value::{ArrayValue, Scalar, Value};

/// The names a plugin usually needs.
pub mod prelude {
    pub use crate::{
        Completion, Content, Error, Json, Plugin, Prompt, PromptArgs, PromptMessage, PromptResult,
        Requests, Resource, ResourceContents, ResourceTemplate, Result, Scalar, Tool, ToolResult,
        UriParams, Value, db,
    };
}

/// Exports a plugin built by `$build` (a `fn() -> Plugin` or a closure without
/// captures) as the component's `handler`.
///
/// Invoke it once, at the top level of the plugin crate. `$build` runs once
/// in every fresh instance: when the host loads the plugin to describe it,
/// and in each call's own instance. Keep it cheap and deterministic, and
/// leave database reads and config lookups to the handlers.
#[macro_export]
macro_rules! plugin {
    ($build:expr) => {
        struct __SluicePlugin;

        impl $crate::bindings::exports::sluice::plugin::handler::Guest for __SluicePlugin {
            fn describe() -> $crate::bindings::exports::sluice::plugin::handler::Description {
                // The plugin crate's own package metadata, unless the builder overrides it.
                $crate::__private::describe(
                    $build,
                    env!("CARGO_PKG_NAME"),
                    env!("CARGO_PKG_VERSION"),
                    env!("CARGO_PKG_DESCRIPTION"),
                )
            }
            fn call_tool(
                name: ::std::string::String,
                arguments: ::std::string::String,
            ) -> ::core::result::Result<
                $crate::bindings::exports::sluice::plugin::handler::ToolResult,
                $crate::bindings::sluice::plugin::types::Error,
            > {
                $crate::__private::call_tool($build, &name, &arguments)
            }
            fn read_resource(
                uri: ::std::string::String,
            ) -> ::core::result::Result<
                ::std::vec::Vec<
                    $crate::bindings::exports::sluice::plugin::handler::ResourceContents,
                >,
                $crate::bindings::sluice::plugin::types::Error,
            > {
                $crate::__private::read_resource($build, &uri)
            }
            fn get_prompt(
                name: ::std::string::String,
                arguments: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
            ) -> ::core::result::Result<
                $crate::bindings::exports::sluice::plugin::handler::PromptResult,
                $crate::bindings::sluice::plugin::types::Error,
            > {
                $crate::__private::get_prompt($build, &name, arguments)
            }
            fn complete(
                request: $crate::bindings::exports::sluice::plugin::handler::CompletionRequest,
            ) -> ::core::result::Result<
                $crate::bindings::exports::sluice::plugin::handler::Completion,
                $crate::bindings::sluice::plugin::types::Error,
            > {
                $crate::__private::complete($build, request)
            }
        }

        $crate::bindings::__export_sluice_plugin!(__SluicePlugin);
    };
}

/// The glue [`plugin!`] expands to: builds the plugin once per instance and
/// converts between the SDK's types and the interface's.
#[doc(hidden)]
pub mod __private {
    pub use wit_bindgen;

    use crate::Plugin;
    use crate::bindings::exports::sluice::plugin::handler as h;
    use crate::bindings::sluice::plugin::types::Error as WitError;
    use std::cell::OnceCell;

    thread_local! {
        static PLUGIN: OnceCell<Plugin> = const { OnceCell::new() };
    }

    /// Builds the plugin once per instance and runs `f` on it.
    pub fn with_plugin<R>(build: impl FnOnce() -> Plugin, f: impl FnOnce(&Plugin) -> R) -> R {
        PLUGIN.with(|cell| f(cell.get_or_init(build)))
    }

    pub fn describe(
        build: impl FnOnce() -> Plugin,
        name: &str,
        version: &str,
        description: &str,
    ) -> h::Description {
        with_plugin(build, |p| p.describe(name, version, description))
    }

    pub fn call_tool(
        build: impl FnOnce() -> Plugin,
        name: &str,
        arguments: &str,
    ) -> Result<h::ToolResult, WitError> {
        with_plugin(build, |p| p.call_tool(name, arguments))
            .map(crate::ToolResult::into_wit)
            .map_err(crate::Error::into_wit)
    }

    pub fn read_resource(
        build: impl FnOnce() -> Plugin,
        uri: &str,
    ) -> Result<Vec<h::ResourceContents>, WitError> {
        match with_plugin(build, |p| p.read_resource(uri)) {
            Ok(contents) => Ok(contents
                .into_iter()
                .map(crate::ResourceContents::into_wit)
                .collect()),
            Err(e) => Err(e.into_wit()),
        }
    }

    pub fn get_prompt(
        build: impl FnOnce() -> Plugin,
        name: &str,
        arguments: Vec<(String, String)>,
    ) -> Result<h::PromptResult, WitError> {
        with_plugin(build, |p| p.get_prompt(name, arguments))
            .map(crate::PromptResult::into_wit)
            .map_err(crate::Error::into_wit)
    }

    pub fn complete(
        build: impl FnOnce() -> Plugin,
        request: h::CompletionRequest,
    ) -> Result<h::Completion, WitError> {
        with_plugin(build, |p| p.complete(request)).map_err(crate::Error::into_wit)
    }
}
