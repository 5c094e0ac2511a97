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
    sluice::install_crypto_provider();
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
        Err(e)
            if e.downcast_ref::<Verdict>().is_some()
                || e.downcast_ref::<sluice::publish::Refused>().is_some() =>
        {
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
            sluice::publish::keygen(&name, &dir)
        }
        Command::Plugins(PluginsCommand::Sign {
            file,
            key,
            out,
            detached,
        }) => sluice::publish::sign(&file, &key, out, detached),
        Command::Plugins(PluginsCommand::Verify {
            file,
            publisher,
            public,
            config,
        }) => sluice::publish::verify(&file, publisher, public, config),
        Command::Plugins(PluginsCommand::Push {
            file,
            reference,
            insecure,
        }) => sluice::publish::push(&file, &reference, insecure).await,
        Command::Plugins(PluginsCommand::Pull {
            reference,
            locked,
            dir,
            public,
            config,
            insecure,
        }) => sluice::publish::pull(reference, locked, dir, public, config, insecure).await,
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
