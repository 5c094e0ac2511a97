//! Which functions SQL may call: a built-in denylist no configuration can
//! lift, the operator's own denylist, and an optional allowlist.
//!
//! Names are matched without their schema and case-insensitively, so
//! `PG_CATALOG.PG_READ_FILE` and `pg_read_file` are the same call, and a
//! function of the same name in another schema is refused as well.

use super::{Denial, glob};

/// Functions no plugin may call. The reasons, by group:
/// - files and server internals: reading or listing server files, large
///   objects (`lo_export` writes server files), config files;
/// - other sessions and the server process: signals, reloads, log rotation;
/// - session state that outlives the transaction on a pooled connection:
///   `set_config`, advisory locks, `setseed`, snapshots;
/// - writes a READ ONLY transaction does not stop: sequences, replication
///   slots and origins, WAL, statistics resets, catalog maintenance;
/// - SQL smuggled in a string, which no parser sees: `query_to_xml` and kin,
///   `ts_stat`, `ts_rewrite`, `dblink`;
/// - waiting: `pg_sleep*`.
const DENIED: &[&str] = &[
    "pg_stat_file",
    "pg_terminate_backend",
    "pg_cancel_backend",
    "pg_reload_conf",
    "pg_rotate_logfile",
    "pg_rotate_logfile_old",
    "pg_logdir_ls",
    "pg_show_all_file_settings",
    "pg_hba_file_rules",
    "pg_ident_file_mappings",
    "pg_current_logfile",
    "set_config",
    "setseed",
    "nextval",
    "setval",
    "pg_notify",
    "loread",
    "lowrite",
    "ts_stat",
    "ts_rewrite",
    "query_to_xml",
    "query_to_xml_and_xmlschema",
    "query_to_xmlschema",
    "cursor_to_xml",
    "cursor_to_xmlschema",
    "table_to_xml",
    "table_to_xml_and_xmlschema",
    "table_to_xmlschema",
    "schema_to_xml",
    "schema_to_xml_and_xmlschema",
    "schema_to_xmlschema",
    "database_to_xml",
    "database_to_xml_and_xmlschema",
    "database_to_xmlschema",
    "pg_switch_wal",
    "pg_promote",
    "pg_export_snapshot",
    "pg_import_snapshot",
    "pg_nextoid",
    "pg_import_system_collations",
    "pg_extension_config_dump",
    "pg_stop_making_pinned_objects",
    "pg_log_backend_memory_contexts",
    "pg_start_backup",
    "pg_stop_backup",
];

/// Name prefixes of denied function families.
const DENIED_PREFIXES: &[&str] = &[
    "pg_read_",
    "pg_ls_",
    "pg_file_",
    "lo_",
    "pg_advisory",
    "pg_try_advisory",
    "dblink",
    "postgres_fdw_",
    "pg_sleep",
    "pg_replication_",
    "pg_logical_",
    "pg_create_",
    "pg_copy_",
    "pg_drop_replication",
    "pg_wal_replay_",
    "pg_backup_",
    "pg_stat_reset",
    "pg_stat_statements_reset",
];

fn built_in_denied(name: &str) -> bool {
    DENIED.contains(&name) || DENIED_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// The function rules of a grant: the built-in denylist, plus the operator's
/// `deny_functions` and, when given, `allow_functions` (then nothing else
/// may be called). A name both allowed and denied is denied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FunctionRules {
    allow: Option<Vec<String>>,
    deny: Vec<String>,
}

impl FunctionRules {
    /// Rules from the operator's patterns: function names, `*` matching any
    /// run of characters (`st_*`).
    pub fn new(allow: Option<&[String]>, deny: &[String]) -> Result<FunctionRules, String> {
        let parse = |list: &[String]| -> Result<Vec<String>, String> {
            list.iter()
                .map(|p| {
                    let valid = !p.is_empty()
                        && p.chars()
                            .all(|c| c.is_alphanumeric() || c == '_' || c == '$' || c == '*');
                    if valid {
                        Ok(p.to_lowercase())
                    } else {
                        Err(format!(
                            "function pattern {p:?} must be a function name without schema, \
                             `*` matching any run of characters"
                        ))
                    }
                })
                .collect()
        };
        Ok(FunctionRules {
            allow: allow.map(parse).transpose()?,
            deny: parse(deny)?,
        })
    }

    /// A call of function `name` (unqualified, as written) is allowed, or the
    /// denial naming the rule.
    pub fn check(&self, name: &str) -> Result<(), Denial> {
        let name = name.to_lowercase();
        if built_in_denied(&name) {
            return Err(Denial::new(
                "function-denylist",
                format!("function {name} is not allowed"),
            ));
        }
        self.check_operator_denied(&name)?;
        if let Some(allow) = &self.allow
            && !allow.iter().any(|p| glob(p, &name))
        {
            return Err(Denial::new(
                "function-allowlist",
                format!("function {name} is not in the operator's allow_functions"),
            ));
        }
        Ok(())
    }

    /// Only the operator's `deny_functions`.
    pub fn check_operator_denied(&self, name: &str) -> Result<(), Denial> {
        let name = name.to_lowercase();
        if self.deny.iter().any(|p| glob(p, &name)) {
            return Err(Denial::new(
                "function-denylist",
                format!("function {name} is denied by the operator's deny_functions"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_ins_cannot_be_allowed_back() {
        let rules = FunctionRules::new(Some(&["pg_read_file".into(), "*".into()]), &[]).unwrap();
        assert_eq!(
            rules.check("pg_read_file").unwrap_err().rule,
            "function-denylist"
        );
        assert_eq!(
            rules.check("LO_IMPORT").unwrap_err().rule,
            "function-denylist"
        );
        assert!(rules.check("lower").is_ok());
    }

    #[test]
    fn operator_lists_apply() {
        let rules = FunctionRules::new(
            Some(&["count".into(), "st_*".into()]),
            &["st_buffer".into()],
        )
        .unwrap();
        assert!(rules.check("COUNT").is_ok());
        assert!(rules.check("st_area").is_ok());
        assert_eq!(
            rules.check("st_buffer").unwrap_err().rule,
            "function-denylist"
        );
        assert_eq!(rules.check("sum").unwrap_err().rule, "function-allowlist");
        assert!(FunctionRules::new(None, &["public.f".into()]).is_err());
        assert!(FunctionRules::default().check("sum").is_ok());
    }
}
