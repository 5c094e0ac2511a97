//! `sluice config init`: a commented config file with the defaults and a
//! grant for each first-party plugin, which `sluice plugins check` passes.
//!
//! The file is `config_init.toml` beside this module, as written; its tests
//! keep it in step with [`Config`](sluice::config::Config).

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The file `sluice config init` writes.
pub const TEMPLATE: &str = include_str!("config_init.toml");

/// Why the file was not written.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// The file is there already, and overwriting it was not asked for.
    #[error("{} already exists; pass --force to overwrite it", path.display())]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// Creating or writing the file (or its directory) failed.
    #[error("cannot write {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
}

/// Writes [`TEMPLATE`] to `path`, creating its directory; an existing file is
/// replaced only when `force` is set.
pub fn write(path: &Path, force: bool) -> Result<(), InitError> {
    let failed = |source| InitError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(failed)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        // Checked and created in one step, so a file that appears meanwhile
        // is not overwritten either.
        options.create_new(true);
    }
    let mut file = options.open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => InitError::Exists {
            path: path.to_path_buf(),
        },
        _ => failed(e),
    })?;
    file.write_all(TEMPLATE.as_bytes()).map_err(failed)?;
    file.sync_all().map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice::config::{
        Config, DatabaseConfig, HttpConfig, McpConfig, PluginsConfig, PolicyConfig,
    };

    fn parse(text: &str) -> Config {
        Config::parse(text, Path::new("sluice.toml"))
            .unwrap_or_else(|e| panic!("{e}\n--- in ---\n{text}"))
    }

    /// The template with every commented-out setting and table switched on:
    /// `#key = …` and `#[table]` lines (prose comments have a space after `#`).
    fn everything_switched_on() -> String {
        TEMPLATE
            .lines()
            .map(|line| match line.strip_prefix('#') {
                Some(rest)
                    if rest.starts_with('[')
                        || rest.starts_with(|c: char| c.is_ascii_lowercase()) =>
                {
                    rest
                }
                _ => line,
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn the_template_parses_and_its_values_are_the_defaults() {
        let config = parse(TEMPLATE);
        assert_eq!(config.database.url, None, "no database in the file");
        // Debug output stands in for equality, which the config types lack.
        for (section, written, default) in [
            (
                "[database]",
                format!("{:?}", config.database),
                format!("{:?}", DatabaseConfig::default()),
            ),
            (
                "[policy]",
                format!("{:?}", config.policy),
                format!("{:?}", PolicyConfig::default()),
            ),
            (
                "[mcp]",
                format!("{:?}", config.mcp),
                format!("{:?}", McpConfig::default()),
            ),
            (
                "[http]",
                format!("{:?}", config.http),
                format!("{:?}", HttpConfig::default()),
            ),
            (
                "[audit]",
                format!("{:?}", config.audit),
                "AuditConfig { file: None }".into(),
            ),
        ] {
            assert_eq!(written, default, "{section} differs from the defaults");
        }
        let mut plugins = config.plugins.clone();
        let grants = std::mem::take(&mut plugins.grants);
        let disabled = std::mem::take(&mut plugins.disabled);
        assert_eq!(
            format!("{plugins:?}"),
            format!("{:?}", PluginsConfig::default()),
            "[plugins] differs from the defaults"
        );

        // A grant for each first-party plugin, and no other name.
        let mut names: Vec<&str> = sluice::registry::FIRST_PARTY
            .iter()
            .map(|(n, _)| *n)
            .collect();
        names.sort_unstable();
        let mut granted: Vec<&str> = grants.keys().map(String::as_str).collect();
        granted.sort_unstable();
        assert_eq!(granted, names);
        // The DBA's plugin reads nothing until the operator says what.
        assert_eq!(grants["sql-insight"].read.as_deref(), Some(&[][..]));
        assert_eq!(
            grants["sql-read"].read.as_deref(),
            Some(&["public.*".to_string()][..])
        );
        assert_eq!(grants["sql-read"].catalog, Some(true));
        // Nothing may be written until the operator says what.
        assert_eq!(grants["sql-write"].write.as_deref(), Some(&[][..]));
        assert_eq!(disabled, ["sql-write"]);
    }

    #[test]
    fn every_key_it_mentions_exists() {
        let text = everything_switched_on();
        assert_ne!(text, TEMPLATE, "the template has commented-out settings");
        // Unknown keys are errors, so this parsing at all is the check.
        let config = parse(&text);
        assert!(config.database.url.is_some());
        assert!(config.plugins.dir.is_some());
        assert!(config.audit.file.is_some());
        assert_eq!(config.http.auth.keys.len(), 1);
        assert_eq!(
            config.plugins.grants["sql-read"].prefix.as_deref(),
            Some("ro_")
        );
    }

    #[test]
    fn writes_once_and_overwrites_only_when_forced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("etc/sluice/sluice.toml");
        write(&path, false).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), TEMPLATE);

        std::fs::write(&path, "# mine\n").unwrap();
        let error = write(&path, false).unwrap_err();
        assert!(matches!(error, InitError::Exists { .. }), "{error}");
        assert!(error.to_string().contains("--force"), "{error}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "# mine\n");

        write(&path, true).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), TEMPLATE);
    }
}
