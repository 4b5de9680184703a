//! Hash columns: since schema 7 an object's id is stored as its 32 bytes;
//! a catalog copy of an older schema holds 64 hex digits, read as they are
//! and looked up by hex.
//!
//! Invariant: a value that is neither is a bad value, never an id.

use std::path::Path;

use rusqlite::types::ValueRef;

use super::{Catalog, Error};
use crate::object::ObjectId;

/// A hash column's value: 32 bytes (schema 7 on), or 64 hex digits in a
/// catalog copy of an older schema; `None` for NULL. Anything else is a
/// bad value, shown cut short.
pub(super) fn hash_value(path: &Path, v: ValueRef<'_>) -> Result<Option<ObjectId>, Error> {
    let bad = |value: String| Error::BadValue {
        path: path.into(),
        what: "hash",
        value,
    };
    match v {
        ValueRef::Null => Ok(None),
        ValueRef::Blob(b) => <[u8; 32]>::try_from(b)
            .map(|a| Some(ObjectId(a)))
            .map_err(|_| bad(format!("{} bytes", b.len()))),
        ValueRef::Text(t) => std::str::from_utf8(t)
            .ok()
            .and_then(|s| s.parse().ok())
            .map(Some)
            .ok_or_else(|| bad(String::from_utf8_lossy(&t[..t.len().min(80)]).into_owned())),
        ValueRef::Integer(i) => Err(bad(i.to_string())),
        ValueRef::Real(f) => Err(bad(f.to_string())),
    }
}

/// A hash column's value that must be there (see [`hash_value`]).
pub(super) fn hash_of(path: &Path, v: ValueRef<'_>) -> Result<ObjectId, Error> {
    hash_value(path, v)?.ok_or_else(|| Error::BadValue {
        path: path.into(),
        what: "hash",
        value: "NULL".into(),
    })
}

/// An id bound as a catalog's hash columns hold it: its 32 bytes, or its
/// hex digits in a catalog copy of a schema before 7.
pub(crate) struct Key<'a>(&'a ObjectId, bool);

impl rusqlite::ToSql for Key<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        if self.1 {
            Ok(rusqlite::types::ToSqlOutput::Owned(
                rusqlite::types::Value::Text(self.0.to_hex()),
            ))
        } else {
            self.0.to_sql()
        }
    }
}

impl Catalog {
    /// `h` as this catalog's hash columns hold it (see [`Key`]).
    pub(crate) fn key<'a>(&self, h: &'a ObjectId) -> Key<'a> {
        Key(h, self.schema < 7)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_32_bytes_or_64_hex_digits_are_ids() {
        let id = ObjectId::of(b"x");
        let p = Path::new("c.sqlite");
        let hex = id.to_hex();
        assert_eq!(hash_value(p, ValueRef::Blob(&id.0)).unwrap(), Some(id));
        assert_eq!(
            hash_value(p, ValueRef::Text(hex.as_bytes())).unwrap(),
            Some(id)
        );
        assert_eq!(hash_value(p, ValueRef::Null).unwrap(), None);
        let long = "\u{1b}[2J".repeat(100);
        for bad in [
            ValueRef::Blob(&id.0[..31]),
            ValueRef::Text(hex.to_uppercase().as_bytes()),
            ValueRef::Text(long.as_bytes()),
            ValueRef::Integer(7),
            ValueRef::Real(0.5),
        ] {
            let Err(Error::BadValue { value, .. }) = hash_value(p, bad) else {
                panic!("{bad:?} taken as an id");
            };
            assert!(value.len() <= 80, "{value}");
        }
        assert!(hash_of(p, ValueRef::Null).is_err());
    }
}
