#![allow(clippy::unwrap_used)] // test helpers panic with the failing call in the message
//! The S3 test harness itself: the moto server answers on 127.0.0.1, and
//! the fault proxy in front of it breaks exactly the connections it says.

use coffer_tests::fault::{Fault, FaultProxy, Faults};
use coffer_tests::s3::{S3Server, request};

#[test]
fn the_server_stores_and_lists_and_the_proxy_breaks_what_it_says() {
    let s3 = S3Server::start();
    s3.create_bucket("harness");
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    s3.put("harness", "a/b c.bin", &body);
    assert_eq!(
        s3.list("harness", "a/"),
        vec![("a/b c.bin".into(), 300_000)]
    );
    assert_eq!(s3.get("harness", "a/b c.bin"), body);

    // No faults: the proxy is transparent.
    let proxy = FaultProxy::start(s3.addr(), Faults::default());
    let (status, got) = request(proxy.addr(), "GET", "/harness/a/b%20c.bin", &[]).unwrap();
    assert_eq!((status, got.len()), (200, body.len()));

    // Every connection broken, each way in turn.
    proxy.set(Faults {
        every: 1,
        kinds: vec![
            Fault::CutResponse { after: 1000 },
            Fault::Reset { after: 5000 },
            Fault::SlowDown,
            Fault::CutRequest { after: 10 },
        ],
    });
    // Cut: the answer ends early (short body or a read error).
    let r = request(proxy.addr(), "GET", "/harness/a/b%20c.bin", &[]);
    assert!(r.is_err(), "a cut answer came back whole");
    let r = request(proxy.addr(), "GET", "/harness/a/b%20c.bin", &[]);
    assert!(r.is_err(), "a reset answer came back whole");
    let (status, text) = request(proxy.addr(), "GET", "/harness/a/b%20c.bin", &[]).unwrap();
    assert_eq!(status, 503);
    assert!(String::from_utf8_lossy(&text).contains("SlowDown"));
    let r = request(proxy.addr(), "PUT", "/harness/cut.bin", &body);
    assert!(r.is_err() || r.is_ok_and(|(s, _)| s >= 400));
    assert!(!s3.list("harness", "").iter().any(|(k, _)| k == "cut.bin"));
    assert_eq!(proxy.injected(), 4);

    // Every third: two of three get through.
    proxy.set(Faults {
        every: 3,
        kinds: vec![Fault::SlowDown],
    });
    let before = proxy.connections();
    let ok = (0..9)
        .filter(|_| {
            request(proxy.addr(), "GET", "/harness/a/b%20c.bin", &[])
                .is_ok_and(|(s, b)| s == 200 && b == body)
        })
        .count();
    assert_eq!(proxy.connections() - before, 9);
    assert_eq!(ok, 6);
}
