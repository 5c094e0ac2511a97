//! Connection strings as libpq reads them, so that whatever works for psql
//! works here: `postgresql://` URLs (an empty host with `?host=/socket/dir`
//! included), `key=value` conninfo strings with libpq's quoting, the `PG*`
//! environment variables as defaults under what the string gives,
//! `~/.pgpass` (or `PGPASSFILE`), and TLS settings with libpq's defaults
//! (`~/.postgresql/root.crt`, `postgresql.crt`, `postgresql.key`).
//!
//! [`parse`] only reads the string; [`resolve`] adds the environment and
//! the files (blocking I/O: run it off the async workers).

use sqlx::postgres::{PgConnectOptions, PgSslMode};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why a connection string cannot be used. Never quotes a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnInfoError {
    /// The string is malformed.
    #[error("invalid connection string: {0}")]
    Syntax(String),
    /// The URL is malformed.
    #[error("invalid database URL: {0}")]
    Url(String),
    /// A keyword libpq does not know.
    #[error("invalid connection string: unknown option \"{0}\"")]
    Unknown(String),
    /// A libpq option (or value) sluice cannot honour.
    #[error("invalid connection string: {0} is not supported")]
    Unsupported(String),
    /// A value (from the string or a `PG*` variable) is unusable.
    #[error("{0}")]
    Invalid(String),
}

/// Options sluice acts on.
const SUPPORTED: &[&str] = &[
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "passfile",
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "application_name",
    "fallback_application_name",
    "options",
    "connect_timeout",
];

/// Options that tune what sqlx does its own way; accepted and ignored.
const IGNORED: &[&str] = &[
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "sslcompression",
    "sslsni",
    "ssl_max_protocol_version",
];

/// Options accepted only with the values that mean what sqlx does anyway.
const DEFAULT_ONLY: &[(&str, &[&str])] = &[
    ("gssencmode", &["disable", "prefer"]),
    ("channel_binding", &["disable", "prefer"]),
    ("target_session_attrs", &["any"]),
    ("load_balance_hosts", &["disable"]),
    ("sslnegotiation", &["postgres"]),
    ("sslcertmode", &["allow", "disable"]),
    ("client_encoding", &["UTF8", "utf8", "auto"]),
    // rustls speaks TLS 1.2 and 1.3 only, so any lower minimum holds.
    ("ssl_min_protocol_version", &["TLSv1", "TLSv1.1", "TLSv1.2"]),
];

/// libpq options sluice does not implement: an error, not a silent default.
const UNSUPPORTED: &[&str] = &[
    "service",
    "sslpassword",
    "sslcrl",
    "sslcrldir",
    "requirepeer",
    "require_auth",
    "krbsrvname",
    "gsslib",
    "gssdelegation",
    "replication",
    "requiressl",
    "scram_client_key",
    "scram_server_key",
];

/// sqlx's spellings of some options, accepted in URLs for compatibility.
const ALIASES: &[(&str, &str)] = &[
    ("ssl-mode", "sslmode"),
    ("ssl-root-cert", "sslrootcert"),
    ("ssl-ca", "sslrootcert"),
    ("ssl-cert", "sslcert"),
    ("ssl-key", "sslkey"),
];

/// The `PG*` variable behind each supported option.
const ENV: &[(&str, &str)] = &[
    ("host", "PGHOST"),
    ("hostaddr", "PGHOSTADDR"),
    ("port", "PGPORT"),
    ("dbname", "PGDATABASE"),
    ("user", "PGUSER"),
    ("password", "PGPASSWORD"),
    ("passfile", "PGPASSFILE"),
    ("sslmode", "PGSSLMODE"),
    ("sslrootcert", "PGSSLROOTCERT"),
    ("sslcert", "PGSSLCERT"),
    ("sslkey", "PGSSLKEY"),
    ("application_name", "PGAPPNAME"),
    ("options", "PGOPTIONS"),
    ("connect_timeout", "PGCONNECT_TIMEOUT"),
];

/// Where libpq looks for the server's socket when no host is given
/// (Debian's compiled-in directory, then upstream's).
const DEFAULT_SOCKET_DIRS: &[&str] = &["/var/run/postgresql", "/tmp"];

/// How long one connection attempt may take when `connect_timeout` is not
/// given: short, so that an unreachable server is reported as such well
/// inside a call's deadline.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The application name when none is given.
const APPLICATION_NAME: &str = "sluice";

/// A parsed connection string: libpq option names and their values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnInfo {
    params: HashMap<&'static str, String>,
}

impl ConnInfo {
    /// The value the string gives for `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.params.get(key).map(String::as_str)
    }

    /// Records `key = value`, checking the key; a later value wins.
    fn set(&mut self, key: &str, value: String) -> Result<(), ConnInfoError> {
        let key = ALIASES
            .iter()
            .find(|(alias, _)| *alias == key)
            .map_or(key, |(_, name)| name);
        if let Some(name) = SUPPORTED.iter().find(|k| **k == key) {
            self.params.insert(name, value);
            return Ok(());
        }
        if IGNORED.contains(&key) {
            tracing::debug!(option = key, "connection option ignored");
            return Ok(());
        }
        if let Some((_, allowed)) = DEFAULT_ONLY.iter().find(|(k, _)| *k == key) {
            if allowed.contains(&value.as_str()) {
                return Ok(());
            }
            return Err(ConnInfoError::Unsupported(format!("{key}={value}")));
        }
        if UNSUPPORTED.contains(&key) {
            return Err(ConnInfoError::Unsupported(format!("the option \"{key}\"")));
        }
        Err(ConnInfoError::Unknown(key.to_string()))
    }
}

/// Whether `text` is a URL rather than key=value pairs.
fn is_url(text: &str) -> bool {
    text.starts_with("postgresql://") || text.starts_with("postgres://")
}

/// Parses a connection string in either form. An empty string is valid:
/// everything then comes from the environment and libpq's defaults.
pub fn parse(text: &str) -> Result<ConnInfo, ConnInfoError> {
    if is_url(text) {
        parse_url(text)
    } else if let Some((scheme, _)) = text.split_once("://")
        && !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    {
        Err(ConnInfoError::Url(
            "it must start with postgresql:// or postgres:// (or be key=value pairs)".into(),
        ))
    } else {
        parse_keywords(text)
    }
}

/// `key=value` pairs separated by whitespace; a value is either a run of
/// non-space characters or `'…'`, with `\` escaping the next character in
/// both (libpq's `conninfo_parse`).
fn parse_keywords(text: &str) -> Result<ConnInfo, ConnInfoError> {
    let mut info = ConnInfo::default();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(info);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            // The word may be a secret typed in the wrong place: quote it
            // only when it is a known option name.
            let shown = if SUPPORTED.contains(&key.as_str()) {
                format!("\"{key}\"")
            } else {
                "a word".to_string()
            };
            return Err(ConnInfoError::Syntax(format!(
                "expected a URL (postgresql://…) or key=value pairs, but {shown} is not followed by \"=\""
            )));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    None => {
                        return Err(ConnInfoError::Syntax(format!(
                            "the quoted value of \"{key}\" is not terminated"
                        )));
                    }
                    Some('\\') => {
                        if let Some(c) = chars.next() {
                            value.push(c);
                        }
                    }
                    Some('\'') => break,
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    if let Some(c) = chars.next() {
                        value.push(c);
                    }
                } else {
                    value.push(c);
                }
            }
        }
        info.set(&key, value)?;
    }
}

/// `postgresql://[user[:password]@][host][:port][/dbname][?key=value&…]`,
/// percent-decoded (libpq's `conninfo_uri_parse`).
fn parse_url(text: &str) -> Result<ConnInfo, ConnInfoError> {
    let mut info = ConnInfo::default();
    let rest = text
        .strip_prefix("postgresql://")
        .or_else(|| text.strip_prefix("postgres://"))
        .unwrap_or(text);
    let (rest, query) = match rest.split_once('?') {
        Some((rest, query)) => (rest, Some(query)),
        None => (rest, None),
    };
    let (authority, path) = match rest.find('/') {
        Some(at) => (&rest[..at], Some(&rest[at + 1..])),
        None => (rest, None),
    };
    let hostport = match authority.rsplit_once('@') {
        Some((userinfo, hostport)) => {
            let (user, password) = match userinfo.split_once(':') {
                Some((user, password)) => (user, Some(password)),
                None => (userinfo, None),
            };
            if !user.is_empty() {
                info.set("user", decode(user, "the user name")?)?;
            }
            if let Some(password) = password {
                info.set("password", decode(password, "the password")?)?;
            }
            hostport
        }
        None => authority,
    };
    if hostport.contains(',') {
        return Err(ConnInfoError::Unsupported("more than one host".into()));
    }
    let (host, port) = if let Some(bracketed) = hostport.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']').ok_or_else(|| {
            ConnInfoError::Url("an IPv6 address in the URL lacks its \"]\"".into())
        })?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or_else(|| {
                ConnInfoError::Url("unexpected characters after the IPv6 address".into())
            })?),
        };
        (host.to_string(), port)
    } else {
        match hostport.split_once(':') {
            Some((host, port)) => (decode(host, "the host")?, Some(port)),
            None => (decode(hostport, "the host")?, None),
        }
    };
    if !host.is_empty() {
        info.set("host", host)?;
    }
    if let Some(port) = port.filter(|p| !p.is_empty()) {
        info.set("port", decode(port, "the port")?)?;
    }
    if let Some(path) = path.filter(|p| !p.is_empty()) {
        info.set("dbname", decode(path, "the database name")?)?;
    }
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| ConnInfoError::Url("a URL parameter lacks \"=\"".into()))?;
        let key = decode(key, "a parameter name")?;
        let value = decode(value, &format!("the value of \"{key}\""))?;
        // JDBC's spelling, which libpq accepts too.
        if key == "ssl" && value == "true" {
            info.set("sslmode", "require".into())?;
        } else {
            info.set(&key, value)?;
        }
    }
    Ok(info)
}

/// Percent-decodes one URL component (`+` stays a plus, as in libpq).
fn decode(text: &str, what: &str) -> Result<String, ConnInfoError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| ConnInfoError::Url(format!("invalid percent-encoding in {what}")))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map_err(|_| ConnInfoError::Url(format!("{what} is not UTF-8 once decoded")))
}

/// Percent-encodes everything outside RFC 3986's unreserved characters: a
/// value as one component of a connection URL.
pub fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// The connection string without its password, in the form it was given,
/// for messages. One that cannot be parsed is not shown at all.
pub fn redact(text: &str) -> String {
    if parse(text).is_err() {
        return "(an invalid connection string)".into();
    }
    if is_url(text) {
        redact_url(text)
    } else {
        redact_keywords(text)
    }
}

fn redact_url(text: &str) -> String {
    let scheme_end = text.find("://").map_or(0, |i| i + 3);
    let (base, query) = match text.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (text, None),
    };
    let authority_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = text[..scheme_end].to_string();
    let authority = &base[scheme_end..authority_end];
    match authority.rsplit_once('@') {
        Some((userinfo, hostport)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            out.push_str(user);
            out.push('@');
            out.push_str(hostport);
        }
        None => out.push_str(authority),
    }
    out.push_str(&base[authority_end..]);
    if let Some(query) = query {
        let kept: Vec<&str> = query
            .split('&')
            .filter(|pair| {
                let key = pair.split_once('=').map_or(*pair, |(k, _)| k);
                decode(key, "").map_or(true, |k| k != "password")
            })
            .collect();
        if !kept.is_empty() {
            out.push('?');
            out.push_str(&kept.join("&"));
        }
    }
    out
}

fn redact_keywords(text: &str) -> String {
    // Parsed already, so every pair is well formed; rebuilt without the
    // password, values quoted where needed.
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace() || *c == '=').is_some() {}
        let mut raw = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            raw.push('\'');
            while let Some(c) = chars.next() {
                raw.push(c);
                if c == '\\' {
                    if let Some(c) = chars.next() {
                        raw.push(c);
                    }
                } else if c == '\'' {
                    break;
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                raw.push(c);
                if c == '\\'
                    && let Some(c) = chars.next()
                {
                    raw.push(c);
                }
            }
        }
        if key != "password" {
            out.push(format!("{key}={raw}"));
        }
    }
    out.join(" ")
}

/// Where a connection goes, for messages: `host:port` or the socket file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint(String);

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A connection string with the environment and files applied.
#[derive(Clone)]
pub struct Target {
    pub options: PgConnectOptions,
    /// The same settings for the read path's driver.
    pub link: Link,
    pub endpoint: Endpoint,
    /// The host name as given (for "no such host" messages).
    pub host: String,
    /// How long one connection attempt may take.
    pub connect_timeout: Duration,
    /// Whether any password was found (string, `PGPASSWORD`, password file).
    pub has_password: bool,
}

impl std::fmt::Debug for Target {
    // Not derived: the options hold the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("endpoint", &self.endpoint)
            .field("connect_timeout", &self.connect_timeout)
            .field("has_password", &self.has_password)
            .finish_non_exhaustive()
    }
}

impl Target {
    /// libpq's plain defaults (`localhost:5432`, the `PG*` variables sqlx
    /// reads itself), for a pool that may never connect.
    pub fn fallback() -> Target {
        let options = PgConnectOptions::new_without_pgpass().application_name(APPLICATION_NAME);
        let tls = TlsSettings {
            mode: options.get_ssl_mode(),
            root_cert: None,
            client: None,
        };
        Target {
            endpoint: Endpoint(format!("{}:{}", options.get_host(), options.get_port())),
            host: options.get_host().to_string(),
            link: Link::from_options(&options, None, DEFAULT_CONNECT_TIMEOUT, tls),
            options,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            has_password: false,
        }
    }
}

/// What [`resolve`] reads besides the string: the environment, the OS user
/// and the file system, so that tests can give their own.
pub trait Environment {
    /// An environment variable, when set and not empty.
    fn var(&self, name: &str) -> Option<String>;
    /// The OS user's name.
    fn os_user(&self) -> Option<String>;
    /// Whether `path` exists.
    fn exists(&self, path: &Path) -> bool;
    /// A password file's text, or why it is not used.
    fn read_passfile(&self, path: &Path) -> Result<String, String>;
}

/// The real environment.
pub struct ProcessEnvironment;

impl Environment for ProcessEnvironment {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }

    fn os_user(&self) -> Option<String> {
        whoami::username().ok().filter(|u| !u.is_empty())
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }

    fn read_passfile(&self, path: &Path) -> Result<String, String> {
        use std::os::unix::fs::PermissionsExt as _;
        let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
        if !meta.is_file() {
            return Err("it is not a plain file".into());
        }
        // libpq's rule: a password file others can read is not trusted.
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(
                "it has group or world access; permissions should be u=rw (0600) or less".into(),
            );
        }
        std::fs::read_to_string(path).map_err(|e| e.to_string())
    }
}

/// Applies libpq's defaults to `info`: `PG*` variables for what it leaves
/// out, then the password file and the TLS files, then the built-in
/// defaults. Blocking (it may read files).
pub fn resolve(info: &ConnInfo, env: &dyn Environment) -> Result<Target, ConnInfoError> {
    let value = |key: &str| -> Option<(String, Source)> {
        if let Some(v) = info.get(key) {
            return Some((v.to_string(), Source::String));
        }
        let var = ENV.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)?;
        env.var(var).map(|v| (v, Source::Env(var)))
    };
    let named = |key: &str, source: &Source| match source {
        Source::String => key.to_string(),
        Source::Env(var) => var.to_string(),
    };

    let port = match value("port") {
        Some((p, source)) => p.parse::<u16>().map_err(|_| {
            ConnInfoError::Invalid(format!(
                "invalid port \"{p}\" (from {})",
                named("port", &source)
            ))
        })?,
        None => 5432,
    };

    let host = value("host").map(|(h, _)| h).filter(|h| !h.is_empty());
    let hostaddr = value("hostaddr").map(|(h, _)| h).filter(|h| !h.is_empty());
    if let Some(addr) = &hostaddr
        && addr.parse::<std::net::IpAddr>().is_err()
    {
        return Err(ConnInfoError::Invalid(format!(
            "invalid hostaddr \"{addr}\": it must be a numeric IP address"
        )));
    }
    if host.as_deref().is_some_and(|h| h.contains(',')) {
        return Err(ConnInfoError::Unsupported("more than one host".into()));
    }
    // libpq connects to hostaddr and names the server by host; sqlx has
    // one field for both, so host (the name TLS checks) wins when both are
    // given.
    let (place, pass_host) = match (&host, &hostaddr) {
        (Some(h), _) if h.starts_with('/') => {
            let pass = if DEFAULT_SOCKET_DIRS.contains(&h.as_str()) {
                "localhost".to_string()
            } else {
                h.clone()
            };
            (Place::Socket(PathBuf::from(h)), pass)
        }
        (Some(h), _) if h.starts_with('@') => {
            return Err(ConnInfoError::Unsupported(
                "an abstract Unix socket (host=@…)".into(),
            ));
        }
        (Some(h), _) => (Place::Tcp(h.clone()), h.clone()),
        (None, Some(a)) => (Place::Tcp(a.clone()), a.clone()),
        (None, None) => {
            let socket_file = format!(".s.PGSQL.{port}");
            let place = DEFAULT_SOCKET_DIRS
                .iter()
                .find(|d| env.exists(&Path::new(d).join(&socket_file)))
                .map_or_else(
                    || Place::Tcp("localhost".to_string()),
                    |dir| Place::Socket(PathBuf::from(dir)),
                );
            (place, "localhost".to_string())
        }
    };

    let user = match value("user") {
        Some((u, _)) => u,
        None => env.os_user().ok_or_else(|| {
            ConnInfoError::Invalid(
                "no user name given and the OS user's name is unknown; set user= or PGUSER".into(),
            )
        })?,
    };
    let dbname = value("dbname").map_or_else(|| user.clone(), |(d, _)| d);

    let mut password = value("password").map(|(p, _)| p);
    if password.is_none() {
        let passfile = value("passfile")
            .map(|(p, _)| PathBuf::from(p))
            .or_else(|| env.var("HOME").map(|h| PathBuf::from(h).join(".pgpass")));
        if let Some(path) = passfile
            && env.exists(&path)
        {
            match env.read_passfile(&path) {
                Ok(text) => {
                    password = passfile_lookup(&text, &pass_host, port, &dbname, &user);
                }
                Err(why) => tracing::warn!(
                    file = %path.display(),
                    "password file {} is not used: {why}",
                    path.display()
                ),
            }
        }
    }

    let home_file = |name: &str| {
        env.var("HOME")
            .map(|h| PathBuf::from(h).join(".postgresql").join(name))
            .filter(|p| env.exists(p))
    };
    let root_cert = value("sslrootcert");
    let system_roots = root_cert.as_ref().is_some_and(|(r, _)| r == "system");
    let ssl_mode_given = value("sslmode");
    let mut ssl_mode = match &ssl_mode_given {
        Some((m, source)) => parse_ssl_mode(m).ok_or_else(|| {
            ConnInfoError::Invalid(format!(
                "invalid {} value \"{m}\": use disable, allow, prefer, require, verify-ca or verify-full",
                named("sslmode", source)
            ))
        })?,
        None if system_roots => PgSslMode::VerifyFull,
        None => PgSslMode::Prefer,
    };
    let root_cert = match root_cert {
        Some((r, _)) if r == "system" => {
            if !matches!(ssl_mode, PgSslMode::VerifyFull) {
                return Err(ConnInfoError::Invalid(
                    "sslrootcert=system needs sslmode=verify-full".into(),
                ));
            }
            // sqlx always trusts its built-in public CAs.
            None
        }
        Some((r, source)) => {
            let path = PathBuf::from(&r);
            if verifies(ssl_mode) && !env.exists(&path) {
                return Err(ConnInfoError::Invalid(format!(
                    "the root certificate file \"{r}\" (from {}) does not exist",
                    named("sslrootcert", &source)
                )));
            }
            Some(path)
        }
        None => home_file("root.crt"),
    };
    // libpq: with a root certificate at hand, require also checks the CA.
    if matches!(ssl_mode, PgSslMode::Require) && root_cert.is_some() {
        ssl_mode = PgSslMode::VerifyCa;
    }
    if verifies(ssl_mode) && root_cert.is_none() && !system_roots {
        return Err(ConnInfoError::Invalid(format!(
            "sslmode={} needs a root certificate to check the server's against: set sslrootcert \
             (or PGSSLROOTCERT) to the CA's file, put it in ~/.postgresql/root.crt, or use \
             sslrootcert=system for the public CAs",
            ssl_mode_name(ssl_mode)
        )));
    }
    let client_file = |key: &str, default: &str| -> Result<Option<PathBuf>, ConnInfoError> {
        match value(key) {
            Some((p, source)) => {
                if env.exists(Path::new(&p)) {
                    Ok(Some(PathBuf::from(p)))
                } else {
                    Err(ConnInfoError::Invalid(format!(
                        "the file \"{p}\" (from {}) does not exist",
                        named(key, &source)
                    )))
                }
            }
            None => Ok(home_file(default)),
        }
    };
    let client_cert = client_file("sslcert", "postgresql.crt")?;
    let client_key = client_file("sslkey", "postgresql.key")?;
    let client = match (client_cert, client_key) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        (Some(_), None) => {
            return Err(ConnInfoError::Invalid(
                "a client certificate (sslcert) is given but no private key (sslkey)".into(),
            ));
        }
        (None, Some(_)) => {
            return Err(ConnInfoError::Invalid(
                "a private key (sslkey) is given but no client certificate (sslcert)".into(),
            ));
        }
    };

    let application_name = value("application_name")
        .map(|(a, _)| a)
        .or_else(|| info.get("fallback_application_name").map(str::to_string))
        .unwrap_or_else(|| APPLICATION_NAME.to_string());

    let connect_timeout = match value("connect_timeout") {
        Some((t, source)) => {
            let secs: i64 = t.trim().parse().map_err(|_| {
                ConnInfoError::Invalid(format!(
                    "invalid {} \"{t}\": it is a number of seconds",
                    named("connect_timeout", &source)
                ))
            })?;
            // libpq: 0 or less waits for ever (here: the default), and
            // anything shorter than 2 s is 2 s.
            if secs <= 0 {
                DEFAULT_CONNECT_TIMEOUT
            } else {
                Duration::from_secs(secs.max(2).unsigned_abs())
            }
        }
        None => DEFAULT_CONNECT_TIMEOUT,
    };

    let mut options = PgConnectOptions::new_without_pgpass()
        .port(port)
        .username(&user)
        .database(&dbname)
        .application_name(&application_name);
    let (endpoint, tcp_host) = match &place {
        Place::Socket(dir) => {
            options = options.socket(dir);
            (
                Endpoint(format!("{}/.s.PGSQL.{port}", dir.display())),
                String::new(),
            )
        }
        Place::Tcp(h) => {
            options = options.host(h);
            let endpoint = if h.contains(':') {
                format!("[{h}]:{port}")
            } else {
                format!("{h}:{port}")
            };
            (Endpoint(endpoint), h.clone())
        }
    };
    // libpq uses no TLS over a Unix socket, whatever sslmode says.
    options = options.ssl_mode(match place {
        Place::Socket(_) => PgSslMode::Disable,
        Place::Tcp(_) => ssl_mode,
    });
    if let Some(root) = &root_cert {
        options = options.ssl_root_cert(root);
    }
    if let Some((cert, key)) = &client {
        options = options.ssl_client_cert(cert).ssl_client_key(key);
    }
    if let Some(pw) = &password {
        options = options.password(pw);
    }
    // PGOPTIONS is read by sqlx itself; options from the string are added.
    if let Some(given) = info.get("options") {
        options = options.options(parse_options(given)?);
    }
    let tls = TlsSettings {
        mode: options.get_ssl_mode(),
        root_cert,
        client,
    };
    Ok(Target {
        link: Link::from_options(&options, password.as_deref(), connect_timeout, tls),
        options,
        endpoint,
        host: tcp_host,
        connect_timeout,
        has_password: password.is_some(),
    })
}

/// How the read path's driver (tokio-postgres) connects: everything
/// [`Target::options`] says, in that driver's terms.
#[derive(Clone)]
pub struct Link {
    pub config: tokio_postgres::Config,
    pub tls: TlsSettings,
}

/// TLS as the connection string asked for it.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// libpq's `sslmode`; `Disable` over a Unix socket.
    pub mode: PgSslMode,
    /// The CA file to check the server against; `None` with verify-full
    /// means the built-in public CAs (`sslrootcert=system`).
    pub root_cert: Option<PathBuf>,
    /// The client certificate and its key.
    pub client: Option<(PathBuf, PathBuf)>,
}

impl Link {
    /// The driver settings for what `options` (already resolved) say.
    fn from_options(
        options: &PgConnectOptions,
        password: Option<&str>,
        connect_timeout: Duration,
        tls: TlsSettings,
    ) -> Link {
        let mut config = tokio_postgres::Config::new();
        match options.get_socket() {
            Some(dir) => config.host_path(dir),
            None => config.host(options.get_host()),
        };
        config
            .port(options.get_port())
            .user(options.get_username())
            .connect_timeout(connect_timeout)
            .ssl_mode(match tls.mode {
                PgSslMode::Disable => tokio_postgres::config::SslMode::Disable,
                // tokio-postgres has no "plain first, then TLS": TLS first
                // gives the same outcome against any server that allows both.
                PgSslMode::Allow | PgSslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
                PgSslMode::Require | PgSslMode::VerifyCa | PgSslMode::VerifyFull => {
                    tokio_postgres::config::SslMode::Require
                }
            });
        if let Some(db) = options.get_database() {
            config.dbname(db);
        }
        if let Some(name) = options.get_application_name() {
            config.application_name(name);
        }
        if let Some(opts) = options.get_options() {
            config.options(opts);
        }
        if let Some(pw) = password {
            config.password(pw);
        }
        Link { config, tls }
    }
}

/// Where the server is reached.
enum Place {
    /// The directory of its Unix socket.
    Socket(PathBuf),
    /// A host name or address.
    Tcp(String),
}

#[derive(Debug, Clone, Copy)]
enum Source {
    String,
    Env(&'static str),
}

fn verifies(mode: PgSslMode) -> bool {
    matches!(mode, PgSslMode::VerifyCa | PgSslMode::VerifyFull)
}

fn parse_ssl_mode(text: &str) -> Option<PgSslMode> {
    Some(match text {
        "disable" => PgSslMode::Disable,
        "allow" => PgSslMode::Allow,
        "prefer" => PgSslMode::Prefer,
        "require" => PgSslMode::Require,
        "verify-ca" => PgSslMode::VerifyCa,
        "verify-full" => PgSslMode::VerifyFull,
        _ => return None,
    })
}

fn ssl_mode_name(mode: PgSslMode) -> &'static str {
    match mode {
        PgSslMode::Disable => "disable",
        PgSslMode::Allow => "allow",
        PgSslMode::Prefer => "prefer",
        PgSslMode::Require => "require",
        PgSslMode::VerifyCa => "verify-ca",
        PgSslMode::VerifyFull => "verify-full",
    }
}

/// The `-c name=value` (or `--name=value`) settings of libpq's `options`;
/// other server switches are refused.
fn parse_options(text: &str) -> Result<Vec<(String, String)>, ConnInfoError> {
    // Words split at unescaped whitespace, as the server splits them.
    let mut words = Vec::new();
    let mut word = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => word.extend(chars.next()),
            c if c.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    let mut settings = Vec::new();
    let mut words = words.into_iter();
    while let Some(word) = words.next() {
        let setting = if word == "-c" {
            words.next()
        } else if let Some(rest) = word.strip_prefix("-c") {
            Some(rest.to_string())
        } else {
            word.strip_prefix("--").map(str::to_string)
        };
        let pair = setting.as_deref().and_then(|s| s.split_once('='));
        match pair {
            Some((name, value)) if !name.is_empty() => {
                settings.push((name.replace('-', "_"), value.to_string()));
            }
            _ => {
                return Err(ConnInfoError::Unsupported(format!(
                    "the server option \"{word}\" (only -c name=value settings are)"
                )));
            }
        }
    }
    Ok(settings)
}

/// The password of the first matching line of a `.pgpass` file:
/// `host:port:database:user:password`, `*` matching anything, `\` escaping
/// `:` and `\`.
fn passfile_lookup(text: &str, host: &str, port: u16, dbname: &str, user: &str) -> Option<String> {
    let port = port.to_string();
    text.lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .find_map(|line| {
            let mut fields = Vec::with_capacity(5);
            let mut field = String::new();
            let mut chars = line.trim_end_matches('\r').chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => field.extend(chars.next()),
                    ':' if fields.len() < 4 => fields.push(std::mem::take(&mut field)),
                    c => field.push(c),
                }
            }
            fields.push(field);
            let [h, p, d, u, pw] = <[String; 5]>::try_from(fields).ok()?;
            let matches = |pattern: &str, value: &str| pattern == "*" || pattern == value;
            (matches(&h, host) && matches(&p, &port) && matches(&d, dbname) && matches(&u, user))
                .then_some(pw)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(text: &str) -> ConnInfo {
        parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn parses_keyword_strings_with_libpq_quoting() {
        let info = kv("host=/var/run/postgresql dbname = pagila  user=app password='a b\\'c'");
        assert_eq!(info.get("host"), Some("/var/run/postgresql"));
        assert_eq!(info.get("dbname"), Some("pagila"));
        assert_eq!(info.get("user"), Some("app"));
        assert_eq!(info.get("password"), Some("a b'c"));
        assert_eq!(kv("password=x\\ y").get("password"), Some("x y"));
        assert_eq!(kv("password=''").get("password"), Some(""));
        assert_eq!(kv("   "), ConnInfo::default());
        assert_eq!(kv("gssencmode=prefer sslsni=1"), ConnInfo::default());
    }

    #[test]
    fn keyword_errors_never_quote_a_value() {
        let e = parse("host=h password='secret").unwrap_err().to_string();
        assert!(e.contains("not terminated") && !e.contains("secret"), "{e}");
        let e = parse("host=h hunter2").unwrap_err().to_string();
        assert!(e.contains("key=value") && !e.contains("hunter2"), "{e}");
        let e = parse("localhost/db").unwrap_err().to_string();
        assert!(e.contains("postgresql://"), "{e}");
        let e = parse("mysql://u:secret@h/db").unwrap_err().to_string();
        assert!(
            e.contains("invalid database URL") && !e.contains("secret"),
            "{e}"
        );
        let e = parse("host=h colour=blue").unwrap_err().to_string();
        assert!(e.contains("unknown option \"colour\""), "{e}");
        let e = parse("service=prod").unwrap_err().to_string();
        assert!(e.contains("not supported"), "{e}");
        let e = parse("target_session_attrs=read-write").unwrap_err();
        assert!(matches!(e, ConnInfoError::Unsupported(_)), "{e}");
    }

    #[test]
    fn parses_urls_libpq_accepts() {
        let info = kv("postgresql://user@/db?host=/var/run/postgresql");
        assert_eq!(info.get("user"), Some("user"));
        assert_eq!(info.get("host"), Some("/var/run/postgresql"));
        assert_eq!(info.get("dbname"), Some("db"));
        let info = kv("postgresql:///pagila");
        assert_eq!(info.get("host"), None);
        assert_eq!(info.get("user"), None);
        assert_eq!(info.get("dbname"), Some("pagila"));
        let info = kv("postgres://u:p%40ss%3Aw@h:6543/d%20b?sslmode=verify-full&ssl-root-cert=/ca");
        assert_eq!(info.get("password"), Some("p@ss:w"));
        assert_eq!(info.get("port"), Some("6543"));
        assert_eq!(info.get("dbname"), Some("d b"));
        assert_eq!(info.get("sslrootcert"), Some("/ca"));
        let info = kv("postgresql://[::1]:5433/db");
        assert_eq!(info.get("host"), Some("::1"));
        assert_eq!(info.get("port"), Some("5433"));
        let info = kv("postgresql://%2Fvar%2Frun%2Fpostgresql/db");
        assert_eq!(info.get("host"), Some("/var/run/postgresql"));
        assert_eq!(
            kv("postgresql://h/d?ssl=true").get("sslmode"),
            Some("require")
        );
        assert!(parse("postgresql://a,b/db").is_err());
        assert!(parse("postgresql://h/db?nonsense=1").is_err());
        let e = parse("postgresql://u:p%zz@h/db").unwrap_err().to_string();
        assert!(e.contains("password") && !e.contains("%zz"), "{e}");
    }

    #[test]
    fn percent_encodes_url_components() {
        assert_eq!(percent_encode("shop_2.x-y~"), "shop_2.x-y~");
        assert_eq!(percent_encode("a b/ü:@"), "a%20b%2F%C3%BC%3A%40");
    }

    #[test]
    fn redacts_every_form() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/d"),
            "postgres://u@h:5432/d"
        );
        assert_eq!(redact("postgres://h/d"), "postgres://h/d");
        assert_eq!(
            redact("postgresql://u@h/d?sslmode=require&password=secret&application_name=x"),
            "postgresql://u@h/d?sslmode=require&application_name=x"
        );
        assert_eq!(
            redact("host=h password='a b\\'secret' user=u"),
            "host=h user=u"
        );
        assert_eq!(redact("password=secret"), "");
        assert_eq!(
            redact("host=h password='secret"),
            "(an invalid connection string)"
        );
        assert_eq!(
            redact("postgresql://u:p%zzsecret@h/d"),
            "(an invalid connection string)"
        );
    }

    /// An environment of the test's making.
    #[derive(Default)]
    struct FakeEnv {
        vars: HashMap<&'static str, String>,
        files: HashMap<PathBuf, Result<String, String>>,
    }

    impl Environment for FakeEnv {
        fn var(&self, name: &str) -> Option<String> {
            self.vars.get(name).cloned()
        }
        fn os_user(&self) -> Option<String> {
            Some("osuser".into())
        }
        fn exists(&self, path: &Path) -> bool {
            self.files.contains_key(path)
        }
        fn read_passfile(&self, path: &Path) -> Result<String, String> {
            self.files
                .get(path)
                .cloned()
                .unwrap_or(Err("missing".into()))
        }
    }

    fn resolved(text: &str, env: &FakeEnv) -> Result<Target, ConnInfoError> {
        resolve(&parse(text)?, env)
    }

    #[test]
    fn pg_variables_fill_in_what_the_string_leaves_out() {
        let mut env = FakeEnv::default();
        env.vars.insert("PGHOST", "db.example".into());
        env.vars.insert("PGPORT", "6000".into());
        env.vars.insert("PGUSER", "envuser".into());
        env.vars.insert("PGDATABASE", "envdb".into());
        let t = resolved("postgresql:///given", &env).unwrap();
        assert_eq!(t.endpoint.to_string(), "db.example:6000");
        assert_eq!(t.options.get_username(), "envuser");
        assert_eq!(t.options.get_database(), Some("given"));
        let t = resolved("user=u host=other", &env).unwrap();
        assert_eq!(t.endpoint.to_string(), "other:6000");
        assert_eq!(t.options.get_username(), "u");
        // No string at all: the variables alone.
        let t = resolved("", &env).unwrap();
        assert_eq!(t.options.get_database(), Some("envdb"));
        env.vars.insert("PGPORT", "many".into());
        let e = resolved("", &env).unwrap_err().to_string();
        assert!(e.contains("PGPORT"), "{e}");
    }

    #[test]
    fn libpq_defaults_apply_when_nothing_is_given() {
        let env = FakeEnv::default();
        let t = resolved("postgresql:///pagila", &env).unwrap();
        assert_eq!(t.options.get_username(), "osuser");
        assert_eq!(t.endpoint.to_string(), "localhost:5432");
        let t = resolved("user=u", &env).unwrap();
        assert_eq!(t.options.get_database(), Some("u"));
        let mut env = FakeEnv::default();
        env.files.insert(
            "/var/run/postgresql/.s.PGSQL.5432".into(),
            Ok(String::new()),
        );
        let t = resolved("dbname=x", &env).unwrap();
        assert_eq!(t.endpoint.to_string(), "/var/run/postgresql/.s.PGSQL.5432");
        assert!(matches!(t.options.get_ssl_mode(), PgSslMode::Disable));
        assert_eq!(t.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
        let t = resolved("host=h connect_timeout=1", &env).unwrap();
        assert_eq!(t.connect_timeout, Duration::from_secs(2));
    }

    #[test]
    fn passwords_come_from_the_password_file() {
        let mut env = FakeEnv::default();
        env.vars.insert("HOME", "/home/me".into());
        env.files.insert(
            "/home/me/.pgpass".into(),
            Ok("# c\nh:5432:other:u:no\nh:*:db:u:pa\\:ss\n*:*:*:*:any\n".into()),
        );
        let t = resolved("host=h dbname=db user=u", &env).unwrap();
        assert!(t.has_password);
        assert_eq!(
            passfile_lookup("h:*:db:u:pa\\:ss", "h", 5432, "db", "u").as_deref(),
            Some("pa:ss")
        );
        assert_eq!(
            passfile_lookup("/sock:5432:db:u:x", "/sock", 5432, "db", "u").as_deref(),
            Some("x")
        );
        assert_eq!(passfile_lookup("h:1:db:u:x", "h", 5432, "db", "u"), None);
        // A file others can read is not used.
        env.files.insert(
            "/home/me/.pgpass".into(),
            Err("group or world access".into()),
        );
        assert!(
            !resolved("host=h dbname=db user=u", &env)
                .unwrap()
                .has_password
        );
        // PGPASSFILE, and the socket directory as the host field.
        env.vars.insert("PGPASSFILE", "/pw".into());
        env.files
            .insert("/pw".into(), Ok("/s:5432:db:u:x\n".into()));
        assert!(
            resolved("host=/s dbname=db user=u", &env)
                .unwrap()
                .has_password
        );
    }

    #[test]
    fn tls_settings_follow_libpq() {
        let mut env = FakeEnv::default();
        let e = resolved("host=h sslmode=verify-full", &env)
            .unwrap_err()
            .to_string();
        assert!(e.contains("root certificate"), "{e}");
        let e = resolved("host=h sslmode=verify-full sslrootcert=/nope", &env)
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nope"), "{e}");
        let e = resolved("host=h sslmode=sometimes", &env)
            .unwrap_err()
            .to_string();
        assert!(e.contains("verify-full"), "{e}");
        let t = resolved("host=h sslrootcert=system", &env).unwrap();
        assert!(matches!(t.options.get_ssl_mode(), PgSslMode::VerifyFull));
        assert!(resolved("host=h sslrootcert=system sslmode=require", &env).is_err());
        env.files.insert("/ca".into(), Ok(String::new()));
        let t = resolved("host=h sslmode=require sslrootcert=/ca", &env).unwrap();
        assert!(matches!(t.options.get_ssl_mode(), PgSslMode::VerifyCa));
        env.vars.insert("HOME", "/home/me".into());
        env.files.insert(
            "/home/me/.postgresql/postgresql.crt".into(),
            Ok(String::new()),
        );
        let e = resolved("host=h", &env).unwrap_err().to_string();
        assert!(e.contains("sslkey"), "{e}");
        env.files.insert(
            "/home/me/.postgresql/postgresql.key".into(),
            Ok(String::new()),
        );
        env.vars.insert("PGSSLMODE", "verify-full".into());
        env.files
            .insert("/home/me/.postgresql/root.crt".into(), Ok(String::new()));
        let t = resolved("host=h", &env).unwrap();
        assert!(matches!(t.options.get_ssl_mode(), PgSslMode::VerifyFull));
    }

    #[test]
    fn server_options_become_settings() {
        assert_eq!(
            parse_options("-c search_path=a\\ b --work-mem=4MB -cgeqo=off").unwrap(),
            vec![
                ("search_path".to_string(), "a b".to_string()),
                ("work_mem".to_string(), "4MB".to_string()),
                ("geqo".to_string(), "off".to_string()),
            ]
        );
        assert!(parse_options("-B 100").is_err());
    }
}
