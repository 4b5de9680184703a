//! A fault-injecting TCP proxy for tests: it forwards connections to a
//! server (the test S3 server) and, on every `every`-th connection, breaks
//! it in one of the ways a real network or a busy service does: the
//! request or the answer cut short mid-transfer, the connection reset, or a
//! "503 Slow Down" in place of the server's answer. Which connections fail
//! is counted, not random, so a failing test fails the same way again.
//!
//! Faults can be changed or turned off while the proxy runs, so a test can
//! let a sync fail part-way and then let the next one through.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// One way to break a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The request reaches the server only up to this many bytes, then the
    /// connection is closed.
    CutRequest { after: u64 },
    /// The answer reaches the client only up to this many bytes, then the
    /// connection is closed.
    CutResponse { after: u64 },
    /// Like `CutResponse`, but the connection is reset (RST), not closed.
    Reset { after: u64 },
    /// The server is not asked: the client gets "503 Slow Down".
    SlowDown,
}

/// Which connections fail, and how: every `every`-th (0: none), taking the
/// faults of `kinds` in turn.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    pub every: u64,
    pub kinds: Vec<Fault>,
}

#[derive(Default)]
struct State {
    faults: Mutex<Faults>,
    connections: AtomicU64,
    injected: AtomicU64,
    stop: AtomicBool,
}

/// A running proxy. Dropping it stops accepting connections.
pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<State>,
    accept: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// A proxy on 127.0.0.1 (a free port) in front of `upstream`.
    pub fn start(upstream: SocketAddr, faults: Faults) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let state = Arc::new(State {
            faults: Mutex::new(faults),
            ..State::default()
        });
        let st = state.clone();
        let accept = std::thread::Builder::new()
            .name("fault-proxy".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if st.stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(client) = conn else { continue };
                    let n = st.connections.fetch_add(1, Ordering::SeqCst) + 1;
                    let fault = {
                        let f = st.faults.lock().unwrap_or_else(|p| p.into_inner());
                        (f.every > 0 && n.is_multiple_of(f.every) && !f.kinds.is_empty()).then(
                            || {
                                let i = st.injected.fetch_add(1, Ordering::SeqCst);
                                f.kinds[(i % f.kinds.len() as u64) as usize]
                            },
                        )
                    };
                    std::thread::spawn(move || serve(client, upstream, fault));
                }
            })
            .expect("spawn the proxy");
        FaultProxy {
            addr,
            state,
            accept: Some(accept),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Changes the faults from the next connection on.
    pub fn set(&self, faults: Faults) {
        *self.state.faults.lock().unwrap_or_else(|p| p.into_inner()) = faults;
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// Connections broken so far.
    pub fn injected(&self) -> u64 {
        self.state.injected.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

const SLOW_DOWN: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";

fn serve(client: TcpStream, upstream: SocketAddr, fault: Option<Fault>) {
    if fault == Some(Fault::SlowDown) {
        slow_down(client);
        return;
    }
    let Ok(server) = TcpStream::connect_timeout(&upstream, Duration::from_secs(5)) else {
        return;
    };
    let (up_cut, down_cut, reset) = match fault {
        Some(Fault::CutRequest { after }) => (Some(after), None, false),
        Some(Fault::CutResponse { after }) => (None, Some(after), false),
        Some(Fault::Reset { after }) => (None, Some(after), true),
        _ => (None, None, false),
    };
    let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let up = std::thread::spawn(move || pipe(c2, s2, up_cut, false));
    pipe(server, client, down_cut, reset);
    let _ = up.join();
}

/// Copies `from` to `to` until the end, or until `cut` bytes went through:
/// then both connections are shut (reset first when `reset`).
fn pipe(mut from: TcpStream, mut to: TcpStream, cut: Option<u64>, reset: bool) {
    let mut buf = vec![0u8; 16 << 10];
    let mut sent = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => {
                let _ = to.shutdown(Shutdown::Write);
                return;
            }
            Ok(n) => n,
        };
        let n = match cut {
            Some(c) => n.min(usize::try_from(c.saturating_sub(sent)).unwrap_or(usize::MAX)),
            None => n,
        };
        if to.write_all(&buf[..n]).is_err() {
            let _ = from.shutdown(Shutdown::Both);
            return;
        }
        sent += n as u64;
        if cut.is_some_and(|c| sent >= c) {
            if reset {
                // SO_LINGER 0: closing sends RST instead of FIN.
                let _ = rustix::net::sockopt::set_socket_linger(&to, Some(Duration::ZERO));
                let _ = rustix::net::sockopt::set_socket_linger(&from, Some(Duration::ZERO));
            }
            let _ = to.shutdown(Shutdown::Both);
            let _ = from.shutdown(Shutdown::Both);
            return;
        }
    }
}

/// Reads the request's head and answers 503 Slow Down.
fn slow_down(mut client: TcpStream) {
    let _ = client.set_read_timeout(Some(Duration::from_secs(5)));
    let mut head = Vec::new();
    let mut b = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 << 10 {
        match client.read(&mut b) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&b[..n]),
        }
    }
    let _ = write!(
        client,
        "HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{SLOW_DOWN}",
        SLOW_DOWN.len()
    );
    let _ = client.flush();
    let _ = client.shutdown(Shutdown::Write);
    // What is left of the request is read and dropped, so closing sends no
    // RST over the answer.
    let _ = std::io::copy(&mut client.take(1 << 30), &mut std::io::sink());
}
