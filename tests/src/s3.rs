//! A real S3-compatible server for tests: the moto server (`moto[server]`
//! from PyPI, installed by `scripts/setup.sh`) started on 127.0.0.1 on a
//! free port, and stopped when the handle is dropped. Plus a small raw
//! HTTP client so a test can look at the bucket from outside Coffer (list
//! keys, read the stored bytes) without an S3 client of its own: moto does
//! not check signatures, but it does check who owns what, so each request
//! names the tests' access key in an unsigned `Authorization` header.
//!
//! A missing `moto_server` is a failure that says how to install it, never a
//! skipped test.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The credentials the tests give (moto takes any).
pub const ACCESS_KEY: &str = "coffer-test";
pub const SECRET_KEY: &str = "coffer-test-secret";
pub const REGION: &str = "us-east-1";

/// A running moto server. Dropping it stops the server.
pub struct S3Server {
    child: Child,
    addr: SocketAddr,
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local address").port()
}

impl S3Server {
    /// Starts the server and waits (up to 30 s) until it answers.
    pub fn start() -> S3Server {
        let exe = std::env::var("COFFER_MOTO_SERVER").unwrap_or_else(|_| "moto_server".into());
        let port = free_port();
        let child = Command::new(&exe)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {exe} ({e}); install it with scripts/setup.sh (pip install 'moto[server]')")
            });
        let mut s = S3Server {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok((status, _)) = request(s.addr, "GET", "/", &[])
                && status < 500
            {
                return s;
            }
            if let Ok(Some(st)) = s.child.try_wait() {
                panic!("{exe} exited at start ({st})");
            }
            assert!(
                Instant::now() < deadline,
                "{exe} did not answer within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Makes a bucket.
    pub fn create_bucket(&self, name: &str) {
        let (status, body) = request(self.addr, "PUT", &format!("/{name}"), &[]).expect("PUT");
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    }

    /// Every key in `bucket` under `prefix`, with its size.
    pub fn list(&self, bucket: &str, prefix: &str) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut path = format!("/{bucket}?list-type=2&prefix={}", escape(prefix));
            if let Some(t) = &token {
                path.push_str(&format!("&continuation-token={}", escape(t)));
            }
            let (status, body) = request(self.addr, "GET", &path, &[]).expect("list");
            let text = String::from_utf8_lossy(&body).into_owned();
            assert_eq!(status, 200, "{text}");
            for c in text.split("<Contents>").skip(1) {
                let key = between(c, "<Key>", "</Key>").expect("a key");
                let size = between(c, "<Size>", "</Size>").expect("a size");
                out.push((unescape_xml(key), size.parse().expect("a size")));
            }
            match between(&text, "<NextContinuationToken>", "</NextContinuationToken>") {
                Some(t) => token = Some(unescape_xml(t)),
                None => return out,
            }
        }
    }

    /// The bytes stored under `key`.
    pub fn get(&self, bucket: &str, key: &str) -> Vec<u8> {
        let (status, body) = request(
            self.addr,
            "GET",
            &format!("/{bucket}/{}", escape_path(key)),
            &[],
        )
        .expect("GET");
        assert_eq!(status, 200, "{key}: {}", String::from_utf8_lossy(&body));
        body
    }

    /// Replaces the bytes under `key` (a test that tampers with the bucket).
    pub fn put(&self, bucket: &str, key: &str, bytes: &[u8]) {
        let (status, body) = request(
            self.addr,
            "PUT",
            &format!("/{bucket}/{}", escape_path(key)),
            bytes,
        )
        .expect("PUT");
        assert_eq!(status, 200, "{key}: {}", String::from_utf8_lossy(&body));
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn between<'a>(s: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = s.find(open)? + open.len();
    let len = s[start..].find(close)?;
    Some(&s[start..start + len])
}

fn unescape_xml(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// Percent-encodes everything but unreserved characters.
fn escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Like `escape`, keeping the slashes of a key.
fn escape_path(s: &str) -> String {
    s.split('/').map(escape).collect::<Vec<_>>().join("/")
}

/// One HTTP/1.1 request on a fresh connection: the status and the body.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
) -> std::io::Result<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20260101/{REGION}/s3/aws4_request, SignedHeaders=host, Signature=0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    s.write_all(body)?;
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {line:?}")))?;
    let mut length = None;
    let mut chunked = false;
    loop {
        line.clear();
        r.read_line(&mut line)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let lower = l.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse::<usize>().ok();
        }
        if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
            chunked = true;
        }
    }
    let mut out = Vec::new();
    if chunked {
        loop {
            line.clear();
            r.read_line(&mut line)?;
            let n = usize::from_str_radix(line.trim(), 16).map_err(std::io::Error::other)?;
            if n == 0 {
                break;
            }
            let mut chunk = vec![0u8; n + 2];
            r.read_exact(&mut chunk)?;
            out.extend_from_slice(&chunk[..n]);
        }
    } else if method == "HEAD" {
    } else if let Some(n) = length {
        out.resize(n, 0);
        r.read_exact(&mut out)?;
    } else {
        r.read_to_end(&mut out)?;
    }
    Ok((status, out))
}
