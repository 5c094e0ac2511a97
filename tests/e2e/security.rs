//! The security suite on Pagila: every statement of the hostile corpus is
//! refused by the policy, through both SQL tools, and leaves the database
//! exactly as it was; every analyst query of the must-allow corpus passes.
//! Skipped, with the reason printed, when the dataset is not beside the
//! checkout.

use crate::security_corpus::{Case, HOSTILE, MUST_ALLOW};
use crate::support::{Server, fingerprint, pagila_db, spawn, structured, text_of};
use serde_json::json;
use sqlx::{Connection as _, PgConnection};
use std::collections::BTreeMap;

/// The rule a refusal names: `denied (rule): …`.
fn denial_rule(text: &str) -> Option<&str> {
    text.strip_prefix("denied (")?
        .split_once(')')
        .map(|(r, _)| r)
}

/// Runs `case` through `tool`; returns the rule that refused it, or what
/// went wrong instead.
async fn refused_by(server: &Server, tool: &str, case: &Case) -> Result<String, String> {
    let r = server.call(tool, json!({ "sql": case.sql })).await;
    let text = text_of(&r);
    if r.is_error != Some(true) {
        return Err(format!("{tool} ALLOWED [{}] {:?}", case.category, case.sql));
    }
    if let Some(rule) = denial_rule(&text) {
        return Ok(rule.to_string());
    }
    // explain_query refuses a statement that already starts with EXPLAIN
    // itself, before the host sees it.
    if tool == "explain_query" && text.contains("pass the query itself") {
        return Ok("explain-prefix".to_string());
    }
    Err(format!(
        "{tool} [{}] {:?} failed without a policy denial: {text}",
        case.category, case.sql
    ))
}

#[tokio::test]
async fn hostile_sql_is_refused_and_analyst_sql_passes_on_pagila() {
    let db = match pagila_db().await {
        Ok(db) => db,
        Err(why) => {
            eprintln!("SKIPPED the Pagila security suite: {why}");
            return;
        }
    };
    let server = spawn(&db, "", None).await;
    let before = fingerprint(&db.url).await;

    let mut failures = Vec::new();
    let mut rules: BTreeMap<String, usize> = BTreeMap::new();
    for case in HOSTILE {
        for tool in ["query", "explain_query"] {
            match refused_by(&server, tool, case).await {
                Ok(rule) if tool == "query" => *rules.entry(rule).or_default() += 1,
                Ok(_) => {}
                Err(failure) => failures.push(failure),
            }
        }
    }

    assert_eq!(
        fingerprint(&db.url).await,
        before,
        "the hostile corpus changed the database"
    );
    // Nothing outlived its transaction on the pooled sessions either.
    let mut conn = PgConnection::connect(&db.url).await.unwrap();
    let advisory: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(advisory, 0, "advisory locks survived the hostile corpus");
    let _ = conn.close().await;

    let mut passed = 0;
    for case in MUST_ALLOW {
        let r = server.call("query", json!({ "sql": case.sql })).await;
        if r.is_error == Some(true) {
            failures.push(format!(
                "REFUSED must-allow [{}] {:?}: {}",
                case.category,
                case.sql,
                text_of(&r)
            ));
        } else if structured(&r)["rows"].as_array().is_none_or(Vec::is_empty) {
            failures.push(format!(
                "must-allow [{}] {:?} returned no rows",
                case.category, case.sql
            ));
        } else {
            passed += 1;
        }
    }

    eprintln!(
        "security suite: {} hostile statements refused by the policy ({} allowed), \
         {passed}/{} must-allow queries passed; refusals by rule: {rules:?}",
        rules.values().sum::<usize>(),
        HOSTILE.len() - rules.values().sum::<usize>(),
        MUST_ALLOW.len()
    );
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(HOSTILE.len() >= 60 && MUST_ALLOW.len() >= 20);
    server.shutdown().await;
}
