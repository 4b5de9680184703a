use std::io::Read;

use super::*;

/// Cheap parameters: the tests are about the format, not the cost.
fn fast(pass: &[u8]) -> (Encryption, Keys) {
    Encryption::create(pass, Some(MIN_MEMORY_KIB), Some(1)).unwrap()
}

fn seal(keys: &Keys, ctx: &[u8], plain: &[u8], pieces: usize) -> Vec<u8> {
    let mut s = keys.sealer(ctx).unwrap();
    let mut out = Vec::new();
    let step = (plain.len() / pieces.max(1)).max(1);
    for c in plain.chunks(step) {
        s.push(c, &mut |b| {
            out.extend_from_slice(b);
            Ok(())
        })
        .unwrap();
    }
    s.finish(&mut |b| {
        out.extend_from_slice(b);
        Ok(())
    })
    .unwrap();
    out
}

fn open(keys: &Keys, ctx: &[u8], sealed: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut r = keys.opener(sealed, ctx, "obj".into());
    let mut out = Vec::new();
    r.read_to_end(&mut out)?;
    Ok(out)
}

#[test]
fn a_stream_round_trips_at_every_size_around_a_chunk() {
    let (_, keys) = fast(b"correct horse");
    for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * CHUNK + 17] {
        let plain: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        for pieces in [1, 3, 1000] {
            let sealed = seal(&keys, OBJECT_CONTEXT, &plain, pieces);
            assert_eq!(sealed.len() as u64, sealed_len(len as u64), "len {len}");
            assert_eq!(plain_len(sealed.len() as u64), Some(len as u64));
            assert_eq!(open(&keys, OBJECT_CONTEXT, &sealed).unwrap(), plain);
        }
    }
}

#[test]
fn sizes_no_stream_can_have_are_refused() {
    assert_eq!(plain_len(0), None);
    assert_eq!(plain_len(stream::HEADER as u64 + 15), None);
    // A full chunk followed by an empty final one is never written.
    assert_eq!(plain_len(sealed_len(CHUNK as u64) + 16), None);
}

#[test]
fn cut_flipped_or_extended_streams_are_refused() {
    let (_, keys) = fast(b"pw");
    let plain = vec![42u8; 2 * CHUNK + 100];
    let sealed = seal(&keys, OBJECT_CONTEXT, &plain, 1);
    // Cut at a chunk boundary: the last chunk seen is not final.
    let cut = &sealed[..stream::HEADER + CHUNK + 16];
    let err = open(&keys, OBJECT_CONTEXT, cut).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{err}");
    // Cut anywhere else.
    for at in [0, 5, stream::HEADER, stream::HEADER + 10, sealed.len() - 1] {
        assert!(
            open(&keys, OBJECT_CONTEXT, &sealed[..at]).is_err(),
            "cut at {at}"
        );
    }
    // One flipped bit in the second chunk, named in the message.
    let mut bad = sealed.clone();
    bad[stream::HEADER + CHUNK + 16 + 3] ^= 1;
    let err = open(&keys, OBJECT_CONTEXT, &bad).unwrap_err().to_string();
    assert!(err.contains("chunk 2") && err.contains("obj"), "{err}");
    // Bytes after the final chunk.
    let mut long = sealed.clone();
    long.push(0);
    assert!(open(&keys, OBJECT_CONTEXT, &long).is_err());
    // Another context (a slot of another generation).
    assert!(open(&keys, &slot_context(2), &sealed).is_err());
    // Another key.
    let (_, other) = fast(b"pw");
    assert!(open(&other, OBJECT_CONTEXT, &sealed).is_err());
}

#[test]
fn swapped_chunks_are_refused() {
    let (_, keys) = fast(b"pw");
    let plain: Vec<u8> = (0..3 * CHUNK).map(|i| (i / CHUNK) as u8).collect();
    let sealed = seal(&keys, OBJECT_CONTEXT, &plain, 1);
    let h = stream::HEADER;
    let c = CHUNK + 16;
    let mut swapped = sealed[..h].to_vec();
    swapped.extend_from_slice(&sealed[h + c..h + 2 * c]);
    swapped.extend_from_slice(&sealed[h..h + c]);
    swapped.extend_from_slice(&sealed[h + 2 * c..]);
    assert!(open(&keys, OBJECT_CONTEXT, &swapped).is_err());
}

#[test]
fn the_right_passphrase_unlocks_and_a_wrong_one_is_told_apart() {
    let (enc, keys) = fast(b"correct horse");
    enc.check().unwrap();
    let again = enc.unlock(b"correct horse").unwrap().unwrap();
    let h = crate::ObjectId::of(b"x");
    assert_eq!(keys.name(&h), again.name(&h));
    assert!(enc.unlock(b"wrong horse").unwrap().is_none());
    assert!(matches!(enc.unlock(b""), Err(Error::EmptyPassphrase)));
}

#[test]
fn names_are_keyed_and_not_the_content_hash() {
    let (_, a) = fast(b"one");
    let (_, b) = fast(b"one");
    let h = crate::ObjectId::of(b"same content");
    assert_ne!(a.name(&h), h);
    // Same passphrase, new salt: another disk, other names.
    assert_ne!(a.name(&h), b.name(&h));
}

#[test]
fn hostile_parameters_are_refused_before_anything_is_allocated() {
    let (enc, _) = fast(b"pw");
    let mut huge = enc.clone();
    huge.kdf.memory_kib = u32::MAX;
    assert!(huge.check().unwrap_err().contains("memory"));
    // Refused by unlock too, without deriving.
    assert!(matches!(huge.unlock(b"pw"), Err(Error::Kdf(_))));
    let mut slow = enc.clone();
    slow.kdf.iterations = 1_000_000;
    assert!(slow.check().unwrap_err().contains("passes"));
    let mut lanes = enc.clone();
    lanes.kdf.lanes = 0;
    assert!(lanes.check().unwrap_err().contains("lanes"));
    let mut salt = enc.clone();
    salt.kdf.salt = "00".into();
    assert!(salt.check().unwrap_err().contains("salt"));
    let mut scheme = enc.clone();
    scheme.scheme = "rot13".into();
    assert!(scheme.check().unwrap_err().contains("rot13"));
    let mut check = enc;
    check.key_check = "zz".into();
    assert!(check.check().unwrap_err().contains("key check"));
}
