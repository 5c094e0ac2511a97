//! Whether the Rust toolchain in use can build for `wasm32-wasip2`, and adding
//! the target with rustup when it cannot.
//!
//! Shared by this crate's build script (which runs it before the heavy
//! dependencies compile) and its library (which `sluice-plugin-build` calls
//! right before building the plugins). Standard library only, so the build
//! script compiles in a second.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The target sluice's plugins are built for.
pub const TARGET: &str = "wasm32-wasip2";

/// What [`ensure`] found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ensured {
    /// The toolchain already has the target.
    Present {
        /// The toolchain's sysroot.
        sysroot: PathBuf,
    },
    /// rustup added the target just now.
    Added {
        /// The toolchain's sysroot.
        sysroot: PathBuf,
        /// The rustup toolchain it was added to.
        toolchain: String,
    },
}

impl Ensured {
    /// The sysroot of the toolchain that was checked.
    pub fn sysroot(&self) -> &Path {
        match self {
            Ensured::Present { sysroot } | Ensured::Added { sysroot, .. } => sysroot,
        }
    }
}

/// Why the toolchain cannot build for [`TARGET`]. Each message is one line
/// that ends in what to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetError {
    /// `rustc --print sysroot` did not work.
    Rustc {
        /// The compiler that was asked.
        rustc: String,
        /// What went wrong.
        detail: String,
    },
    /// The target is missing and this toolchain is not one rustup manages.
    NoRustup {
        /// The toolchain's sysroot.
        sysroot: PathBuf,
    },
    /// `rustup target add` failed (offline, say) or did not install the target.
    AddFailed {
        /// The command that was run, as the user would type it.
        command: String,
        /// What it said.
        detail: String,
    },
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetError::Rustc { rustc, detail } => write!(
                f,
                "sluice builds its plugins for {TARGET}, but asking `{rustc} --print sysroot` \
                 which targets this toolchain has failed ({detail}); check that rustc runs, \
                 then build again"
            ),
            TargetError::NoRustup { sysroot } => write!(
                f,
                "sluice builds its plugins for {TARGET}, which the Rust toolchain at {} lacks, \
                 and no rustup manages that toolchain to add it: install the {TARGET} standard \
                 library for it (with rustup: `rustup target add {TARGET}`), then build again",
                sysroot.display()
            ),
            TargetError::AddFailed { command, detail } => write!(
                f,
                "sluice builds its plugins for {TARGET}, which this Rust toolchain lacks, and \
                 `{command}` failed ({detail}); run it yourself, then build again"
            ),
        }
    }
}

impl std::error::Error for TargetError {}

/// The toolchain to check, as cargo describes it to build scripts.
#[derive(Debug, Clone)]
pub struct Toolchain {
    /// The compiler (cargo's `RUSTC`).
    pub rustc: OsString,
    /// The rustup program, when there is one.
    pub rustup: Option<PathBuf>,
    /// `RUSTUP_TOOLCHAIN`, which rustup's proxies set to the toolchain they run.
    pub rustup_toolchain: Option<String>,
}

impl Toolchain {
    /// The toolchain of the running build: `RUSTC` (else `rustc`), `rustup`
    /// on `PATH` (else in `$CARGO_HOME/bin` or `~/.cargo/bin`), and
    /// `RUSTUP_TOOLCHAIN`.
    pub fn from_env() -> Toolchain {
        let rustc = std::env::var_os("RUSTC")
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| "rustc".into());
        Toolchain {
            rustc,
            rustup: find_rustup(),
            rustup_toolchain: std::env::var("RUSTUP_TOOLCHAIN")
                .ok()
                .filter(|t| !t.is_empty()),
        }
    }
}

/// Makes sure the toolchain of the running build has [`TARGET`], adding it
/// with rustup where rustup manages the toolchain.
pub fn ensure() -> Result<Ensured, TargetError> {
    ensure_for(&Toolchain::from_env())
}

/// As [`ensure`], for a given toolchain.
pub fn ensure_for(toolchain: &Toolchain) -> Result<Ensured, TargetError> {
    let sysroot = sysroot(&toolchain.rustc)?;
    if installed(&sysroot) {
        return Ok(Ensured::Present { sysroot });
    }
    let (Some(rustup), Some(name)) = (&toolchain.rustup, rustup_name(toolchain, &sysroot)) else {
        return Err(TargetError::NoRustup { sysroot });
    };
    let command = format!("rustup target add {TARGET} --toolchain {name}");
    let output = Command::new(rustup)
        .args(["target", "add", TARGET, "--toolchain", &name])
        // It must not pick another toolchain than the one named.
        .env_remove("RUSTUP_TOOLCHAIN")
        .stdin(Stdio::null())
        .output();
    let failed = |detail: String| TargetError::AddFailed {
        command: command.clone(),
        detail,
    };
    let output = output.map_err(|e| failed(format!("cannot run {}: {e}", rustup.display())))?;
    if !output.status.success() {
        return Err(failed(last_line(
            &output.stderr,
            &output.status.to_string(),
        )));
    }
    if !installed(&sysroot) {
        return Err(failed(format!(
            "it succeeded, yet {} holds no standard library",
            libdir(&sysroot).display()
        )));
    }
    Ok(Ensured::Added {
        sysroot,
        toolchain: name,
    })
}

/// Where the toolchain at `sysroot` keeps the target's standard library.
pub fn libdir(sysroot: &Path) -> PathBuf {
    sysroot.join("lib").join("rustlib").join(TARGET).join("lib")
}

/// Whether the standard library for [`TARGET`] is in `sysroot`.
fn installed(sysroot: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(libdir(sysroot)) else {
        return false;
    };
    entries.flatten().any(|entry| {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        name.starts_with("libcore-") && name.ends_with(".rlib")
    })
}

fn sysroot(rustc: &OsStr) -> Result<PathBuf, TargetError> {
    let failed = |detail: String| TargetError::Rustc {
        rustc: rustc.to_string_lossy().into_owned(),
        detail,
    };
    let output = Command::new(rustc)
        .args(["--print", "sysroot"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| failed(e.to_string()))?;
    if !output.status.success() {
        return Err(failed(last_line(
            &output.stderr,
            &output.status.to_string(),
        )));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let path = text.trim();
    if path.is_empty() {
        return Err(failed("it printed nothing".into()));
    }
    Ok(PathBuf::from(path))
}

/// The name rustup knows the toolchain by: the directory rustup installed it
/// in (`…/toolchains/<name>`), else what its proxy set in `RUSTUP_TOOLCHAIN`
/// (unless that is a path: a custom toolchain rustup cannot add targets to).
fn rustup_name(toolchain: &Toolchain, sysroot: &Path) -> Option<String> {
    let from_dir = sysroot
        .parent()
        .filter(|parent| parent.file_name() == Some(OsStr::new("toolchains")))
        .and_then(|_| sysroot.file_name())
        .and_then(OsStr::to_str)
        .map(str::to_string);
    from_dir.or_else(|| {
        toolchain
            .rustup_toolchain
            .clone()
            .filter(|name| !name.contains(['/', '\\']))
    })
}

fn find_rustup() -> Option<PathBuf> {
    let exe = format!("rustup{}", std::env::consts::EXE_SUFFIX);
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default();
    let homes = [
        std::env::var_os("CARGO_HOME").map(PathBuf::from),
        std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")),
    ];
    on_path
        .into_iter()
        .chain(homes.into_iter().flatten().map(|home| home.join("bin")))
        .map(|dir| dir.join(&exe))
        .find(|candidate| candidate.is_file())
}

/// The last `error` line of a program's stderr (else its last line), or
/// `otherwise` when it said nothing.
fn last_line(stderr: &[u8], otherwise: &str) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect();
    lines
        .iter()
        .rfind(|line| line.starts_with("error"))
        .or(lines.last())
        .map(|line| line.to_string())
        .unwrap_or_else(|| otherwise.to_string())
}
