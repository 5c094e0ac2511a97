//! Builds sluice plugin crates for `wasm32-wasip2` from a build script.
//!
//! The host embeds its first-party plugins, so its build script has to compile
//! them with a nested `cargo build`. That nested cargo must not inherit the
//! outer build's target-specific settings (flags, wrappers such as
//! clippy-driver, target dir), and it needs a target directory of its own: the
//! outer cargo holds the lock on the main one.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The target every plugin is built for.
pub const TARGET: &str = sluice_preflight::TARGET;

/// The cargo profile plugins are built with (defined in the workspace manifest).
pub const PROFILE: &str = "plugin";

/// Settings the outer cargo hands its build scripts that would misconfigure a
/// nested cargo building for another target.
const INHERITED_TO_CLEAR: &[&str] = &[
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "RUSTFLAGS",
    "RUSTC",
    "RUSTC_WORKSPACE_WRAPPER",
    "RUSTC_LINKER",
    "RUSTDOC",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "CARGO_BUILD_TARGET_DIR",
    "TARGET",
    "HOST",
    "CARGO_LLVM_COV_TARGET_DIR",
];

/// A request to build some plugin packages of a workspace.
pub struct Build {
    workspace: PathBuf,
    target_dir: PathBuf,
    packages: Vec<String>,
}

impl Build {
    /// Builds in `workspace` into `target_dir` (which must not be the target
    /// directory of the cargo running the build script).
    pub fn new(workspace: impl Into<PathBuf>, target_dir: impl Into<PathBuf>) -> Self {
        Build {
            workspace: workspace.into(),
            target_dir: target_dir.into(),
            packages: Vec::new(),
        }
    }

    /// Adds a package (by cargo package name) to build.
    pub fn package(mut self, name: &str) -> Self {
        self.packages.push(name.to_string());
        self
    }

    /// Runs the build and returns `(package, path to its .wasm)` per package.
    pub fn run(&self) -> Result<Vec<(String, PathBuf)>, String> {
        // `sluice-preflight`'s build script checked this long before, but the
        // target may have been removed since it last ran.
        sluice_preflight::ensure().map_err(|e| e.to_string())?;
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(&self.workspace)
            .args([
                "build",
                "--target",
                TARGET,
                "--profile",
                PROFILE,
                "--target-dir",
            ])
            .arg(&self.target_dir);
        for p in &self.packages {
            cmd.args(["-p", p]);
        }
        for var in INHERITED_TO_CLEAR {
            cmd.env_remove(var);
        }
        let output = cmd
            .output()
            .map_err(|e| format!("could not run cargo to build the plugins: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "building the plugins for {TARGET} failed:\n{}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        Ok(self
            .packages
            .iter()
            .map(|p| (p.clone(), self.artifact(p)))
            .collect())
    }

    fn artifact(&self, package: &str) -> PathBuf {
        artifact_path(&self.target_dir, package)
    }
}

/// Where cargo puts the component of `package` under `target_dir`.
pub fn artifact_path(target_dir: &Path, package: &str) -> PathBuf {
    target_dir
        .join(TARGET)
        .join(PROFILE)
        .join(format!("{}.wasm", package.replace('-', "_")))
}
