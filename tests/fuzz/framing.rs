//! The JSON-RPC framing: a client's bytes in, a message or an answer out.
//!
//! Besides never crashing: a refusal that is answered carries an id that
//! is JSON (a string or a number) and a response that is valid JSON-RPC,
//! and reading a message in pieces (as a line arrives) finds the same id as
//! reading it whole.

use crate::{bounded, cases, corpus, mutation};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::Value;
use sluice::mcp::frame::{FrameLimits, INVALID_REQUEST, Outline, check};

const FRAGMENTS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "\\",
    "\\u0000",
    "\\ud800",
    "null",
    "true",
    "NaN",
    "Infinity",
    "-",
    "1e400",
    "0.1",
    "123456789012345678901234567890",
    "\"id\":",
    "\"method\":",
    "\"jsonrpc\":\"2.0\"",
    "\"result\":{}",
    "\"error\":{}",
    "\"params\":",
    "\u{ff}",
    "\u{feff}",
    " ",
    "\n",
    "\r",
    "é",
];

fn limits() -> FrameLimits {
    FrameLimits {
        max_bytes: 64 * 1024,
        max_depth: 32,
    }
}

fn check_bytes(bytes: Vec<u8>, split_at: usize) {
    let what = format!(
        "framing {:?}",
        String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
    );
    bounded(&what, move || {
        let whole = check(&bytes, limits());
        if let Err(refusal) = &whole {
            if let Some(id) = &refusal.id {
                let parsed: Value = serde_json::from_str(id)
                    .unwrap_or_else(|e| panic!("the id {id} is not JSON: {e}"));
                assert!(parsed.is_string() || parsed.is_number(), "id {id}");
            }
            let response: Value = serde_json::from_str(&refusal.response())
                .unwrap_or_else(|e| panic!("the response is not JSON: {e}"));
            assert_eq!(response["jsonrpc"], "2.0");
            assert!(response["error"]["code"].is_i64());
        }
        // The same message read in two pieces yields the same id.
        let at = if bytes.is_empty() {
            0
        } else {
            split_at % bytes.len()
        };
        let mut whole_outline = Outline::default();
        whole_outline.feed(&bytes);
        let mut pieces = Outline::default();
        pieces.feed(&bytes[..at]);
        pieces.feed(&bytes[at..]);
        let id = |o: &Outline| o.refuse(INVALID_REQUEST, String::new()).id;
        assert_eq!(id(&pieces), id(&whole_outline));
        assert_eq!(pieces.max_depth(), whole_outline.max_depth());
    });
}

#[test]
fn framing_corpus() {
    for (_, bytes) in corpus("framing") {
        for split in [0, 1, 7, 40, usize::MAX / 2] {
            check_bytes(bytes.clone(), split);
        }
    }
    // Far over the depth and size limits, built rather than stored.
    let deep = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{"a":{}{}}}}}"#,
        "[".repeat(200_000),
        "]".repeat(200_000)
    );
    check_bytes(deep.into_bytes(), 3);
    let unclosed = format!(r#"{{"id":2,"x":{}"#, "{\"a\":".repeat(100_000));
    check_bytes(unclosed.into_bytes(), 5);
}

#[test]
fn framing_generated() {
    let mut runner = TestRunner::new(Config {
        cases: cases(3000),
        failure_persistence: None,
        ..Config::default()
    });
    let input = (
        proptest::collection::vec(proptest::sample::select(FRAGMENTS), 0..80)
            .prop_map(|parts| parts.concat().into_bytes()),
        any::<usize>(),
    );
    runner
        .run(&input, |(bytes, split)| {
            check_bytes(bytes, split);
            Ok(())
        })
        .unwrap();
}

#[test]
fn framing_mutated() {
    let seeds: Vec<Vec<u8>> = corpus("framing").into_iter().map(|(_, b)| b).collect();
    let mut runner = TestRunner::new(Config {
        cases: cases(3000),
        failure_persistence: None,
        ..Config::default()
    });
    let input = (
        proptest::sample::select(seeds),
        proptest::collection::vec(mutation(FRAGMENTS), 1..6),
        any::<usize>(),
    );
    runner
        .run(&input, |(seed, mutations, split)| {
            let mut bytes = seed;
            for m in &mutations {
                m.apply(&mut bytes);
            }
            check_bytes(bytes, split);
            Ok(())
        })
        .unwrap();
}
