//! Where the `sluice` binary under test and the plugins built for it are.
//!
//! Cargo gives both only to the host package's own test and bench targets,
//! at compile time: `CARGO_BIN_EXE_sluice`, and `SLUICE_PLUGIN_OUT_DIR`
//! from host/build.rs. This crate is compiled on its own, without them, so
//! each binary that uses it names them with [`register_paths!`], whose
//! `env!`s expand in that binary.
//!
//! The macro registers them at link time (a [`linkme`] distributed slice)
//! rather than through an `init` call: the e2e binary's `main` is libtest's,
//! so there is no place to call `init` once before the tests, and handing
//! the paths to every helper would touch every test. Cargo also exports the
//! two variables to the processes it runs, but reading them there would tie
//! the binaries to being run by cargo, which cargo's documentation
//! discourages. No code runs before `main`; a binary that forgot the macro
//! fails at its first use of a path, with a message saying so.

use std::path::{Path, PathBuf};

/// The paths a binary registers with [`register_paths!`].
#[derive(Debug)]
pub struct Paths {
    /// The `sluice` binary (`CARGO_BIN_EXE_sluice`).
    pub sluice: &'static str,
    /// The plugins host/build.rs built, as `PACKAGE.wasm` (`SLUICE_PLUGIN_OUT_DIR`).
    pub plugins: &'static str,
}

/// What [`register_paths!`] registered: one entry per binary.
#[linkme::distributed_slice]
pub static REGISTERED: [Paths];

/// Registers the paths of the `sluice` binary and of the built plugins;
/// invoke it once, at the root of a test or bench target of the host
/// package (the only targets cargo gives them to).
#[macro_export]
macro_rules! register_paths {
    () => {
        #[$crate::__private::linkme::distributed_slice($crate::__private::REGISTERED)]
        #[linkme(crate = $crate::__private::linkme)]
        static SLUICE_TEST_SUPPORT_PATHS: $crate::Paths = $crate::Paths {
            sluice: env!("CARGO_BIN_EXE_sluice"),
            plugins: env!("SLUICE_PLUGIN_OUT_DIR"),
        };
    };
}

/// The registered paths; panics unless exactly one binary registered them.
pub fn paths() -> &'static Paths {
    match &REGISTERED[..] {
        [paths] => paths,
        [] => panic!("this binary did not invoke sluice_test_support::register_paths!()"),
        more => panic!("register_paths!() was invoked {} times", more.len()),
    }
}

/// The `sluice` binary under test.
pub fn sluice_bin() -> &'static Path {
    Path::new(paths().sluice)
}

/// A plugin built by the host's build script (`hello` and the `test-*` plugins).
pub fn plugin_wasm(package: &str) -> PathBuf {
    Path::new(paths().plugins).join(format!("{package}.wasm"))
}

/// A fresh directory holding the named plugins' wasm files.
pub fn plugin_dir_with(packages: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("sluice-e2e-plugins-")
        .tempdir()
        .expect("creating the plugin directory");
    for package in packages {
        let from = plugin_wasm(package);
        let to = dir.path().join(format!("{package}.wasm"));
        std::fs::copy(&from, &to)
            .unwrap_or_else(|e| panic!("copying {} to {}: {e}", from.display(), to.display()));
    }
    dir
}

#[cfg(test)]
mod tests {
    // This crate's own test binary registers nothing.
    #[test]
    #[should_panic(expected = "did not invoke sluice_test_support::register_paths!()")]
    fn a_binary_that_registered_nothing_is_told_so() {
        super::sluice_bin();
    }
}
