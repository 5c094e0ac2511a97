//! Fails the build at once, with one line that says what to run, when the
//! toolchain lacks the target sluice's plugins are built for and rustup
//! cannot add it. The host's build script needs the target much later, after
//! minutes of compiling; this runs as soon as cargo schedules it.

#[path = "src/wasm_target.rs"]
mod wasm_target;

fn main() {
    println!("cargo::rerun-if-changed=src/wasm_target.rs");
    println!("cargo::rerun-if-env-changed=RUSTUP_TOOLCHAIN");
    match wasm_target::ensure() {
        Ok(outcome) => {
            if let wasm_target::Ensured::Added { toolchain, .. } = &outcome {
                println!(
                    "cargo::warning=added the {} target to the Rust toolchain {toolchain} \
                     (sluice builds its plugins for it)",
                    wasm_target::TARGET
                );
            }
            // Check again if the target is removed later.
            println!(
                "cargo::rerun-if-changed={}",
                wasm_target::libdir(outcome.sysroot()).display()
            );
        }
        Err(e) => println!("cargo::error={e}"),
    }
}
