//! `sluice plugins list` and `sluice plugins check`: what each plugin is,
//! offers, asks for and is granted, with an exit status fit to gate a deploy.

use crate::policy::Grant;
use crate::registry::{LoadReport, Loaded};
use std::fmt::Write as _;

/// Whether every plugin loaded and got everything it asked for.
pub fn all_ok(reports: &[LoadReport]) -> bool {
    reports.iter().all(|r| match &r.outcome {
        Ok(l) => l.disabled || l.unmet.is_empty(),
        Err(_) => false,
    })
}

fn status(l: &Loaded) -> String {
    if l.disabled {
        "disabled".to_string()
    } else if l.unmet.is_empty() {
        "ok".to_string()
    } else {
        format!("NOT GRANTED: {}", l.unmet.join("; "))
    }
}

fn count(n: usize, one: &str) -> Option<String> {
    match n {
        0 => None,
        1 => Some(format!("1 {one}")),
        n => Some(format!("{n} {one}s")),
    }
}

/// One line per plugin.
pub fn list(reports: &[LoadReport]) -> String {
    let mut out = String::new();
    for r in reports {
        match &r.outcome {
            Ok(l) => {
                let offers: Vec<String> = [
                    count(l.tools.len(), "tool"),
                    count(l.resources.len(), "resource"),
                    count(l.resource_templates.len(), "template"),
                    count(l.prompts.len(), "prompt"),
                ]
                .into_iter()
                .flatten()
                .collect();
                let _ = writeln!(
                    out,
                    "{:<20} {:<10} {:<40} {}",
                    l.manifest.name,
                    l.manifest.version,
                    offers.join(", "),
                    status(l)
                );
            }
            Err(e) => {
                let _ = writeln!(out, "{:<20} FAILED: {e}", r.source);
            }
        }
    }
    out
}

fn or_dash(items: &[String]) -> String {
    if items.is_empty() {
        "-".to_string()
    } else {
        items.join(", ")
    }
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn patterns(grant: &Grant, write: bool) -> Vec<String> {
    let list = if write { &grant.write } else { &grant.read };
    list.iter().map(ToString::to_string).collect()
}

/// Everything about each plugin: requested vs granted vs effective, and all
/// it offers. Plugin config values are never shown.
pub fn check(reports: &[LoadReport]) -> String {
    let mut out = String::new();
    for r in reports {
        let l = match &r.outcome {
            Ok(l) => l,
            Err(e) => {
                let _ = writeln!(out, "{}\n  FAILED: {e}\n", r.source);
                continue;
            }
        };
        let m = &l.manifest;
        let q = &m.requests;
        let e = &l.effective;
        let _ = writeln!(out, "{} {} ({})", m.name, m.version, r.source);
        if !m.description.is_empty() {
            let _ = writeln!(out, "  {}", m.description);
        }
        let row = |what: &str, requested: String, granted: String, effective: String| {
            format!(
                "  {what:<9} requested: {requested:<14} granted: {granted:<14} effective: {effective}\n"
            )
        };
        out += &row(
            "read",
            or_dash(&q.read),
            or_dash(&patterns(&l.granted, false)),
            or_dash(&e.effective_read()),
        );
        out += &row(
            "write",
            or_dash(&q.write),
            or_dash(&patterns(&l.granted, true)),
            or_dash(&e.effective_write()),
        );
        out += &row(
            "catalog",
            yes_no(q.catalog).into(),
            yes_no(l.granted.catalog).into(),
            yes_no(e.catalog).into(),
        );
        let lim = &e.limits;
        let _ = writeln!(
            out,
            "  role      {}\n  limits    timeout_ms {}, max_rows {}, max_write_rows {}, max_result_bytes {}, \
             memory_mb {}, max_host_calls {}, max_concurrent_calls {}",
            e.role.as_deref().unwrap_or("- (sluice's own login role)"),
            lim.timeout_ms,
            lim.max_rows,
            lim.max_write_rows,
            lim.max_result_bytes,
            lim.memory_bytes / (1024 * 1024),
            lim.max_host_calls,
            lim.max_concurrent_calls
        );
        let _ = writeln!(out, "  tools     {}", or_dash(&l.tools));
        let _ = writeln!(out, "  resources {}", or_dash(&l.resources));
        let _ = writeln!(out, "  templates {}", or_dash(&l.resource_templates));
        let _ = writeln!(out, "  prompts   {}", or_dash(&l.prompts));
        if !l.config_keys.is_empty() {
            let _ = writeln!(
                out,
                "  config    {} (values not shown)",
                l.config_keys.join(", ")
            );
        }
        let _ = writeln!(out, "  status    {}\n", status(l));
    }
    out
}
