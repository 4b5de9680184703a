//! `SlotMeta::parse` on any bytes: it never panics, and what it accepts has
//! a generation that can still be raised (never 0, never past the bound,
//! so it can never wrap) and a size within the slot cap, and survives being
//! written and read again (what a sync does).
#![no_main]

use coffer_core::disk::{MAX_GENERATION, SIDECAR_CAP, SLOT_CAP, SlotMeta};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The disk reader never hands the parser more than the cap.
    if data.len() as u64 > SIDECAR_CAP {
        return;
    }
    match SlotMeta::parse(data) {
        Ok(m) => {
            assert!((1..=MAX_GENERATION).contains(&m.generation));
            assert!(m.size <= SLOT_CAP);
            let again = serde_json::to_vec_pretty(&m).expect("a sidecar serialises");
            assert_eq!(SlotMeta::parse(&again).as_ref(), Ok(&m), "round trip");
        }
        Err(e) => assert!(!e.is_empty()),
    }
});
