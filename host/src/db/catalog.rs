//! Catalog reads: relations, their columns, keys, indexes and constraints.

use super::{DbError, Tx};

/// The kind of a relation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelationKind {
    Table,
    PartitionedTable,
    View,
    MaterializedView,
    ForeignTable,
}

impl RelationKind {
    fn from_relkind(k: &str) -> Option<Self> {
        Some(match k {
            "r" => RelationKind::Table,
            "p" => RelationKind::PartitionedTable,
            "v" => RelationKind::View,
            "m" => RelationKind::MaterializedView,
            "f" => RelationKind::ForeignTable,
            _ => return None,
        })
    }
}

/// A relation, as listed.
#[derive(Debug, Clone, PartialEq)]
pub struct Relation {
    pub oid: u32,
    pub schema: String,
    pub name: String,
    pub kind: RelationKind,
    pub estimated_rows: Option<i64>,
    pub column_count: u32,
    pub comment: Option<String>,
}

/// A column of a relation.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnInfo {
    pub name: String,
    pub type_name: String,
    pub nullable: bool,
    pub default: Option<String>,
    pub comment: Option<String>,
    /// Generated (`GENERATED ALWAYS AS`) or identity `ALWAYS`: not insertable.
    pub generated: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ForeignKey {
    pub name: String,
    pub columns: Vec<String>,
    pub referenced_table: String,
    pub referenced_columns: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IndexInfo {
    pub name: String,
    pub definition: String,
    pub unique: bool,
    pub primary: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ConstraintInfo {
    pub name: String,
    pub kind: String,
    pub definition: String,
}

/// Everything about one relation.
#[derive(Debug, Clone, PartialEq)]
pub struct RelationDescription {
    pub relation: Relation,
    pub columns: Vec<ColumnInfo>,
    pub primary_key: Vec<String>,
    pub foreign_keys: Vec<ForeignKey>,
    pub indexes: Vec<IndexInfo>,
    pub constraints: Vec<ConstraintInfo>,
}

const RELATION_COLUMNS: &str = "c.oid::int8, n.nspname::text, c.relname::text, c.relkind::text, \
     CASE WHEN c.reltuples < 0 THEN NULL ELSE c.reltuples::int8 END, \
     (SELECT count(*) FROM pg_catalog.pg_attribute a \
        WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped)::int8, \
     pg_catalog.obj_description(c.oid, 'pg_class')";

type RelationRow = (
    i64,
    String,
    String,
    String,
    Option<i64>,
    i64,
    Option<String>,
);
/// name, type, nullable, default, comment, generated
type ColumnRow = (String, String, bool, Option<String>, Option<String>, bool);
/// name, kind, definition, columns, referenced table, referenced columns
type ConstraintRow = (
    String,
    String,
    String,
    Vec<String>,
    Option<String>,
    Vec<String>,
);

fn relation_from(row: RelationRow) -> Option<Relation> {
    let (oid, schema, name, kind, estimated_rows, columns, comment) = row;
    Some(Relation {
        oid: u32::try_from(oid).ok()?,
        schema,
        name,
        kind: RelationKind::from_relkind(&kind)?,
        estimated_rows,
        column_count: u32::try_from(columns).unwrap_or(u32::MAX),
        comment,
    })
}

impl Tx {
    /// Every user relation (tables, views, …) outside the system schemas,
    /// optionally only in `schema`, ordered by schema and name.
    pub async fn list_relations(&mut self, schema: Option<&str>) -> Result<Vec<Relation>, DbError> {
        let sql = format!(
            "SELECT {RELATION_COLUMNS} FROM pg_catalog.pg_class c \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r','p','v','m','f') AND NOT c.relispartition \
               AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%' \
               AND ($1::text IS NULL OR n.nspname = $1) \
             ORDER BY n.nspname, c.relname"
        );
        let rows: Vec<RelationRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(schema)
            .fetch_all(self.conn())
            .await?;
        Ok(rows.into_iter().filter_map(relation_from).collect())
    }

    /// The relation `schema.name`, if it exists.
    pub async fn relation(
        &mut self,
        schema: &str,
        name: &str,
    ) -> Result<Option<Relation>, DbError> {
        let sql = format!(
            "SELECT {RELATION_COLUMNS} FROM pg_catalog.pg_class c \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2"
        );
        let row: Option<RelationRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(schema)
            .bind(name)
            .fetch_optional(self.conn())
            .await?;
        Ok(row.and_then(relation_from))
    }

    /// The columns of relation `oid`, in order.
    pub async fn columns(&mut self, oid: u32) -> Result<Vec<ColumnInfo>, DbError> {
        let rows: Vec<ColumnRow> = sqlx::query_as(
            "SELECT a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod), \
                    NOT a.attnotnull, pg_catalog.pg_get_expr(d.adbin, d.adrelid), \
                    pg_catalog.col_description(a.attrelid, a.attnum), \
                    (a.attgenerated <> '' OR a.attidentity = 'a') \
             FROM pg_catalog.pg_attribute a \
             LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
             WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped \
             ORDER BY a.attnum",
        )
        .bind(i64::from(oid))
        .fetch_all(self.conn())
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(name, type_name, nullable, default, comment, generated)| ColumnInfo {
                    name,
                    type_name,
                    nullable,
                    default,
                    comment,
                    generated,
                },
            )
            .collect())
    }

    /// Columns, keys, indexes and constraints of `relation`.
    pub async fn describe(&mut self, relation: Relation) -> Result<RelationDescription, DbError> {
        let oid = i64::from(relation.oid);
        let columns = self.columns(relation.oid).await?;

        let constraints: Vec<ConstraintRow> =
            sqlx::query_as(
                "SELECT con.conname::text, con.contype::text, pg_catalog.pg_get_constraintdef(con.oid), \
                        ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(n, i) \
                              JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n \
                              ORDER BY k.i), \
                        CASE WHEN con.contype = 'f' THEN \
                          (SELECT fn.nspname || '.' || fc.relname FROM pg_catalog.pg_class fc \
                           JOIN pg_catalog.pg_namespace fn ON fn.oid = fc.relnamespace \
                           WHERE fc.oid = con.confrelid) END, \
                        ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(n, i) \
                              JOIN pg_catalog.pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n \
                              ORDER BY k.i) \
                 FROM pg_catalog.pg_constraint con \
                 WHERE con.conrelid = $1::oid ORDER BY con.contype, con.conname",
            )
            .bind(oid)
            .fetch_all(self.conn())
            .await?;

        let mut primary_key = Vec::new();
        let mut foreign_keys = Vec::new();
        let mut constraint_infos = Vec::new();
        for (name, kind, definition, cols, ref_table, ref_cols) in constraints {
            let kind_name = match kind.as_str() {
                "p" => {
                    primary_key = cols.clone();
                    "primary-key"
                }
                "f" => {
                    foreign_keys.push(ForeignKey {
                        name: name.clone(),
                        columns: cols.clone(),
                        referenced_table: ref_table.unwrap_or_default(),
                        referenced_columns: ref_cols,
                    });
                    "foreign-key"
                }
                "u" => "unique",
                "c" => "check",
                "x" => "exclusion",
                "t" => "trigger",
                _ => "other",
            };
            constraint_infos.push(ConstraintInfo {
                name,
                kind: kind_name.to_string(),
                definition,
            });
        }

        let indexes: Vec<(String, String, bool, bool)> = sqlx::query_as(
            "SELECT ic.relname::text, pg_catalog.pg_get_indexdef(i.indexrelid), i.indisunique, i.indisprimary \
             FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid \
             WHERE i.indrelid = $1::oid ORDER BY ic.relname",
        )
        .bind(oid)
        .fetch_all(self.conn())
        .await?;

        Ok(RelationDescription {
            relation,
            columns,
            primary_key,
            foreign_keys,
            indexes: indexes
                .into_iter()
                .map(|(name, definition, unique, primary)| IndexInfo {
                    name,
                    definition,
                    unique,
                    primary,
                })
                .collect(),
            constraints: constraint_infos,
        })
    }
}
