#![allow(clippy::unwrap_used)] // test helpers panic with the failing call in the message
//! `sync::sync_bucket`: a scanned folder synced to a bucket disk on a real
//! S3 server, through the fault proxy; the next sync completes what a
//! failed one left; the bucket's catalog copy restores the catalog.

use std::io::Read;
use std::time::Duration;

use coffer_core::bucket::{Bucket, BucketDisk, Location, Settings, creds::MIN_PART};
use coffer_core::crypto::{Encryption, MIN_MEMORY_KIB};
use coffer_core::{Catalog, Progress};
use coffer_tests::Lab;
use coffer_tests::fault::{Fault, FaultProxy, Faults};
use coffer_tests::s3::{ACCESS_KEY, REGION, S3Server, SECRET_KEY};

fn bucket(endpoint: String, url: &str, retries: usize) -> Bucket {
    let s = Settings {
        endpoint: Some(endpoint),
        region: REGION.into(),
        access_key_id: Some(ACCESS_KEY.into()),
        secret_access_key: Some(SECRET_KEY.into()),
        backoff: Duration::from_millis(5),
        retries,
        part_size: MIN_PART,
        ..Settings::default()
    };
    Bucket::connect(&Location::parse(url).unwrap(), &s).unwrap()
}

fn sync(lab: &mut Lab, d: &BucketDisk) -> coffer_core::Result<coffer_core::sync::Report> {
    coffer_core::sync::sync_bucket(
        &mut lab.catalog,
        &lab.profile,
        d,
        &[],
        &lab.sync_opts,
        4,
        &Progress::silent(),
    )
}

#[test]
fn a_bucket_takes_a_sync_through_faults_and_the_next_sync_completes_a_failed_one() {
    let s3 = S3Server::start();
    s3.create_bucket("sync-disk");
    let proxy = FaultProxy::start(s3.addr(), Faults::default());
    let mut lab = Lab::new(1);
    lab.files(40, 20_000);
    std::fs::write(
        lab.src.join("big.bin"),
        coffer_tests::bytes(7, MIN_PART * 2 + 3),
    )
    .unwrap();
    lab.scan();
    let enc = Encryption::create(b"pw", Some(MIN_MEMORY_KIB), Some(1)).unwrap();
    let url = "s3://sync-disk/home";
    let d = BucketDisk::init(
        bucket(proxy.endpoint(), url, 10),
        "Cloud",
        lab.profile.set_id,
        None,
        Some(enc),
    )
    .unwrap();

    // A server that fails every request: a clear error, nothing recorded
    // that is not there.
    proxy.set(Faults {
        every: 1,
        kinds: vec![Fault::SlowDown],
    });
    let failing = BucketDisk::open(bucket(proxy.endpoint(), url, 1));
    assert!(failing.is_err());
    // Every fourth request broken, one way or another, while 41 objects go up.
    proxy.set(Faults {
        every: 4,
        kinds: vec![
            Fault::SlowDown,
            Fault::CutResponse { after: 60 },
            Fault::Reset { after: 30 },
            Fault::CutRequest { after: 5000 },
        ],
    });
    let r = sync(&mut lab, &d).unwrap();
    assert_eq!((r.copied_files, r.skipped_files), (41, 0), "{r:?}");
    assert!(proxy.injected() >= 10, "only {} faults", proxy.injected());
    // No change: nothing uploaded, the catalog copy not rewritten.
    proxy.set(Faults::default());
    let before = s3.list("sync-disk", "home/coffer/catalog");
    let r = sync(&mut lab, &d).unwrap();
    assert_eq!(r.copied_files, 0, "{r:?}");
    assert_eq!(s3.list("sync-disk", "home/coffer/catalog"), before);
    // Once more: the bucket is known to hold all it would take, and nothing
    // is listed or planned.
    let asked = proxy.connections();
    let r = sync(&mut lab, &d).unwrap();
    assert!(r.up_to_date && r.copied_files == 0, "{r:?}");
    assert!(
        proxy.connections() - asked <= 2,
        "{} connections",
        proxy.connections() - asked
    );

    // New files, then a server that gives up part-way: the sync fails,
    // naming the bucket, and records only what is there.
    for i in 0..20 {
        std::fs::write(
            lab.src.join(format!("new{i}.bin")),
            coffer_tests::bytes(100 + i, 9000),
        )
        .unwrap();
    }
    lab.scan();
    let weak = BucketDisk::open(bucket(proxy.endpoint(), url, 0)).unwrap();
    weak.unlock("pw").unwrap();
    proxy.set(Faults {
        every: 5,
        kinds: vec![Fault::Reset { after: 10 }],
    });
    let err = sync(&mut lab, &weak).unwrap_err().to_string();
    assert!(err.contains("s3://sync-disk/home"), "{err}");
    let id = d.identity.disk_id;
    let recorded = lab.catalog.copies_on(id).unwrap().len();
    assert!((41..61).contains(&recorded), "{recorded} recorded");
    // An upload whose answer was lost may still have landed (whole: S3
    // stores a PUT entirely or not at all); the next sync counts it.
    let landed = d
        .objects(lab.catalog.known_hashes().unwrap())
        .unwrap()
        .len();
    assert!(landed >= recorded, "{landed} < {recorded}");
    // The next sync, through a healed network, completes it.
    proxy.set(Faults::default());
    let r = sync(&mut lab, &d).unwrap();
    assert_eq!(r.copied_files as usize, 61 - landed, "{r:?}");
    assert_eq!(lab.catalog.copies_on(id).unwrap().len(), 61);
    let listed = d.objects(lab.catalog.known_hashes().unwrap()).unwrap();
    assert_eq!(listed.len(), 61);

    // The bucket's own catalog copy opens and knows every copy.
    let out = lab.root.join("from-bucket.sqlite");
    let (meta, problems) = d.copy_catalog(&out).unwrap();
    assert!(problems.is_empty() && meta.generation >= 2, "{problems:?}");
    let copy = Catalog::open_copy(&out).unwrap();
    assert_eq!(copy.copies_on(id).unwrap().len(), 61);
    // And every object reads back as its content.
    for h in listed.keys() {
        let mut r = d.open_object(h).unwrap().unwrap();
        let (got, _) = coffer_core::object::hash_reader(&mut r, |_| Ok(())).unwrap();
        assert_eq!(got, *h);
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).unwrap();
    }
}
