//! Crafting `tar.gz` archives byte by byte: members with raw names that
//! `tar::Builder` refuses (`..`, absolute), PAX and GNU long-name headers
//! that lie, devices, and members of gigabytes of zeros that cost a few
//! kilobytes (each MiB of zeros is one small gzip member, repeated: gzip
//! members concatenate into one stream).

use std::io::{Read, Write};
use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;

/// Member types, for the suites (which do not depend on `tar` themselves).
pub use tar::EntryType;

const BLOCK: usize = 512;
const MIB: u64 = 1 << 20;

/// What a member carries after its header.
#[derive(Clone, Debug)]
pub enum Data {
    Bytes(Vec<u8>),
    /// This many zero bytes, never held in memory.
    Zeros(u64),
    /// This many zero bytes and then the end of the stream (no padding, no
    /// end-of-archive blocks): a member cut short.
    ZerosThenEnd(u64),
}

impl Data {
    fn len(&self) -> u64 {
        match self {
            Data::Bytes(b) => b.len() as u64,
            Data::Zeros(n) | Data::ZerosThenEnd(n) => *n,
        }
    }
}

/// One member: a 512-byte header and its data.
#[derive(Clone, Debug)]
pub struct Member {
    pub header: tar::Header,
    pub data: Data,
}

impl Member {
    /// The member's name as stored in the header's name field.
    pub fn name(&self) -> Vec<u8> {
        self.header.path_bytes().into_owned()
    }

    /// The data, for members that hold bytes.
    pub fn bytes(&self) -> &[u8] {
        match &self.data {
            Data::Bytes(b) => b,
            _ => &[],
        }
    }

    /// Replaces the data and fixes the header's size and checksum.
    pub fn set_bytes(&mut self, data: Vec<u8>) {
        self.header.set_size(data.len() as u64);
        self.header.set_cksum();
        self.data = Data::Bytes(data);
    }
}

/// A header of type `ty` whose name field holds exactly `name` (up to 100
/// bytes; longer names need [`long_name`]).
pub fn header(name: &[u8], ty: tar::EntryType, size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    {
        let gnu = h.as_gnu_mut().expect("a GNU header");
        let n = name.len().min(gnu.name.len());
        gnu.name[..n].copy_from_slice(&name[..n]);
    }
    h.set_entry_type(ty);
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(1_800_000_000);
    h.set_uid(0);
    h.set_gid(0);
    h.set_cksum();
    h
}

/// A regular file member.
pub fn file(name: &[u8], data: &[u8]) -> Member {
    file_mode(name, data, 0o644)
}

pub fn file_mode(name: &[u8], data: &[u8], mode: u32) -> Member {
    Member {
        header: header(name, tar::EntryType::Regular, data.len() as u64, mode),
        data: Data::Bytes(data.to_vec()),
    }
}

/// A member of type `ty` with no data (folders, FIFOs).
pub fn empty(name: &[u8], ty: tar::EntryType, mode: u32) -> Member {
    Member {
        header: header(name, ty, 0, mode),
        data: Data::Bytes(Vec::new()),
    }
}

/// A symlink or hard link member whose link field holds exactly `target`.
pub fn link(name: &[u8], ty: tar::EntryType, target: &[u8]) -> Member {
    let mut h = header(name, ty, 0, 0o777);
    {
        let gnu = h.as_gnu_mut().expect("a GNU header");
        let n = target.len().min(gnu.linkname.len());
        gnu.linkname[..n].copy_from_slice(&target[..n]);
    }
    h.set_cksum();
    Member {
        header: h,
        data: Data::Bytes(Vec::new()),
    }
}

/// A character or block device member.
pub fn device(name: &[u8], ty: tar::EntryType, major: u32, minor: u32) -> Member {
    let mut h = header(name, ty, 0, 0o666);
    h.set_device_major(major).expect("device major");
    h.set_device_minor(minor).expect("device minor");
    h.set_cksum();
    Member {
        header: h,
        data: Data::Bytes(Vec::new()),
    }
}

/// A GNU long-name member (`././@LongLink`, type `L`) carrying `name`; the
/// member it names must follow it.
pub fn long_name(name: &[u8]) -> Member {
    let mut data = name.to_vec();
    data.push(0);
    Member {
        header: header(
            b"././@LongLink",
            tar::EntryType::GNULongName,
            data.len() as u64,
            0o644,
        ),
        data: Data::Bytes(data),
    }
}

/// A PAX extended header (type `x`) with `key=value` records, for the
/// member that follows it.
pub fn pax(records: &[(&str, &str)]) -> Member {
    let mut data = Vec::new();
    for (k, v) in records {
        let body = format!(" {k}={v}\n");
        // The length counts itself: find the width that fits.
        let mut len = body.len() + 1;
        while format!("{len}{body}").len() != len {
            len += 1;
        }
        data.extend_from_slice(format!("{len}{body}").as_bytes());
    }
    Member {
        header: header(
            b"PaxHeaders/x",
            tar::EntryType::XHeader,
            data.len() as u64,
            0o644,
        ),
        data: Data::Bytes(data),
    }
}

/// A sparse member in PAX 1.0 form, as GNU tar and Coffer write it: the
/// PAX header naming `name` with `realsize`, then a member under
/// `GNUSparseFile.0/` whose data is `map` (the decimal lines) padded to
/// 512 bytes and then `data`. Returns the two members and the second's size.
pub fn sparse(name: &str, realsize: &str, map: &str, data: &[u8]) -> (Member, Member, u64) {
    let header = pax(&[
        ("GNU.sparse.major", "1"),
        ("GNU.sparse.minor", "0"),
        ("GNU.sparse.name", name),
        ("GNU.sparse.realsize", realsize),
    ]);
    let mut body = map.as_bytes().to_vec();
    body.resize(body.len().div_ceil(BLOCK) * BLOCK, 0);
    body.extend_from_slice(data);
    let len = body.len() as u64;
    (header, file(b"GNUSparseFile.0/x", &body), len)
}

/// SHA-256 as lowercase hex.
pub fn sha(data: &[u8]) -> String {
    coffer_core::ObjectId::of(data).to_hex()
}

/// A tar stream as a list of members, written out gzip-compressed.
#[derive(Clone, Debug, Default)]
pub struct Tarball {
    pub members: Vec<Member>,
    /// Raw bytes after the end-of-archive blocks (trailing garbage), inside
    /// the gzip stream.
    pub tail: Vec<u8>,
}

impl Tarball {
    /// Reads a `.tar.gz` that Coffer wrote.
    pub fn read(path: &Path) -> Tarball {
        Tarball::parse(&gunzip(&std::fs::read(path).expect("read archive")))
    }

    /// Splits a plain tar stream into its members.
    pub fn parse(raw: &[u8]) -> Tarball {
        let mut members = Vec::new();
        let mut at = 0;
        while at + BLOCK <= raw.len() {
            let block = &raw[at..at + BLOCK];
            if block.iter().all(|&b| b == 0) {
                break;
            }
            let mut header = tar::Header::new_old();
            header.as_mut_bytes().copy_from_slice(block);
            let size = header.entry_size().expect("member size") as usize;
            at += BLOCK;
            let data = raw[at..at + size].to_vec();
            at += size.div_ceil(BLOCK) * BLOCK;
            members.push(Member {
                header,
                data: Data::Bytes(data),
            });
        }
        Tarball {
            members,
            tail: Vec::new(),
        }
    }

    /// The index of the member named `name`.
    pub fn find(&self, name: &str) -> Option<usize> {
        self.members
            .iter()
            .position(|m| m.name() == name.as_bytes())
    }

    /// Inserts `m` right after the member named `after`.
    pub fn insert_after(&mut self, after: &str, m: Member) {
        let i = self
            .find(after)
            .unwrap_or_else(|| panic!("no member {after} in the archive"));
        self.members.insert(i + 1, m);
    }

    /// Removes the member named `name`.
    pub fn remove(&mut self, name: &str) -> Member {
        let i = self
            .find(name)
            .unwrap_or_else(|| panic!("no member {name} in the archive"));
        self.members.remove(i)
    }

    /// Edits the manifest in place.
    pub fn edit_manifest(&mut self, f: impl FnOnce(&mut serde_json::Value)) {
        let mut m = self.manifest();
        f(&mut m);
        self.set_manifest(&m);
    }

    /// Adds an entry to the manifest, keeping entries sorted by path.
    pub fn add_entry(&mut self, e: serde_json::Value) {
        self.edit_manifest(|m| {
            let es = m["entries"].as_array_mut().expect("entries");
            es.push(e);
            es.sort_by(|a, b| a["path"].as_str().cmp(&b["path"].as_str()));
        });
    }

    /// Edits the manifest entry whose path is `path`.
    pub fn edit_entry(&mut self, path: &str, f: impl FnOnce(&mut serde_json::Value)) {
        self.edit_manifest(|m| {
            let e = m["entries"]
                .as_array_mut()
                .and_then(|es| es.iter_mut().find(|e| e["path"] == path))
                .unwrap_or_else(|| panic!("no entry {path} in the manifest"));
            f(e);
        });
    }

    pub fn member_mut(&mut self, name: &str) -> &mut Member {
        let i = self
            .find(name)
            .unwrap_or_else(|| panic!("no member {name} in the archive"));
        &mut self.members[i]
    }

    /// The manifest (first member) as JSON.
    pub fn manifest(&self) -> serde_json::Value {
        serde_json::from_slice(self.members[0].bytes()).expect("manifest.json is JSON")
    }

    /// Replaces the first member's data with `m`.
    pub fn set_manifest(&mut self, m: &serde_json::Value) {
        let bytes = serde_json::to_vec(m).expect("encode manifest");
        self.members[0].set_bytes(bytes);
    }

    /// The uncompressed tar bytes (members holding zeros are written out).
    pub fn to_tar(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.emit(&mut |chunk: Chunk<'_>| match chunk {
            Chunk::Bytes(b) => out.extend_from_slice(b),
            Chunk::Zeros(n) => out.resize(out.len() + n as usize, 0),
        });
        out
    }

    /// Writes the archive gzip-compressed to `path`.
    pub fn write(&self, path: &Path) {
        std::fs::write(path, self.to_gz()).expect("write archive");
    }

    /// The archive, gzip-compressed; runs of zeros become repeated members
    /// of one compressed MiB.
    pub fn to_gz(&self) -> Vec<u8> {
        let mib = gz(&vec![0u8; MIB as usize]);
        let mut out = Vec::new();
        let mut pending = Vec::new();
        self.emit(&mut |chunk: Chunk<'_>| match chunk {
            Chunk::Bytes(b) => pending.extend_from_slice(b),
            Chunk::Zeros(mut n) => {
                out.extend_from_slice(&gz(&std::mem::take(&mut pending)));
                while n >= MIB {
                    out.extend_from_slice(&mib);
                    n -= MIB;
                }
                pending.resize(n as usize, 0);
            }
        });
        out.extend_from_slice(&gz(&pending));
        out
    }

    fn emit(&self, f: &mut dyn FnMut(Chunk<'_>)) {
        for m in &self.members {
            f(Chunk::Bytes(m.header.as_bytes()));
            let len = m.data.len();
            match &m.data {
                Data::Bytes(b) => f(Chunk::Bytes(b)),
                Data::Zeros(n) => f(Chunk::Zeros(*n)),
                Data::ZerosThenEnd(n) => {
                    f(Chunk::Zeros(*n));
                    return;
                }
            }
            let pad = (BLOCK - (len % BLOCK as u64) as usize) % BLOCK;
            f(Chunk::Zeros(pad as u64));
        }
        f(Chunk::Zeros(2 * BLOCK as u64));
        f(Chunk::Bytes(&self.tail));
    }
}

enum Chunk<'a> {
    Bytes(&'a [u8]),
    Zeros(u64),
}

/// A manifest entry for a file stored whole in volume 1.
pub fn file_entry(path: &str, data: &[u8], mode: u32) -> serde_json::Value {
    serde_json::json!({
        "path": path,
        "kind": "file",
        "size": data.len(),
        "mtime_ns": 1_800_000_000_000_000_000i64,
        "mode": mode,
        "sha256": sha(data),
        "how": "new",
        "volume": 1,
    })
}

/// The whole content of a gzip stream (all members).
pub fn gunzip(gz: &[u8]) -> Vec<u8> {
    let mut raw = Vec::new();
    flate2::read::MultiGzDecoder::new(gz)
        .read_to_end(&mut raw)
        .expect("gunzip");
    raw
}

/// A `.tar.gz` holding one regular member, compressed at the fastest
/// level straight from `data` (for members of hundreds of MB).
pub fn gz_one_member(name: &[u8], data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::fast());
    let h = header(name, tar::EntryType::Regular, data.len() as u64, 0o644);
    e.write_all(h.as_bytes()).expect("gzip in memory");
    e.write_all(data).expect("gzip in memory");
    let pad = (BLOCK - data.len() % BLOCK) % BLOCK;
    e.write_all(&vec![0u8; pad + 2 * BLOCK])
        .expect("gzip in memory");
    e.finish().expect("gzip in memory")
}

/// One complete gzip member holding `data`.
pub fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).expect("gzip in memory");
    e.finish().expect("gzip in memory")
}

/// An rsync delta (fast_rsync's format) from raw commands: magic, `body`,
/// and the end command.
pub fn delta(body: &[u8]) -> Vec<u8> {
    let mut d = 0x7273_0236u32.to_be_bytes().to_vec();
    d.extend_from_slice(body);
    d.push(0);
    d
}

/// A delta command copying `len` bytes from `offset` of the base (8-byte
/// offset and length).
pub fn delta_copy(offset: u64, len: u64) -> Vec<u8> {
    let mut c = vec![0x54];
    c.extend_from_slice(&offset.to_be_bytes());
    c.extend_from_slice(&len.to_be_bytes());
    c
}

/// A delta command carrying `data` literally (up to 255 bytes).
pub fn delta_literal(data: &[u8]) -> Vec<u8> {
    let mut c = vec![0x41, u8::try_from(data.len()).expect("short literal")];
    c.extend_from_slice(data);
    c
}
