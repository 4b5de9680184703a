//! An encrypted disk, end to end at the disk's level.

use std::io::Read;

use super::*;
use crate::crypto::{Encryption, MIN_MEMORY_KIB};

const MARKER: &[u8] = b"MARKER-7f3a-plain-text-that-must-never-reach-the-disk";

fn encrypted(dir: &Path, pass: &str) -> Disk {
    let enc = Encryption::create(pass.as_bytes(), Some(MIN_MEMORY_KIB), Some(1)).unwrap();
    let d = Disk::init_full(
        dir,
        "Secret",
        uuid::Uuid::nil(),
        None,
        crate::disk::io::real(),
        false,
        Some(enc),
    )
    .unwrap();
    d.claim(uuid::Uuid::nil()).unwrap();
    d
}

fn content(n: usize) -> Vec<u8> {
    let mut v = MARKER.repeat(n);
    v.extend_from_slice(b"tail");
    v
}

fn put(d: &Disk, bytes: &[u8]) -> ObjectId {
    let h = ObjectId::of(bytes);
    let p = d.write_tmp(&h, &mut &bytes[..], |_| Ok(())).unwrap();
    assert_eq!(d.commit(vec![p]).unwrap(), vec![h]);
    h
}

/// Every regular file under `dir`, with its bytes.
fn raw_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .map(|e| (e.path().to_path_buf(), std::fs::read(e.path()).unwrap()))
        .collect()
}

fn holds(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn objects_and_slots_are_sealed_and_named_by_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = encrypted(dir.path(), "pass one");
    let small = put(&d, &content(1));
    let big = put(&d, &content(5000));
    let empty = put(&d, b"");
    // A catalog slot holding the marker too.
    let cat = dir.path().join("..").join(format!("cat-{}", new_tag()));
    std::fs::write(&cat, content(100)).unwrap();
    let meta = d.write_catalog(&cat).unwrap();
    std::fs::remove_file(&cat).unwrap();

    for (path, bytes) in raw_files(dir.path()) {
        assert!(
            !holds(&bytes, MARKER),
            "{} holds the marker",
            path.display()
        );
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        for h in [small, big, empty] {
            assert!(!name.contains(&h.to_hex()), "{name} names content");
        }
    }
    assert!(d.objects().is_err(), "listed before learning names");
    d.learn([small, big, empty]).unwrap();
    let listed = d.objects().unwrap();
    assert_eq!(listed.get(&small), Some(&(content(1).len() as u64)));
    assert_eq!(listed.get(&big), Some(&(content(5000).len() as u64)));
    assert_eq!(listed.get(&empty), Some(&0));
    let mut back = Vec::new();
    d.open_object(&big).unwrap().read_to_end(&mut back).unwrap();
    assert_eq!(back, content(5000));

    // The slot comes back opened.
    let out = dir.path().join("..").join(format!("out-{}", new_tag()));
    let copied = d.copy_catalog(&out).unwrap();
    assert_eq!(copied.meta, meta);
    assert_eq!(std::fs::read(&out).unwrap(), content(100));
    std::fs::remove_file(&out).unwrap();
}

#[test]
fn a_wrong_passphrase_is_refused_and_a_locked_disk_reads_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let h = put(&encrypted(dir.path(), "right"), b"hello");
    let d = Disk::open(dir.path(), crate::disk::io::real()).unwrap();
    assert!(d.encrypted() && !d.unlocked());
    assert!(matches!(d.open_object(&h), Err(Error::Locked { .. })));
    let err = d.unlock("wrong").unwrap_err();
    assert!(matches!(err, Error::WrongPassphrase { .. }), "{err}");
    assert!(err.to_string().contains("wrong passphrase"), "{err}");
    d.unlock("right").unwrap();
    let mut back = Vec::new();
    d.open_object(&h).unwrap().read_to_end(&mut back).unwrap();
    assert_eq!(back, b"hello");
}

#[test]
fn a_flipped_byte_is_an_error_naming_the_object() {
    let dir = tempfile::tempdir().unwrap();
    let d = encrypted(dir.path(), "pw");
    let h = put(&d, &content(3000));
    let file = d.object_path(&h);
    let mut bytes = std::fs::read(&file).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x40;
    std::fs::write(&file, bytes).unwrap();
    let mut sink = Vec::new();
    let err = d
        .open_object(&h)
        .unwrap()
        .read_to_end(&mut sink)
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    let msg = err.to_string();
    assert!(
        msg.contains(&*file.to_string_lossy()) && msg.contains("authenticate"),
        "{msg}"
    );
}

#[test]
fn a_torn_sealed_leftover_is_dropped_and_a_whole_one_adopted() {
    let dir = tempfile::tempdir().unwrap();
    let d = encrypted(dir.path(), "pw");
    let whole = content(2000);
    let p = d.stage(&mut &whole[..], |_| Ok(())).unwrap();
    let torn = d.stage(&mut &content(4000)[..], |_| Ok(())).unwrap();
    // Cut the second one short, as a kill would.
    let f = dir.path().join(&torn.parts[0]);
    let len = std::fs::metadata(&f).unwrap().len();
    std::fs::File::options()
        .write(true)
        .open(&f)
        .unwrap()
        .set_len(len - 70_000)
        .unwrap();
    let want = p.hash;
    std::mem::forget(p);
    std::mem::forget(torn);
    let (leftovers, junk) = d.leftovers().unwrap();
    assert!(junk.is_empty());
    assert!(leftovers.iter().all(|l| l.expected.is_none()));
    let mut adopted = Vec::new();
    for l in leftovers {
        if let Some(p) = d.adopt(l, |_| Ok(())).unwrap() {
            adopted.push(p.hash);
        }
    }
    assert_eq!(adopted, vec![want]);
    assert_eq!(std::fs::read_dir(d.tmp_dir()).unwrap().count(), 1);
}

#[test]
fn a_plain_disk_identity_has_no_encryption_field() {
    let dir = tempfile::tempdir().unwrap();
    Disk::init(
        dir.path(),
        "Plain",
        uuid::Uuid::nil(),
        None,
        crate::disk::io::real(),
    )
    .unwrap();
    let text = std::fs::read_to_string(dir.path().join(IDENTITY_FILE)).unwrap();
    assert!(
        !text.contains("encryption") && text.contains("\"format\": 1"),
        "{text}"
    );
}
