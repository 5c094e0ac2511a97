//! The PostgreSQL types the codec knows: built-in OIDs and short names, and
//! the binary format of each type, looking through domains and arrays.

use std::borrow::Cow;

use sqlx::TypeInfo as _;
use sqlx::postgres::{PgTypeInfo, PgTypeKind};

/// What the codec needs to know of a PostgreSQL type, whichever driver
/// described it: sqlx (writes, the catalog) or tokio-postgres (reads).
pub trait PgType {
    /// The type's OID, when the driver knows it.
    fn oid(&self) -> Option<u32>;
    /// The name to show for a type that is not built in.
    fn display_name(&self) -> Cow<'_, str>;
    /// What the type is made of, as far as the driver resolved it.
    fn shape(&self) -> Shape<'_, Self>;
}

/// How a type is built, for the codec's purposes.
pub enum Shape<'a, T: ?Sized> {
    Enum,
    Domain(&'a T),
    Array(&'a T),
    /// A base type (citext among them).
    Simple,
    /// Anything else, or a type the driver never resolved.
    Other,
}

impl PgType for PgTypeInfo {
    fn oid(&self) -> Option<u32> {
        PgTypeInfo::oid(self).map(|oid| oid.0)
    }

    fn display_name(&self) -> Cow<'_, str> {
        match (self.name(), PgTypeInfo::oid(self)) {
            ("?", Some(oid)) => Cow::Owned(format!("type with oid {}", oid.0)),
            (name, _) => Cow::Borrowed(name),
        }
    }

    fn shape(&self) -> Shape<'_, Self> {
        match resolved_kind(self) {
            Some(PgTypeKind::Enum(_)) => Shape::Enum,
            Some(PgTypeKind::Domain(base)) => Shape::Domain(base),
            Some(PgTypeKind::Array(elem)) => Shape::Array(elem),
            Some(PgTypeKind::Simple) => Shape::Simple,
            _ => Shape::Other,
        }
    }
}

impl PgType for tokio_postgres::types::Type {
    fn oid(&self) -> Option<u32> {
        Some(tokio_postgres::types::Type::oid(self))
    }

    /// Qualified unless it lives where an unqualified name finds it (the
    /// guard transaction's search path), as `regtype` would print it.
    fn display_name(&self) -> Cow<'_, str> {
        match self.schema() {
            "pg_catalog" | "public" => Cow::Borrowed(self.name()),
            schema => Cow::Owned(format!("{schema}.{}", self.name())),
        }
    }

    fn shape(&self) -> Shape<'_, Self> {
        use tokio_postgres::types::Kind as K;
        match self.kind() {
            K::Enum(_) => Shape::Enum,
            K::Domain(base) => Shape::Domain(base),
            K::Array(elem) => Shape::Array(elem),
            K::Simple => Shape::Simple,
            _ => Shape::Other,
        }
    }
}

/// The binary formats this module understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Bool,
    Int2,
    Int4,
    Int8,
    Oid,
    Float4,
    Float8,
    Numeric,
    /// text, varchar, bpchar, name, unknown and enums: the binary form is the text.
    Text,
    /// `"char"`: a single raw byte.
    Char,
    /// xml and citext are text on the wire as well; they are told apart from
    /// `Text` only because they are not in the binary parameter fast path.
    Xml,
    CiText,
    Json,
    Jsonb,
    Bytea,
    Uuid,
    Date,
    Time,
    TimeTz,
    Timestamp,
    Timestamptz,
    Interval,
    TsVector,
    Inet,
    Cidr,
}

impl Kind {
    pub(super) fn name(self) -> &'static str {
        match self {
            Kind::Bool => "bool",
            Kind::Int2 => "int2",
            Kind::Int4 => "int4",
            Kind::Int8 => "int8",
            Kind::Oid => "oid",
            Kind::Float4 => "float4",
            Kind::Float8 => "float8",
            Kind::Numeric => "numeric",
            Kind::Text => "text",
            Kind::Char => "\"char\"",
            Kind::Xml => "xml",
            Kind::CiText => "citext",
            Kind::Json => "json",
            Kind::Jsonb => "jsonb",
            Kind::Bytea => "bytea",
            Kind::Uuid => "uuid",
            Kind::Date => "date",
            Kind::Time => "time",
            Kind::TimeTz => "timetz",
            Kind::Timestamp => "timestamp",
            Kind::Timestamptz => "timestamptz",
            Kind::Interval => "interval",
            Kind::TsVector => "tsvector",
            Kind::Inet => "inet",
            Kind::Cidr => "cidr",
        }
    }
}

/// A built-in type: its OID, its array type's OID (0 for none), its short name
/// and, when this module can decode it, its binary format.
pub(super) struct Builtin {
    pub(super) oid: u32,
    array: u32,
    pub(super) name: &'static str,
    pub(super) kind: Option<Kind>,
}

const fn builtin(oid: u32, array: u32, name: &'static str, kind: Option<Kind>) -> Builtin {
    Builtin {
        oid,
        array,
        name,
        kind,
    }
}

/// Built-in OIDs are fixed in PostgreSQL's catalog, so they are safe to hard-code.
/// The undecodable entries are here for `type_name` and array detection.
pub(super) const BUILTINS: &[Builtin] = &[
    builtin(16, 1000, "bool", Some(Kind::Bool)),
    builtin(17, 1001, "bytea", Some(Kind::Bytea)),
    builtin(18, 1002, "\"char\"", Some(Kind::Char)),
    builtin(19, 1003, "name", Some(Kind::Text)),
    builtin(20, 1016, "int8", Some(Kind::Int8)),
    builtin(21, 1005, "int2", Some(Kind::Int2)),
    builtin(23, 1007, "int4", Some(Kind::Int4)),
    builtin(25, 1009, "text", Some(Kind::Text)),
    builtin(26, 1028, "oid", Some(Kind::Oid)),
    builtin(114, 199, "json", Some(Kind::Json)),
    builtin(142, 143, "xml", Some(Kind::Xml)),
    builtin(600, 1017, "point", None),
    builtin(601, 1018, "lseg", None),
    builtin(602, 1019, "path", None),
    builtin(603, 1020, "box", None),
    builtin(604, 1027, "polygon", None),
    builtin(628, 629, "line", None),
    builtin(650, 651, "cidr", Some(Kind::Cidr)),
    builtin(700, 1021, "float4", Some(Kind::Float4)),
    builtin(701, 1022, "float8", Some(Kind::Float8)),
    builtin(705, 0, "unknown", Some(Kind::Text)),
    builtin(718, 719, "circle", None),
    builtin(774, 775, "macaddr8", None),
    builtin(790, 791, "money", None),
    builtin(829, 1040, "macaddr", None),
    builtin(869, 1041, "inet", Some(Kind::Inet)),
    builtin(1042, 1014, "bpchar", Some(Kind::Text)),
    builtin(1043, 1015, "varchar", Some(Kind::Text)),
    builtin(1082, 1182, "date", Some(Kind::Date)),
    builtin(1083, 1183, "time", Some(Kind::Time)),
    builtin(1114, 1115, "timestamp", Some(Kind::Timestamp)),
    builtin(1184, 1185, "timestamptz", Some(Kind::Timestamptz)),
    builtin(1186, 1187, "interval", Some(Kind::Interval)),
    builtin(1266, 1270, "timetz", Some(Kind::TimeTz)),
    builtin(1560, 1561, "bit", None),
    builtin(1562, 1563, "varbit", None),
    builtin(1700, 1231, "numeric", Some(Kind::Numeric)),
    builtin(2249, 2287, "record", None),
    builtin(2278, 0, "void", None),
    builtin(2950, 2951, "uuid", Some(Kind::Uuid)),
    builtin(3614, 3643, "tsvector", Some(Kind::TsVector)),
    builtin(3615, 3645, "tsquery", None),
    builtin(3802, 3807, "jsonb", Some(Kind::Jsonb)),
    builtin(3904, 3905, "int4range", None),
    builtin(3906, 3907, "numrange", None),
    builtin(3908, 3909, "tsrange", None),
    builtin(3910, 3911, "tstzrange", None),
    builtin(3912, 3913, "daterange", None),
    builtin(3926, 3927, "int8range", None),
    builtin(4072, 4073, "jsonpath", None),
];

/// `box` is the only built-in type whose array delimiter is not a comma.
pub(super) const BOX_OID: u32 = 603;

/// The shape of a type: scalar or array, and the binary format of the scalar
/// or of the array's elements (`None` when this module cannot decode it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Class {
    pub(super) array: bool,
    pub(super) kind: Option<Kind>,
}

impl Class {
    const UNSUPPORTED: Class = Class {
        array: false,
        kind: None,
    };

    fn scalar(kind: Kind) -> Class {
        Class {
            array: false,
            kind: Some(kind),
        }
    }
}

pub(super) fn builtin_class(oid: u32) -> Option<Class> {
    BUILTINS.iter().find_map(|b| {
        if b.oid == oid {
            Some(Class {
                array: false,
                kind: b.kind,
            })
        } else if b.array != 0 && b.array == oid {
            Some(Class {
                array: true,
                kind: b.kind,
            })
        } else {
            None
        }
    })
}

/// `PgTypeInfo::kind()` panics for types sqlx knows only by name or by a bare
/// OID (it never resolved them), so only ask resolved types for their kind.
/// An unresolved OID-only type displays as `?`.
fn resolved_kind(ty: &PgTypeInfo) -> Option<&PgTypeKind> {
    if PgTypeInfo::oid(ty).is_none() || ty.name() == "?" {
        None
    } else {
        Some(ty.kind())
    }
}

/// citext lives in an extension, so it has no fixed OID; both drivers name
/// it `citext`, sqlx schema-qualified when it is off the search path.
fn is_citext<T: PgType + ?Sized>(ty: &T) -> bool {
    let name = ty.display_name();
    name == "citext" || name.ends_with(".citext")
}

pub(super) fn class_of<T: PgType + ?Sized>(ty: &T) -> Class {
    if let Some(class) = ty.oid().and_then(builtin_class) {
        return class;
    }
    match ty.shape() {
        Shape::Enum => Class::scalar(Kind::Text),
        Shape::Domain(base) => class_of(base),
        Shape::Array(elem) => {
            let elem = class_of(elem);
            Class {
                array: true,
                // An array of a domain over an array has array elements, which
                // `Value` cannot hold.
                kind: if elem.array { None } else { elem.kind },
            }
        }
        Shape::Simple if is_citext(ty) => Class::scalar(Kind::CiText),
        _ => Class::UNSUPPORTED,
    }
}

/// The OID of an array type's element type, looking through domains.
pub(super) fn array_elem_oid<T: PgType + ?Sized>(ty: &T) -> Option<u32> {
    if let Some(oid) = ty.oid()
        && let Some(b) = BUILTINS.iter().find(|b| b.array != 0 && b.array == oid)
    {
        return Some(b.oid);
    }
    match ty.shape() {
        Shape::Array(elem) => elem.oid(),
        Shape::Domain(base) => array_elem_oid(base),
        _ => None,
    }
}

/// True when `decode` supports values of type `ty`, so the caller need not cast
/// the column to text.
pub fn is_decodable<T: PgType + ?Sized>(ty: &T) -> bool {
    class_of(ty).kind.is_some()
}

/// A PostgreSQL-style name for `ty`: built-ins by their short catalog name
/// (`int4`, `timestamptz`, `int4[]`), other types by the name the driver
/// resolved.
pub fn type_name<T: PgType + ?Sized>(ty: &T) -> String {
    if let Some(oid) = ty.oid() {
        for b in BUILTINS {
            if b.oid == oid {
                return b.name.to_owned();
            }
            if b.array != 0 && b.array == oid {
                return format!("{}[]", b.name);
            }
        }
    }
    ty.display_name().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::codec::test_support::ty;
    use sqlx::Type;
    use sqlx::postgres::Postgres;

    #[test]
    fn classification_and_names() {
        assert!(is_decodable(&ty(1700)));
        assert!(is_decodable(&ty(1009)));
        assert!(is_decodable(&ty(3643)));
        assert!(!is_decodable(&ty(3615)));
        assert!(!is_decodable(&ty(600)));
        assert!(!is_decodable(&ty(1017)));
        // An unresolved non-builtin OID must not reach `kind()`, which panics.
        assert!(!is_decodable(&ty(16_385)));
        assert!(!is_decodable(&PgTypeInfo::with_name("mood")));
        assert_eq!(type_name(&ty(23)), "int4");
        assert_eq!(type_name(&ty(1007)), "int4[]");
        assert_eq!(type_name(&ty(1184)), "timestamptz");
        assert_eq!(type_name(&ty(18)), "\"char\"");
        assert_eq!(type_name(&<String as Type<Postgres>>::type_info()), "text");
        assert_eq!(
            type_name(&<serde_json::Value as Type<Postgres>>::type_info()),
            "jsonb"
        );
        assert_eq!(type_name(&PgTypeInfo::with_name("mood")), "mood");
        assert_eq!(type_name(&ty(16_385)), "type with oid 16385");
    }
}
