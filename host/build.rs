//! Builds the first-party plugins (embedded in the binary) and the example,
//! test and benchmark plugins (used by the end-to-end tests and the bench) for
//! wasm32-wasip2.

use std::path::{Path, PathBuf};

/// Embedded in the binary: every user gets these (`sql-tools` serves the
/// tools files).
const FIRST_PARTY: &[&str] = &["sql-read", "sql-write", "sql-insight", "sql-tools"];
/// Built beside them for the tests and as working examples.
const EXTRA: &[&str] = &[
    "hello",
    "test-looper",
    "test-trapper",
    "test-escape",
    "test-reporter",
    "test-clash",
    "test-fuzzer",
    "test-writer",
    "bench-generated",
];

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let workspace = manifest_dir
        .parent()
        .expect("host/ lives in the workspace")
        .to_path_buf();
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo"));

    for watched in [
        "wit",
        "sdk",
        "plugins",
        "tests/plugins",
        "bench/plugin",
        "Cargo.lock",
        "Cargo.toml",
    ] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_DIR");

    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|d| {
            if d.is_absolute() {
                d
            } else {
                workspace.join(d)
            }
        })
        .unwrap_or_else(|| workspace.join("target"))
        .join("wasm-plugins");

    let mut build = sluice_plugin_build::Build::new(&workspace, &target_dir);
    for p in FIRST_PARTY.iter().chain(EXTRA) {
        build = build.package(p);
    }
    let built = match build.run() {
        Ok(built) => built,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    for (package, wasm) in &built {
        copy(wasm, &out_dir.join(format!("{package}.wasm")));
    }
    println!(
        "cargo:rustc-env=SLUICE_PLUGIN_OUT_DIR={}",
        out_dir.display()
    );
}

fn copy(from: &Path, to: &Path) {
    if let Err(e) = std::fs::copy(from, to) {
        eprintln!("copying {} to {}: {e}", from.display(), to.display());
        std::process::exit(1);
    }
}
