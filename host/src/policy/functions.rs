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
/// - waiting: `pg_sleep*`;
/// - transaction ids spent even in a READ ONLY transaction, so that a loop
///   of calls burns the server's XIDs: `txid_current`, `pg_current_xact_id`;
/// - index maintenance that writes despite READ ONLY: BRIN summaries,
///   `gin_clean_pending_list`;
/// - the server's file layout: settings listings, `pg_config`, file paths
///   of tablespaces and relations, control-file and WAL file names (and
///   `current_setting` of such settings, see [`sensitive_setting`]);
/// - other sessions, read without a relation a grant could cover: their
///   statements, addresses, locks and progress (`pg_stat_get_activity`,
///   `pg_stat_get_backend_*`, `pg_lock_status`, …); the views built on them
///   (`pg_stat_activity`, `pg_locks`) stay grantable as relations;
///
/// Hypothetical indexes (hypopg) are a class of their own: see
/// [`SESSION_STATE`].
const DENIED: &[&str] = &[
    "pg_stat_get_activity",
    "pg_lock_status",
    "pg_blocking_pids",
    "pg_safe_snapshot_blocking_pids",
    "pg_prepared_xact",
    "pg_stat_get_progress_info",
    "pg_stat_statements",
    "pg_stat_statements_info",
    "pg_stat_get_wal_senders",
    "pg_stat_get_wal_receiver",
    "pg_stat_get_subscription",
    "pg_get_replication_slots",
    "pg_show_replication_origin_status",
    "pg_get_shmem_allocations",
    "txid_current",
    "pg_current_xact_id",
    "brin_summarize_new_values",
    "brin_summarize_range",
    "brin_desummarize_range",
    "gin_clean_pending_list",
    "pg_log_standby_snapshot",
    "pg_show_all_settings",
    "pg_config",
    "pg_tablespace_location",
    "pg_relation_filepath",
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
    "pg_control_",
    "pg_walfile_name",
    "pg_stat_get_backend_",
];

/// Whether a setting's value would tell the server's file layout, the
/// commands and libraries it runs, or a secret: the names PostgreSQL gives
/// such settings (`data_directory`, `config_file`, `hba_file`,
/// `unix_socket_directories`, `archive_command`, `ssl_key_file`,
/// `primary_conninfo`, `shared_preload_libraries`, …), by their shape, so
/// that the whole class is covered rather than a list of examples, and
/// custom settings that look like secrets (`app.jwt_secret`).
pub fn sensitive_setting(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    const SUFFIXES: &[&str] = &[
        "_file",
        "_dir",
        "_directory",
        "_directories",
        "_command",
        "_library",
        "_libraries",
        "_keyfile",
        "_conninfo",
        "_path",
        "_filename",
    ];
    const EXACT: &[&str] = &[
        "unix_socket_group",
        "unix_socket_permissions",
        "event_source",
        "primary_slot_name",
        "data_directory_mode",
    ];
    const INSIDE: &[&str] = &["secret", "password", "passwd", "token", "credential", "key"];
    // The caller's own identity, which sluice set for this transaction
    // (see `crate::principal`): nothing the caller does not know.
    if name == "search_path"
        || matches!(
            name.as_str(),
            "sluice.subject" | "sluice.issuer" | "sluice.key_id"
        )
        || name.starts_with("sluice.claim.")
    {
        return false;
    }
    name.starts_with("ssl")
        || SUFFIXES.iter().any(|s| name.ends_with(s))
        || EXACT.contains(&name.as_str())
        || INSIDE.iter().any(|s| name.contains(s))
}

/// Functions whose effect lives in the database session, not the
/// transaction: hypopg's hypothetical indexes, which would change the plans
/// of every later call on a pooled connection. Refused unless a plugin's
/// grant names them in `functions`. A plugin call's first statement that
/// calls one opens the call's session: that statement and the call's later
/// reads share one transaction on a connection of their own, closed after
/// the call (`gate::session`).
const SESSION_STATE: &[&str] = &[
    "hypopg_create_index",
    "hypopg_drop_index",
    "hypopg_reset",
    "hypopg_reset_index",
    "hypopg_hide_index",
    "hypopg_unhide_index",
    "hypopg_unhide_all_indexes",
];

/// Whether `name` (unqualified, any case) keeps state in the session: a
/// statement that calls it must run where that state cannot reach another
/// call ([`SESSION_STATE`]).
pub fn is_session_state(name: &str) -> bool {
    SESSION_STATE.iter().any(|f| f.eq_ignore_ascii_case(name))
}

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
    /// One plugin's `functions` allowance: names past the allowlist and
    /// the session-state class, never past either denylist.
    granted: Vec<String>,
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
            granted: Vec::new(),
        })
    }

    /// These rules with one plugin's allowance added (a grant's
    /// `functions`, patterns as in [`FunctionRules::new`]). A pattern that
    /// names a built-in denied function exactly is an error, since it
    /// could never apply.
    pub fn with_allowance(&self, patterns: &[String]) -> Result<FunctionRules, String> {
        let mut rules = self.clone();
        rules.granted = FunctionRules::new(Some(patterns), &[])?
            .allow
            .unwrap_or_default();
        if let Some(denied) = rules.granted.iter().find(|p| built_in_denied(p)) {
            return Err(format!(
                "functions: {denied} is on the built-in denylist, which no grant lifts"
            ));
        }
        Ok(rules)
    }

    fn granted(&self, name: &str) -> bool {
        self.granted.iter().any(|p| glob(p, name))
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
        if SESSION_STATE.contains(&name.as_str()) && !self.granted(&name) {
            return Err(Denial::new(
                "function-session-state",
                format!(
                    "function {name} keeps state in the database session; only a plugin whose \
                     grant allows it may call it (functions = [\"{name}\"] in its \
                     [plugins.grants.<plugin>])"
                ),
            ));
        }
        if let Some(allow) = &self.allow
            && !allow.iter().any(|p| glob(p, &name))
            && !self.granted(&name)
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
        for name in [
            "txid_current",
            "pg_current_xact_id",
            "pg_control_system",
            "pg_relation_filepath",
            "brin_summarize_range",
            "pg_stat_get_activity",
            "pg_stat_get_backend_activity",
        ] {
            assert_eq!(rules.check(name).unwrap_err().rule, "function-denylist");
        }
        assert!(rules.check("txid_current_if_assigned").is_ok());
        // Session state is refused as a class of its own, even under `*`.
        assert_eq!(
            rules.check("hypopg_create_index").unwrap_err().rule,
            "function-session-state"
        );
    }

    #[test]
    fn a_grants_allowance_lifts_session_state_and_the_allowlist_only() {
        let shared = FunctionRules::new(Some(&["lower".into()]), &["hypopg_reset".into()]).unwrap();
        let insight = shared.with_allowance(&["hypopg_*".into()]).unwrap();
        assert!(insight.check("hypopg_create_index").is_ok());
        assert!(insight.check("HYPOPG_DROP_INDEX").is_ok());
        assert!(insight.check("lower").is_ok());
        // Not the allowlist for other names, nor the operator's denylist.
        assert_eq!(
            insight.check("upper").unwrap_err().rule,
            "function-allowlist"
        );
        assert_eq!(
            insight.check("hypopg_reset").unwrap_err().rule,
            "function-denylist"
        );
        // Nor the built-in denylist, which it refuses to name.
        let wide = shared.with_allowance(&["*".into()]).unwrap();
        assert_eq!(
            wide.check("pg_read_file").unwrap_err().rule,
            "function-denylist"
        );
        assert!(shared.with_allowance(&["pg_read_file".into()]).is_err());
        assert!(shared.with_allowance(&["bad name".into()]).is_err());
        // The shared rules are untouched.
        assert_eq!(
            shared.check("hypopg_create_index").unwrap_err().rule,
            "function-session-state"
        );
    }

    #[test]
    fn settings_that_reveal_the_server_are_a_class() {
        for name in [
            "data_directory",
            "Config_File",
            "hba_file",
            "ident_file",
            "external_pid_file",
            "log_directory",
            "log_filename",
            "unix_socket_directories",
            "krb_server_keyfile",
            "dynamic_library_path",
            "shared_preload_libraries",
            "archive_command",
            "restore_command",
            "archive_library",
            "ssl_key_file",
            "ssl_ca_file",
            "primary_conninfo",
            "app.jwt_secret",
            "myapp.api_key",
        ] {
            assert!(sensitive_setting(name), "{name}");
        }
        for name in [
            "search_path",
            "server_version",
            "server_version_num",
            "TimeZone",
            "work_mem",
            "statement_timeout",
            "max_connections",
            "DateStyle",
            "transaction_read_only",
            // The caller's own identity.
            "sluice.key_id",
            "sluice.subject",
            "sluice.claim.api_token",
        ] {
            assert!(!sensitive_setting(name), "{name}");
        }
        // Any other custom setting is judged by its shape.
        assert!(sensitive_setting("sluice.signing_key"));
        assert!(sensitive_setting("sluice.claimed_secret"));
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
