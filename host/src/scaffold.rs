//! `sluice new plugin`: a plugin project that builds as generated.
//!
//! Templates live in `host/scaffold/` and are compiled into the binary;
//! `{{name}}`-style placeholders are filled in. A Rust project depends on
//! the SDK by path (this checkout's `sdk/`, or `--sdk`); a Python project
//! carries its own copy of the WIT.

use std::path::{Path, PathBuf};

/// The languages a plugin can be scaffolded in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    Rust,
    Python,
}

/// Why a project could not be created.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    #[error("plugin name {0:?} must be lower-case letters, digits and `-`, starting with a letter")]
    Name(String),
    #[error(
        "plugin name {0:?} is taken by the first-party plugin built into sluice; plugin names \
         must be unique (sluice would not load yours beside it, and it would share its \
         [plugins.grants.{0}]), so choose another, e.g. \"my-{0}\""
    )]
    FirstParty(String),
    #[error("{0} already exists; choose another name or directory")]
    Exists(PathBuf),
    #[error(
        "cannot find the sluice SDK (looked for {0}); pass --sdk with the path of a sluice checkout's sdk/ directory"
    )]
    NoSdk(PathBuf),
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

const RUST: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        include_str!("../scaffold/rust/Cargo.toml.tmpl"),
    ),
    (
        "rust-toolchain.toml",
        include_str!("../scaffold/rust/rust-toolchain.toml.tmpl"),
    ),
    (
        ".cargo/config.toml",
        include_str!("../scaffold/rust/cargo-config.toml.tmpl"),
    ),
    (
        ".gitignore",
        include_str!("../scaffold/rust/gitignore.tmpl"),
    ),
    ("README.md", include_str!("../scaffold/rust/README.md.tmpl")),
    (
        "src/lib.rs",
        include_str!("../scaffold/rust/src/lib.rs.tmpl"),
    ),
];

/// The Python project starts from the Python example plugin, renamed.
const PYTHON_EXAMPLE_NAME: &str = "python-hello";
const PYTHON: &[(&str, &str)] = &[
    (
        "app.py",
        include_str!("../../plugins/examples/python-hello/app.py"),
    ),
    ("build.sh", include_str!("../scaffold/python/build.sh.tmpl")),
    (
        ".gitignore",
        include_str!("../scaffold/python/gitignore.tmpl"),
    ),
    (
        "README.md",
        include_str!("../scaffold/python/README.md.tmpl"),
    ),
    ("wit/sluice.wit", include_str!("../../wit/sluice.wit")),
];

/// Where this binary was built from: its SDK, when the checkout is still
/// there.
fn default_sdk() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk")
}

/// Creates `dir/name` for a plugin called `name`; returns the directory.
pub fn new_plugin(
    name: &str,
    lang: Lang,
    dir: &Path,
    sdk: Option<&Path>,
) -> Result<PathBuf, ScaffoldError> {
    if !crate::registry::model::valid_plugin_name(name) {
        return Err(ScaffoldError::Name(name.to_string()));
    }
    if crate::registry::FIRST_PARTY
        .iter()
        .any(|(taken, _)| *taken == name)
    {
        return Err(ScaffoldError::FirstParty(name.to_string()));
    }
    let root = dir.join(name);
    if root.exists() {
        return Err(ScaffoldError::Exists(root));
    }
    let mut vars = vec![("name", name.to_string()), ("lib", name.replace('-', "_"))];
    let files = match lang {
        Lang::Rust => {
            let sdk = sdk.map(Path::to_path_buf).unwrap_or_else(default_sdk);
            let sdk = sdk
                .join("Cargo.toml")
                .is_file()
                .then(|| std::fs::canonicalize(&sdk).ok())
                .flatten()
                .ok_or(ScaffoldError::NoSdk(sdk))?;
            vars.push(("sdk", sdk.display().to_string()));
            RUST
        }
        Lang::Python => PYTHON,
    };
    for (path, template) in files {
        let target = root.join(path);
        let write = |target: &Path| -> std::io::Result<()> {
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(target, fill(template, &vars))?;
            #[cfg(unix)]
            if target.extension().is_some_and(|e| e == "sh") {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(target, std::fs::Permissions::from_mode(0o755))?;
            }
            Ok(())
        };
        write(&target).map_err(|source| ScaffoldError::Write {
            path: target.clone(),
            source,
        })?;
    }
    Ok(root)
}

fn fill(template: &str, vars: &[(&str, String)]) -> String {
    vars.iter()
        .fold(template.to_string(), |text, (key, value)| {
            let text = text.replace(&format!("{{{{{key}}}}}"), value);
            if *key == "name" {
                text.replace(PYTHON_EXAMPLE_NAME, value)
            } else {
                text
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_every_placeholder_and_refuses_bad_names() {
        let dir = tempfile::tempdir().unwrap();
        let root = new_plugin("film-stats", Lang::Rust, dir.path(), None).unwrap();
        for (path, _) in RUST {
            let text = std::fs::read_to_string(root.join(path)).unwrap();
            assert!(!text.contains("{{"), "{path} still has a placeholder");
        }
        let cargo = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
        assert!(cargo.contains("name = \"film-stats\""));
        let root = new_plugin("py-stats", Lang::Python, dir.path(), None).unwrap();
        assert!(root.join("wit/sluice.wit").is_file());
        assert!(matches!(
            new_plugin("Film", Lang::Rust, dir.path(), None),
            Err(ScaffoldError::Name(_))
        ));
        assert!(matches!(
            new_plugin("film-stats", Lang::Rust, dir.path(), None),
            Err(ScaffoldError::Exists(_))
        ));
    }

    #[test]
    fn refuses_the_names_of_first_party_plugins() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["sql-read", "sql-write"] {
            for lang in [Lang::Rust, Lang::Python] {
                let error = new_plugin(name, lang, dir.path(), None).unwrap_err();
                assert!(matches!(error, ScaffoldError::FirstParty(_)), "{error}");
                let message = error.to_string();
                assert!(
                    message.contains(name) && message.contains("built into sluice"),
                    "{message}"
                );
            }
            assert!(!dir.path().join(name).exists(), "{name} was created");
        }
    }
}
