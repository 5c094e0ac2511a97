//! The `sluice` command line.

mod config_init;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use sluice::config::{self, Config, Overrides};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "sluice",
    version,
    about = "PostgreSQL for AI models, through sandboxed WebAssembly plugins"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Args, Clone, Default)]
struct ServeArgs {
    /// Config file (default: ./sluice.toml when present).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Directory of extra *.wasm plugins.
    #[arg(long, value_name = "DIR")]
    plugins: Option<PathBuf>,
    /// PostgreSQL connection string, a postgresql:// URL or key=value conninfo
    /// (else DATABASE_URL, DB_HOST/DB_NAME/…, the config file; PG* variables
    /// fill in what it leaves out).
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
}

#[derive(clap::Args, Clone, Default)]
struct ServeCommand {
    #[command(flatten)]
    common: ServeArgs,
    /// Serve MCP Streamable HTTP at ADDR (e.g. 127.0.0.1:8080) instead of
    /// stdio; needs API keys under [[http.auth.keys]].
    #[arg(long, value_name = "ADDR")]
    http: Option<std::net::SocketAddr>,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Print a new API key once, and the config entry that accepts it.
    New {
        /// A name for the key (shown in logs, never secret).
        #[arg(long, default_value = "default")]
        id: String,
        /// A signing secret for HMAC-signed requests instead of a bearer key.
        #[arg(long)]
        signing: bool,
    },
}

#[derive(clap::Args, Clone, Default)]
struct PluginsArgs {
    #[command(flatten)]
    common: ServeArgs,
    /// Also fail when a served plugin is not granted everything it
    /// requests (idle and disabled plugins never fail).
    #[arg(long)]
    strict: bool,
}

#[derive(Subcommand)]
enum PluginsCommand {
    /// One line per plugin: name, version, what it offers, whether it got
    /// everything it asked for; how to serve idle plugins. Exits 1 as
    /// `check` does.
    List(PluginsArgs),
    /// Per plugin: requested, granted and effective access and limits, and
    /// every tool, resource, template and prompt. Exits 1 when a plugin
    /// fails to load or clashes, or a config entry names a plugin that is
    /// not loaded; with --strict, also when a served plugin is not granted
    /// all it requests.
    Check(PluginsArgs),
    /// Compile every plugin (first-party and the plugin directory's) into
    /// the compiled cache, so that the next start compiles nothing. Exits 1
    /// when a plugin fails to load or the cache is disabled.
    Compile(ServeArgs),
    /// Make a publisher's signing key pair: NAME.key (the secret, mode 0600)
    /// and NAME.pub (the public key, one line for [plugins.publishers]).
    /// Never overwrites a file.
    Keygen {
        /// The publisher's name.
        name: String,
        /// Where to write the two files.
        #[arg(long, value_name = "DIR", default_value = ".")]
        dir: PathBuf,
    },
    /// Sign a plugin. The signature goes into the file, as a custom section
    /// in front (replacing an earlier signature), or with --detached into
    /// FILE.sig beside it, which sluice reads with FILE.
    Sign {
        /// The plugin's .wasm file.
        file: PathBuf,
        /// The secret key (NAME.key from `plugins keygen`).
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// Write the signed plugin (or, with --detached, the signature) here
        /// instead of FILE (FILE.sig).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Write the signature to a file of its own and leave FILE unchanged.
        #[arg(long)]
        detached: bool,
    },
    /// Check a plugin's signature: against the config's [plugins.publishers],
    /// one of them (--publisher), or a public key file (--pub). Reads
    /// FILE.sig when FILE carries no signature. Exits 1 unless a trusted
    /// signature holds.
    Verify {
        /// The plugin's .wasm file.
        file: PathBuf,
        /// Only this publisher of the config's [plugins.publishers].
        #[arg(long, value_name = "NAME", conflicts_with = "public")]
        publisher: Option<String>,
        /// This public key (NAME.pub) instead of the config's publishers.
        #[arg(long = "pub", value_name = "KEY")]
        public: Option<PathBuf>,
        /// Config file (default: ./sluice.toml when present).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Publish a signed plugin to an OCI registry as a wasm artifact (one
    /// `application/wasm` layer). Credentials come from
    /// SLUICE_REGISTRY_USERNAME and SLUICE_REGISTRY_PASSWORD.
    Push {
        /// The plugin's .wasm file, with its signature embedded.
        file: PathBuf,
        /// Where to publish it: registry/repository:tag.
        reference: String,
        /// Speak plain HTTP to the registry (loopback registries always are).
        #[arg(long)]
        insecure: bool,
    },
    /// Fetch a plugin from an OCI registry into the plugin directory. Its
    /// digest is checked against the manifest and its signature against the
    /// config's [plugins.publishers] (or --pub); only then is it written, as
    /// REPOSITORY.wasm, atomically, where a serving sluice picks it up, and
    /// recorded in the directory's plugins.lock.
    Pull {
        /// registry/repository:tag or registry/repository@sha256:…; with
        /// --locked and no reference, every reference in plugins.lock.
        #[arg(required_unless_present = "locked")]
        reference: Option<String>,
        /// Fetch exactly what plugins.lock records: refuse a reference that
        /// is not in it or that now resolves to something else.
        #[arg(long)]
        locked: bool,
        /// The plugin directory (default: the config's [plugins] dir).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Trust this public key (NAME.pub) instead of the config's publishers.
        #[arg(long = "pub", value_name = "KEY")]
        public: Option<PathBuf>,
        /// Config file (default: ./sluice.toml when present).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Speak plain HTTP to the registry (loopback registries always are).
        #[arg(long)]
        insecure: bool,
    },
}

#[derive(Subcommand)]
enum NewCommand {
    /// A plugin project that builds as generated.
    Plugin {
        /// The plugin's name: lower-case letters, digits and `-`.
        name: String,
        /// The language to write it in.
        #[arg(long, value_enum, default_value = "rust")]
        lang: sluice::scaffold::Lang,
        /// Where to create the project directory.
        #[arg(long, value_name = "DIR", default_value = ".")]
        dir: PathBuf,
        /// The SDK to depend on (Rust; default: this build's checkout).
        #[arg(long, value_name = "PATH")]
        sdk: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Write a commented config file with the defaults and a grant for each
    /// first-party plugin.
    Init {
        /// Where to write it.
        #[arg(value_name = "PATH", default_value = config::DEFAULT_CONFIG_FILE)]
        path: PathBuf,
        /// Overwrite the file if it exists.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand)]
enum Command {
    /// Serve MCP over stdio (the default), or over HTTP with --http.
    Serve(ServeCommand),
    /// Manage API keys for the HTTP transport.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Inspect the plugins a `serve` with the same config would load (no
    /// database connection needed).
    #[command(subcommand)]
    Plugins(PluginsCommand),
    /// Create something new.
    #[command(subcommand)]
    New(NewCommand),
    /// Write a starting config file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Start a private PostgreSQL with a sample database and serve it over stdio.
    Demo {
        /// Config file for grants and limits (its database URL is ignored).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Directory of extra *.wasm plugins.
        #[arg(long, value_name = "DIR")]
        plugins: Option<PathBuf>,
    },
}

/// `sluice plugins sign`: the file signed in place (through a temporary
/// file and a rename, so a watching server never reads half of it), or its
/// signature written beside it.
fn sign_plugin(
    file: &std::path::Path,
    key: &std::path::Path,
    out: Option<PathBuf>,
    detached: bool,
) -> anyhow::Result<()> {
    let key = sluice::identity::SigningKey::read(key)?;
    let wasm = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let (signed, signature) = key
        .sign(&wasm)
        .with_context(|| format!("signing {}", file.display()))?;
    let (target, bytes) = if detached {
        let default = PathBuf::from(format!(
            "{}{}",
            file.display(),
            sluice::identity::DETACHED_SUFFIX
        ));
        (out.unwrap_or(default), signature)
    } else {
        (out.unwrap_or_else(|| file.to_path_buf()), signed)
    };
    write_atomically(&target, &bytes)?;
    println!(
        "signed {} with key {} ({})",
        file.display(),
        key.public().id(),
        if detached {
            format!("signature in {}", target.display())
        } else {
            format!("written to {}", target.display())
        }
    );
    Ok(())
}

fn write_atomically(target: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".sluice-")
        .tempfile_in(dir)
        .with_context(|| format!("writing {}", target.display()))?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(target)
        .map_err(|e| anyhow::anyhow!("writing {}: {}", target.display(), e.error))?;
    Ok(())
}

/// The publishers to check a plugin against: the key in `public`, or the
/// config's `[plugins.publishers]` (only `publisher`, when named).
fn trusted_publishers(
    publisher: Option<String>,
    public: Option<PathBuf>,
    config: Option<PathBuf>,
) -> anyhow::Result<sluice::identity::Publishers> {
    use sluice::identity::{Key, Publishers};
    let publishers = match public {
        Some(path) => {
            let text =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            let key = Key::parse(&text, &path.display().to_string())?;
            let name = path.file_stem().map_or_else(
                || "the key".to_string(),
                |s| s.to_string_lossy().into_owned(),
            );
            Publishers::single(&name, key)
        }
        None => {
            let config = Config::load(&Overrides {
                config_file: config,
                ..Overrides::default()
            })?;
            let all = Publishers::new(&config.plugins.publishers)?;
            match publisher {
                Some(name) => {
                    let key = all.get(&name).cloned().ok_or_else(|| {
                        let known: Vec<&String> = config.plugins.publishers.keys().collect();
                        anyhow::anyhow!(
                            "no publisher {name:?} in [plugins.publishers] (it has: {})",
                            if known.is_empty() {
                                "none".to_string()
                            } else {
                                known
                                    .iter()
                                    .map(|s| s.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            }
                        )
                    })?;
                    Publishers::single(&name, key)
                }
                None if all.is_empty() => anyhow::bail!(
                    "nothing to verify against: pass --pub KEY, or trust publishers in the \
                     config's [plugins.publishers]"
                ),
                None => all,
            }
        }
    };
    Ok(publishers)
}

/// `sluice plugins push`.
async fn push_plugin(
    file: &std::path::Path,
    reference: &str,
    insecure: bool,
) -> anyhow::Result<()> {
    let wasm = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let none = sluice::identity::Publishers::default();
    let identity = sluice::identity::identify(&wasm, None, &none);
    match identity.signature {
        sluice::identity::Signature::Unsigned => anyhow::bail!(
            "{} carries no signature: sign it first (`sluice plugins sign`, without --detached, \
             so the signature travels in the file)",
            file.display()
        ),
        sluice::identity::Signature::Invalid(why) => {
            anyhow::bail!("{}: its signature is malformed: {why}", file.display())
        }
        _ => {}
    }
    let registry = sluice::oci::Registry::new(reference, insecure)?;
    let url = registry.push(wasm).await?;
    println!(
        "pushed {} to {} ({})",
        file.display(),
        registry.reference(),
        identity.digest
    );
    println!("manifest: {url}");
    Ok(())
}

/// `sluice plugins pull`: nothing is written unless a trusted signature
/// holds (and, with `locked`, the reference resolves as the lock file
/// says).
async fn pull_plugins(
    reference: Option<String>,
    locked: bool,
    dir: Option<PathBuf>,
    public: Option<PathBuf>,
    config_file: Option<PathBuf>,
    insecure: bool,
) -> anyhow::Result<()> {
    use sluice::oci::{Lock, Locked, Registry};
    let config = Config::load(&Overrides {
        config_file: config_file.clone(),
        plugin_dir: dir,
        ..Overrides::default()
    })?;
    let dir = config.plugins.dir.clone().ok_or_else(|| {
        anyhow::anyhow!("no plugin directory: pass --dir DIR or set [plugins] dir in the config")
    })?;
    let publishers = trusted_publishers(None, public, config_file)?;
    let limit = config.plugins.max_file_mb.saturating_mul(1024 * 1024);
    let mut lock = Lock::read(&dir)?;
    let lock_path = dir.join(sluice::oci::LOCK_FILE);
    let references: Vec<String> = match reference {
        Some(reference) => vec![reference],
        None => lock.entries.iter().map(|e| e.reference.clone()).collect(),
    };
    if references.is_empty() {
        anyhow::bail!("{} records no plugin to pull", lock_path.display());
    }
    for reference in references {
        let registry = Registry::new(&reference, insecure)?;
        let resolved = registry.reference();
        let pinned = if locked {
            let entry = lock
                .get(&resolved)
                .ok_or_else(|| anyhow::anyhow!("{resolved} is not in {}", lock_path.display()))?;
            Some(entry.clone())
        } else {
            None
        };
        let pulled = registry
            .pull(limit, pinned.as_ref().map(|p| p.manifest.as_str()))
            .await?;
        let identity = sluice::identity::identify(&pulled.bytes, None, &publishers);
        if !identity.trusted() {
            return Err(Verdict(format!(
                "{resolved}: not written: {}; digest {}",
                identity.describe(),
                identity.digest
            ))
            .into());
        }
        let file = match &pinned {
            Some(pinned) if pinned.digest != identity.digest => {
                return Err(Verdict(format!(
                    "{resolved}: not written: its component is {}, and the lock file has {}",
                    identity.digest, pinned.digest
                ))
                .into());
            }
            Some(pinned) => pinned.file.clone(),
            None => sluice::oci::file_name(&reference)?,
        };
        let target = dir.join(&file);
        write_atomically(&target, &pulled.bytes)?;
        println!(
            "pulled {resolved} ({}), signed by {}, into {}",
            identity.digest,
            identity.describe(),
            target.display()
        );
        if pinned.is_none() {
            lock.record(Locked {
                reference: resolved,
                manifest: pulled.manifest,
                digest: identity.digest,
                file,
            });
            write_atomically(&lock_path, lock.render()?.as_bytes())?;
        }
    }
    Ok(())
}

/// `sluice plugins verify`: exits 1 (a [`Verdict`]) unless a trusted
/// signature holds.
fn verify_plugin(
    file: &std::path::Path,
    publisher: Option<String>,
    public: Option<PathBuf>,
    config: Option<PathBuf>,
) -> anyhow::Result<()> {
    let publishers = trusted_publishers(publisher, public, config)?;
    let wasm = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let sig_path = PathBuf::from(format!(
        "{}{}",
        file.display(),
        sluice::identity::DETACHED_SUFFIX
    ));
    let embedded = sluice::identity::identify(&wasm, None, &publishers);
    let identity = match (&embedded.signature, std::fs::read(&sig_path)) {
        (sluice::identity::Signature::Unsigned, Ok(sig)) => {
            sluice::identity::identify(&wasm, Some(&sig), &publishers)
        }
        _ => embedded,
    };
    if identity.trusted() {
        println!(
            "{}: signed by {}; digest {}",
            file.display(),
            identity.describe(),
            identity.digest
        );
        Ok(())
    } else {
        Err(Verdict(format!(
            "{}: {}; digest {}",
            file.display(),
            identity.describe(),
            identity.digest
        ))
        .into())
    }
}

/// Tokio's own setting for its number of async workers, which overrides
/// the choice below.
const WORKERS_VAR: &str = "TOKIO_WORKER_THREADS";

/// Whether `command` serves one MCP client over stdin and stdout.
fn serves_stdio(command: Option<&Command>) -> bool {
    match command {
        None | Some(Command::Demo { .. }) => true,
        Some(Command::Serve(serve)) => serve.http.is_none(),
        Some(_) => false,
    }
}

/// A command that ran to the end but has a verdict to report.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Verdict(String);

fn main() -> ExitCode {
    // stdout carries the MCP protocol; every log line goes to stderr.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if serves_stdio(cli.command.as_ref()) && std::env::var_os(WORKERS_VAR).is_none() {
        // One client, calls mostly in sequence: a second worker mostly wakes
        // to find nothing to steal. One worker took a point query's CPU from
        // about 720 to 550 µs and its p50 down 12 % (BENCHMARKS.md). Plugins
        // still yield every epoch tick, analysis and large results have
        // threads of their own, and stdin and stdout are threads too.
        builder.worker_threads(1);
    }
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sluice: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli
        .command
        .unwrap_or(Command::Serve(ServeCommand::default()))));
    // Plugin calls stuck in the database must not keep the process alive.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<Verdict>().is_some() => {
            eprintln!("sluice: {e}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("sluice: {}", error_text(&e));
            ExitCode::FAILURE
        }
    }
}

/// An error and its causes, `what: why: why`, each said once: many errors
/// already end with their cause's text, which printing the chain would
/// repeat. Line breaks are kept, so a config error's caret stays under
/// the column it points at.
fn error_text(e: &anyhow::Error) -> String {
    let mut out = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !out.contains(&cause) {
            out.push_str(": ");
            out.push_str(&cause);
        }
    }
    out
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(ServeCommand { common: args, http }) => {
            let config = Config::load(&Overrides {
                config_file: args.config,
                database_url: args.database_url,
                plugin_dir: args.plugins,
            })?;
            let serving = sluice::app::start(&config).await?;
            match http {
                Some(addr) => {
                    let served = sluice::http::serve(
                        serving.host.clone(),
                        serving.db.clone(),
                        addr,
                        &config.http,
                        config.mcp.frame_limits(),
                        |_| {},
                    )
                    .await;
                    serving.stop().await;
                    served
                }
                None => serving.serve_stdio(&config).await,
            }
        }
        Command::Keys(KeysCommand::New { id, signing }) => {
            // The key goes to stdout alone, so `sluice keys new > key.txt` works.
            if signing {
                let var: String = format!("SLUICE_KEY_{id}")
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() {
                            c.to_ascii_uppercase()
                        } else {
                            '_'
                        }
                    })
                    .collect();
                let (secret, entry) =
                    sluice::http::auth::new_signing_key(&id, &var).map_err(anyhow::Error::msg)?;
                println!("{secret}");
                eprintln!(
                    "sluice: this signing secret is shown once; the client and the server both need it.\n\
                     Set {var} to it in the server's environment and add this to its config:\n\n{entry}"
                );
            } else {
                let (key, entry) = sluice::http::auth::new_key(&id).map_err(anyhow::Error::msg)?;
                println!("{key}");
                eprintln!(
                    "sluice: this key is shown once; give it to the client as `Authorization: Bearer <key>`.\n\
                     Add this to the server's config (it holds only the key's hash):\n\n{entry}"
                );
            }
            Ok(())
        }
        Command::Plugins(PluginsCommand::Compile(args)) => {
            let config = Config::load(&Overrides {
                config_file: args.config,
                database_url: args.database_url,
                plugin_dir: args.plugins,
            })?;
            let compiled = sluice::app::compile(&config).await?;
            for report in &compiled.reports {
                match &report.outcome {
                    Ok(loaded) => println!(
                        "{}: {} {}",
                        report.source, loaded.manifest.name, loaded.manifest.version
                    ),
                    Err(e) => println!("{}: FAILED: {e}", report.source),
                }
            }
            println!(
                "compiled plugins are cached in {}",
                compiled.cache_dir.display()
            );
            let failed = compiled
                .reports
                .iter()
                .filter(|r| r.outcome.is_err())
                .count();
            if failed > 0 {
                return Err(Verdict(format!("{failed} plugin(s) failed to load")).into());
            }
            Ok(())
        }
        Command::Plugins(PluginsCommand::Keygen { name, dir }) => {
            if !sluice::registry::model::valid_plugin_name(&name) {
                anyhow::bail!(
                    "publisher name {name:?} must be lower-case letters, digits and `-`, starting with a letter"
                );
            }
            let (key, secret, public) = sluice::identity::keygen(&dir, &name)?;
            println!(
                "wrote {} (secret: keep it private) and {}\nkey id {}\n\n\
                 To trust this publisher, add to the config:\n\n[plugins.publishers]\n{name} = \"{}\"",
                secret.display(),
                public.display(),
                key.id(),
                key.openssh(&name)
            );
            Ok(())
        }
        Command::Plugins(PluginsCommand::Sign {
            file,
            key,
            out,
            detached,
        }) => sign_plugin(&file, &key, out, detached),
        Command::Plugins(PluginsCommand::Verify {
            file,
            publisher,
            public,
            config,
        }) => verify_plugin(&file, publisher, public, config),
        Command::Plugins(PluginsCommand::Push {
            file,
            reference,
            insecure,
        }) => push_plugin(&file, &reference, insecure).await,
        Command::Plugins(PluginsCommand::Pull {
            reference,
            locked,
            dir,
            public,
            config,
            insecure,
        }) => pull_plugins(reference, locked, dir, public, config, insecure).await,
        Command::Plugins(PluginsCommand::List(args)) => plugins_report(args, false).await,
        Command::Plugins(PluginsCommand::Check(args)) => plugins_report(args, true).await,
        Command::New(NewCommand::Plugin {
            name,
            lang,
            dir,
            sdk,
        }) => {
            let root = sluice::scaffold::new_plugin(&name, lang, &dir, sdk.as_deref())?;
            let build = match lang {
                sluice::scaffold::Lang::Rust => "cargo build --release",
                sluice::scaffold::Lang::Python => "./build.sh",
            };
            println!(
                "created {}\nbuild it: cd {} && {build}\nthen see its README.md to install it",
                root.display(),
                root.display()
            );
            Ok(())
        }
        Command::Config(ConfigCommand::Init { path, force }) => {
            config_init::write(&path, force)?;
            let shown = path.display();
            println!(
                "wrote {shown}\ncheck it: sluice plugins check --config {shown}\n\
                 serve with it: sluice serve --config {shown}"
            );
            Ok(())
        }
        Command::Demo { config, plugins } => {
            let config = Config::load(&Overrides {
                config_file: config,
                database_url: None,
                plugin_dir: plugins,
            })?;
            sluice::demo::run(config).await.context("demo")
        }
    }
}

/// `sluice plugins list` (or `check`, the long form).
async fn plugins_report(args: PluginsArgs, long: bool) -> anyhow::Result<()> {
    let PluginsArgs {
        common: args,
        strict,
    } = args;
    let config = Config::load(&Overrides {
        config_file: args.config,
        database_url: args.database_url,
        plugin_dir: args.plugins,
    })?;
    let found = sluice::app::inspect(&config).await?;
    let text = if long {
        sluice::plugins_cmd::check(&found.reports, &found.names)
    } else {
        sluice::plugins_cmd::list(&found.reports, &found.names)
    };
    print!("{text}");
    match sluice::plugins_cmd::verdict(&found.reports, &found.names, strict) {
        None => Ok(()),
        Some(problems) => Err(Verdict(problems).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read config file x.toml: {source}")]
    struct Quoting {
        #[source]
        source: std::io::Error,
    }

    #[test]
    fn a_cause_is_printed_once() {
        let quoting = anyhow::Error::new(Quoting {
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "No such file"),
        });
        assert_eq!(
            error_text(&quoting),
            "cannot read config file x.toml: No such file"
        );
        let chained = anyhow::Error::new(std::io::Error::other("refused\non two lines"))
            .context("cannot connect");
        // Line breaks stay, so that a config error's caret lines up.
        assert_eq!(
            error_text(&chained),
            "cannot connect: refused\non two lines"
        );
    }
}
