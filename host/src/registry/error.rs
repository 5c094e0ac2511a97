//! Why a plugin was not loaded or not served.

use crate::runtime::LoadError;

/// A name a plugin declares that breaks the naming rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("plugin name {0:?} must be lower-case letters, digits and `-`, starting with a letter")]
    PluginName(String),
    #[error("{kind} name {name:?} is not a valid MCP name (1 to 128 of A-Z a-z 0-9 _ - .)")]
    Invalid { kind: &'static str, name: String },
    #[error("{kind} {name:?} is declared twice")]
    Duplicate { kind: &'static str, name: String },
}

impl PluginError {
    /// Whether loading the same source again may succeed without a change
    /// of it (see [`PluginError::Unchecked`]).
    pub fn retried(&self) -> bool {
        matches!(self, PluginError::Unchecked { .. })
    }
}

/// Why one plugin source was not loaded, or loaded and not served.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PluginError {
    /// The component did not compile or could not describe itself.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// A name it declares breaks the rules.
    #[error(transparent)]
    Name(#[from] NameError),
    /// Its manifest requests a relation pattern that does not parse.
    #[error("plugin {plugin} requests an invalid pattern: {problem}")]
    Request { plugin: String, problem: String },
    /// A value of its `[plugins.config.<name>]` table could not be expanded.
    #[error("[plugins.config.{plugin}] {key} {problem}")]
    Config {
        plugin: String,
        key: String,
        problem: String,
    },
    /// Signatures are required and it has no valid one by a trusted
    /// publisher.
    #[error(
        "refused: its signature is {signature} ({digest}), and [plugins] requires a valid \
         signature by a [plugins.publishers] key; sign it with `sluice plugins sign`, \
         trust its publisher's key, or set [plugins] require_signature = false"
    )]
    Untrusted { signature: String, digest: String },
    /// Its grant's toolset names tools it does not declare.
    #[error(
        "[plugins.grants.{plugin}] tools names {unknown}, which plugin {plugin} does not \
         offer; its tools are {known}"
    )]
    Toolset {
        plugin: String,
        unknown: String,
        known: String,
    },
    /// Its declared tools (a tools file or `[plugins.tools.<name>]`) are
    /// wrong, or do not pass the gate's check against the database.
    #[error("declared tools of plugin {plugin}: {problem}")]
    Declared { plugin: String, problem: String },
    /// Its declared tools could not be checked against the database, which
    /// could not answer: the load is tried again until it can.
    #[error(
        "declared tools of plugin {plugin} could not be checked against the database, \
         tried again until they can: {problem}"
    )]
    Unchecked { plugin: String, problem: String },
    /// Another plugin of the same name is already served.
    #[error("a plugin named {0} is already loaded")]
    AlreadyLoaded(String),
    /// A tool or prompt name is no longer a valid MCP name once prefixed.
    #[error("plugin {plugin}: {name:?} is not a valid MCP name (1 to 128 of A-Z a-z 0-9 _ - .)")]
    PrefixedName { plugin: String, name: String },
    /// It offers something another plugin already offers.
    #[error(
        "plugin {plugin} offers {what}, which plugin {other} already offers \
         (a prefix resolves tool and prompt clashes: [plugins.grants.{plugin}] prefix = \"...\")"
    )]
    Clash {
        plugin: String,
        what: String,
        other: String,
    },
}
