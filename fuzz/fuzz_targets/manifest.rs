//! `manifest::parse` on any bytes: it never panics, and what it accepts
//! keeps the promises restore relies on (canonical paths, each once,
//! within the length limits) and survives being written and read again
//! (what the archive writer's read-back does). The same bytes go through
//! `normalize`, the tar member name normaliser, which must give canonical
//! names only and be idempotent.
#![no_main]

use std::collections::HashSet;

use coffer_core::archive::manifest::{self, MAX_NAME, MAX_PATH};
use libfuzzer_sys::fuzz_target;

/// What a canonical path is: relative, `/`-separated, no empty, `.` or `..`
/// component, no NUL.
fn canonical(p: &str) -> bool {
    !p.is_empty()
        && !p.contains('\0')
        && p.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
}

fuzz_target!(|data: &[u8]| {
    if let Ok(n) = manifest::normalize(data) {
        assert!(canonical(&n), "normalize gave {n:?}");
        assert_eq!(manifest::normalize(n.as_bytes()).as_deref(), Ok(n.as_str()));
    }
    let Ok(m) = manifest::parse(data) else {
        return;
    };
    let mut seen = HashSet::new();
    for e in &m.entries {
        assert!(canonical(&e.path), "accepted path {:?}", e.path);
        assert!(e.path.len() <= MAX_PATH);
        assert!(e.path.split('/').all(|c| c.len() <= MAX_NAME));
        assert!(seen.insert(e.path.as_str()), "{:?} listed twice", e.path);
        if let Some(v) = e.volume {
            assert!(v >= 1 && v <= m.volumes);
        }
        if let Some(member) = e.member_path() {
            assert!(canonical(&member));
        }
    }
    for d in &m.dumps {
        assert!(canonical(&d.member_path()));
    }
    let _ = m.total_bytes();
    let again = serde_json::to_vec(&m).expect("a manifest serialises");
    assert_eq!(manifest::parse(&again).as_ref(), Ok(&m), "round trip");
});
