//! Fuzz targets for what sluice reads from outside: a plugin's SQL (the
//! policy), a plugin's values (the codec), a client's messages (the
//! JSON-RPC framing). The host imports are fuzzed end to end by a hostile
//! plugin (`tests/e2e/host_fuzz.rs`).
//!
//! Each target replays its corpus (`tests/fuzz/corpus/<target>/`: inputs
//! that once mattered, kept so they keep being tried) and then runs
//! generated and mutated inputs with proptest. The property is the same
//! everywhere: no panic, no abort, no stack overflow, no hang past a
//! deadline; the policy and the framing also check that what they accept
//! reads back the same.
//!
//! `cargo test --test fuzz` runs a bounded number of cases (CI runs it).
//! Longer runs: `SLUICE_FUZZ_CASES=100000 cargo test --release --test fuzz`.
//! A failing input proptest reports is worth adding to the corpus.

mod codec;
mod framing;
mod policy;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

/// Generated cases per target: `SLUICE_FUZZ_CASES`, else a count that keeps
/// each target to seconds.
pub fn cases(default: u32) -> u32 {
    std::env::var("SLUICE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The corpus of `target`: `(file name, bytes)`, sorted.
pub fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fuzz/corpus")
        .join(target);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| {
            let entry = entry.expect("a corpus entry");
            let name = entry.file_name().to_string_lossy().into_owned();
            let bytes = std::fs::read(entry.path()).expect("a corpus file");
            (name, bytes)
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "the {target} corpus is empty");
    files
}

/// The longest one input may take before it counts as a hang. Generous: a
/// hang is what it catches, not slowness.
const HANG: Duration = Duration::from_secs(60);

/// Runs `work` on a thread with the analysis threads' stack and waits for
/// it at most [`HANG`]; a panic or a hang fails with `what`.
pub fn bounded<T: Send + 'static>(what: &str, work: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, result) = mpsc::channel();
    std::thread::Builder::new()
        .stack_size(64 * 1024 * 1024)
        .spawn(move || {
            let _ = done.send(work());
        })
        .expect("a fuzz thread");
    match result.recv_timeout(HANG) {
        Ok(value) => value,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what}: no result within {HANG:?}"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{what}: panicked"),
    }
}

/// Byte-level mutations of a seed: the classic fuzzer moves.
#[derive(Debug, Clone)]
pub enum Mutation {
    Flip { at: usize, bit: u8 },
    Insert { at: usize, bytes: Vec<u8> },
    Delete { at: usize, len: usize },
    Repeat { at: usize, len: usize, times: usize },
    Truncate { at: usize },
}

impl Mutation {
    pub fn apply(&self, input: &mut Vec<u8>) {
        let clamp = |at: usize, len: usize| if len == 0 { 0 } else { at % (len + 1) };
        match self {
            Mutation::Flip { at, bit } => {
                if !input.is_empty() {
                    let i = at % input.len();
                    input[i] ^= 1 << (bit % 8);
                }
            }
            Mutation::Insert { at, bytes } => {
                let i = clamp(*at, input.len());
                input.splice(i..i, bytes.iter().copied());
            }
            Mutation::Delete { at, len } => {
                let i = clamp(*at, input.len());
                let end = (i + len).min(input.len());
                input.drain(i..end);
            }
            Mutation::Repeat { at, len, times } => {
                let i = clamp(*at, input.len());
                let end = (i + len).min(input.len());
                let chunk = input[i..end].to_vec();
                for _ in 0..*times {
                    input.splice(end..end, chunk.iter().copied());
                }
            }
            Mutation::Truncate { at } => {
                let i = clamp(*at, input.len());
                input.truncate(i);
            }
        }
    }
}

/// Any mutation, inserting bytes from `alphabet` (plus any byte).
pub fn mutation(
    alphabet: &'static [&'static str],
) -> impl proptest::strategy::Strategy<Value = Mutation> {
    use proptest::prelude::*;
    let inserted = prop_oneof![
        proptest::sample::select(alphabet).prop_map(|s| s.as_bytes().to_vec()),
        proptest::collection::vec(any::<u8>(), 1..8),
    ];
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        (any::<usize>(), inserted).prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        (any::<usize>(), 1usize..32).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (any::<usize>(), 1usize..16, 1usize..300).prop_map(|(at, len, times)| Mutation::Repeat {
            at,
            len,
            times
        }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
    ]
}
