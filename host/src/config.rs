//! The operator's configuration: `sluice.toml`, command-line flags and the
//! environment, merged into one [`Config`].
//!
//! Precedence for the database connection string (a URL or libpq key=value
//! pairs): `--database-url`, then `DATABASE_URL`, then the seed-style
//! `DB_HOST DB_PORT DB_NAME DB_USER DB_PASSWORD`, then `[database] url` in the
//! file, then none (when `PGHOST`, `PGHOSTADDR` or `PGDATABASE` is set). In
//! every case libpq's `PG*` variables fill in what the chosen string leaves
//! out (see [`crate::db::conninfo`]). A `.env` file in the working directory
//! is read first (without overriding variables already set).

use crate::policy::{GrantSettings, LimitSettings, Limits, Pattern, each_limit};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The config file read when none is named and it exists.
pub const DEFAULT_CONFIG_FILE: &str = "sluice.toml";

/// A configuration problem, phrased as what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    // The I/O error is part of the message, not a `source`: printing the
    // chain would show it twice.
    #[error("cannot read config file {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("config file {path} is invalid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
    #[error(
        "no database configured: pass --database-url (a postgresql:// URL or key=value conninfo), \
         set DATABASE_URL, DB_HOST/DB_NAME/DB_USER, or libpq's PGHOST/PGDATABASE (with PGPORT, \
         PGUSER, PGPASSWORD… as needed), or set [database] url in sluice.toml; `sluice demo` runs \
         against a private sample database"
    )]
    NoDatabase,
}

/// The whole configuration file. Unknown keys are errors, so typos surface.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub database: DatabaseConfig,
    #[serde(default)]
    pub plugins: PluginsConfig,
    #[serde(default)]
    pub audit: AuditConfig,
    #[serde(default)]
    pub policy: PolicyConfig,
    #[serde(default)]
    pub http: HttpConfig,
    #[serde(default)]
    pub mcp: McpConfig,
}

/// `[mcp]`: what one client message may be, on every transport, and how a
/// stdio session ends.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct McpConfig {
    /// Largest message, in bytes: a stdio line, or an HTTP request body
    /// (with `[http] max_body_bytes`, whichever is lower). A longer one is
    /// answered with an error.
    pub max_message_bytes: usize,
    /// Deepest nesting of JSON arrays and objects in a message (at most 100).
    pub max_json_depth: usize,
    /// After a signal or the end of input, how long calls in flight may
    /// finish before they are answered with an error and their statements
    /// cancelled.
    pub shutdown_grace_ms: u64,
}

impl Default for McpConfig {
    fn default() -> Self {
        McpConfig {
            max_message_bytes: crate::mcp::frame::DEFAULT_MAX_MESSAGE_BYTES,
            max_json_depth: crate::mcp::frame::DEFAULT_MAX_JSON_DEPTH,
            shutdown_grace_ms: 5_000,
        }
    }
}

impl McpConfig {
    /// The limits every incoming message is checked against.
    pub fn frame_limits(&self) -> crate::mcp::frame::FrameLimits {
        crate::mcp::frame::FrameLimits {
            max_bytes: self.max_message_bytes,
            max_depth: self.max_json_depth,
        }
    }
}

/// `[http]`: the remote transport (`sluice serve --http ADDR`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// `Host` header values accepted on every MCP route, against DNS
    /// rebinding: a name (with any numeric port) or `name:port` (that port
    /// only), compared without case. Default: loopback names only; list
    /// your public name. Others get 403.
    pub allowed_hosts: Vec<String>,
    /// Browser `Origin`s accepted: `scheme://host` (its default port),
    /// `scheme://host:port`, `scheme://host:*` (any port) or `null`;
    /// requests without an Origin always pass. Default: none, so any
    /// present Origin is refused (403).
    pub allowed_origins: Vec<String>,
    /// Largest request body, in bytes; `[mcp] max_message_bytes` applies
    /// too, whichever is lower. A larger message gets 413 and a JSON-RPC
    /// error.
    pub max_body_bytes: usize,
    /// Open MCP sessions (Streamable HTTP and legacy SSE) across all keys;
    /// a new session beyond it is refused with 503 and a JSON-RPC error.
    pub max_sessions: usize,
    /// Open sessions per key; a new one beyond it is refused with 429 and a
    /// JSON-RPC error.
    pub max_sessions_per_key: usize,
    /// A session with no request for this long (and none in flight) is
    /// closed, and its memory returned to the system.
    pub session_idle_timeout_s: u64,
    /// Time a client has to send a request's headers; a connection that
    /// takes longer, or stays idle between requests longer, is closed.
    pub header_timeout_ms: u64,
    /// Connections open at once; more wait to be accepted. Each open event
    /// stream holds one, so keep this above `max_sessions`.
    pub max_connections: usize,
    pub auth: AuthConfig,
    /// `[http.oauth]`: OAuth 2.1 access tokens from an authorization
    /// server, beside the API keys.
    pub oauth: Option<OAuthConfig>,
    pub rate_limit: RateLimitConfig,
    /// `[http.failed_auth]`: refused credentials per client address (IPv6:
    /// per /64).
    pub failed_auth: FailedAuthConfig,
    /// Where the spent nonces of signed requests and the rate limits are
    /// kept: `"memory"` (this process alone) or `"postgres"` (the database
    /// sluice serves, shared by every replica that points at it).
    pub shared_state: SharedStateKind,
    /// The schema of the shared state's tables (`shared_state = "postgres"`).
    pub shared_state_schema: String,
    /// How long a request waits for the shared state; past it, a signed
    /// request is refused and rate limits fall back to this replica's own.
    pub shared_state_timeout_ms: u64,
    /// After SIGTERM or SIGINT, how long to keep serving while `/readyz`
    /// answers 503, so that a load balancer's health check takes this
    /// replica out before it stops accepting connections.
    pub drain_delay_ms: u64,
}

/// Where `[http] shared_state` is kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SharedStateKind {
    #[default]
    Memory,
    Postgres,
}

/// `[http.oauth]`: sluice as an OAuth 2.1 resource server (the MCP
/// authorization spec): it accepts access tokens its authorization server
/// issued for it, and maps each caller to plugins and a database role by
/// `[[http.oauth.rules]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthConfig {
    /// The authorization server's issuer identifier, exactly as its tokens
    /// and metadata spell it.
    pub issuer: String,
    /// This server's resource URL, as clients reach it (e.g.
    /// `https://sluice.example.com/mcp`): the audience tokens must name
    /// (RFC 8707), and the `resource` of the protected-resource metadata.
    pub resource: String,
    /// Other accepted audiences (Microsoft Entra names an API by its
    /// application id, say). Default: the resource alone.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Scopes every token must carry; one without them gets 403
    /// `insufficient_scope`.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Signature algorithms accepted (asymmetric only). Default: RS256,
    /// RS384, RS512, PS256, PS384, PS512, ES256, ES384 and EdDSA.
    #[serde(default)]
    pub algorithms: Vec<String>,
    /// Clock leeway, in seconds, for `exp` and `nbf`.
    #[serde(default = "default_leeway_s")]
    pub leeway_s: u64,
    /// Where the signing keys are; default: the `jwks_uri` of the issuer's
    /// metadata.
    pub jwks_uri: Option<String>,
    /// A token signed by a key not yet known fetches the keys again at most
    /// this often, so that a flood of unknown key ids cannot hammer the
    /// issuer.
    #[serde(default = "default_jwks_refresh_s")]
    pub jwks_refresh_s: u64,
    /// Keys are fetched again after this long even when all are known.
    #[serde(default = "default_jwks_max_age_s")]
    pub jwks_max_age_s: u64,
    /// Time allowed for each request to the authorization server.
    #[serde(default = "default_fetch_timeout_ms")]
    pub fetch_timeout_ms: u64,
    /// Token claims shown to PostgreSQL: `name = "claim"` makes the claim
    /// `current_setting('sluice.claim.name')`.
    #[serde(default)]
    pub claims: BTreeMap<String, String>,
    /// `[http.oauth.introspection]`: opaque tokens, checked by RFC 7662
    /// introspection.
    pub introspection: Option<IntrospectionConfig>,
    /// `[[http.oauth.rules]]`, in order: the first that matches a caller
    /// decides its plugins and database role. A caller no rule matches gets
    /// 403.
    #[serde(default)]
    pub rules: Vec<OAuthRule>,
}

fn default_leeway_s() -> u64 {
    60
}
fn default_jwks_refresh_s() -> u64 {
    30
}
fn default_jwks_max_age_s() -> u64 {
    3600
}
fn default_fetch_timeout_ms() -> u64 {
    5000
}

/// `[http.oauth.introspection]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntrospectionConfig {
    /// Default: the `introspection_endpoint` of the issuer's metadata.
    pub endpoint: Option<String>,
    /// sluice's own client at the authorization server.
    pub client_id: String,
    /// Its secret; `${VAR}` reads it from the environment.
    pub client_secret: String,
    /// How long an answer is reused (never past the token's expiry).
    #[serde(default = "default_introspection_cache_s")]
    pub cache_s: u64,
}

fn default_introspection_cache_s() -> u64 {
    60
}

/// One `[[http.oauth.rules]]` entry. Every condition must hold.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthRule {
    /// Scopes the token must carry, all of them.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Claims the token must carry: `claim = "value"` holds when the claim
    /// is that string or a list containing it; `claim = ["a", "b"]` when it
    /// matches any of them.
    #[serde(default)]
    pub claims: BTreeMap<String, OneOrMany>,
    /// The only plugins the caller may use; default: all.
    pub plugins: Option<Vec<String>>,
    /// The database role the caller's statements run as.
    pub role: Option<String>,
}

/// A string, or a list of them.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    /// The values, one or many.
    pub fn values(&self) -> &[String] {
        match self {
            OneOrMany::One(one) => std::slice::from_ref(one),
            OneOrMany::Many(many) => many,
        }
    }
}

/// `[http.failed_auth]`: how many refused credentials one client address
/// may send before it gets 429 for every request, valid key or not.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FailedAuthConfig {
    /// Sustained refusals per minute.
    pub per_minute: u32,
    /// Refusals allowed in a burst.
    pub burst: u32,
}

impl Default for FailedAuthConfig {
    fn default() -> Self {
        FailedAuthConfig {
            per_minute: 30,
            burst: 10,
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            allowed_hosts: ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec(),
            allowed_origins: Vec::new(),
            max_body_bytes: 1024 * 1024,
            max_sessions: 1000,
            max_sessions_per_key: 100,
            session_idle_timeout_s: 600,
            header_timeout_ms: 10_000,
            max_connections: 1024,
            auth: AuthConfig::default(),
            oauth: None,
            rate_limit: RateLimitConfig::default(),
            failed_auth: FailedAuthConfig::default(),
            shared_state: SharedStateKind::Memory,
            shared_state_schema: "sluice".into(),
            shared_state_timeout_ms: 1000,
            drain_delay_ms: 0,
        }
    }
}

/// `[http.auth]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// `[[http.auth.keys]]`: API keys, stored as hashes, and signing keys
    /// (`sluice keys new`).
    pub keys: Vec<ApiKeyConfig>,
    /// How far a signed request's timestamp may be from the server's clock.
    pub max_skew_s: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            keys: Vec::new(),
            max_skew_s: 300,
        }
    }
}

/// One API key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// A name for the key, for logs and audit; never secret.
    pub id: String,
    /// For bearer keys: `sha256:` and the hex SHA-256 of the key.
    pub hash: Option<String>,
    /// For signed requests: the shared HMAC secret (`${VAR}` reads it from
    /// the environment, which keeps it out of the file).
    pub secret: Option<String>,
    /// When set, the only plugins (by name) whose tools, resources and
    /// prompts this key can see or use.
    pub plugins: Option<Vec<String>>,
    /// The database role this key's statements run as (`SET LOCAL ROLE`),
    /// in place of a plugin's own `role`.
    pub role: Option<String>,
    /// Requests per minute for this key, over `[http.rate_limit]`.
    pub per_minute: Option<u32>,
    /// Requests allowed in a burst for this key, over `[http.rate_limit]`.
    pub burst: Option<u32>,
}

/// `[http.rate_limit]`: requests per key, unless a key sets its own.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// Sustained requests per minute.
    pub per_minute: u32,
    /// Requests that may arrive at once before the rate applies.
    pub burst: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            per_minute: 1200,
            burst: 200,
        }
    }
}

/// `[policy]`: rules for the SQL of every plugin.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// When set, the only functions SQL may call (names, `*` wildcards).
    /// The built-in denylist applies regardless.
    pub allow_functions: Option<Vec<String>>,
    /// Functions SQL may not call, beyond the built-in denylist.
    pub deny_functions: Vec<String>,
    /// Largest SQL statement a plugin may send, in bytes; checked before
    /// it is parsed.
    pub max_statement_bytes: usize,
    /// How deeply a statement's expressions and set operations may nest,
    /// counted from its tokens before it is parsed (a chain `a + b + c`
    /// counts each operator).
    pub max_statement_depth: usize,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            allow_functions: None,
            deny_functions: Vec::new(),
            max_statement_bytes: crate::policy::DEFAULT_MAX_STATEMENT_BYTES,
            max_statement_depth: crate::policy::DEFAULT_MAX_STATEMENT_DEPTH,
        }
    }
}

/// `[audit]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// JSON-lines file every database call is appended to (relative paths are
    /// relative to the config file). Events always go to the log as well.
    pub file: Option<PathBuf>,
}

/// `[database]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// A libpq connection string: `postgresql://user:password@host:port/dbname`
    /// or `host=… dbname=… user=…`.
    pub url: Option<String>,
    pub min_connections: u32,
    pub max_connections: u32,
    /// Statement timeout of plugins that set none; `[plugins] timeout_ms`
    /// takes precedence.
    pub statement_timeout_ms: Option<u64>,
    /// Row cap of plugins that set none; `[plugins] max_rows` takes
    /// precedence.
    pub max_rows: Option<u32>,
    /// Seconds to wait for a pooled connection.
    pub acquire_timeout_s: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: None,
            min_connections: 1,
            max_connections: 10,
            statement_timeout_ms: None,
            max_rows: None,
            acquire_timeout_s: 10,
        }
    }
}

/// Declares a config table that also takes every limit key (see
/// [`each_limit!`]) as an optional field of its own, so that they parse,
/// and fail, exactly like the table's other keys, and a `limits()` method
/// that collects them. Invoked through `each_limit!`, which passes the list.
macro_rules! table_with_limits {
    (
        {
            $(#[$meta:meta])*
            pub struct $name:ident { $($fields:tt)* }
            defaults { $($defaults:tt)* }
        }
        $( $(#[doc = $doc:literal])* $key:ident : $ty:ty = $default:expr ; )*
    ) => {
        $(#[$meta])*
        pub struct $name {
            $($fields)*
            $( $(#[doc = $doc])* pub $key: Option<$ty>, )*
        }

        impl Default for $name {
            fn default() -> Self {
                $name { $($defaults)* $( $key: None, )* }
            }
        }

        impl $name {
            /// The limits this table sets.
            pub fn limits(&self) -> LimitSettings {
                LimitSettings { $( $key: self.$key, )* }
            }
        }
    };
}

each_limit!(table_with_limits! {
    /// `[plugins]`. A limit key set here applies to every plugin whose grant
    /// does not set its own.
    #[derive(Debug, Clone, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    pub struct PluginsConfig {
        /// Directory of extra `*.wasm` plugins.
        pub dir: Option<PathBuf>,
        /// Whether the embedded first-party plugins (`sql-read`, `sql-write`) load.
        pub first_party: bool,
        /// Plugins, by name, that are described but not served.
        pub disabled: Vec<String>,
        /// Plugins, by name, that may be absent at start and arrive later by
        /// hot reload: the only names a grant, config table, `disabled` entry
        /// or key scope may use without a loaded plugin of that name.
        pub expected: Vec<String>,
        /// Largest plugin file read from the plugin directory, in MiB.
        pub max_file_mb: u64,
        /// `[plugins.cache]`: compiled plugins on disk.
        pub cache: CacheConfig,
        /// `[plugins.grants.<plugin>]`
        pub grants: BTreeMap<String, GrantConfig>,
        /// `[plugins.config.<plugin>]`: values a plugin reads with `config::get`.
        pub config: BTreeMap<String, BTreeMap<String, String>>,
        /// `[plugins.tools.<plugin>]`: declared SQL tools, as in a
        /// `<plugin>.tools.toml` file, served as plugin `<plugin>`.
        pub tools: BTreeMap<String, crate::declared::ToolsFile>,
        /// `[plugins.publishers]`: trusted signing keys by publisher name,
        /// each an OpenSSH `ssh-ed25519` line (`sluice plugins keygen`).
        pub publishers: BTreeMap<String, String>,
        /// Whether a plugin file must carry a valid signature by one of the
        /// publishers. Unset, it is required as soon as any publisher is
        /// configured (see [`PluginsConfig::signature_required`]).
        pub require_signature: Option<bool>,
    }
    defaults {
        dir: None,
        first_party: true,
        disabled: Vec::new(),
        expected: Vec::new(),
        max_file_mb: 256,
        cache: CacheConfig::default(),
        grants: BTreeMap::new(),
        config: BTreeMap::new(),
        tools: BTreeMap::new(),
        publishers: BTreeMap::new(),
        require_signature: None,
    }
});

impl Config {
    /// The limits of a plugin whose grant sets none: `[plugins]`, then the
    /// older `[database] statement_timeout_ms` and `max_rows`, then the
    /// built-in defaults.
    pub fn plugin_limits(&self) -> Limits {
        let legacy = LimitSettings {
            timeout_ms: self.database.statement_timeout_ms,
            max_rows: self.database.max_rows,
            ..LimitSettings::default()
        };
        self.plugins.limits().or(legacy).over(Limits::default())
    }
}

impl PluginsConfig {
    /// Whether plugin files must be signed by a trusted publisher: as set,
    /// or, when unset, whenever publishers are configured, so that naming
    /// publishers cannot be bypassed by dropping in an unsigned file.
    pub fn signature_required(&self) -> bool {
        self.require_signature
            .unwrap_or(!self.publishers.is_empty())
    }

    /// The prefix the operator put before `plugin`'s tool and prompt names.
    pub fn prefix_for(&self, plugin: &str) -> &str {
        self.grants
            .get(plugin)
            .and_then(|g| g.prefix.as_deref())
            .unwrap_or("")
    }
}

impl PluginsConfig {
    /// `expected` is the one list that may name absent plugins, so each
    /// entry must at least be a name a plugin can have: a typo such as
    /// `sql_read` must not pass as a plugin to come.
    fn validate_expected(&self) -> Result<(), ConfigError> {
        for name in &self.expected {
            if !crate::registry::model::valid_plugin_name(name) {
                return Err(ConfigError::Invalid(format!(
                    "[plugins] expected: {name:?} cannot be a plugin name \
                     (lower-case letters, digits and `-`, starting with a letter)"
                )));
            }
        }
        Ok(())
    }
}

/// `[plugins.cache]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// Whether compiled plugins are kept on disk across restarts.
    pub enabled: bool,
    /// Where: default `$SLUICE_CACHE_DIR`, else `$XDG_CACHE_HOME/sluice`,
    /// else `~/.cache/sluice`.
    pub dir: Option<PathBuf>,
    /// Size cap in MiB; least recently used entries go first.
    pub max_mb: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            enabled: true,
            dir: None,
            max_mb: 1024,
        }
    }
}

impl CacheConfig {
    /// The cache directory, or none when disabled or no home is known.
    pub fn dir(&self) -> Option<PathBuf> {
        if !self.enabled {
            return None;
        }
        self.dir
            .clone()
            .or_else(|| env_nonempty("SLUICE_CACHE_DIR").map(PathBuf::from))
            .or_else(|| env_nonempty("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("sluice")))
            .or_else(|| env_nonempty("HOME").map(|h| PathBuf::from(h).join(".cache/sluice")))
    }
}

each_limit!(table_with_limits! {
    /// `[plugins.grants.<plugin>]`: what the operator grants one plugin. A
    /// limit key set here is this plugin's own.
    #[derive(Debug, Clone, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    pub struct GrantConfig {
        /// Relation patterns it may read (`public.*`, `public.film`).
        pub read: Option<Vec<String>>,
        /// Relation patterns it may write through the typed write calls.
        pub write: Option<Vec<String>>,
        /// Whether it may list and describe the relations it can read or write.
        pub catalog: Option<bool>,
        /// Whether it may run EXPLAIN ANALYZE, which executes the statement
        /// it explains (read-only, rolled back, under its timeout).
        pub analyze: Option<bool>,
        /// Database role its statements run as (`SET LOCAL ROLE`).
        pub role: Option<String>,
        /// Put before each of its tool and prompt names, to resolve a clash.
        pub prefix: Option<String>,
        /// The grant applies only to a plugin of this name signed by this
        /// publisher (a `[plugins.publishers]` name).
        pub publisher: Option<String>,
        /// The grant applies only to exactly this content: `sha256:<hex>` of
        /// the plugin file, as `sluice plugins check` shows it.
        pub digest: Option<String>,
        /// Which of its tools are offered (the names it declares, before
        /// any prefix); unset offers them all. A name it does not declare
        /// keeps it from loading.
        pub tools: Option<Vec<String>>,
        /// Functions this plugin alone may call (names, `*` matching any
        /// run of characters): past `[policy] allow_functions` and the
        /// session-state class (`hypopg_*`), never past a denylist.
        pub functions: Option<Vec<String>>,
    }
    defaults {
        read: None,
        write: None,
        catalog: None,
        analyze: None,
        role: None,
        prefix: None,
        publisher: None,
        digest: None,
        tools: None,
        functions: None,
    }
});

impl GrantConfig {
    /// What the policy takes from this table. Its patterns were checked
    /// when the config was loaded (see [`Config::parse`]).
    pub fn settings(&self) -> GrantSettings {
        let patterns = |list: &Option<Vec<String>>| {
            list.as_ref()
                .map(|l| l.iter().filter_map(|t| Pattern::parse(t).ok()).collect())
        };
        GrantSettings {
            read: patterns(&self.read),
            write: patterns(&self.write),
            catalog: self.catalog,
            analyze: self.analyze,
            role: self.role.clone(),
            functions: self.functions.clone(),
            limits: self.limits(),
        }
    }
}

/// `; the publishers are a, b` for an error message, or nothing.
fn known_names<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let names: Vec<&str> = names.map(String::as_str).collect();
    if names.is_empty() {
        " (there are none)".to_string()
    } else {
        format!("; the publishers are {}", names.join(", "))
    }
}

/// Command-line and environment overrides of the file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub database_url: Option<String>,
    pub plugin_dir: Option<PathBuf>,
}

impl Config {
    /// Parses a config file's text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: toml_error_message(&e, text, path),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Loads the file (the given one, else `./sluice.toml` when present), then
    /// applies the environment and `overrides`.
    pub fn load(overrides: &Overrides) -> Result<Config, ConfigError> {
        // A missing .env is normal; a malformed one is worth a warning only.
        if let Err(e) = dotenvy::dotenv()
            && !e.not_found()
        {
            tracing::warn!("ignoring .env: {e}");
        }
        let default_path = PathBuf::from(DEFAULT_CONFIG_FILE);
        let path = match &overrides.config_file {
            Some(p) => Some(p.clone()),
            None if default_path.is_file() => Some(default_path),
            None => None,
        };
        let mut config = match &path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
                    path: path.clone(),
                    error,
                })?;
                let mut config = Config::parse(&text, path)?;
                // Relative paths in the file are relative to the file.
                if let Some(parent) = path.parent() {
                    for p in [
                        &mut config.plugins.dir,
                        &mut config.audit.file,
                        &mut config.plugins.cache.dir,
                    ] {
                        if let Some(rel) = p.as_ref().filter(|d| d.is_relative()) {
                            *p = Some(parent.join(rel));
                        }
                    }
                }
                config
            }
            None => Config::default(),
        };
        if let Some(url) = overrides
            .database_url
            .clone()
            .or_else(|| env_nonempty("DATABASE_URL"))
            .or_else(url_from_seed_env)
        {
            config.database.url = Some(url);
        }
        if let Some(dir) = &overrides.plugin_dir {
            config.plugins.dir = Some(dir.clone());
        }
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let db = &self.database;
        if db.max_connections == 0 {
            return Err(ConfigError::Invalid(
                "[database] max_connections must be at least 1".into(),
            ));
        }
        if db.min_connections > db.max_connections {
            return Err(ConfigError::Invalid(format!(
                "[database] min_connections ({}) is above max_connections ({})",
                db.min_connections, db.max_connections
            )));
        }
        let legacy = LimitSettings {
            timeout_ms: db.statement_timeout_ms,
            max_rows: db.max_rows,
            ..LimitSettings::default()
        };
        legacy.check("[database]").map_err(ConfigError::Invalid)?;
        self.plugins
            .limits()
            .check("[plugins]")
            .map_err(ConfigError::Invalid)?;
        crate::identity::Publishers::new(&self.plugins.publishers)
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        if let Some(oauth) = &self.http.oauth {
            crate::http::oauth::check_config(oauth).map_err(ConfigError::Invalid)?;
        }
        for (plugin, grant) in &self.plugins.grants {
            let section = format!("[plugins.grants.{plugin}]");
            for pattern in grant.read.iter().chain(grant.write.iter()).flatten() {
                Pattern::parse(pattern)
                    .map_err(|e| ConfigError::Invalid(format!("{section}: {e}")))?;
            }
            grant
                .limits()
                .check(&section)
                .map_err(ConfigError::Invalid)?;
            if let Some(functions) = &grant.functions {
                crate::policy::FunctionRules::default()
                    .with_allowance(functions)
                    .map_err(|e| ConfigError::Invalid(format!("{section} {e}")))?;
            }
            if let Some(publisher) = &grant.publisher
                && !self.plugins.publishers.contains_key(publisher)
            {
                return Err(ConfigError::Invalid(format!(
                    "{section} publisher {publisher:?} is not a [plugins.publishers] entry{}",
                    known_names(self.plugins.publishers.keys())
                )));
            }
            if let Some(digest) = &grant.digest
                && !crate::identity::is_digest(digest)
            {
                return Err(ConfigError::Invalid(format!(
                    "{section} digest {digest:?} must be sha256: and 64 lower-case hex digits, \
                     as `sluice plugins check` shows a plugin's digest"
                )));
            }
            if let Some(prefix) = &grant.prefix
                && !(prefix.len() <= 64 && crate::registry::model::valid_name(prefix))
            {
                return Err(ConfigError::Invalid(format!(
                    "{section} prefix {prefix:?} must be 1 to 64 of A-Z a-z 0-9 _ - ."
                )));
            }
        }
        for (key, value) in [
            ("[plugins] max_file_mb", self.plugins.max_file_mb as u128),
            (
                "[policy] max_statement_bytes",
                self.policy.max_statement_bytes as u128,
            ),
            (
                "[policy] max_statement_depth",
                self.policy.max_statement_depth as u128,
            ),
            (
                "[mcp] max_message_bytes",
                self.mcp.max_message_bytes as u128,
            ),
            ("[http] max_body_bytes", self.http.max_body_bytes as u128),
            ("[http] max_sessions", self.http.max_sessions as u128),
            (
                "[http] max_sessions_per_key",
                self.http.max_sessions_per_key as u128,
            ),
            (
                "[http] session_idle_timeout_s",
                self.http.session_idle_timeout_s as u128,
            ),
            (
                "[http] header_timeout_ms",
                self.http.header_timeout_ms as u128,
            ),
            ("[http] max_connections", self.http.max_connections as u128),
            (
                "[http] shared_state_timeout_ms",
                self.http.shared_state_timeout_ms as u128,
            ),
            (
                "[http.failed_auth] per_minute",
                self.http.failed_auth.per_minute as u128,
            ),
            (
                "[http.failed_auth] burst",
                self.http.failed_auth.burst as u128,
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::Invalid(format!("{key} must be at least 1")));
            }
        }
        // Settings of a store that is not used would be silently ignored.
        if self.http.shared_state == SharedStateKind::Memory {
            let defaults = HttpConfig::default();
            for (key, set) in [
                (
                    "shared_state_schema",
                    self.http.shared_state_schema != defaults.shared_state_schema,
                ),
                (
                    "shared_state_timeout_ms",
                    self.http.shared_state_timeout_ms != defaults.shared_state_timeout_ms,
                ),
            ] {
                if set {
                    return Err(ConfigError::Invalid(format!(
                        "[http] {key} applies only with shared_state = \"postgres\", and \
                         shared_state is \"memory\""
                    )));
                }
            }
        }
        let schema = &self.http.shared_state_schema;
        if schema.is_empty() || schema.len() > 63 || schema.contains('\0') {
            return Err(ConfigError::Invalid(format!(
                "[http] shared_state_schema {schema:?} must be a schema name of 1 to 63 bytes"
            )));
        }
        for (key, value, most) in [
            (
                "[http] shared_state_timeout_ms",
                self.http.shared_state_timeout_ms,
                60_000,
            ),
            ("[http] drain_delay_ms", self.http.drain_delay_ms, 600_000),
        ] {
            if value > most {
                return Err(ConfigError::Invalid(format!(
                    "{key} must be at most {most}, not {value}"
                )));
            }
        }
        let depth = self.mcp.max_json_depth;
        let max_depth = crate::mcp::frame::MAX_JSON_DEPTH_LIMIT;
        if !(2..=max_depth).contains(&depth) {
            return Err(ConfigError::Invalid(format!(
                "[mcp] max_json_depth must be between 2 and {max_depth}, not {depth}"
            )));
        }
        let statement_depth = self.policy.max_statement_depth;
        let most = crate::policy::MAX_STATEMENT_DEPTH_LIMIT;
        if statement_depth > most {
            return Err(ConfigError::Invalid(format!(
                "[policy] max_statement_depth must be at most {most}, not {statement_depth}"
            )));
        }
        crate::policy::FunctionRules::new(
            self.policy.allow_functions.as_deref(),
            &self.policy.deny_functions,
        )
        .map_err(|e| ConfigError::Invalid(format!("[policy]: {e}")))?;
        self.plugins.validate_expected()?;
        Ok(())
    }

    /// The connection string, or the error that says how to give one. With
    /// none given, `PGHOST`, `PGHOSTADDR` or `PGDATABASE` is enough: the
    /// string is then empty and the `PG*` variables say everything.
    pub fn database_url(&self) -> Result<&str, ConfigError> {
        match self.database.url.as_deref() {
            Some(url) => Ok(url),
            None if PG_CHOOSERS.iter().any(|v| env_nonempty(v).is_some()) => Ok(""),
            None => Err(ConfigError::NoDatabase),
        }
    }
}

/// A TOML error as the operator needs it: what is wrong first, then where,
/// with the offending line and a caret under the column (line breaks kept,
/// so the caret lines up).
fn toml_error_message(error: &toml::de::Error, text: &str, path: &Path) -> String {
    let plain = || error.to_string().trim_end().to_string();
    let Some(span) = error.span() else {
        return plain();
    };
    // Spans are byte offsets; anything that is not a char boundary in the
    // text falls back to toml's own rendering rather than panic.
    let Some(head) = text.get(..span.start) else {
        return plain();
    };
    let line_start = head.rfind('\n').map_or(0, |at| at + 1);
    let rest = &text[line_start..];
    let line = rest[..rest.find('\n').unwrap_or(rest.len())].trim_end_matches('\r');
    let line_end = line_start + line.len();
    let number = head[..line_start].matches('\n').count() + 1;
    // A span may start past the end of its line (at the end of input).
    let before = &head[line_start..span.start.min(line_end)];
    let column = before.chars().count() + 1;
    let from = span.start.min(line_end);
    let to = span.end.min(line_end).max(from);
    let width = text.get(from..to).map_or(0, |s| s.chars().count()).max(1);
    // Tabs stay tabs under the line, so the caret lands where the text is.
    let pad: String = before
        .chars()
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    let gutter = " ".repeat(number.to_string().len());
    format!(
        "{}\n{gutter}--> {}:{number}:{column}\n{gutter} |\n{number} | {line}\n{gutter} | {pad}{}",
        error.message().trim_end(),
        path.display(),
        "^".repeat(width)
    )
}

/// Expands `${NAME}` from the environment in a plugin config value, so
/// secrets can stay out of the file; `$$` is a literal `$`. An unset
/// variable is an error naming the variable (never the value).
pub fn expand_env(value: &str) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body
                .find('}')
                .ok_or_else(|| "an unclosed ${ in a value".to_string())?;
            let name = &body[..end];
            let valid = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(format!("${{{name}}} is not a variable name"));
            }
            let var = std::env::var(name)
                .map_err(|_| format!("references ${{{name}}}, which is not set"))?;
            out.push_str(&var);
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The `PG*` variables that choose a database without a connection string.
const PG_CHOOSERS: &[&str] = &["PGHOST", "PGHOSTADDR", "PGDATABASE"];

/// Builds a URL from the seed's `DB_*` variables, when `DB_HOST` or `DB_NAME`
/// is set. What they leave out is left to the `PG*` variable that gives it,
/// else the seed's default (`localhost`, `5432`, `postgres`, `postgres`).
fn url_from_seed_env() -> Option<String> {
    let host = env_nonempty("DB_HOST");
    let name = env_nonempty("DB_NAME");
    if host.is_none() && name.is_none() {
        return None;
    }
    let or_seed_default = |given: Option<String>, pg: &str, default: &str| match given {
        Some(v) => Some(v),
        None if env_nonempty(pg).is_some() => None,
        None => Some(default.to_string()),
    };
    let host = or_seed_default(host, "PGHOST", "localhost");
    let port = or_seed_default(env_nonempty("DB_PORT"), "PGPORT", "5432");
    let name = or_seed_default(name, "PGDATABASE", "postgres");
    let user = or_seed_default(env_nonempty("DB_USER"), "PGUSER", "postgres");
    let user = user
        .as_deref()
        .map(crate::db::conninfo::percent_encode)
        .unwrap_or_default();
    let password = env_nonempty("DB_PASSWORD")
        .map(|pw| format!(":{}", crate::db::conninfo::percent_encode(&pw)))
        .unwrap_or_default();
    let mut url = String::from("postgres://");
    if !user.is_empty() || !password.is_empty() {
        url.push_str(&format!("{user}{password}@"));
    }
    if let Some(host) = &host {
        url.push_str(&crate::db::conninfo::percent_encode(host));
    }
    if let Some(port) = &port {
        url.push(':');
        url.push_str(&crate::db::conninfo::percent_encode(port));
    }
    url.push('/');
    if let Some(name) = &name {
        url.push_str(&crate::db::conninfo::percent_encode(name));
    }
    Some(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_brief_example() {
        let text = r#"
            [database]
            url = "postgres://app@localhost/app"
            min_connections = 2
            max_connections = 10
            statement_timeout_ms = 5000
            max_rows = 1000

            [plugins]
            dir = "plugins.d"

            [plugins.grants.sql-read]
            read = ["public.*"]
            catalog = true

            [plugins.grants.sql-write]
            write = ["public.rental"]
            role = "sluice_writer"
        "#;
        let c = Config::parse(text, Path::new("sluice.toml")).unwrap();
        assert_eq!(c.database.max_connections, 10);
        assert_eq!(c.plugins.grants["sql-read"].catalog, Some(true));
        assert_eq!(
            c.plugins.grants["sql-write"].role.as_deref(),
            Some("sluice_writer")
        );
        assert!(c.plugins.first_party);
        assert!(
            Config::parse("", Path::new("empty.toml"))
                .unwrap()
                .plugins
                .first_party
        );
    }

    #[test]
    fn rejects_typos_and_bad_values() {
        let e = Config::parse("[database]\nurll = 'x'", Path::new("f.toml")).unwrap_err();
        assert!(e.to_string().contains("url"), "{e}");
        let e = Config::parse(
            "[database]\nmin_connections = 5\nmax_connections = 2",
            Path::new("f.toml"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("min_connections"), "{e}");
        let e = Config::parse(
            "[plugins.grants.x]\nread = ['a.b.c.d']",
            Path::new("f.toml"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("plugins.grants.x"), "{e}");
    }

    #[test]
    fn every_limit_key_is_taken_by_plugins_and_each_grant_and_layered() {
        let mut text = String::from("[plugins]\n");
        for (i, key) in LimitSettings::KEYS.iter().enumerate() {
            text.push_str(&format!("{key} = {}\n", 10 + i));
        }
        text.push_str("[plugins.grants.p]\nmax_rows = 3\n");
        let c = Config::parse(&text, Path::new("f.toml")).unwrap();
        let set = c.plugins.limits().values();
        assert_eq!(set.len(), LimitSettings::KEYS.len(), "{set:?}");
        let grant = c.plugins.grants["p"]
            .settings()
            .limits
            .over(c.plugin_limits());
        assert_eq!(grant.max_rows, 3, "the grant's own");
        assert_eq!(grant.timeout_ms, 10, "from [plugins]");

        // [plugins] wins over the older [database] keys, which win over the defaults.
        let c = Config::parse(
            "[database]\nmax_rows = 7\nstatement_timeout_ms = 900\n[plugins]\nmax_rows = 8",
            Path::new("f.toml"),
        )
        .unwrap();
        let limits = c.plugin_limits();
        assert_eq!((limits.max_rows, limits.timeout_ms), (8, 900));
        assert_eq!(Config::default().plugin_limits(), Limits::default());

        // A typo among them fails like any other key, naming the limit keys
        // it might have meant, with the caret on it.
        let e = Config::parse("[plugins.grants.p]\nmax_row = 3", Path::new("f.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `max_row`"), "{e}");
        assert!(e.contains("`max_rows`") && e.contains("`read`"), "{e}");
        assert!(e.contains("2 | max_row = 3"), "{e}");
        let e = Config::parse("[plugins]\nmemory_mb = \"big\"", Path::new("f.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("2 | memory_mb"), "{e}");
        for bad in [
            "[plugins.grants.p]\nmax_host_calls = 0",
            "[database]\nmax_rows = 0",
            "[plugins]\nmemory_mb = 17592186044416",
        ] {
            assert!(Config::parse(bad, Path::new("f.toml")).is_err(), "{bad}");
        }
    }

    #[test]
    fn shared_state_is_memory_or_postgres_and_its_settings_are_bounded() {
        let c = Config::parse(
            "[http]\nshared_state = \"postgres\"\ndrain_delay_ms = 2000",
            Path::new("f.toml"),
        )
        .unwrap();
        assert_eq!(c.http.shared_state, SharedStateKind::Postgres);
        assert_eq!(c.http.shared_state_schema, "sluice");
        assert_eq!(Config::default().http.shared_state, SharedStateKind::Memory);
        let e = Config::parse("[http]\nshared_state = \"redis\"", Path::new("f.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`memory`") && e.contains("`postgres`"), "{e}");
        for bad in [
            "[http]\nshared_state = \"postgres\"\nshared_state_schema = \"\"",
            "[http]\nshared_state = \"postgres\"\nshared_state_timeout_ms = 0",
            "[http]\nshared_state = \"postgres\"\nshared_state_timeout_ms = 60001",
            "[http]\ndrain_delay_ms = 600001",
        ] {
            assert!(Config::parse(bad, Path::new("f.toml")).is_err(), "{bad}");
        }
        // A setting of the store that is not used is a mistake, said so.
        let e = Config::parse(
            "[http]\nshared_state_schema = \"guard\"",
            Path::new("f.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("shared_state_schema applies only with shared_state = \"postgres\""),
            "{e}"
        );
    }

    #[test]
    fn toml_errors_say_what_then_where_with_the_caret_under_the_column() {
        let e = Config::parse("[database]\nurl = postgres://x\n", Path::new("s.toml")).unwrap_err();
        let text = e.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("config file s.toml is invalid: "),
            "{text}"
        );
        assert_eq!(lines[1], " --> s.toml:2:7", "{text}");
        assert_eq!(lines[3], "2 | url = postgres://x", "{text}");
        let caret = lines[4].find('^').unwrap();
        assert_eq!(&lines[3][caret..caret + 1], "p", "{text}");

        // At the end of the input, after a tab.
        let e = Config::parse("[plugins]\n\tdisabled = [", Path::new("s.toml")).unwrap_err();
        let text = e.to_string();
        assert!(
            text.ends_with("2 | \tdisabled = [\n  | \t            ^"),
            "{text}"
        );
    }

    #[test]
    fn expected_plugins_must_be_plugin_names() {
        let e = Config::parse("[plugins]\nexpected = [\"geo_tools\"]", Path::new("f.toml"))
            .unwrap_err();
        assert!(
            e.to_string().contains("[plugins] expected: \"geo_tools\""),
            "{e}"
        );
        let c = Config::parse(
            "[plugins]\nexpected = [\"geo-tools2\"]",
            Path::new("f.toml"),
        );
        assert_eq!(c.unwrap().plugins.expected, ["geo-tools2"]);
    }

    #[test]
    fn expands_environment_references() {
        // SAFETY: tests in this module do not read this variable concurrently.
        unsafe { std::env::set_var("SLUICE_TEST_EXPAND", "s3cret") };
        assert_eq!(
            expand_env("Bearer ${SLUICE_TEST_EXPAND}!").unwrap(),
            "Bearer s3cret!"
        );
        assert_eq!(expand_env("cost: $$5, $x").unwrap(), "cost: $5, $x");
        let e = expand_env("${SLUICE_TEST_UNSET_VARIABLE}").unwrap_err();
        assert!(e.contains("SLUICE_TEST_UNSET_VARIABLE"), "{e}");
        assert!(expand_env("${not valid}").is_err());
        assert!(expand_env("${OPEN").is_err());
    }

    #[test]
    fn encodes_seed_credentials() {
        assert_eq!(
            crate::db::conninfo::percent_encode("p@ss:w/rd"),
            "p%40ss%3Aw%2Frd"
        );
    }
}
