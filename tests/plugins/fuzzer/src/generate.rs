//! A small deterministic generator of hostile host-call arguments: the same
//! seed gives the same calls on every machine, so a seed is a reproduction.

use sluice_sdk::bindings::sluice::plugin::log::Level;
use sluice_sdk::bindings::sluice::plugin::types::{ArrayValue, Scalar, Value};

/// SplitMix64: tiny, fast, and good enough to pick test cases.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    pub fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// One host call, with its arguments.
pub enum Call {
    Query {
        sql: String,
        params: Vec<Value>,
    },
    Insert {
        table: String,
        values: Vec<(String, Value)>,
    },
    Update {
        table: String,
        filter: Vec<(String, Value)>,
        values: Vec<(String, Value)>,
        max_rows: Option<u32>,
    },
    Delete {
        table: String,
        filter: Vec<(String, Value)>,
        max_rows: Option<u32>,
    },
    ListRelations {
        schema: Option<String>,
    },
    DescribeRelation {
        name: String,
    },
    Log {
        level: Level,
        message: String,
    },
    ConfigGet {
        key: String,
    },
}

impl Call {
    /// The import this call goes to.
    pub fn import(&self) -> &'static str {
        match self {
            Call::Query { .. } => "query",
            Call::Insert { .. } => "insert",
            Call::Update { .. } => "update",
            Call::Delete { .. } => "delete",
            Call::ListRelations { .. } => "list-relations",
            Call::DescribeRelation { .. } => "describe-relation",
            Call::Log { .. } => "log",
            Call::ConfigGet { .. } => "config.get",
        }
    }

    /// A one-line sketch of the call, for reproducing a failure.
    pub fn sketch(&self) -> String {
        let pairs = |p: &[(String, Value)]| {
            let shown: Vec<String> = p
                .iter()
                .take(4)
                .map(|(k, v)| format!("{}={}", sketch_str(k), sketch_value(v)))
                .collect();
            format!("{} pairs [{}]", p.len(), shown.join(", "))
        };
        match self {
            Call::Query { sql, params } => {
                let shown: Vec<String> = params.iter().take(4).map(sketch_value).collect();
                format!(
                    "query sql={} params({})=[{}]",
                    sketch_str(sql),
                    params.len(),
                    shown.join(", ")
                )
            }
            Call::Insert { table, values } => {
                format!("insert {} values {}", sketch_str(table), pairs(values))
            }
            Call::Update {
                table,
                filter,
                values,
                max_rows,
            } => format!(
                "update {} filter {} values {} max_rows={max_rows:?}",
                sketch_str(table),
                pairs(filter),
                pairs(values)
            ),
            Call::Delete {
                table,
                filter,
                max_rows,
            } => format!(
                "delete {} filter {} max_rows={max_rows:?}",
                sketch_str(table),
                pairs(filter)
            ),
            Call::ListRelations { schema } => {
                format!("list-relations {:?}", schema.as_deref().map(sketch_str))
            }
            Call::DescribeRelation { name } => format!("describe-relation {}", sketch_str(name)),
            Call::Log { message, .. } => format!("log {}", sketch_str(message)),
            Call::ConfigGet { key } => format!("config.get {}", sketch_str(key)),
        }
    }
}

fn sketch_str(s: &str) -> String {
    let head: String = s.chars().take(40).collect();
    if head.len() == s.len() {
        format!("{head:?}")
    } else {
        format!("{head:?}…({} bytes)", s.len())
    }
}

fn sketch_scalar(s: &Scalar) -> String {
    match s {
        Scalar::Null => "null".into(),
        Scalar::Boolean(b) => format!("bool {b}"),
        Scalar::Int(i) => format!("int {i}"),
        Scalar::Float(f) => format!("float {f}"),
        Scalar::Bytes(b) => format!("bytes({})", b.len()),
        Scalar::Numeric(t) => format!("numeric {}", sketch_str(t)),
        Scalar::Text(t) => format!("text {}", sketch_str(t)),
        Scalar::Json(t) => format!("json {}", sketch_str(t)),
        Scalar::Uuid(t) => format!("uuid {}", sketch_str(t)),
        Scalar::Date(t) => format!("date {}", sketch_str(t)),
        Scalar::Time(t) => format!("time {}", sketch_str(t)),
        Scalar::Timestamp(t) => format!("timestamp {}", sketch_str(t)),
        Scalar::Timestamptz(t) => format!("timestamptz {}", sketch_str(t)),
        Scalar::Interval(t) => format!("interval {}", sketch_str(t)),
    }
}

fn sketch_value(v: &Value) -> String {
    match v {
        Value::Scalar(s) => sketch_scalar(s),
        Value::Array(a) => {
            let dims: Vec<String> = a.dims.iter().take(6).map(u32::to_string).collect();
            format!(
                "array dims({})=[{}] items({}) first={}",
                a.dims.len(),
                dims.join(","),
                a.items.len(),
                a.items.first().map_or("-".into(), sketch_scalar)
            )
        }
    }
}

/// SQL pieces: keywords, names of the test schema, quotes, comments,
/// placeholders, forbidden functions and odd characters.
const FRAGMENTS: &[&str] = &[
    "SELECT",
    " ",
    "1",
    "*",
    "FROM",
    "fuzz_items",
    "fuzz_scratch",
    "WHERE",
    "id",
    "=",
    "$1",
    "$2",
    "$0",
    "$65535",
    "$99999999999",
    "'",
    "''",
    "\"",
    ";",
    "--",
    "/*",
    "*/",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    "::",
    "int[]",
    "text",
    "jsonb",
    "UNION ALL",
    "VALUES",
    "WITH",
    "AS",
    "pg_sleep(1)",
    "DROP TABLE fuzz_items",
    "INSERT INTO fuzz_scratch",
    "DELETE FROM",
    "UPDATE",
    "SET",
    "COPY",
    "\0",
    "E'\\000'",
    "$$",
    "$q$",
    "EXPLAIN",
    "ANALYZE",
    "LOCK TABLE",
    "pg_catalog.pg_class",
    "information_schema.columns",
    "generate_series(1, 100000)",
    "current_setting('is_superuser')",
    "set_config('a.b','c',false)",
    "pg_read_file('/etc/passwd')",
    "ARRAY[",
    "ROW(",
    "NULL",
    "true",
    "1e308",
    "-9223372036854775808",
    "'NaN'",
    "'infinity'",
    "\\",
    "\n",
    "\t",
    "é",
    "😀",
    "\u{202e}",
    "\u{feff}",
    "ＳＥＬＥＣＴ",
    "ı",
    "\u{10ffff}",
    "U&'\\0000'",
    "\"\"",
    "a.b.c.d",
    "public.",
    ".",
];

/// Relation names: the test schema's, quoted and folded forms, the catalog's,
/// missing ones and malformed ones.
const TABLES: &[&str] = &[
    "fuzz_items",
    "public.fuzz_items",
    "fuzz_scratch",
    "public.fuzz_scratch",
    "FUZZ_SCRATCH",
    "\"fuzz_scratch\"",
    "\"Fuzz_Scratch\"",
    "pg_catalog.pg_class",
    "pg_class",
    "information_schema.tables",
    "missing",
    "public.missing",
    "a.b.c",
    "a.b.c.d",
    "",
    " ",
    ".",
    "public.",
    "fuzz_scratch;",
    "fuzz_scratch WHERE 1=1",
    "\"fuzz\0scratch\"",
    "fuzz_scratch\0",
];

/// Column names: real ones, system columns, odd and malformed ones.
const COLUMNS: &[&str] = &[
    "id",
    "name",
    "score",
    "tags",
    "grid",
    "doc",
    "docs",
    "created",
    "day",
    "span",
    "uid",
    "flag",
    "blob",
    "ratio",
    "small",
    "ID",
    "\"id\"",
    "",
    " ",
    "missing",
    "id; DROP TABLE x",
    "na\0me",
    "ctid",
    "xmin",
    "oid",
    "*",
];

/// PostgreSQL types to cast parameters to, so that values meet every
/// conversion path: binary encoders, text input, arrays and JSON.
const TYPES: &[&str] = &[
    "int2",
    "int4",
    "int8",
    "float4",
    "float8",
    "numeric",
    "numeric(4,2)",
    "text",
    "varchar(3)",
    "char",
    "bool",
    "bytea",
    "json",
    "jsonb",
    "uuid",
    "date",
    "time",
    "timetz",
    "timestamp",
    "timestamptz",
    "interval",
    "inet",
    "cidr",
    "tsvector",
    "money",
    "int4range",
    "point",
    "box",
    "oid",
    "int4[]",
    "int8[]",
    "text[]",
    "text[][]",
    "numeric[]",
    "float8[]",
    "bool[]",
    "bytea[]",
    "json[]",
    "jsonb[]",
    "uuid[]",
    "date[]",
    "timestamptz[]",
    "interval[]",
    "box[]",
    "int4[][][][][][]",
];

/// Statements over the test schema, with parameters.
const TEMPLATES: &[&str] = &[
    "SELECT * FROM fuzz_items WHERE id = $1",
    "SELECT * FROM fuzz_items WHERE tags && $1",
    "SELECT * FROM fuzz_items WHERE doc @> $1",
    "SELECT * FROM fuzz_items WHERE grid = $1",
    "SELECT $1 = ANY(tags) AS hit FROM fuzz_items",
    "SELECT count(*) AS n FROM fuzz_scratch",
    "SELECT * FROM fuzz_scratch WHERE name = $1 AND score > $2",
    "EXPLAIN SELECT * FROM fuzz_items",
    "EXPLAIN ANALYZE SELECT * FROM fuzz_items",
    "SELECT * FROM pg_catalog.pg_class",
    "WITH x AS (SELECT $1::int AS a) SELECT * FROM x",
    "VALUES ($1), ($2)",
    "TABLE fuzz_items",
    "SELECT array_dims($1::int[]) AS d",
    "SELECT $1::jsonb -> 'a' AS a",
    "SELECT * FROM fuzz_items, fuzz_items b, fuzz_items c",
    "SELECT generate_series(1, 100000) AS n",
    "SELECT pg_sleep(30)",
    "SELECT 1; SELECT 2",
    "INSERT INTO fuzz_scratch (name) VALUES ('x') RETURNING *",
    "SELECT set_config('role', 'postgres', true)",
    "SELECT * FROM fuzz_items WHERE name = $1 OR name = $2 OR name = $3",
];

const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "12.50",
    "NaN",
    "Infinity",
    "-Infinity",
    "1e400",
    "1e-400",
    "99999999999999999999999999999999999999",
    "0x1F",
    "+5",
    " 7 ",
    "1_000",
    "٣",
    "1.2.3",
    "",
];
const UUIDS: &[&str] = &[
    "00000000-0000-0000-0000-000000000000",
    "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
    "A0EEBC999C0B4EF8BB6D6BB9BD380A11",
    "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
    "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1",
    "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz",
];
const DATES: &[&str] = &[
    "2024-05-01",
    "-0043-03-15",
    "0000-01-01",
    "infinity",
    "-infinity",
    "2024-13-45",
    "5874897-12-31",
    "5874898-01-01",
    "-4713-11-24",
    "epoch",
    "today",
    "2024-05-01T13:45:00",
    "2024-05-01T11:45:00Z",
    "294277-01-01T00:00:00",
    "2024-05-01T13:45:00+99:00",
];
const TIMES: &[&str] = &[
    "13:45:00.25",
    "13:45:00+02:00",
    "24:00:00",
    "24:00:01",
    "allballs",
    "25:61:61",
];
const INTERVALS: &[&str] = &[
    "P1Y2M3DT4H5M6.5S",
    "PT0S",
    "P-1D",
    "P999999999999Y",
    "1 day",
    "@ 1 minute ago",
    "P",
];

/// The columns of `fuzz_scratch` and their types.
const SCRATCH: &[(&str, &str)] = &[
    ("id", "int4"),
    ("name", "text"),
    ("score", "numeric"),
    ("total", "numeric"),
    ("tags", "text[]"),
    ("grid", "int4[]"),
    ("doc", "jsonb"),
    ("docs", "json[]"),
    ("created", "timestamptz"),
    ("day", "date"),
    ("span", "interval"),
    ("uid", "uuid"),
    ("flag", "bool"),
    ("blob", "bytea"),
    ("ratio", "float8"),
    ("small", "int2"),
];

/// Produces arguments within a per-call byte budget, so a call stays well
/// inside the plugin's memory however the dice fall.
pub struct Gen {
    pub rng: Rng,
    budget: usize,
}

/// Bytes of long strings, deep arrays and huge lists one call may carry.
const CALL_BUDGET: usize = 4 << 20;

impl Gen {
    pub fn new(seed: u64) -> Self {
        Gen {
            rng: Rng::new(seed),
            budget: CALL_BUDGET,
        }
    }

    /// Whether `bytes` more fit in this call's budget; takes them if so.
    fn spend(&mut self, bytes: usize) -> bool {
        if bytes <= self.budget {
            self.budget -= bytes;
            true
        } else {
            false
        }
    }

    /// The next call, to any import.
    pub fn call(&mut self) -> Call {
        self.budget = CALL_BUDGET;
        match self.rng.below(100) {
            0..15 => {
                let params = self.params();
                let sql = self.sql(params.len());
                Call::Query { sql, params }
            }
            15..30 => self.typed_query(),
            30..45 if self.rng.one_in(2) => Call::Insert {
                table: self.scratch(),
                values: self.plausible_pairs(6),
            },
            30..45 => Call::Insert {
                table: self.table(),
                values: self.pairs(),
            },
            45..57 if self.rng.one_in(2) => Call::Update {
                table: self.scratch(),
                filter: self.plausible_filter(),
                values: self.plausible_pairs(4),
                max_rows: self.max_rows(),
            },
            45..57 => Call::Update {
                table: self.table(),
                filter: self.pairs(),
                values: self.pairs(),
                max_rows: self.max_rows(),
            },
            57..67 if self.rng.one_in(2) => Call::Delete {
                table: self.scratch(),
                filter: self.plausible_filter(),
                max_rows: self.max_rows(),
            },
            57..67 => Call::Delete {
                table: self.table(),
                filter: self.pairs(),
                max_rows: self.max_rows(),
            },
            67..75 => Call::ListRelations {
                schema: match self.rng.below(4) {
                    0 => None,
                    1 => Some("public".into()),
                    2 => Some(
                        self.rng
                            .pick(&["pg_catalog", "", "PUBLIC", "missing"])
                            .into(),
                    ),
                    _ => Some(self.string()),
                },
            },
            75..85 => Call::DescribeRelation { name: self.table() },
            85..92 => Call::Log {
                level: self.rng.pick(&[
                    Level::Trace,
                    Level::Debug,
                    Level::Info,
                    Level::Warn,
                    Level::Error,
                ]),
                message: self.string(),
            },
            _ => Call::ConfigGet {
                key: match self.rng.below(3) {
                    0 => self
                        .rng
                        .pick(&["greeting", "missing", "", "GREETING"])
                        .into(),
                    _ => self.string(),
                },
            },
        }
    }

    /// Any string: empty, SQL soup, random Unicode, long, JSON, typed-looking
    /// text, text with a NUL, or a name from the schema.
    pub fn string(&mut self) -> String {
        match self.rng.below(10) {
            0 => String::new(),
            1 | 2 => self.soup(),
            3 => {
                let n = self.rng.range(1, 40);
                (0..n)
                    .filter_map(|_| char::from_u32(self.rng.below(0x11_0000) as u32))
                    .collect()
            }
            4 => {
                let n = self.rng.range(1, 40);
                (0..n)
                    .map(|_| char::from(self.rng.range(0x20, 0x7e) as u8))
                    .collect()
            }
            5 => self.long(),
            6 => self.json_text(),
            7 => {
                let list = self.rng.pick(&[NUMBERS, UUIDS, DATES, TIMES, INTERVALS]);
                self.rng.pick(list).to_string()
            }
            8 => {
                let mut s = self.soup();
                let at = (0..=s.len())
                    .filter(|i| s.is_char_boundary(*i))
                    .nth(self.rng.below(4) as usize)
                    .unwrap_or(0);
                s.insert(at, '\0');
                s
            }
            _ => {
                let list = self.rng.pick(&[TABLES, COLUMNS]);
                self.rng.pick(list).to_string()
            }
        }
    }

    /// SQL fragments run together.
    fn soup(&mut self) -> String {
        let n = self.rng.range(1, 12);
        let mut s = String::new();
        for _ in 0..n {
            s.push_str(self.rng.pick(FRAGMENTS));
            if self.rng.one_in(2) {
                s.push(' ');
            }
        }
        s
    }

    /// A long repetition, around the limits the host and PostgreSQL have.
    fn long(&mut self) -> String {
        let len = self
            .rng
            .pick(&[1_024, 1_025, 4_097, 65_536, 262_145, 1_000_000]);
        if !self.spend(len) {
            return "budget".into();
        }
        let unit = self.rng.pick(&[
            "a",
            "é",
            "(",
            "[",
            "'",
            "\0",
            "SELECT 1 UNION ALL ",
            "😀",
            "$1,",
        ]);
        unit.repeat(len / unit.len() + 1)
    }

    /// JSON text: nested arrays and objects of any depth, ragged and mixed
    /// arrays, invalid JSON, scalars.
    fn json_text(&mut self) -> String {
        match self.rng.below(6) {
            0 | 1 => {
                let depth = self
                    .rng
                    .pick(&[1, 2, 6, 7, 64, 126, 127, 128, 129, 1_000, 100_000]);
                if !self.spend(depth * 2) {
                    return "[]".into();
                }
                let (open, close) = if self.rng.one_in(3) {
                    ("{\"a\":", "}")
                } else {
                    ("[", "]")
                };
                let inner = self.rng.pick(&["1", "", "\"x\"", "null", "[1,2]"]);
                format!("{}{inner}{}", open.repeat(depth), close.repeat(depth))
            }
            2 => self
                .rng
                .pick(&[
                    "[[1,2],[3,4]]",
                    "[[1],[2,3]]",
                    "[1,[2]]",
                    "[\"a\",null,true,1.5e300]",
                    "[[\"x\\u0000\"]]",
                    "[{\"a\":[1,[2]]},[3]]",
                    "[ [ 1 , 2 ] , [ 3 , 4 ] ]",
                    "[\"]\",\"[\",\"\\\"\"]",
                    "[[[[[[[1]]]]]]]",
                ])
                .into(),
            3 => self
                .rng
                .pick(&[
                    "[1,", "[[[", "]]", "{\"a\"", "nul\0l", "[1]x", "", "[\u{0}]",
                ])
                .into(),
            4 => self
                .rng
                .pick(&["null", "1", "\"s\"", "1e999", "-0", "true", "{}"])
                .into(),
            _ => {
                let mut out = String::new();
                self.json_nested(&mut out, 8);
                out
            }
        }
    }

    fn json_nested(&mut self, out: &mut String, depth: u32) {
        if depth == 0 || self.rng.one_in(3) {
            out.push_str(self.rng.pick(&["1", "null", "\"s\"", "2.5", "true", "{}"]));
            return;
        }
        out.push('[');
        let n = self.rng.below(4);
        for i in 0..n {
            if i > 0 {
                out.push(',');
            }
            self.json_nested(out, depth - 1);
        }
        out.push(']');
    }

    /// Text that looks like `list` most of the time, and anything otherwise.
    fn textual(&mut self, list: &[&str]) -> String {
        if self.rng.one_in(3) {
            self.string()
        } else {
            self.rng.pick(list).to_string()
        }
    }

    /// A scalar of any WIT case.
    pub fn scalar(&mut self) -> Scalar {
        let case = self.rng.below(14);
        self.scalar_case(case)
    }

    /// A scalar of WIT case number `case` (in the WIT's order).
    fn scalar_case(&mut self, case: u64) -> Scalar {
        match case {
            0 => Scalar::Null,
            1 => Scalar::Boolean(self.rng.one_in(2)),
            2 => Scalar::Int(if self.rng.one_in(2) {
                self.rng.pick(&[
                    0,
                    1,
                    -1,
                    i64::MIN,
                    i64::MAX,
                    i64::from(i32::MAX) + 1,
                    i64::from(i16::MIN) - 1,
                    4_294_967_296,
                ])
            } else {
                self.rng.next_u64() as i64
            }),
            3 => Scalar::Float(if self.rng.one_in(2) {
                self.rng.pick(&[
                    f64::NAN,
                    f64::INFINITY,
                    f64::NEG_INFINITY,
                    -0.0,
                    f64::MAX,
                    f64::MIN_POSITIVE,
                    5e-324,
                    1.5,
                    3.4028236e38,
                ])
            } else {
                f64::from_bits(self.rng.next_u64())
            }),
            4 => Scalar::Numeric(self.textual(NUMBERS)),
            5 => Scalar::Text(self.string()),
            6 => Scalar::Bytes(if self.rng.one_in(20) && self.spend(1 << 20) {
                vec![0; 1 << 20]
            } else {
                let n = self.rng.below(64);
                (0..n).map(|_| self.rng.next_u64() as u8).collect()
            }),
            7 => Scalar::Json(if self.rng.one_in(4) {
                self.string()
            } else {
                self.json_text()
            }),
            8 => Scalar::Uuid(self.textual(UUIDS)),
            9 => Scalar::Date(self.textual(DATES)),
            10 => Scalar::Time(self.textual(TIMES)),
            11 => Scalar::Timestamp(self.textual(DATES)),
            12 => Scalar::Timestamptz(self.textual(DATES)),
            _ => Scalar::Interval(self.textual(INTERVALS)),
        }
    }

    /// A scalar most of the time, else an array of any shape.
    pub fn value(&mut self) -> Value {
        if self.rng.one_in(4) {
            Value::Array(self.array())
        } else {
            Value::Scalar(self.scalar())
        }
    }

    /// Arrays of consistent, empty, deep, zero-length, inconsistent and
    /// overflowing shapes.
    pub fn array(&mut self) -> ArrayValue {
        match self.rng.below(8) {
            0 => ArrayValue {
                dims: Vec::new(),
                items: Vec::new(),
            },
            1 | 2 => {
                let ndims = if self.rng.one_in(4) {
                    self.rng.range(4, 6)
                } else {
                    self.rng.range(1, 3)
                };
                let dims: Vec<u32> = (0..ndims).map(|_| self.rng.range(1, 3) as u32).collect();
                let count: u32 = dims.iter().product();
                let items = self.items(count as usize);
                ArrayValue { dims, items }
            }
            3 => {
                let depth = self.rng.pick(&[6, 7, 64, 1_000, 100_000, 200_000]);
                let dims = if self.spend(depth * 4) {
                    vec![1; depth]
                } else {
                    vec![1; 7]
                };
                ArrayValue {
                    dims,
                    items: vec![self.scalar()],
                }
            }
            4 => {
                let dims = self
                    .rng
                    .pick(&[&[0][..], &[0, 0], &[2, 0], &[0, 3]])
                    .to_vec();
                let n = self.rng.below(2) as usize;
                let items = self.items(n);
                ArrayValue { dims, items }
            }
            5 => {
                let ndims = self.rng.range(1, 4);
                let dims = (0..ndims).map(|_| self.rng.below(5) as u32).collect();
                let n = self.rng.below(10) as usize;
                let items = self.items(n);
                ArrayValue { dims, items }
            }
            6 => {
                let dims = self
                    .rng
                    .pick(&[
                        &[u32::MAX][..],
                        &[u32::MAX, u32::MAX],
                        &[65_536, 65_536, 65_536],
                        &[2; 40],
                        &[u32::MAX, 0],
                        &[0, u32::MAX],
                    ])
                    .to_vec();
                let n = self.rng.range(0, 2) as usize;
                let items = self.items(n);
                ArrayValue { dims, items }
            }
            _ => {
                let n = self.rng.range(1, 3) as usize;
                ArrayValue {
                    dims: Vec::new(),
                    items: self.items(n),
                }
            }
        }
    }

    /// `n` items, all of one kind or mixed.
    fn items(&mut self, n: usize) -> Vec<Scalar> {
        if self.rng.one_in(3) {
            (0..n).map(|_| self.scalar()).collect()
        } else {
            let kind = self.rng.below(6);
            (0..n)
                .map(|i| match kind {
                    0 => Scalar::Int(i as i64),
                    1 => Scalar::Text(format!("t{i}")),
                    2 if self.rng.one_in(5) => Scalar::Null,
                    2 => Scalar::Numeric(format!("{i}.5")),
                    3 => Scalar::Json(self.json_text()),
                    4 => Scalar::Boolean(i % 2 == 0),
                    _ => Scalar::Text(self.string()),
                })
                .collect()
        }
    }

    /// A relation name: usually one of [`TABLES`], else any string.
    pub fn table(&mut self) -> String {
        if self.rng.one_in(5) {
            self.string()
        } else {
            self.rng.pick(TABLES).into()
        }
    }

    fn column(&mut self) -> String {
        if self.rng.one_in(5) {
            self.string()
        } else {
            self.rng.pick(COLUMNS).into()
        }
    }

    /// Column/value pairs: usually a few, sometimes around PostgreSQL's
    /// column limit.
    fn pairs(&mut self) -> Vec<(String, Value)> {
        if self.rng.one_in(30) {
            let n = self.rng.pick(&[1_599, 1_600, 1_601, 5_000]);
            if self.spend(n * 48) {
                return (0..n)
                    .map(|i| (format!("c{i}"), Value::Scalar(Scalar::Int(i as i64))))
                    .collect();
            }
        }
        let n = self.rng.pick(&[0, 1, 1, 2, 2, 3, 5]);
        (0..n).map(|_| (self.column(), self.value())).collect()
    }

    /// Query parameters: usually a few, sometimes around the protocol's limit.
    fn params(&mut self) -> Vec<Value> {
        if self.rng.one_in(40) {
            let n = self.rng.pick(&[100, 65_535, 65_536, 70_000]);
            if self.spend(n * 32) {
                return (0..n)
                    .map(|i| {
                        Value::Scalar(if i % 2 == 0 {
                            Scalar::Null
                        } else {
                            Scalar::Int(i as i64)
                        })
                    })
                    .collect();
            }
        }
        let n = self.rng.range(0, 3);
        (0..n).map(|_| self.value()).collect()
    }

    /// A statement for `n` parameters: casts of each to some type, a
    /// template over the schema, SQL soup, or any string.
    fn sql(&mut self, n: usize) -> String {
        match self.rng.below(8) {
            0..4 if n > 0 && n <= 16 => {
                let casts: Vec<String> = (1..=n)
                    .map(|i| format!("${i}::{} AS c{i}", self.rng.pick(TYPES)))
                    .collect();
                format!("SELECT {}", casts.join(", "))
            }
            0..4 => "SELECT 1 AS one".into(),
            4 | 5 => self.rng.pick(TEMPLATES).into(),
            6 => self.soup(),
            _ => self.string(),
        }
    }

    /// `SELECT $1::t1, $2::t2, …` with values meant for those types, so
    /// that values get past PostgreSQL's parsing into the host's conversions.
    fn typed_query(&mut self) -> Call {
        let n = self.rng.range(1, 4) as usize;
        let mut casts = Vec::with_capacity(n);
        let mut params = Vec::with_capacity(n);
        for i in 1..=n {
            let ty = self.rng.pick(TYPES);
            casts.push(format!("${i}::{ty} AS c{i}"));
            params.push(self.value_for(ty));
        }
        Call::Query {
            sql: format!("SELECT {}", casts.join(", ")),
            params,
        }
    }

    /// A value for a column or parameter of type `ty`: usually a fitting
    /// case (arrays of any shape or JSON text for array types), else any.
    fn value_for(&mut self, ty: &str) -> Value {
        if self.rng.one_in(4) {
            return self.value();
        }
        if ty.ends_with("[]") {
            return match self.rng.below(3) {
                0 => Value::Scalar(Scalar::Json(self.json_text())),
                _ => Value::Array(self.array()),
            };
        }
        let base = ty.split('(').next().unwrap_or(ty);
        Value::Scalar(match base {
            "int2" | "int4" | "int8" | "oid" => match self.rng.below(3) {
                0 => Scalar::Text(self.textual(NUMBERS)),
                _ => self.scalar_case(2),
            },
            "float4" | "float8" => self.scalar_case(3),
            "numeric" | "money" => self.scalar_case(4),
            "bool" => Scalar::Text(self.rng.pick(&["yes", "off", "t", "2", ""]).into()),
            "bytea" => match self.rng.below(2) {
                0 => Scalar::Text(self.rng.pick(&["\\x00ff", "\\x0", "\\000", "abc"]).into()),
                _ => self.scalar_case(6),
            },
            "json" | "jsonb" => self.scalar_case(7),
            "uuid" => self.scalar_case(8),
            "date" => self.scalar_case(9),
            "time" | "timetz" => self.scalar_case(10),
            "timestamp" => self.scalar_case(11),
            "timestamptz" => self.scalar_case(12),
            "interval" => self.scalar_case(13),
            _ => self.scalar_case(5),
        })
    }

    /// `fuzz_scratch`, the table the plugin may write, in some spelling.
    fn scratch(&mut self) -> String {
        self.rng
            .pick(&["fuzz_scratch", "public.fuzz_scratch", "\"fuzz_scratch\""])
            .into()
    }

    /// Distinct columns of `fuzz_scratch` with values meant for them.
    fn plausible_pairs(&mut self, max: u64) -> Vec<(String, Value)> {
        let n = self.rng.range(1, max);
        let mut out: Vec<(String, Value)> = Vec::new();
        for _ in 0..n {
            let (column, ty) = self.rng.pick(SCRATCH);
            if out.iter().all(|(c, _)| c != column) {
                let value = self.value_for(ty);
                out.push((column.into(), value));
            }
        }
        out
    }

    /// A filter that matches some rows of `fuzz_scratch`, or might.
    fn plausible_filter(&mut self) -> Vec<(String, Value)> {
        match self.rng.below(3) {
            0 => vec![(
                "name".into(),
                Value::Scalar(Scalar::Text(format!("row{}", self.rng.range(1, 20)))),
            )],
            1 => vec![(
                "id".into(),
                Value::Scalar(Scalar::Int(self.rng.range(1, 25) as i64)),
            )],
            _ => self.plausible_pairs(3),
        }
    }

    fn max_rows(&mut self) -> Option<u32> {
        match self.rng.below(5) {
            0 => None,
            1 => Some(0),
            2 => Some(1),
            3 => Some(u32::MAX),
            _ => Some(self.rng.next_u64() as u32),
        }
    }
}
