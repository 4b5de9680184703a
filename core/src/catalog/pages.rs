//! The catalog read as its pages, one consistent snapshot, so a disk's copy
//! can be brought up to date by writing only the pages that changed.

use std::io;
use std::ops::ControlFlow;
use std::path::Path;

use super::Catalog;
use crate::disk::PageSource;

impl PageSource for Catalog {
    fn path(&self) -> &Path {
        &self.path
    }

    fn pages(
        &self,
        each: &mut dyn FnMut(usize, &[u8]) -> ControlFlow<()>,
    ) -> io::Result<Option<usize>> {
        let shown = |e: rusqlite::Error| io::Error::other(e);
        // One read transaction: the count and every page are of the same
        // moment, whatever another process commits meanwhile.
        let tx = self.conn.unchecked_transaction().map_err(shown)?;
        let size: i64 = tx
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .map_err(shown)?;
        let mut st = match tx.prepare("SELECT data FROM sqlite_dbpage ORDER BY pgno") {
            Ok(st) => st,
            // SQLite built without the table: the caller exports instead.
            Err(e) if e.to_string().contains("no such table") => return Ok(None),
            Err(e) => return Err(shown(e)),
        };
        let count: i64 = tx
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .map_err(shown)?;
        let mut rows = st.query([]).map_err(shown)?;
        let mut seen = 0i64;
        while let Some(r) = rows.next().map_err(shown)? {
            let data = r.get_ref(0).map_err(shown)?;
            let page = data.as_blob().map_err(io::Error::other)?;
            if page.len() as i64 != size {
                return Err(io::Error::other(format!(
                    "page {} is {} bytes, not {size}",
                    seen + 1,
                    page.len()
                )));
            }
            seen += 1;
            if each(count as usize, page).is_break() {
                return Ok(Some(size as usize));
            }
        }
        if seen != count {
            return Err(io::Error::other(format!("{seen} pages read of {count}")));
        }
        Ok(Some(size as usize))
    }
}
