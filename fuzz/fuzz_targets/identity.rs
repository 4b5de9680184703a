//! `Identity::parse` on any bytes: it never panics, its refusals stay short
//! enough to print, and what it accepts obeys the limits it promises and
//! survives being written and read again (what `disk init` does).
#![no_main]

use coffer_core::disk::{IDENTITY_CAP, Identity, MAX_LABEL, MAX_SETS, MIN_PART_SIZE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The disk reader never hands the parser more than the cap.
    if data.len() as u64 > IDENTITY_CAP {
        return;
    }
    match Identity::parse(data) {
        Ok(id) => {
            assert!(!id.label.trim().is_empty() && id.label.len() <= MAX_LABEL);
            assert!(id.sets.len() <= MAX_SETS);
            assert!(id.max_file_size.is_none_or(|m| m >= MIN_PART_SIZE));
            let again = serde_json::to_vec_pretty(&id).expect("an identity serialises");
            assert_eq!(Identity::parse(&again).as_ref(), Ok(&id), "round trip");
        }
        // A refusal is printed whole after the path: it must stay a line.
        Err(e) => assert!(e.chars().count() < 400, "refusal of {} chars", e.len()),
    }
});
