//! Hashing on a second core: the member reader hands the bytes of a large
//! member it only checks (nobody writes it) to a helper thread, so that
//! inflating and hashing run side by side. Restoring one file from a volume
//! then costs about what inflating the volume costs, as it did when the
//! members around it were not hashed at all.
//!
//! Invariant: a digest covers exactly the bytes sent since its `begin`, in
//! order; at most a few buffers are alive at once.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use crate::object::{Hasher, ObjectId};

/// Bytes a message carries.
pub(crate) const CHUNK: usize = 256 << 10;
/// Buffers alive at once (in the channel, being hashed, or spare).
const BUFFERS: usize = 6;

enum Msg {
    Begin(Box<Hasher>),
    /// A buffer and how many of its bytes to hash.
    Data(Vec<u8>, usize),
    End,
}

enum Back {
    Buf(Vec<u8>),
    Digest(ObjectId),
}

/// The helper thread, started on first use.
#[derive(Default)]
pub(crate) struct Pipe {
    link: Option<(SyncSender<Msg>, Receiver<Back>)>,
    spare: Vec<Vec<u8>>,
    made: usize,
}

impl Pipe {
    fn link(&mut self) -> Option<&(SyncSender<Msg>, Receiver<Back>)> {
        if self.link.is_none() {
            let (to, from_main) = sync_channel::<Msg>(BUFFERS);
            let (to_main, back) = sync_channel::<Back>(BUFFERS + 1);
            let started = std::thread::Builder::new()
                .name("archive-hash".into())
                .spawn(move || {
                    let mut h: Option<Box<Hasher>> = None;
                    for msg in from_main {
                        let reply = match msg {
                            Msg::Begin(x) => {
                                h = Some(x);
                                continue;
                            }
                            Msg::Data(buf, n) => {
                                if let Some(h) = h.as_mut() {
                                    h.update(buf.get(..n).unwrap_or_default());
                                }
                                Back::Buf(buf)
                            }
                            Msg::End => Back::Digest(h.take().unwrap_or_default().finish()),
                        };
                        if to_main.send(reply).is_err() {
                            return;
                        }
                    }
                });
            if started.is_ok() {
                self.link = Some((to, back));
            }
        }
        self.link.as_ref()
    }

    /// Continues hashing from `state` (what was hashed so far) on the
    /// helper thread; `None` when no thread could be started (then the
    /// caller hashes itself).
    pub(crate) fn begin(&mut self, state: &Hasher) -> Option<()> {
        let (to, _) = self.link()?;
        to.send(Msg::Begin(Box::new(state.clone()))).ok()
    }

    /// A buffer of [`CHUNK`] bytes to fill, reused when one is free.
    pub(crate) fn buffer(&mut self) -> Vec<u8> {
        match self.spare.pop() {
            Some(b) => b,
            None if self.made < BUFFERS => {
                self.made += 1;
                vec![0u8; CHUNK]
            }
            None => match self.link.as_ref().map(|(_, back)| back.recv()) {
                Some(Ok(Back::Buf(b))) => b,
                _ => vec![0u8; CHUNK],
            },
        }
    }

    /// Hands the first `n` bytes of `data` to the thread to hash; false
    /// when it is gone.
    pub(crate) fn send(&mut self, data: Vec<u8>, n: usize) -> bool {
        match self.link.as_ref() {
            Some((to, _)) => to.send(Msg::Data(data, n)).is_ok(),
            None => false,
        }
    }

    /// Takes back a buffer that was not sent: a buffer must never be lost,
    /// or the pipe would wait for it.
    pub(crate) fn keep(&mut self, buf: Vec<u8>) {
        self.spare.push(buf);
    }

    /// The digest of everything since [`begin`](Self::begin).
    pub(crate) fn end(&mut self) -> Option<ObjectId> {
        let (to, back) = self.link.as_ref()?;
        to.send(Msg::End).ok()?;
        loop {
            match back.recv().ok()? {
                Back::Buf(b) => self.spare.push(b),
                Back::Digest(d) => return Some(d),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_match_hashing_in_place() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let mut pipe = Pipe::default();
        for split in [0, 10, 1 << 20] {
            let mut head = Hasher::default();
            head.update(&data[..split]);
            pipe.begin(&head).unwrap();
            for part in data[split..].chunks(CHUNK - 7) {
                let mut buf = pipe.buffer();
                buf[..part.len()].copy_from_slice(part);
                assert!(pipe.send(buf, part.len()));
            }
            assert_eq!(pipe.end().unwrap(), ObjectId::of(&data), "split at {split}");
        }
        assert!(pipe.made <= BUFFERS);
        // Many members, each ending with a buffer taken and not sent.
        for _ in 0..4 * BUFFERS {
            pipe.begin(&Hasher::default()).unwrap();
            let mut buf = pipe.buffer();
            buf[..3].copy_from_slice(b"abc");
            assert!(pipe.send(buf, 3));
            let unused = pipe.buffer();
            pipe.keep(unused);
            assert_eq!(pipe.end().unwrap(), ObjectId::of(b"abc"));
        }
    }
}
