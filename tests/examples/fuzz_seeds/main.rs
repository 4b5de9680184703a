//! Writes the seed corpora of the fuzz targets (`fuzz/seeds/<target>/`):
//! identity files, sidecars, manifests, archives and deltas made by Coffer
//! itself on a small real tree, and hostile cases made by hand from them.
//! The fuzzer grows its corpus from these; only they are committed.
//!
//! ```text
//! cargo run -p coffer-tests --example fuzz_seeds -- fuzz/seeds
//! ```
//!
//! The layouts of the `delta` and `member` inputs are the ones their
//! targets read (see `fuzz/fuzz_targets/`).

mod hostile;

use std::error::Error;
use std::io::Read;
use std::path::{Path, PathBuf};

use coffer_core::Progress;
use coffer_core::archive::{self, Mode, Options};
use coffer_core::config::Dump;
use coffer_tests::{Lab, bytes};

type Res<T> = Result<T, Box<dyn Error>>;

/// One target's seed folder, emptied when made.
pub struct Seeds {
    dir: PathBuf,
}

impl Seeds {
    fn new(root: &Path, target: &str) -> Res<Seeds> {
        let dir = root.join(target);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)?;
        Ok(Seeds { dir })
    }

    pub fn put(&self, name: &str, data: impl AsRef<[u8]>) -> Res<()> {
        std::fs::write(self.dir.join(name), data)?;
        Ok(())
    }
}

/// A `delta` target input: base length, limit, base, delta.
pub fn delta_input(base: &[u8], limit: u64, delta: &[u8]) -> Vec<u8> {
    let len = u16::try_from(base.len()).unwrap_or(u16::MAX);
    let mut out = len.to_le_bytes().to_vec();
    out.extend_from_slice(&limit.to_le_bytes());
    out.extend_from_slice(&base[..usize::from(len)]);
    out.extend_from_slice(delta);
    out
}

/// A `member` target input: the mode byte (`gz` set: the body is gzip;
/// else a raw tar stream) picking `volume`, then the body.
pub fn member_input(gz: bool, volume: u32, body: &[u8]) -> Vec<u8> {
    let mut out = cut_input(volume, 0, body);
    out[0] |= u8::from(gz);
    out
}

/// A `member` target input of a raw tar stream, from which the target
/// cuts member `cut` (from 1; 0 cuts nothing), picking `volume`.
pub fn cut_input(volume: u32, cut: u8, body: &[u8]) -> Vec<u8> {
    let v = u8::try_from(volume.saturating_sub(1) % 4).unwrap_or(0);
    let mut out = vec![(cut << 3) | (v << 1)];
    out.extend_from_slice(body);
    out
}

/// `tar` without its `k`-th raw member (header and data), as the `member`
/// target cuts it.
fn without_member(tar: &[u8], k: usize) -> Vec<u8> {
    let mut ar = tar::Archive::new(tar);
    let span = ar.entries().ok().and_then(|e| {
        let e = e.raw(true).nth(k.checked_sub(1)?)?.ok()?;
        let end = e.raw_file_position() + e.size().div_ceil(512) * 512;
        Some((
            usize::try_from(e.raw_header_position()).ok()?,
            usize::try_from(end).ok()?,
        ))
    });
    match span {
        Some((start, end)) if start < end && end <= tar.len() => {
            [&tar[..start], &tar[end..]].concat()
        }
        _ => tar.to_vec(),
    }
}

pub fn gunzip(gz: &[u8]) -> Res<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(gz).read_to_end(&mut out)?;
    Ok(out)
}

/// The data of the member `name` of the tar stream `tar`.
pub fn member_data(tar: &[u8], name: &str) -> Res<Vec<u8>> {
    let mut ar = tar::Archive::new(tar);
    for e in ar.entries()? {
        let mut e = e?;
        if e.path_bytes().as_ref() == name.as_bytes() {
            let mut out = Vec::new();
            e.read_to_end(&mut out)?;
            return Ok(out);
        }
    }
    Err(format!("no member {name}").into())
}

/// An rsync delta from `base` to `new`, as the archive writer makes them.
pub fn diff(base: &[u8], new: &[u8], block_size: u32) -> Res<Vec<u8>> {
    let sig = fast_rsync::Signature::calculate(
        base,
        fast_rsync::SignatureOptions {
            block_size,
            crypto_hash_size: 8,
        },
    );
    let mut delta = Vec::new();
    fast_rsync::diff(&sig.index(), new, &mut delta)?;
    Ok(delta)
}

/// What the real run made, for the hostile cases to start from.
pub struct Real {
    pub manifest: Vec<u8>,
    pub full_tar: Vec<u8>,
}

fn main() -> Res<()> {
    let root = PathBuf::from(std::env::args().nth(1).unwrap_or("fuzz/seeds".into()));
    let identity = Seeds::new(&root, "identity")?;
    let sidecar = Seeds::new(&root, "sidecar")?;
    let manifests = Seeds::new(&root, "manifest")?;
    let deltas = Seeds::new(&root, "delta")?;
    let members = Seeds::new(&root, "member")?;

    // A small real tree, a disk synced twice (both slots written).
    let mut lab = Lab::new(1);
    lab.files(4, 3000);
    std::fs::create_dir_all(lab.src.join("empty"))?;
    std::os::unix::fs::symlink("d0/f0.bin", lab.src.join("link"))?;
    let big = bytes(99, 12_000);
    std::fs::write(lab.src.join("big.bin"), &big)?;
    let disk = lab.disk("blue", None);
    lab.scan_and_sync_with(&disk, coffer_core::disk::io::real())?;
    std::fs::write(lab.src.join("d1/new.txt"), b"a new file\n")?;
    lab.scan_and_sync_with(&disk, coffer_core::disk::io::real())?;
    identity.put(
        "real-blue.json",
        std::fs::read(disk.join("coffer-disk.json"))?,
    )?;
    let quota = lab.disk("red", Some(500 << 30));
    identity.put(
        "real-quota.json",
        std::fs::read(quota.join("coffer-disk.json"))?,
    )?;
    for slot in ["a", "b"] {
        let side = std::fs::read(disk.join(format!("coffer/catalog-{slot}.json")))?;
        sidecar.put(&format!("real-{slot}.json"), side)?;
    }

    // Archives: a full one with a dump, an incremental with a delta and a
    // deletion, and one split into volumes.
    let nas = lab.root.join("nas");
    std::fs::create_dir_all(&nas)?;
    let mut profile = lab.profile.clone();
    profile.dumps = vec![Dump {
        name: "notes".into(),
        command: "printf 'dump output\\n'".into(),
        load_command: None,
    }];
    let run =
        |mode, opts: &Options| archive::create(&profile, &nas, mode, opts, &Progress::silent());
    let full = run(Mode::Full, &Options::default())?;
    let mut changed = big.clone();
    changed[6000..6010].copy_from_slice(b"0123456789");
    let f = std::fs::File::options()
        .write(true)
        .open(lab.src.join("big.bin"))?;
    std::io::Write::write_all(&mut &f, &changed)?;
    f.set_modified(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1 << 30))?;
    std::fs::remove_file(lab.src.join("d0/f3.bin"))?;
    let inc = run(Mode::Incremental { since: None }, &Options::default())?;
    let split = run(
        Mode::Full,
        &Options {
            prefix: Some("split".into()),
            volume_size: Some(8000),
        },
    )?;
    let mut full_tar = Vec::new();
    for (tag, report) in [("full", &full), ("incremental", &inc), ("split", &split)] {
        for (i, file) in report.files.iter().enumerate() {
            let v = u32::try_from(i + 1)?;
            let gz = std::fs::read(file)?;
            let tar = gunzip(&gz)?;
            if v == 1 {
                manifests.put(
                    &format!("real-{tag}.json"),
                    member_data(&tar, "manifest.json")?,
                )?;
            }
            if tag == "split" && v == 2 {
                // Its one file cut out: the volume then lacks exactly that.
                members.put("cut2-split-vol2.tar", cut_input(v, 2, &tar))?;
            }
            if v <= 4 {
                members.put(
                    &format!("real-{tag}-vol{v}.tar"),
                    member_input(false, v, &tar),
                )?;
                members.put(&format!("real-{tag}-vol{v}.gz"), member_input(true, v, &gz))?;
            }
            if tag == "full" {
                full_tar = tar;
            }
        }
    }
    let inc_tar = gunzip(&std::fs::read(&inc.files[0])?)?;
    let stored = member_data(&inc_tar, ".coffer-delta/docs/big.bin")?;
    deltas.put(
        "real-archive-delta",
        delta_input(&big, changed.len() as u64, &stored),
    )?;

    // Deltas as the writer makes them, over bases of a few shapes.
    let base = bytes(7, 16_000);
    let mut edited = base.clone();
    edited.splice(5000..5010, bytes(8, 30));
    edited.drain(12_000..12_100);
    let repeats: Vec<u8> = b"abcd".iter().cycle().take(9000).copied().collect();
    let cases: [(&str, &[u8], &[u8], u32); 6] = [
        ("edited-4k", &base, &edited, 4096),
        ("edited-64", &base[..6000], &edited[..6000], 64),
        ("same", &base[..8000], &base[..8000], 512),
        ("from-empty", b"", &edited[..3000], 64),
        ("to-empty", &base[..3000], b"", 64),
        ("repeats", &repeats[..4096], &repeats, 64),
    ];
    for (name, from, to, block) in cases {
        let d = diff(from, to, block)?;
        deltas.put(name, delta_input(from, to.len() as u64, &d))?;
    }
    let d = diff(&base, &edited, 4096)?;
    deltas.put(
        "limit-short",
        delta_input(&base, edited.len() as u64 - 1, &d),
    )?;
    deltas.put("limit-max", delta_input(&base, u64::MAX, &d))?;

    let real = Real {
        manifest: member_data(&full_tar, "manifest.json")?,
        full_tar,
    };
    hostile::identities(&identity)?;
    hostile::sidecars(&sidecar)?;
    hostile::manifests(&manifests, &real)?;
    hostile::deltas(&deltas)?;
    hostile::members(&members, &real)?;
    check(&identity, &sidecar, &manifests, &deltas, &members)?;
    println!("seeds written under {}", root.display());
    Ok(())
}

/// Checks that the seeds in `s` are what they claim: exactly those named
/// in `accepted` pass `parse`, every other one is refused.
pub fn expect_accepted(s: &Seeds, accepted: &[&str], parse: impl Fn(&[u8]) -> bool) -> Res<()> {
    for e in std::fs::read_dir(&s.dir)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        let ok = parse(&std::fs::read(e.path())?);
        if ok != accepted.contains(&name.as_str()) {
            let what = if ok { "accepted" } else { "refused" };
            return Err(format!("seed {} is {what}", e.path().display()).into());
        }
    }
    Ok(())
}

/// Whether a `member` input is accepted, read as the target reads it.
fn member_ok(input: &[u8]) -> bool {
    let Some((&mode, body)) = input.split_first() else {
        return false;
    };
    let (gz, tar) = if mode & 1 == 0 {
        let tar = without_member(body, usize::from(mode >> 3));
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let gz = std::io::Write::write_all(&mut e, &tar).and_then(|()| e.finish());
        (gz.unwrap_or_default(), tar)
    } else {
        (body.to_vec(), gunzip(body).unwrap_or_default())
    };
    let Some(m) = member_data(&tar, "manifest.json")
        .ok()
        .and_then(|b| archive::manifest::parse(&b).ok())
    else {
        return false;
    };
    let v = 1 + u32::from((mode >> 1) & 3) % m.volumes.min(4);
    archive::member::check_stream(&gz[..], &m, v).is_ok()
}

/// Whether a `delta` input applies.
fn delta_ok(input: &[u8]) -> bool {
    let (Some(len), Some(limit)) = (input.get(..2), input.get(2..10)) else {
        return false;
    };
    let len = usize::from(u16::from_le_bytes([len[0], len[1]]));
    let limit = u64::from_le_bytes(limit.try_into().unwrap_or_default());
    let rest = &input[10..];
    let (base, delta) = rest.split_at(len.min(rest.len()));
    let Ok(mut f) = tempfile::tempfile() else {
        return false;
    };
    std::io::Write::write_all(&mut f, base).is_ok()
        && archive::delta::apply(&f, delta, std::io::sink(), limit).is_ok()
}

/// The seeds each parser must accept; it must refuse all the others.
fn check(
    identity: &Seeds,
    sidecar: &Seeds,
    manifest: &Seeds,
    delta: &Seeds,
    member: &Seeds,
) -> Res<()> {
    let ids = [
        "real-blue.json",
        "real-quota.json",
        "good",
        "fat32",
        "label-escape",
        "nul",
    ];
    expect_accepted(identity, &ids, |b| {
        coffer_core::disk::Identity::parse(b).is_ok()
    })?;
    let sides = ["real-a.json", "real-b.json", "good", "gen-max", "extra"];
    expect_accepted(sidecar, &sides, |b| {
        coffer_core::disk::SlotMeta::parse(b).is_ok()
    })?;
    let real = ["real-full.json", "real-incremental.json", "real-split.json"];
    let manifests = [&real[..], &["escape", "extra-field"]].concat();
    expect_accepted(manifest, &manifests, |b| {
        archive::manifest::parse(b).is_ok()
    })?;
    let deltas = [
        "amplify",
        "edited-4k",
        "edited-64",
        "from-empty",
        "good",
        "limit-max",
        "real-archive-delta",
        "repeats",
        "same",
        "to-empty",
    ];
    expect_accepted(delta, &deltas, delta_ok)?;
    let mut members: Vec<String> = ["small.tar", "small.gz", "pax-path.tar", "big-member.gz"]
        .map(String::from)
        .to_vec();
    for e in std::fs::read_dir(&member.dir)? {
        let name = e?.file_name().to_string_lossy().into_owned();
        if name.starts_with("real-") && !name.starts_with("real-flipped") {
            members.push(name);
        }
    }
    let members: Vec<&str> = members.iter().map(String::as_str).collect();
    expect_accepted(member, &members, member_ok)
}
