#![allow(clippy::unwrap_used)] // test helpers panic with the failing call in the message
//! A bucket laid out as a Coffer disk (`core::bucket::BucketDisk`) on a real
//! S3 server: identity, objects, encryption, and a hostile bucket.

use std::io::Read;
use std::time::Duration;

use coffer_core::ObjectId;
use coffer_core::bucket::{Bucket, BucketDisk, DiskError, Location, Settings, creds::MIN_PART};
use coffer_core::crypto::{Encryption, MIN_MEMORY_KIB};
use coffer_tests::bytes;
use coffer_tests::s3::{ACCESS_KEY, REGION, S3Server, SECRET_KEY};

const MARKER: &[u8] = b"MARKER-bucket-5e11-this-text-must-stay-secret";

fn bucket(s3: &S3Server, url: &str) -> Bucket {
    let s = Settings {
        endpoint: Some(s3.endpoint()),
        region: REGION.into(),
        access_key_id: Some(ACCESS_KEY.into()),
        secret_access_key: Some(SECRET_KEY.into()),
        backoff: Duration::from_millis(10),
        part_size: MIN_PART,
        ..Settings::default()
    };
    Bucket::connect(&Location::parse(url).unwrap(), &s).unwrap()
}

fn with_marker(seed: u64, len: usize) -> Vec<u8> {
    let mut v = MARKER.repeat(3);
    v.extend(bytes(seed, len));
    v.extend_from_slice(MARKER);
    v
}

fn read(d: &BucketDisk, h: &ObjectId) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    d.open_object(h).unwrap().unwrap().read_to_end(&mut out)?;
    Ok(out)
}

fn holds(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn a_plain_bucket_disk_has_the_disk_layout_and_refuses_a_second_init() {
    let s3 = S3Server::start();
    s3.create_bucket("plain-disk");
    let set = uuid::Uuid::new_v4();
    let d = BucketDisk::init(
        bucket(&s3, "s3://plain-disk/c"),
        "Cloud",
        set,
        Some(1 << 30),
        None,
    )
    .unwrap();
    let again =
        BucketDisk::init(bucket(&s3, "s3://plain-disk/c"), "Other", set, None, None).unwrap_err();
    assert!(matches!(again, DiskError::AlreadyADisk { .. }), "{again}");
    let data = [
        with_marker(1, 100),
        with_marker(2, MIN_PART + 5),
        Vec::new(),
    ];
    let mut ids = Vec::new();
    for b in &data {
        let h = ObjectId::of(b);
        assert_eq!(
            d.put_object(&h, &mut &b[..], &mut |_| Ok(())).unwrap(),
            b.len() as u64
        );
        ids.push(h);
    }
    // A source that changed while read: refused and not left behind.
    let claimed = ObjectId::of(b"what the scan saw");
    let err = d
        .put_object(&claimed, &mut &b"what was read"[..], &mut |_| Ok(()))
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("s3://plain-disk/c/coffer/objects/"),
        "{err}"
    );
    // Same names as a local disk.
    let keys: Vec<String> = s3
        .list("plain-disk", "c/")
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let mut want: Vec<String> = ids
        .iter()
        .map(|h| format!("c/coffer/objects/{}/{}", h.prefix(), h.to_hex()))
        .collect();
    want.push("c/coffer-disk.json".into());
    want.sort();
    assert_eq!(keys, want);
    let reopened = BucketDisk::open(bucket(&s3, "s3://plain-disk/c")).unwrap();
    assert_eq!(reopened.identity, d.identity);
    let listed = reopened.objects([]).unwrap();
    for (h, b) in ids.iter().zip(&data) {
        assert_eq!(listed[h], b.len() as u64);
        assert_eq!(&read(&reopened, h).unwrap(), b);
    }
    reopened.remove_object(&ids[0]).unwrap();
    assert_eq!(reopened.objects([]).unwrap().len(), 2);
}

#[test]
fn an_encrypted_bucket_disk_shows_no_content_and_needs_its_passphrase() {
    let s3 = S3Server::start();
    s3.create_bucket("secret-disk");
    let enc = Encryption::create(b"pass", Some(MIN_MEMORY_KIB), Some(1)).unwrap();
    let d = BucketDisk::init(
        bucket(&s3, "s3://secret-disk"),
        "Cloud",
        uuid::Uuid::nil(),
        None,
        Some(enc),
    )
    .unwrap();
    let data = [
        with_marker(3, 10),
        with_marker(4, 2 * MIN_PART),
        with_marker(5, 70_000),
    ];
    let ids: Vec<ObjectId> = data.iter().map(|b| ObjectId::of(b)).collect();
    for (h, b) in ids.iter().zip(&data) {
        d.put_object(h, &mut &b[..], &mut |_| Ok(())).unwrap();
    }
    // The raw bucket: no marker, no content hash in any key or byte.
    let raw = s3.list("secret-disk", "");
    assert_eq!(raw.len(), 4);
    for (k, _) in &raw {
        let bytes = s3.get("secret-disk", k);
        assert!(!holds(&bytes, MARKER), "{k} holds the marker");
        for h in &ids {
            assert!(!k.contains(&h.to_hex()), "{k} names content");
        }
    }
    let d = BucketDisk::open(bucket(&s3, "s3://secret-disk")).unwrap();
    assert!(matches!(
        d.objects(ids.clone()),
        Err(DiskError::Locked { .. })
    ));
    let err = d.unlock("guess").unwrap_err();
    assert!(
        err.to_string().contains("wrong passphrase")
            && err.to_string().contains("s3://secret-disk"),
        "{err}"
    );
    d.unlock("pass").unwrap();
    let listed = d.objects(ids.clone()).unwrap();
    for (h, b) in ids.iter().zip(&data) {
        assert_eq!(listed[h], b.len() as u64);
        assert_eq!(&read(&d, h).unwrap(), b);
    }
    // One flipped byte in the bucket: the read fails, naming the object.
    let key = d.object_key(&ids[1]).unwrap();
    let mut stored = s3.get("secret-disk", &key);
    stored[100_000] ^= 4;
    s3.put("secret-disk", &key, &stored);
    let err = read(&d, &ids[1]).unwrap_err().to_string();
    assert!(err.contains(&key) && err.contains("authenticate"), "{err}");
    // Cut short: also refused.
    let key = d.object_key(&ids[2]).unwrap();
    let stored = s3.get("secret-disk", &key);
    s3.put("secret-disk", &key, &stored[..stored.len() - 1]);
    assert!(read(&d, &ids[2]).is_err());
}

#[test]
fn a_hostile_identity_in_a_bucket_is_refused_naming_it() {
    let s3 = S3Server::start();
    s3.create_bucket("hostile-disk");
    let err = BucketDisk::open(bucket(&s3, "s3://hostile-disk/x")).unwrap_err();
    assert!(matches!(err, DiskError::NotADisk { .. }), "{err}");
    for (bytes, want) in [
        (b"{\"format\":1".to_vec(), "coffer-disk.json"),
        (vec![b' '; 70_000], "larger than"),
    ] {
        s3.put("hostile-disk", "x/coffer-disk.json", &bytes);
        let err = BucketDisk::open(bucket(&s3, "s3://hostile-disk/x")).unwrap_err();
        let msg = format!(
            "{err}: {:?}",
            std::error::Error::source(&err).map(ToString::to_string)
        );
        assert!(
            msg.contains("s3://hostile-disk/x/coffer-disk.json") && msg.contains(want),
            "{msg}"
        );
    }
}

#[test]
fn catalog_slots_alternate_grow_their_generation_and_fall_back_when_damaged() {
    let s3 = S3Server::start();
    s3.create_bucket("slot-disk");
    let dir = tempfile::tempdir().unwrap();
    for encrypted in [false, true] {
        let prefix = if encrypted {
            "s3://slot-disk/sealed"
        } else {
            "s3://slot-disk/plain"
        };
        let enc =
            encrypted.then(|| Encryption::create(b"pw", Some(MIN_MEMORY_KIB), Some(1)).unwrap());
        let d =
            BucketDisk::init(bucket(&s3, prefix), "Cloud", uuid::Uuid::nil(), None, enc).unwrap();
        let mut metas = Vec::new();
        for round in 0..3u64 {
            let cat = dir.path().join(format!("cat-{encrypted}-{round}"));
            std::fs::write(&cat, with_marker(round, 100_000 + round as usize)).unwrap();
            metas.push(d.write_catalog(&cat).unwrap());
        }
        let gens: Vec<u64> = metas.iter().map(|m| m.generation).collect();
        assert_eq!(gens, [1, 2, 3]);
        let out = dir.path().join(format!("out-{encrypted}"));
        let (meta, problems) = d.copy_catalog(&out).unwrap();
        assert_eq!((meta.generation, problems.len()), (3, 0));
        assert_eq!(std::fs::read(&out).unwrap(), with_marker(2, 100_002));
        let raw_prefix = prefix.trim_start_matches("s3://slot-disk/");
        let keys: Vec<String> = s3
            .list("slot-disk", raw_prefix)
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        let slots: Vec<&String> = keys.iter().filter(|k| k.ends_with(".sqlite")).collect();
        assert_eq!(slots.len(), 2, "{keys:?}");
        for k in keys {
            let raw = s3.get("slot-disk", &k);
            // Plain slots are plain files; nothing of a sealed disk shows.
            assert_eq!(
                holds(&raw, MARKER),
                !encrypted && k.ends_with(".sqlite"),
                "{k}"
            );
        }
        // Generation 3 sits in slot a (1 a, 2 b, 3 a): damage it.
        let slot_a = format!("{raw_prefix}/coffer/catalog-a.sqlite");
        let mut raw = s3.get("slot-disk", &slot_a);
        raw[5000] ^= 1;
        s3.put("slot-disk", &slot_a, &raw);
        std::fs::remove_file(&out).unwrap();
        let (meta, problems) = d.copy_catalog(&out).unwrap();
        assert_eq!(meta.generation, 2);
        assert!(
            problems.iter().any(|p| p.contains("catalog-a.sqlite")),
            "{problems:?}"
        );
        assert_eq!(std::fs::read(&out).unwrap(), with_marker(1, 100_001));
        std::fs::remove_file(&out).unwrap();
    }
}

#[test]
fn an_object_no_catalog_knows_is_listed_by_its_name_and_can_be_removed() {
    let s3 = S3Server::start();
    s3.create_bucket("opaque-disk");
    let enc = Encryption::create(b"pw", Some(MIN_MEMORY_KIB), Some(1)).unwrap();
    let d = BucketDisk::init(
        bucket(&s3, "s3://opaque-disk"),
        "C",
        uuid::Uuid::nil(),
        None,
        Some(enc),
    )
    .unwrap();
    let (a, b) = (with_marker(1, 10), with_marker(2, 10));
    let (ha, hb) = (ObjectId::of(&a), ObjectId::of(&b));
    d.put_object(&ha, &mut &a[..], &mut |_| Ok(())).unwrap();
    d.put_object(&hb, &mut &b[..], &mut |_| Ok(())).unwrap();
    // Only `a` is known: `b` shows under its keyed name.
    let listed = d.objects([ha]).unwrap();
    assert_eq!(listed.len(), 2);
    let stranger = *listed.keys().find(|h| **h != ha).unwrap();
    assert_ne!(stranger, hb);
    d.remove_object(&stranger).unwrap();
    assert_eq!(
        d.objects([ha]).unwrap().into_keys().collect::<Vec<_>>(),
        vec![ha]
    );
    assert_eq!(s3.list("opaque-disk", "coffer/objects/").len(), 1);
}
