use super::*;
use crate::disk::io::{Fault, FaultyIo};
use std::io::Read;

/// A new disk of the nil set, claimed for writing.
fn new_disk(dir: &Path) -> Disk {
    Disk::init(
        dir,
        "Blue WD",
        uuid::Uuid::nil(),
        None,
        crate::disk::io::real(),
    )
    .unwrap();
    claimed(dir, crate::disk::io::real())
}

fn claimed(dir: &Path, io: Arc<dyn DiskIo>) -> Disk {
    let d = Disk::open(dir, io).unwrap();
    d.claim(uuid::Uuid::nil()).unwrap();
    d
}

#[test]
fn malformed_identities_name_the_file() {
    for content in [
        &b""[..],
        b"{\"format\": 1, \"disk_id\": \"",
        b"{\"format\": 7}",
        b"[1,2]",
    ] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(IDENTITY_FILE), content).unwrap();
        let msg = read_identity(dir.path()).unwrap_err().to_string();
        assert!(msg.contains(IDENTITY_FILE), "{msg}");
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(IDENTITY_FILE)).unwrap();
    let msg = read_identity(dir.path()).unwrap_err().to_string();
    assert!(msg.contains("folder"), "{msg}");
}

#[test]
fn symlinked_identity_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    Disk::init(
        other.path(),
        "x",
        uuid::Uuid::nil(),
        None,
        crate::disk::io::real(),
    )
    .unwrap();
    std::os::unix::fs::symlink(
        other.path().join(IDENTITY_FILE),
        dir.path().join(IDENTITY_FILE),
    )
    .unwrap();
    let err = read_identity(dir.path()).unwrap_err();
    assert!(err.to_string().contains("symlink"), "{err}");
}

#[test]
fn init_then_open_and_refuse_second_init() {
    let dir = tempfile::tempdir().unwrap();
    let d = new_disk(dir.path());
    let again = Disk::open(dir.path(), crate::disk::io::real()).unwrap();
    assert_eq!(again.identity, d.identity);
    assert!(matches!(
        Disk::init(
            dir.path(),
            "x",
            uuid::Uuid::nil(),
            None,
            crate::disk::io::real()
        ),
        Err(Error::AlreadyInitialized { .. })
    ));
}

#[test]
fn a_damaged_identity_is_replaced_only_with_force() {
    let dir = tempfile::tempdir().unwrap();
    new_disk(dir.path());
    std::fs::write(dir.path().join(IDENTITY_FILE), b"{\"format\": 1, \"dis").unwrap();
    let io = crate::disk::io::real();
    assert!(Disk::init(dir.path(), "x", uuid::Uuid::nil(), None, io.clone()).is_err());
    let d = Disk::init_with(dir.path(), "Fixed", uuid::Uuid::nil(), None, io, true).unwrap();
    assert_eq!(read_identity(dir.path()).unwrap().disk_id, d.id());
}

#[test]
fn nothing_is_written_without_the_gate() {
    let dir = tempfile::tempdir().unwrap();
    Disk::init(
        dir.path(),
        "Blue",
        uuid::Uuid::nil(),
        None,
        crate::disk::io::real(),
    )
    .unwrap();
    let d = Disk::open(dir.path(), crate::disk::io::real()).unwrap();
    let data = b"hello".to_vec();
    let err = d
        .write_tmp(&ObjectId::of(&data), &mut &data[..], |_| Ok(()))
        .unwrap_err();
    assert!(err.to_string().contains("reading only"), "{err}");
    assert!(matches!(d.clean_tmp(), Err(Error::NotClaimed { .. })));
    // Another backup set may not claim it.
    assert!(matches!(
        d.claim(uuid::Uuid::from_u128(7)),
        Err(Error::WrongSet { .. })
    ));
    assert!(!d.claimed());
}

#[test]
fn a_symlinked_tmp_folder_is_never_emptied() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("precious"), b"keep me").unwrap();
    let d = new_disk(dir.path());
    std::fs::remove_dir(d.tmp_dir()).unwrap();
    std::os::unix::fs::symlink(outside.path(), d.tmp_dir()).unwrap();
    let err = d.clean_tmp().unwrap_err().to_string();
    assert!(err.contains("symlink"), "{err}");
    assert!(outside.path().join("precious").exists());
}

#[test]
fn objects_round_trip_and_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let d = new_disk(dir.path());
    let data = b"hello object".to_vec();
    let h = ObjectId::of(&data);
    let p = d.write_tmp(&h, &mut &data[..], |_| Ok(())).unwrap();
    assert_eq!(d.commit(vec![p]).unwrap(), vec![h]);
    assert_eq!(d.objects().unwrap().get(&h), Some(&(data.len() as u64)));
    let mut back = Vec::new();
    d.open_object(&h).unwrap().read_to_end(&mut back).unwrap();
    assert_eq!(back, data);

    let wrong = ObjectId::of(b"other");
    let err = d.write_tmp(&wrong, &mut &data[..], |_| Ok(())).unwrap_err();
    assert!(err.to_string().contains("changed"), "{err}");
    assert_eq!(std::fs::read_dir(d.tmp_dir()).unwrap().count(), 0);
}

#[test]
fn only_regular_files_count_as_objects() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let d = new_disk(dir.path());
    let data = b"payload".to_vec();
    let h = ObjectId::of(&data);
    std::fs::write(outside.path().join("o"), &data).unwrap();
    std::fs::create_dir_all(d.object_path(&h).parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(outside.path().join("o"), d.object_path(&h)).unwrap();
    // Listing the store stops at it, naming it; nothing reads through it.
    let err = d.objects().unwrap_err().to_string();
    assert!(
        err.contains("symlink") && err.contains(&h.to_hex()),
        "{err}"
    );
    assert!(d.open_object(&h).is_err());
    // Moved aside (the link, not its target), the store lists again.
    let moved = d.move_strays_aside().unwrap();
    assert_eq!(moved.len(), 1);
    assert!(d.objects().unwrap().is_empty());
    let p = d.write_tmp(&h, &mut &data[..], |_| Ok(())).unwrap();
    d.commit(vec![p]).unwrap();
    assert_eq!(d.objects().unwrap().get(&h), Some(&7));
    assert_eq!(std::fs::read(outside.path().join("o")).unwrap(), data);
}

#[test]
fn big_objects_are_stored_in_parts() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = new_disk(dir.path());
    d.identity.max_file_size = Some(1000);
    let data: Vec<u8> = (0..2500u32).map(|i| (i % 251) as u8).collect();
    let h = ObjectId::of(&data);
    let p = d.write_tmp(&h, &mut &data[..], |_| Ok(())).unwrap();
    d.commit(vec![p]).unwrap();
    let files = d.object_files(&h).unwrap();
    assert_eq!(files.len(), 3);
    assert!(files[0].to_string_lossy().ends_with(".p001"));
    assert_eq!(d.objects().unwrap().get(&h), Some(&2500));
    let mut back = Vec::new();
    d.open_object(&h).unwrap().read_to_end(&mut back).unwrap();
    assert_eq!(back, data);
    // A missing middle part makes the object unusable, not shorter.
    std::fs::remove_file(&files[1]).unwrap();
    assert_eq!(d.objects().unwrap().get(&h), Some(&u64::MAX));
}

#[test]
fn part_sizes_below_64_mib_are_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    new_disk(dir.path());
    let p = dir.path().join(IDENTITY_FILE);
    let text = std::fs::read_to_string(&p).unwrap();
    let text = text.replace("\"max_file_size\": null", "\"max_file_size\": 0");
    std::fs::write(&p, text).unwrap();
    let err = Disk::open(dir.path(), crate::disk::io::real())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("max_file_size") && err.contains(IDENTITY_FILE),
        "{err}"
    );
}

#[test]
fn catalog_slots_alternate_and_survive_a_torn_write() {
    let dir = tempfile::tempdir().unwrap();
    let d = new_disk(dir.path());
    let src = dir.path().join("export.sqlite");
    std::fs::write(&src, b"generation one").unwrap();
    assert_eq!(d.write_catalog(&src).unwrap().generation, 1);
    std::fs::write(&src, b"generation two").unwrap();
    assert_eq!(d.write_catalog(&src).unwrap().generation, 2);
    let (path, meta) = d.newest_catalog().unwrap();
    assert_eq!(
        (meta.generation, std::fs::read(&path).unwrap()),
        (2, b"generation two".to_vec())
    );
    // Tear the newest slot: the older one is served, and the copy says why.
    std::fs::write(&path, b"generation tw").unwrap();
    let (path, meta) = d.newest_catalog().unwrap();
    assert_eq!(
        (meta.generation, std::fs::read(&path).unwrap()),
        (1, b"generation one".to_vec())
    );
    let to = dir.path().join("copy.sqlite");
    let copied = d.copy_catalog(&to).unwrap();
    assert_eq!(std::fs::read(&to).unwrap(), b"generation one");
    assert_eq!(copied.meta.generation, 1);
    assert!(
        copied.problems[0].contains("checksum"),
        "{:?}",
        copied.problems
    );
}

#[test]
fn generations_never_wrap() {
    let dir = tempfile::tempdir().unwrap();
    let d = new_disk(dir.path());
    let src = dir.path().join("export.sqlite");
    std::fs::write(&src, b"old").unwrap();
    d.write_catalog(&src).unwrap();
    std::fs::write(&src, b"new").unwrap();
    d.write_catalog(&src).unwrap();
    // Slot a (generation 1, "old") claims the largest generation there is.
    let side = dir.path().join("coffer/catalog-a.json");
    let text = std::fs::read_to_string(&side).unwrap();
    std::fs::write(
        &side,
        text.replace("\"generation\": 1", "\"generation\": 18446744073709551615"),
    )
    .unwrap();
    // It is refused, loudly, and never outranks the real newest slot.
    let slots = d.slots();
    assert!(
        slots[0].meta.as_ref().unwrap_err().contains("generation"),
        "{:?}",
        slots[0].meta
    );
    let (path, meta) = d.newest_catalog().unwrap();
    assert_eq!(
        (meta.generation, std::fs::read(path).unwrap()),
        (2, b"new".to_vec())
    );
    // The next write goes into the refused slot, above the valid one.
    std::fs::write(&src, b"newer").unwrap();
    assert_eq!(d.write_catalog(&src).unwrap().generation, 3);
    let (path, _) = d.newest_catalog().unwrap();
    assert!(path.ends_with("catalog-a.sqlite"));
}

#[test]
fn a_crash_while_writing_the_catalog_keeps_the_old_slot() {
    for at in 1..12 {
        let dir = tempfile::tempdir().unwrap();
        let d = new_disk(dir.path());
        let src = dir.path().join("export.sqlite");
        std::fs::write(&src, b"old").unwrap();
        d.write_catalog(&src).unwrap();
        d.write_catalog(&src).unwrap();
        d.release();
        let faulty = claimed(dir.path(), Arc::new(FaultyIo::new(at, Fault::Crash)));
        std::fs::write(&src, b"new catalog").unwrap();
        let r = faulty.write_catalog(&src);
        let (path, _) = d.newest_catalog().unwrap();
        let got = std::fs::read(path).unwrap();
        assert!(
            got == b"old" || (r.is_ok() && got == b"new catalog"),
            "crash at {at}: {got:?}"
        );
    }
}

#[test]
fn a_failed_flush_drops_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    new_disk(dir.path()).release();
    let d = claimed(dir.path(), Arc::new(FaultyIo::new(4, Fault::ErrorOnce)));
    let data = b"x".repeat(10);
    let h = ObjectId::of(&data);
    // ops: create (1), write (2), sync_fs (3), the rename (4) fails.
    let p = d.write_tmp(&h, &mut &data[..], |_| Ok(())).unwrap();
    assert!(d.commit(vec![p]).is_err());
    assert!(d.objects().unwrap().is_empty());
    assert_eq!(std::fs::read_dir(d.tmp_dir()).unwrap().count(), 0);
}

#[test]
fn lock_is_exclusive() {
    let dir = tempfile::tempdir().unwrap();
    new_disk(dir.path()).release();
    let a = Disk::open(dir.path(), crate::disk::io::real()).unwrap();
    let b = Disk::open(dir.path(), crate::disk::io::real()).unwrap();
    a.claim(uuid::Uuid::nil()).unwrap();
    assert!(matches!(
        b.claim(uuid::Uuid::nil()),
        Err(Error::InUse { .. })
    ));
    drop(a);
    b.claim(uuid::Uuid::nil()).unwrap();
}

#[test]
fn a_dangling_lock_link_is_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    new_disk(dir.path()).release();
    let lock = dir.path().join("coffer/lock");
    let _ = std::fs::remove_file(&lock);
    std::os::unix::fs::symlink(outside.path().join("made"), &lock).unwrap();
    let d = Disk::open(dir.path(), crate::disk::io::real()).unwrap();
    let err = d.claim(uuid::Uuid::nil()).unwrap_err().to_string();
    assert!(err.contains("lock"), "{err}");
    assert!(!outside.path().join("made").exists());
}

#[test]
fn vanished_disk_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let d = new_disk(dir.path());
    std::fs::remove_file(dir.path().join(IDENTITY_FILE)).unwrap();
    assert!(matches!(d.check_identity(), Err(Error::Vanished { .. })));
}

#[test]
fn a_write_refused_for_its_size_ends_the_part_there() {
    // The refusal only counts as a size limit from 2 GiB on: a tmpfs keeps
    // the test quick where there is one.
    let base = std::path::Path::new("/dev/shm");
    let dir = if base.is_dir() {
        tempfile::tempdir_in(base).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    new_disk(dir.path()).release();
    let limit = (2u64 << 30) + (3 << 20) + 17;
    let d = claimed(
        dir.path(),
        Arc::new(FaultyIo::new(0, Fault::FileLimit(limit))),
    );
    let chunk: Vec<u8> = (0..(1u32 << 20)).map(|i| (i % 251) as u8).collect();
    let total = (2u64 << 30) + (10 << 20);
    let mut h = crate::object::Hasher::default();
    for _ in 0..total / chunk.len() as u64 {
        h.update(&chunk);
    }
    let want = h.finish();
    let mut src = Repeat {
        chunk: &chunk,
        left: total,
    };
    let p = d.write_tmp(&want, &mut src, |_| Ok(())).unwrap();
    d.commit(vec![p]).unwrap();
    let files = d.object_files(&want).unwrap();
    let sizes: Vec<u64> = files
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .collect();
    assert!(
        files.len() >= 2 && sizes.iter().all(|s| *s <= limit),
        "{sizes:?}"
    );
    assert_eq!(sizes.iter().sum::<u64>(), total);
    // What a write found is kept for the objects after it.
    assert!(d.max_file_size() <= limit);
}

/// `chunk` over and over, `left` bytes in all.
struct Repeat<'a> {
    chunk: &'a [u8],
    left: u64,
}

impl Read for Repeat<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (self.left.min(buf.len() as u64) as usize).min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        self.left -= n as u64;
        Ok(n)
    }
}
