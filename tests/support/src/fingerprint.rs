//! A fingerprint of a database, to prove that a refused or rolled-back
//! statement changed nothing.

use sqlx::{AssertSqlSafe, Connection as _};

use crate::db::connect;

/// A description of everything in the database's own schemas: their
/// objects, definitions and privileges, a digest of every table's rows, and
/// sequence positions. Equal fingerprints mean "nothing changed".
///
/// One line per fact, so a failed `assert_eq!` shows what changed. Privileges
/// are compared as granted, so a GRANT undone by a REVOKE leaves no trace.
pub async fn fingerprint(url: &str) -> String {
    let mut conn = connect(url).await;
    let mut out = Vec::new();
    for (section, sql) in FINGERPRINT_QUERIES {
        let lines: Vec<String> = sqlx::query_scalar(*sql)
            .fetch_all(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("fingerprint ({section}): {e}"));
        out.extend(lines.into_iter().map(|line| format!("{section}: {line}")));
    }

    let tables: Vec<String> = sqlx::query_scalar(FINGERPRINT_TABLES)
        .fetch_all(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("fingerprint (tables): {e}"));
    for table in tables {
        // `(r.*)`, not a bare `r`: that would name a column called `r`.
        let sql = format!(
            "SELECT count(*) || ' rows, md5 ' \
                 || md5(coalesce(string_agg((r.*)::text, '|' ORDER BY (r.*)::text), '')) \
             FROM {table} AS r"
        );
        let digest: String = sqlx::query_scalar(AssertSqlSafe(sql))
            .fetch_one(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("fingerprint (rows of {table}): {e}"));
        out.push(format!("rows: {table}: {digest}"));
    }

    // Read from the sequences themselves: `pg_sequences` shows no value
    // before the first `nextval`, even after a `setval(…, false)`.
    let sequences: Vec<String> = sqlx::query_scalar(FINGERPRINT_SEQUENCES)
        .fetch_all(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("fingerprint (sequences): {e}"));
    for sequence in sequences {
        let sql = format!("SELECT last_value || ' called=' || is_called FROM {sequence}");
        let state: String = sqlx::query_scalar(AssertSqlSafe(sql))
            .fetch_one(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("fingerprint (state of {sequence}): {e}"));
        out.push(format!("sequence state: {sequence}: {state}"));
    }
    let _ = conn.close().await;
    out.join("\n")
}

/// SQL condition on `n` (a `pg_namespace` row): not one of PostgreSQL's own schemas.
macro_rules! user_schema {
    () => {
        "n.nspname NOT IN ('pg_catalog', 'information_schema') \
         AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'"
    };
}

/// Tables and materialized views whose rows are digested, quoted for SQL.
const FINGERPRINT_TABLES: &str = concat!(
    "SELECT format('%I.%I', n.nspname, c.relname) \
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE (c.relkind = 'r' OR (c.relkind = 'm' AND c.relispopulated)) AND ",
    user_schema!(),
    " ORDER BY 1"
);

/// Sequences whose state is read, quoted for SQL.
const FINGERPRINT_SEQUENCES: &str = concat!(
    "SELECT format('%I.%I', n.nspname, c.relname) \
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE c.relkind = 'S' AND ",
    user_schema!(),
    " ORDER BY 1"
);

/// Each query yields ordered text lines describing one kind of object. (Row
/// and array types are left out: they follow their tables and element types.)
const FINGERPRINT_QUERIES: &[(&str, &str)] = &[
    (
        "schema",
        concat!(
            "SELECT format('%I owner=%s acl=%s', n.nspname, pg_get_userbyid(n.nspowner), \
                    coalesce(n.nspacl, acldefault('n', n.nspowner))::text) \
             FROM pg_namespace n WHERE ",
            user_schema!(),
            " ORDER BY 1"
        ),
    ),
    (
        "relation",
        concat!(
            "SELECT format('%I.%I kind=%s populated=%s owner=%s acl=%s rls=%s', n.nspname, c.relname, \
                    c.relkind, c.relispopulated, pg_get_userbyid(c.relowner), \
                    coalesce(c.relacl, acldefault( \
                        CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END::\"char\", c.relowner))::text, \
                    c.relrowsecurity) \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE ",
            user_schema!(),
            " ORDER BY 1"
        ),
    ),
    (
        "column",
        concat!(
            "SELECT format('%I.%I.%I %s notnull=%s default=%s', n.nspname, c.relname, \
                    a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, \
                    pg_get_expr(d.adbin, d.adrelid)) \
             FROM pg_attribute a \
             JOIN pg_class c ON c.oid = a.attrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
             WHERE a.attnum > 0 AND NOT a.attisdropped \
               AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'c') AND ",
            user_schema!(),
            " ORDER BY n.nspname, c.relname, a.attnum"
        ),
    ),
    (
        "constraint",
        concat!(
            "SELECT format('%I.%I %I %s', n.nspname, c.relname, k.conname, \
                    pg_get_constraintdef(k.oid, true)) \
             FROM pg_constraint k \
             JOIN pg_class c ON c.oid = k.conrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE ",
            user_schema!(),
            " ORDER BY 1"
        ),
    ),
    (
        "index",
        concat!(
            "SELECT pg_get_indexdef(i.indexrelid) \
             FROM pg_index i \
             JOIN pg_class c ON c.oid = i.indexrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE ",
            user_schema!(),
            " ORDER BY 1"
        ),
    ),
    (
        "view",
        concat!(
            "SELECT format('%I.%I %s', n.nspname, c.relname, pg_get_viewdef(c.oid, true)) \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('v', 'm') AND ",
            user_schema!(),
            " ORDER BY 1"
        ),
    ),
    (
        "trigger",
        concat!(
            "SELECT pg_get_triggerdef(t.oid, true) \
             FROM pg_trigger t \
             JOIN pg_class c ON c.oid = t.tgrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE NOT t.tgisinternal AND ",
            user_schema!(),
            " ORDER BY 1"
        ),
    ),
    (
        "policy",
        concat!(
            "SELECT format('%I.%I %I cmd=%s permissive=%s roles=%s using=%s check=%s', \
                    n.nspname, c.relname, p.polname, p.polcmd, p.polpermissive, \
                    p.polroles::text, pg_get_expr(p.polqual, p.polrelid), \
                    pg_get_expr(p.polwithcheck, p.polrelid)) \
             FROM pg_policy p \
             JOIN pg_class c ON c.oid = p.polrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE ",
            user_schema!(),
            " ORDER BY 1"
        ),
    ),
    (
        "function",
        concat!(
            "SELECT format('%I.%I(%s) owner=%s acl=%s md5=%s', n.nspname, p.proname, \
                    pg_get_function_identity_arguments(p.oid), pg_get_userbyid(p.proowner), \
                    coalesce(p.proacl, acldefault('f', p.proowner))::text, \
                    md5(pg_get_functiondef(p.oid))) \
             FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
             WHERE p.prokind IN ('f', 'p', 'w') AND ",
            user_schema!(),
            " ORDER BY 1"
        ),
    ),
    (
        "type",
        concat!(
            "SELECT format('%I.%I kind=%s base=%s notnull=%s default=%s labels=%s checks=%s', \
                    n.nspname, t.typname, t.typtype, \
                    CASE t.typtype WHEN 'd' THEN format_type(t.typbasetype, t.typtypmod) END, \
                    t.typnotnull, t.typdefault, \
                    (SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) \
                     FROM pg_enum e WHERE e.enumtypid = t.oid), \
                    (SELECT string_agg(pg_get_constraintdef(k.oid, true), ' ' ORDER BY k.conname) \
                     FROM pg_constraint k WHERE k.contypid = t.oid)) \
             FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace \
             LEFT JOIN pg_class r ON r.oid = t.typrelid \
             WHERE t.typcategory <> 'A' AND coalesce(r.relkind = 'c', true) AND ",
            user_schema!(),
            " ORDER BY 1"
        ),
    ),
    (
        // Objects created after initdb have OIDs from 16384 (FirstNormalObjectId).
        "comment",
        "SELECT format('%s: %s', pg_describe_object(d.classoid, d.objoid, d.objsubid), \
                d.description) \
         FROM pg_description d WHERE d.objoid >= 16384 ORDER BY 1",
    ),
    (
        "sequence",
        "SELECT format('%I.%I start=%s increment=%s min=%s max=%s cycle=%s', schemaname, \
                sequencename, start_value, increment_by, min_value, max_value, cycle) \
         FROM pg_sequences ORDER BY 1",
    ),
    (
        "extension",
        "SELECT format('%I %s', extname, extversion) FROM pg_extension ORDER BY 1",
    ),
];
