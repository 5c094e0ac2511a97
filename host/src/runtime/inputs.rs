//! The checks every database host call's arguments pass at the boundary,
//! before any of them reaches the gate or PostgreSQL.
//!
//! The limits are PostgreSQL's own (it would refuse more anyway, but only
//! after the host had walked, rendered and sent it) or, where PostgreSQL has
//! none that applies, generous bounds no honest plugin meets. A violation is
//! the plugin's mistake: [`InvalidInput`] says which argument was wrong and how.

use super::bindings::sluice::plugin::types::{ArrayValue, Scalar, Value};
use std::fmt;

/// Dimensions of an array: PostgreSQL's `MAXDIM`.
pub const MAX_DIMS: usize = 6;
/// Elements of an array: PostgreSQL's `MaxArraySize`.
pub const MAX_ARRAY_ITEMS: usize = 134_217_727;
/// Parameters of a statement: the protocol counts them in 16 bits.
pub const MAX_PARAMS: usize = 65_535;
/// Columns one write may name in its values or its filter: PostgreSQL's
/// `MaxHeapAttributeNumber`, the most a table can have.
pub const MAX_COLUMNS: usize = 1_600;
/// Bytes of a relation, schema or column name, quoted or qualified (the
/// gate's relation-name parser takes no more either).
pub const MAX_NAME_BYTES: usize = 1_024;
/// Bytes of a `config.get` key.
pub const MAX_CONFIG_KEY_BYTES: usize = 1_024;
/// Bytes of text and binary data in one call: PostgreSQL's `MaxAllocSize`
/// less one, the largest message (and value) it accepts.
pub const MAX_CALL_BYTES: usize = 0x3FFF_FFFF;

/// A host call argument that broke a boundary rule.
#[derive(Debug, thiserror::Error)]
#[error("{place} {problem}")]
pub struct InvalidInput {
    place: Place,
    problem: Problem,
}

/// Which argument was wrong.
#[derive(Debug)]
enum Place {
    Params,
    /// 1-based, as in `$1`.
    Param(usize),
    Table,
    Schema,
    Relation,
    /// The column list of `values` or `filter`.
    Pairs(List),
    /// 1-based position in a column list.
    ColumnName(List, usize),
    ValueOf(List, String),
    /// 1-based element of an array argument.
    Item(Box<Place>, usize),
    Call,
    ConfigKey,
}

/// Which column list of a write.
#[derive(Debug, Clone, Copy)]
pub enum List {
    Values,
    Filter,
}

impl fmt::Display for List {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            List::Values => "values",
            List::Filter => "filter",
        })
    }
}

/// A name as it appears in a message: clipped and escaped, so that what the
/// plugin sent cannot make the message huge or break its line.
fn shown(name: &str) -> String {
    const MAX: usize = 64;
    match name.char_indices().nth(MAX) {
        Some((end, _)) => format!("{:?}…", &name[..end]),
        None => format!("{name:?}"),
    }
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Params => f.write_str("the parameter list"),
            Place::Param(n) => write!(f, "parameter ${n}"),
            Place::Table => f.write_str("the table name"),
            Place::Schema => f.write_str("the schema name"),
            Place::Relation => f.write_str("the relation name"),
            Place::Pairs(list) => write!(f, "the {list} list"),
            Place::ColumnName(list, n) => write!(f, "column name {n} of the {list}"),
            Place::ValueOf(list, column) => {
                write!(f, "the {list} value for column {}", shown(column))
            }
            Place::Item(of, n) => write!(f, "{of} (array item {n})"),
            Place::Call => f.write_str("the call"),
            Place::ConfigKey => f.write_str("the config key"),
        }
    }
}

/// What was wrong with it.
#[derive(Debug)]
enum Problem {
    TooManyDims(usize),
    ItemsWithoutDims(usize),
    ZeroDim { dim: usize },
    Shape { dims: Vec<u32>, items: usize },
    TooManyItems(usize),
    Nul { at: usize },
    Empty,
    NameTooLong(usize),
    KeyTooLong(usize),
    TooManyParams(usize),
    TooManyColumns(usize),
    TooLarge,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::TooManyDims(n) => write!(
                f,
                "is an array of {n} dimensions; PostgreSQL allows at most {MAX_DIMS}"
            ),
            Problem::ItemsWithoutDims(n) => write!(
                f,
                "is an array of {n} items without dimensions; dims must give the length \
                 of each dimension (an empty array has neither)"
            ),
            Problem::ZeroDim { dim } => write!(
                f,
                "is an array with items whose dimension {dim} has length 0; every \
                 dimension of a non-empty array is at least 1"
            ),
            Problem::Shape { dims, items } => {
                let product = dims
                    .iter()
                    .try_fold(1usize, |acc, &d| acc.checked_mul(d as usize));
                match product {
                    Some(p) => write!(
                        f,
                        "is an array of dimensions {dims:?}, which hold {p} items, \
                         but it has {items}"
                    ),
                    None => write!(
                        f,
                        "is an array of dimensions {dims:?}, which hold more than \
                         {} items, but it has {items}",
                        usize::MAX
                    ),
                }
            }
            Problem::TooManyItems(n) => write!(
                f,
                "is an array of {n} items; PostgreSQL allows at most {MAX_ARRAY_ITEMS}"
            ),
            Problem::Nul { at } => write!(
                f,
                "contains a NUL character (byte {at}); PostgreSQL does not accept NUL in text"
            ),
            Problem::Empty => f.write_str("is empty"),
            Problem::NameTooLong(n) => {
                write!(f, "is {n} bytes long; names are at most {MAX_NAME_BYTES}")
            }
            Problem::KeyTooLong(n) => write!(
                f,
                "is {n} bytes long; config keys are at most {MAX_CONFIG_KEY_BYTES}"
            ),
            Problem::TooManyParams(n) => write!(
                f,
                "has {n} parameters; PostgreSQL's protocol allows at most {MAX_PARAMS}"
            ),
            Problem::TooManyColumns(n) => write!(
                f,
                "has {n} columns; PostgreSQL allows at most {MAX_COLUMNS}"
            ),
            Problem::TooLarge => write!(
                f,
                "carries more than {MAX_CALL_BYTES} bytes of text and binary data, \
                 the most PostgreSQL accepts in one message"
            ),
        }
    }
}

fn invalid(place: Place, problem: Problem) -> InvalidInput {
    InvalidInput { place, problem }
}

/// Counts the bytes of text and binary data of one call against
/// [`MAX_CALL_BYTES`], and checks each piece on the way.
struct Checker {
    bytes: usize,
}

impl Checker {
    fn new() -> Self {
        Checker { bytes: 0 }
    }

    fn count(&mut self, len: usize) -> Result<(), InvalidInput> {
        self.bytes = self.bytes.saturating_add(len);
        if self.bytes > MAX_CALL_BYTES {
            return Err(invalid(Place::Call, Problem::TooLarge));
        }
        Ok(())
    }

    /// Text bound for PostgreSQL: counted, and free of NUL.
    fn text(&mut self, text: &str, place: impl FnOnce() -> Place) -> Result<(), InvalidInput> {
        self.count(text.len())?;
        match text.find('\0') {
            Some(at) => Err(invalid(place(), Problem::Nul { at })),
            None => Ok(()),
        }
    }

    /// A relation, schema or column name.
    fn name(&mut self, name: &str, place: impl Fn() -> Place) -> Result<(), InvalidInput> {
        if name.is_empty() {
            return Err(invalid(place(), Problem::Empty));
        }
        if name.len() > MAX_NAME_BYTES {
            return Err(invalid(place(), Problem::NameTooLong(name.len())));
        }
        self.text(name, place)
    }

    fn scalar(&mut self, s: &Scalar, place: impl FnOnce() -> Place) -> Result<(), InvalidInput> {
        match s {
            Scalar::Null | Scalar::Boolean(_) | Scalar::Int(_) | Scalar::Float(_) => Ok(()),
            // Binary data may hold any byte.
            Scalar::Bytes(b) => self.count(b.len()),
            Scalar::Numeric(t)
            | Scalar::Text(t)
            | Scalar::Json(t)
            | Scalar::Uuid(t)
            | Scalar::Date(t)
            | Scalar::Time(t)
            | Scalar::Timestamp(t)
            | Scalar::Timestamptz(t)
            | Scalar::Interval(t) => self.text(t, place),
        }
    }

    fn value(&mut self, v: &Value, place: impl Fn() -> Place) -> Result<(), InvalidInput> {
        match v {
            Value::Scalar(s) => self.scalar(s, place),
            Value::Array(a) => {
                array_shape(a).map_err(|problem| invalid(place(), problem))?;
                for (i, item) in a.items.iter().enumerate() {
                    self.scalar(item, || Place::Item(Box::new(place()), i + 1))?;
                }
                Ok(())
            }
        }
    }

    fn pairs(&mut self, list: List, pairs: &[(String, Value)]) -> Result<(), InvalidInput> {
        if pairs.len() > MAX_COLUMNS {
            return Err(invalid(
                Place::Pairs(list),
                Problem::TooManyColumns(pairs.len()),
            ));
        }
        for (i, (column, value)) in pairs.iter().enumerate() {
            self.name(column, || Place::ColumnName(list, i + 1))?;
            self.value(value, || Place::ValueOf(list, column.clone()))?;
        }
        Ok(())
    }
}

/// An array's `dims` must be at most [`MAX_DIMS`] long and account for
/// exactly its items. An empty array has no items; its dims may be empty or
/// hold a zero (the SDK sends `[0]` for a JSON `[]`).
fn array_shape(a: &ArrayValue) -> Result<(), Problem> {
    let (dims, items) = (&a.dims, a.items.len());
    // First, so that nothing below walks or prints a huge `dims`.
    if dims.len() > MAX_DIMS {
        return Err(Problem::TooManyDims(dims.len()));
    }
    if dims.is_empty() {
        return match items {
            0 => Ok(()),
            n => Err(Problem::ItemsWithoutDims(n)),
        };
    }
    if items > 0
        && let Some(dim) = dims.iter().position(|&d| d == 0)
    {
        return Err(Problem::ZeroDim { dim: dim + 1 });
    }
    let product = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(usize::try_from(d).ok()?));
    if product != Some(items) {
        return Err(Problem::Shape {
            dims: dims.clone(),
            items,
        });
    }
    if items > MAX_ARRAY_ITEMS {
        return Err(Problem::TooManyItems(items));
    }
    Ok(())
}

/// `database.query`.
pub fn query(sql: &str, params: &[Value]) -> Result<(), InvalidInput> {
    if params.len() > MAX_PARAMS {
        return Err(invalid(Place::Params, Problem::TooManyParams(params.len())));
    }
    let mut check = Checker::new();
    // Counted only: the policy refuses a NUL in SQL itself, by a named rule
    // the audit trail records, like every other statement it refuses.
    check.count(sql.len())?;
    for (i, param) in params.iter().enumerate() {
        check.value(param, || Place::Param(i + 1))?;
    }
    Ok(())
}

/// `database.insert`, `update` and `delete`: the table and each column list.
pub fn write(table: &str, lists: &[(List, &[(String, Value)])]) -> Result<(), InvalidInput> {
    let mut check = Checker::new();
    check.name(table, || Place::Table)?;
    for (list, pairs) in lists {
        check.pairs(*list, pairs)?;
    }
    Ok(())
}

/// `database.list-relations`.
pub fn schema(schema: Option<&str>) -> Result<(), InvalidInput> {
    match schema {
        Some(schema) => Checker::new().name(schema, || Place::Schema),
        None => Ok(()),
    }
}

/// `database.describe-relation`.
pub fn relation(name: &str) -> Result<(), InvalidInput> {
    Checker::new().name(name, || Place::Relation)
}

/// `config.get`. The key never reaches PostgreSQL, so any character may be
/// in it; only its length is bounded.
pub fn config_key(key: &str) -> Result<(), InvalidInput> {
    if key.len() > MAX_CONFIG_KEY_BYTES {
        return Err(invalid(Place::ConfigKey, Problem::KeyTooLong(key.len())));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn array(dims: Vec<u32>, items: usize) -> Value {
        Value::Array(ArrayValue {
            dims,
            items: vec![Scalar::Int(1); items],
        })
    }

    fn text(s: &str) -> Value {
        Value::Scalar(Scalar::Text(s.into()))
    }

    fn query_err(sql: &str, params: &[Value]) -> String {
        query(sql, params)
            .expect_err("the call should be refused")
            .to_string()
    }

    #[test]
    fn arrays_of_every_valid_shape_pass() {
        for (dims, items) in [
            (vec![], 0),
            (vec![0], 0),
            (vec![2, 0], 0),
            (vec![3], 3),
            (vec![2, 3], 6),
            (vec![1; 6], 1),
        ] {
            let what = format!("{dims:?}/{items}");
            query("SELECT $1", &[array(dims, items)]).expect(&what);
        }
    }

    #[test]
    fn arrays_of_too_many_dimensions_are_refused_before_anything_walks_them() {
        assert_eq!(
            query_err("SELECT $1", &[array(vec![1; 100_000], 1)]),
            "parameter $1 is an array of 100000 dimensions; PostgreSQL allows at most 6"
        );
        assert_eq!(
            query_err("SELECT $1", &[array(vec![1; 7], 1)]),
            "parameter $1 is an array of 7 dimensions; PostgreSQL allows at most 6"
        );
    }

    #[test]
    fn arrays_whose_dims_do_not_account_for_their_items_are_refused() {
        assert_eq!(
            query_err("SELECT $1, $2", &[text("x"), array(vec![2, 2], 3)]),
            "parameter $2 is an array of dimensions [2, 2], which hold 4 items, but it has 3"
        );
        assert!(
            query_err("SELECT $1", &[array(vec![], 2)]).contains("of 2 items without dimensions")
        );
        assert!(
            query_err("SELECT $1", &[array(vec![2, 0], 1)]).contains("dimension 2 has length 0")
        );
        // The product overflows: checked, not wrapped into a match.
        assert!(
            query_err("SELECT $1", &[array(vec![u32::MAX; 6], 1)]).contains("which hold more than")
        );
        assert!(
            query_err(
                "SELECT $1",
                &[array(vec![65_536, 65_536, 65_536, 65_536], 0)]
            )
            .contains("but it has 0")
        );
    }

    #[test]
    fn nul_is_refused_wherever_text_goes_to_postgresql() {
        // SQL text is the policy's to refuse (rule `parse`).
        assert!(query("SELECT 1\0; DROP TABLE t", &[]).is_ok());
        assert!(query_err("SELECT $1", &[text("a\0")]).starts_with("parameter $1 contains a NUL"));
        let items = Value::Array(ArrayValue {
            dims: vec![2],
            items: vec![Scalar::Int(1), Scalar::Date("2024\0".into())],
        });
        assert!(
            query_err("SELECT $1", &[items]).starts_with("parameter $1 (array item 2) contains")
        );
        // Binary data may hold NUL.
        query("SELECT $1", &[Value::Scalar(Scalar::Bytes(vec![0; 4]))]).unwrap();
        for scalar in [
            Scalar::Numeric("1\0".into()),
            Scalar::Json("\"\0\"".into()),
            Scalar::Uuid("\0".into()),
            Scalar::Time("\0".into()),
            Scalar::Timestamp("\0".into()),
            Scalar::Timestamptz("\0".into()),
            Scalar::Interval("\0".into()),
        ] {
            let what = format!("{scalar:?}");
            assert!(
                query("SELECT $1", &[Value::Scalar(scalar)]).is_err(),
                "{what}"
            );
        }
        assert!(
            write("t", &[(List::Values, &[("a".into(), text("\0"))])])
                .unwrap_err()
                .to_string()
                .starts_with("the values value for column \"a\" contains a NUL")
        );
        assert!(schema(Some("pub\0lic")).is_err());
        assert!(relation("t\0").is_err());
    }

    #[test]
    fn parameter_lists_are_bounded_by_the_protocol() {
        query("SELECT 1", &vec![Value::Scalar(Scalar::Null); MAX_PARAMS]).unwrap();
        assert_eq!(
            query_err(
                "SELECT 1",
                &vec![Value::Scalar(Scalar::Null); MAX_PARAMS + 1]
            ),
            "the parameter list has 65536 parameters; PostgreSQL's protocol allows at most 65535"
        );
    }

    #[test]
    fn names_and_column_lists_are_bounded() {
        let many: Vec<(String, Value)> = (0..=MAX_COLUMNS)
            .map(|i| (format!("c{i}"), text("x")))
            .collect();
        write("t", &[(List::Values, &many[..MAX_COLUMNS])]).unwrap();
        assert_eq!(
            write("t", &[(List::Filter, &many)])
                .unwrap_err()
                .to_string(),
            "the filter list has 1601 columns; PostgreSQL allows at most 1600"
        );
        assert_eq!(
            write(&"t".repeat(MAX_NAME_BYTES + 1), &[])
                .unwrap_err()
                .to_string(),
            "the table name is 1025 bytes long; names are at most 1024"
        );
        write(&"t".repeat(MAX_NAME_BYTES), &[]).unwrap();
        assert_eq!(
            write("t", &[(List::Values, &[("".into(), text("x"))])])
                .unwrap_err()
                .to_string(),
            "column name 1 of the values is empty"
        );
        assert!(write("", &[]).is_err());
        assert!(schema(Some("")).is_err());
        assert!(relation(&"r".repeat(5000)).is_err());
        assert!(config_key(&"k".repeat(MAX_CONFIG_KEY_BYTES)).is_ok());
        assert!(config_key(&"k".repeat(MAX_CONFIG_KEY_BYTES + 1)).is_err());
        // A NUL in a key goes nowhere near PostgreSQL.
        assert!(config_key("a\0b").is_ok());
    }

    #[test]
    fn a_column_name_in_a_message_is_clipped_and_escaped() {
        let long = format!("{}\n", "x".repeat(500));
        let e = write("t", &[(List::Filter, &[(long, text("\0"))])])
            .unwrap_err()
            .to_string();
        assert!(e.len() < 200, "{e}");
        assert!(!e.contains('\n'), "{e}");
    }

    #[test]
    fn the_bytes_of_one_call_are_bounded() {
        let mut check = Checker::new();
        check.count(MAX_CALL_BYTES).unwrap();
        assert_eq!(
            check.count(1).unwrap_err().to_string(),
            "the call carries more than 1073741823 bytes of text and binary data, \
             the most PostgreSQL accepts in one message"
        );
    }
}
