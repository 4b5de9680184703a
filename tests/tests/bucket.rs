#![allow(clippy::unwrap_used)] // test helpers panic with the failing call in the message
//! `core::bucket` against a real S3 server (moto on 127.0.0.1), directly
//! and through the fault-injecting proxy.

use std::io::Read;
use std::time::Duration;

use coffer_core::bucket::{Bucket, Condition, Location, Settings, creds::MIN_PART};
use coffer_tests::bytes;
use coffer_tests::fault::{Fault, FaultProxy, Faults};
use coffer_tests::s3::{ACCESS_KEY, REGION, S3Server, SECRET_KEY};

fn settings(endpoint: String) -> Settings {
    Settings {
        endpoint: Some(endpoint),
        region: REGION.into(),
        access_key_id: Some(ACCESS_KEY.into()),
        secret_access_key: Some(SECRET_KEY.into()),
        backoff: Duration::from_millis(10),
        retry_timeout: Duration::from_secs(60),
        timeout: Duration::from_secs(20),
        part_size: MIN_PART,
        parallel: 2,
        ..Settings::default()
    }
}

fn read_all(b: &Bucket, key: &str) -> Vec<u8> {
    let mut out = Vec::new();
    b.get(key).unwrap().unwrap().read_to_end(&mut out).unwrap();
    out
}

fn put(b: &Bucket, key: &str, data: &[u8]) -> coffer_core::bucket::Stored {
    b.put(key, &mut &data[..], &mut |_| Ok(())).unwrap()
}

#[test]
fn objects_go_up_whole_in_one_put_or_in_parts_and_come_back() {
    let s3 = S3Server::start();
    s3.create_bucket("coffer-one");
    let loc = Location::parse("s3://coffer-one/home/cloud").unwrap();
    let b = Bucket::connect(&loc, &settings(s3.endpoint())).unwrap();
    b.check().unwrap();
    let small = bytes(1, 1000);
    let big = bytes(2, 2 * MIN_PART + 12345);
    let exact = bytes(3, MIN_PART);
    assert_eq!(put(&b, "coffer/objects/ab/small", &small).size, 1000);
    assert_eq!(
        put(&b, "coffer/objects/cd/big", &big).size,
        big.len() as u64
    );
    put(&b, "coffer/objects/cd/exact", &exact);
    put(&b, "coffer/objects/ef/empty", b"");
    let listed = b.list("coffer/objects/").unwrap();
    let keys: Vec<_> = listed.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "coffer/objects/ab/small",
            "coffer/objects/cd/big",
            "coffer/objects/cd/exact",
            "coffer/objects/ef/empty"
        ]
    );
    assert_eq!(listed["coffer/objects/cd/big"], big.len() as u64);
    // The keys really are under the prefix, as seen from outside.
    assert!(s3.list("coffer-one", "home/cloud/coffer/objects/cd/").len() == 2);
    assert_eq!(read_all(&b, "coffer/objects/cd/big"), big);
    assert_eq!(read_all(&b, "coffer/objects/cd/exact"), exact);
    assert_eq!(read_all(&b, "coffer/objects/ef/empty"), b"");
    assert!(b.get("coffer/objects/zz/none").unwrap().is_none());
    assert_eq!(
        b.head("coffer/objects/ab/small").unwrap().unwrap().size,
        1000
    );
    b.delete("coffer/objects/ab/small").unwrap();
    b.delete("coffer/objects/ab/small").unwrap();
    assert!(b.head("coffer/objects/ab/small").unwrap().is_none());
    // No multipart upload is left open.
    let (_, open) =
        coffer_tests::s3::request(s3.addr(), "GET", "/coffer-one?uploads", &[]).unwrap();
    assert!(
        !String::from_utf8_lossy(&open).contains("<Upload>"),
        "{}",
        String::from_utf8_lossy(&open)
    );
}

#[test]
fn conditional_writes_never_replace_what_another_writer_put() {
    let s3 = S3Server::start();
    s3.create_bucket("coffer-cond");
    let b = Bucket::connect(
        &Location::parse("s3://coffer-cond").unwrap(),
        &settings(s3.endpoint()),
    )
    .unwrap();
    let first = b
        .put_bytes("coffer-disk.json", b"one".to_vec(), Condition::Absent)
        .unwrap()
        .unwrap();
    assert!(
        b.put_bytes("coffer-disk.json", b"two".to_vec(), Condition::Absent)
            .unwrap()
            .is_none()
    );
    let tag = first.e_tag.clone().unwrap();
    let second = b
        .put_bytes(
            "coffer-disk.json",
            b"three".to_vec(),
            Condition::Matches(tag.clone()),
        )
        .unwrap()
        .unwrap();
    assert_ne!(second.e_tag, first.e_tag);
    // The old ETag no longer matches: refused, the content stays.
    assert!(
        b.put_bytes(
            "coffer-disk.json",
            b"four".to_vec(),
            Condition::Matches(tag)
        )
        .unwrap()
        .is_none()
    );
    assert_eq!(read_all(&b, "coffer-disk.json"), b"three");
}

#[test]
fn broken_connections_and_throttling_are_retried_and_nothing_is_lost() {
    let s3 = S3Server::start();
    s3.create_bucket("coffer-faults");
    let proxy = FaultProxy::start(s3.addr(), Faults::default());
    let b = Bucket::connect(
        &Location::parse("s3://coffer-faults/p").unwrap(),
        &settings(proxy.endpoint()),
    )
    .unwrap();
    proxy.set(Faults {
        every: 3,
        kinds: vec![
            Fault::SlowDown,
            Fault::CutResponse { after: 100 },
            Fault::Reset { after: 50 },
            Fault::CutRequest { after: 2000 },
        ],
    });
    let mut want = Vec::new();
    for i in 0..12u64 {
        let len = if i % 4 == 0 {
            MIN_PART + 777
        } else {
            3000 + i as usize * 1000
        };
        let data = bytes(10 + i, len);
        put(&b, &format!("o/{i:02}"), &data);
        want.push(data);
    }
    for (i, data) in want.iter().enumerate() {
        assert_eq!(&read_all(&b, &format!("o/{i:02}")), data, "object {i}");
    }
    assert_eq!(b.list("o/").unwrap().len(), 12);
    assert!(proxy.injected() >= 5, "only {} faults", proxy.injected());
}

#[test]
fn a_server_that_keeps_failing_is_a_clear_error_and_leaves_no_object() {
    let s3 = S3Server::start();
    s3.create_bucket("coffer-down");
    let proxy = FaultProxy::start(s3.addr(), Faults::default());
    let mut s = settings(proxy.endpoint());
    s.retries = 2;
    let b = Bucket::connect(&Location::parse("s3://coffer-down/p").unwrap(), &s).unwrap();
    proxy.set(Faults {
        every: 1,
        kinds: vec![Fault::SlowDown],
    });
    let err = b
        .put("o/small", &mut &bytes(1, 500)[..], &mut |_| Ok(()))
        .unwrap_err();
    let msg = format!("{err}");
    assert!(msg.contains("s3://coffer-down/p/o/small"), "{msg}");
    proxy.set(Faults {
        every: 1,
        kinds: vec![Fault::CutRequest { after: 3000 }],
    });
    let big = bytes(2, MIN_PART + 10);
    let err = b.put("o/big", &mut &big[..], &mut |_| Ok(())).unwrap_err();
    assert!(format!("{err}").contains("o/big"), "{err}");
    assert!(
        s3.list("coffer-down", "p/").is_empty(),
        "{:?}",
        s3.list("coffer-down", "p/")
    );
    // Healed: the same bucket takes it.
    proxy.set(Faults::default());
    assert_eq!(put(&b, "o/big", &big).size, big.len() as u64);
}
