//! `delta::apply` and `delta::check` on any delta, against any base and
//! output limit, checked against `fast_rsync::apply_limited` (the in-memory
//! reference implementation of the same format): both must accept exactly
//! the same deltas and make the same bytes, never more than the limit.
//!
//! Input layout: base length (u16, little-endian), limit (u64,
//! little-endian), the base, then the delta.
#![no_main]

use std::cell::RefCell;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;

use coffer_core::archive::delta;
use libfuzzer_sys::fuzz_target;

/// Output kept for comparison; beyond it, only counted (a delta of a few
/// KiB can COPY the base over and over into a GiB).
const KEEP: usize = 1 << 20;

/// Keeps the first [`KEEP`] bytes written to it and counts all of them.
#[derive(Default)]
struct Out {
    kept: Vec<u8>,
    n: u64,
}

impl Write for Out {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = KEEP.saturating_sub(self.kept.len()).min(buf.len());
        self.kept.extend_from_slice(&buf[..room]);
        self.n += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

thread_local! {
    /// One unnamed temp file per process, rewritten for every input: the
    /// base must be a real file (the delta reads it with `pread`).
    static BASE: RefCell<File> = RefCell::new(tempfile::tempfile().expect("a temp file"));
}

fn split(data: &[u8]) -> Option<(&[u8], u64, &[u8])> {
    let (len, rest) = data.split_first_chunk::<2>()?;
    let (limit, rest) = rest.split_first_chunk::<8>()?;
    let len = usize::from(u16::from_le_bytes(*len)).min(rest.len());
    let (base, delta) = rest.split_at(len);
    Some((base, u64::from_le_bytes(*limit), delta))
}

fuzz_target!(|data: &[u8]| {
    let Some((base, limit, delta)) = split(data) else {
        return;
    };
    let checked = delta::check(delta, limit);
    let mut ours = Out::default();
    let applied = BASE.with(|f| {
        let f = f.borrow();
        f.set_len(0).expect("truncate the base");
        f.write_all_at(base, 0).expect("write the base");
        delta::apply(&f, delta, &mut ours, limit)
    });
    let mut theirs = Out::default();
    let reference = fast_rsync::apply_limited(
        base,
        delta,
        &mut theirs,
        usize::try_from(limit).unwrap_or(usize::MAX),
    );
    match (&applied, &reference) {
        (Ok(n), Ok(())) => {
            assert_eq!(*n, ours.n, "apply says {n} bytes, wrote {}", ours.n);
            assert!(*n <= limit);
            assert_eq!(ours.n, theirs.n, "output length differs from fast_rsync");
            assert!(ours.kept == theirs.kept, "output differs from fast_rsync");
            // Without a base, the same delta must pass and say the same size.
            assert_eq!(
                checked.as_ref().ok(),
                Some(n),
                "check disagrees: {checked:?}"
            );
        }
        (Err(e), Err(_)) => {
            assert!(!e.to_string().is_empty());
        }
        (Ok(n), Err(r)) => panic!("apply made {n} bytes; fast_rsync refused: {r}"),
        (Err(e), Ok(())) => panic!("apply refused ({e}); fast_rsync made {} bytes", theirs.n),
    }
    // What check refuses, apply refuses too (check only lacks the base).
    if checked.is_err() {
        assert!(applied.is_err());
    }
});
