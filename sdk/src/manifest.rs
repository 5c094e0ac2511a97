//! What a plugin asks the operator for: relations, catalog access, limits.

use crate::bindings::exports::sluice::plugin::handler as h;

/// The capabilities a plugin requests. The host grants at most these, and
/// `sluice plugins check` shows them beside what the operator granted.
///
/// ```
/// use sluice_sdk::Requests;
/// let requests = Requests::new()
///     .read(["public.film", "public.rental"])
///     .catalog()
///     .timeout_ms(2_000);
/// ```
#[derive(Debug, Clone)]
pub struct Requests(pub(crate) h::Requests);

impl Default for Requests {
    fn default() -> Self {
        Requests::new()
    }
}

impl Requests {
    /// Nothing: no relations, no catalog, the operator's default limits.
    pub fn new() -> Self {
        Requests(h::Requests {
            read: Vec::new(),
            write: Vec::new(),
            catalog: false,
            timeout_ms: None,
            memory_mb: None,
            max_rows: None,
        })
    }

    /// Relations to read: `schema.name`, either part may be `*`. A pattern
    /// with `*` asks for up to that much; the operator decides how much.
    pub fn read<S: Into<String>>(mut self, patterns: impl IntoIterator<Item = S>) -> Self {
        self.0.read.extend(patterns.into_iter().map(Into::into));
        self
    }

    /// Relations to write through [`db::insert`](crate::db::insert),
    /// [`db::update`](crate::db::update) and [`db::delete`](crate::db::delete).
    pub fn write<S: Into<String>>(mut self, patterns: impl IntoIterator<Item = S>) -> Self {
        self.0.write.extend(patterns.into_iter().map(Into::into));
        self
    }

    /// Listing and describing relations ([`db::list_relations`](crate::db::list_relations)).
    pub fn catalog(mut self) -> Self {
        self.0.catalog = true;
        self
    }

    /// The longest one call needs, in milliseconds.
    pub fn timeout_ms(mut self, ms: u64) -> Self {
        self.0.timeout_ms = Some(ms);
        self
    }

    /// The linear memory one call needs, in MiB.
    pub fn memory_mb(mut self, mb: u32) -> Self {
        self.0.memory_mb = Some(mb);
        self
    }

    /// The rows one query needs.
    pub fn max_rows(mut self, rows: u32) -> Self {
        self.0.max_rows = Some(rows);
        self
    }
}
