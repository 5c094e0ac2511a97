//! `sluice plugins list` and `sluice plugins check`: what each plugin is,
//! offers, asks for and is granted, with an exit status fit to gate a deploy.
//!
//! Failures (exit 1): a plugin that does not load or clashes with another,
//! and a config entry that names a plugin that is not loaded; with
//! `--strict`, also a served plugin short of something it requests. Idle
//! and disabled plugins are the operator's choice, so they are reported,
//! never failures.

use crate::policy::Grant;
use crate::registry::{LoadReport, NameCheck, PluginSummary};
use std::fmt::Write as _;

/// Why the command should exit non-zero, in one line, or `None`.
pub fn verdict(reports: &[LoadReport], names: &NameCheck, strict: bool) -> Option<String> {
    let failed = reports.iter().filter(|r| r.outcome.is_err()).count();
    let short = reports
        .iter()
        .filter(|r| {
            r.outcome
                .as_ref()
                .is_ok_and(|l| l.serving() && !l.unmet.is_empty())
        })
        .count();
    let withheld = reports
        .iter()
        .filter(|r| r.outcome.as_ref().is_ok_and(|l| l.withheld.is_some()))
        .count();
    let mut problems = Vec::new();
    if failed > 0 {
        problems.push(
            plural(failed, "plugin", "plugins") + " FAILED (not loaded, refused, or clashing)",
        );
    }
    if withheld > 0 {
        problems.push(
            plural(withheld, "plugin does", "plugins do")
                + " not meet the publisher or digest its grant is bound to",
        );
    }
    if !names.unknown.is_empty() {
        let n = names.unknown.len();
        problems.push(format!(
            "{} {} not loaded",
            plural(
                n,
                "config entry names a plugin",
                "config entries name plugins"
            ),
            if n == 1 { "that is" } else { "that are" }
        ));
    }
    if strict && short > 0 {
        problems.push(format!(
            "{} not granted everything requested (--strict)",
            plural(short, "plugin", "plugins")
        ));
    }
    (!problems.is_empty()).then(|| problems.join("; "))
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

fn status(l: &PluginSummary) -> String {
    if l.withheld.is_some() {
        "GRANT WITHHELD".to_string()
    } else if l.disabled {
        "disabled".to_string()
    } else if l.idle {
        "idle".to_string()
    } else if l.unmet.is_empty() {
        "ok".to_string()
    } else {
        format!("NOT GRANTED: {}", l.unmet.join("; "))
    }
}

/// Why an idle plugin is not served and the config that would serve it,
/// each line after the first indented by `indent`.
fn idle_note(l: &PluginSummary, indent: &str) -> String {
    let mut out = format!(
        "nothing grants what it requests ({}), so it is not served; to serve it, add:",
        l.requested().join(", ")
    );
    for line in l.enabling_config() {
        let _ = write!(out, "\n{indent}{line}");
    }
    out
}

/// The config's plugin names that match no plugin, and those expected
/// later; empty when there is nothing to say.
fn names_section(names: &NameCheck) -> String {
    let mut out = String::new();
    if !names.unknown.is_empty() {
        out.push_str("config errors:\n");
        for problem in &names.unknown {
            let _ = writeln!(out, "  {problem}");
        }
        out.push('\n');
    }
    if !names.awaited.is_empty() {
        let _ = writeln!(
            out,
            "expected, not loaded yet ([plugins] expected): {}\n",
            names.awaited.join(", ")
        );
    }
    out
}

fn count(n: usize, one: &str) -> Option<String> {
    match n {
        0 => None,
        1 => Some(format!("1 {one}")),
        n => Some(format!("{n} {one}s")),
    }
}

/// One line per plugin, then how to serve the idle ones and what is wrong
/// with the config's plugin names.
pub fn list(reports: &[LoadReport], names: &NameCheck) -> String {
    let mut out = String::new();
    let mut notes = String::new();
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
                if let Some(why) = &l.withheld {
                    let _ = writeln!(notes, "{}: grant withheld: {why}", l.manifest.name);
                } else if l.idle && !l.disabled {
                    let _ = writeln!(notes, "{} is idle: {}", l.manifest.name, idle_note(l, "  "));
                }
            }
            Err(e) => {
                let _ = writeln!(out, "{:<20} FAILED: {e}", r.source);
            }
        }
    }
    if !notes.is_empty() {
        out.push('\n');
        out.push_str(&notes);
    }
    let names = names_section(names);
    if !names.is_empty() {
        out.push('\n');
        out.push_str(names.trim_end());
        out.push('\n');
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
/// it offers, then what is wrong with the config's plugin names. Plugin
/// config values are never shown.
pub fn check(reports: &[LoadReport], names: &NameCheck) -> String {
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
        let _ = writeln!(out, "  publisher {}", l.identity.describe());
        let _ = writeln!(out, "  digest    {}", l.identity.digest);
        if let Some(why) = &l.withheld {
            let _ = writeln!(
                out,
                "  WITHHELD  {why}: it is granted nothing and not served"
            );
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
            lim.memory_mb,
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
        if l.idle && !l.disabled && l.withheld.is_none() {
            let _ = writeln!(
                out,
                "  status    idle: {}\n",
                idle_note(l, "              ")
            );
        } else {
            let _ = writeln!(out, "  status    {}\n", status(l));
        }
    }
    out.push_str(&names_section(names));
    out
}
