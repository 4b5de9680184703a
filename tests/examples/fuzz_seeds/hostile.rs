//! The hand-made hostile seeds: each is one of the attacks the readers
//! must refuse (see issue 14), so the fuzzer starts next to every refusal.

use serde_json::{Value, json};
use tar::EntryType;

use super::{Real, Res, Seeds, cut_input, delta_input, member_input};

const GOOD_ID: &str = r#"{"format":1,"disk_id":"9b2f6c1e-1d2a-4c3b-8e4f-5a6b7c8d9e0f","label":"Blue","sets":["00000000-0000-0000-0000-000000000000"],"created_at":1}"#;

pub fn identities(s: &Seeds) -> Res<()> {
    let with =
        |extra: &str| GOOD_ID.replace("\"created_at\":1", &format!("\"created_at\":1,{extra}"));
    let sets: Vec<String> = (0..65)
        .map(|i| format!("\"00000000-0000-0000-0000-{i:012}\""))
        .collect();
    let cases: Vec<(&str, String)> = vec![
        ("good", GOOD_ID.into()),
        ("fat32", with("\"max_file_size\":4294967295,\"quota\":null")),
        ("empty", String::new()),
        ("spaces", " \n\t ".into()),
        ("bom", format!("\u{feff}{GOOD_ID}")),
        ("truncated", GOOD_ID[..GOOD_ID.len() / 2].into()),
        (
            "duplicate-label",
            GOOD_ID.replace("\"label\":\"Blue\"", "\"label\":\"Blue\",\"label\":\"Red\""),
        ),
        ("format-2", GOOD_ID.replace("\"format\":1", "\"format\":2")),
        ("format-0", GOOD_ID.replace("\"format\":1", "\"format\":0")),
        (
            "format-huge",
            GOOD_ID.replace("\"format\":1", "\"format\":1180591620717411303424"),
        ),
        (
            "format-string",
            GOOD_ID.replace("\"format\":1", "\"format\":\"1\""),
        ),
        ("no-format", GOOD_ID.replace("\"format\":1,", "")),
        ("part-zero", with("\"max_file_size\":0")),
        ("part-small", with("\"max_file_size\":67108863")),
        ("label-long", GOOD_ID.replace("Blue", &"x".repeat(300))),
        (
            "label-escape",
            GOOD_ID.replace("Blue", "\\u001b[2J\\nfake line"),
        ),
        ("label-blank", GOOD_ID.replace("Blue", "  ")),
        ("label-null", GOOD_ID.replace("\"Blue\"", "null")),
        (
            "sets-65",
            GOOD_ID.replace(
                "[\"00000000-0000-0000-0000-000000000000\"]",
                &format!("[{}]", sets.join(",")),
            ),
        ),
        ("quota-negative", with("\"quota\":-1")),
        ("quota-float", with("\"quota\":1.5")),
        (
            "bad-uuid",
            GOOD_ID.replace("9b2f6c1e-1d2a-4c3b-8e4f-5a6b7c8d9e0f", "not-a-uuid"),
        ),
        ("deep", "[".repeat(5000)),
        ("trailing", format!("{GOOD_ID} x")),
        ("top-array", format!("[{GOOD_ID}]")),
        ("nul", GOOD_ID.replace("Blue", "Bl\\u0000ue")),
    ];
    for (name, text) in cases {
        s.put(name, text)?;
    }
    s.put("utf16-bom", [0xFF, 0xFE, b'{', 0, b'}', 0])?;
    let mut bad_utf8 = GOOD_ID.as_bytes().to_vec();
    bad_utf8[GOOD_ID.find("Blue").unwrap_or(0)] = 0xC3;
    s.put("bad-utf8", bad_utf8)
}

const GOOD_SIDE: &str = r#"{"generation":3,"size":4096,"sha256":"b5a2c96250612366ea272ffac6d9744aaf4b45aacd96aa7cfcb931ee3b558259","written_at":1700000000}"#;

pub fn sidecars(s: &Seeds) -> Res<()> {
    let generation =
        |g: &str| GOOD_SIDE.replace("\"generation\":3", &format!("\"generation\":{g}"));
    let cases: Vec<(&str, String)> = vec![
        ("good", GOOD_SIDE.into()),
        ("gen-0", generation("0")),
        ("gen-max", generation("9007199254740992")),
        ("gen-over", generation("9007199254740993")),
        ("gen-u64-max", generation("18446744073709551615")),
        ("gen-2-64", generation("18446744073709551616")),
        ("gen-negative", generation("-1")),
        ("gen-float", generation("1.0")),
        ("gen-exp", generation("1e3")),
        (
            "gen-twice",
            GOOD_SIDE.replace("\"generation\":3", "\"generation\":3,\"generation\":4"),
        ),
        (
            "size-huge",
            GOOD_SIDE.replace("\"size\":4096", "\"size\":68719476737"),
        ),
        ("sha-short", GOOD_SIDE.replace("259\"", "25\"")),
        ("sha-upper", GOOD_SIDE.replace("b5a2c9", "B5A2C9")),
        (
            "no-sha",
            GOOD_SIDE.replace(
                "\"sha256\":\"b5a2c96250612366ea272ffac6d9744aaf4b45aacd96aa7cfcb931ee3b558259\",",
                "",
            ),
        ),
        ("extra", GOOD_SIDE.replace("{", "{\"x\":[1,2,{}],")),
        ("empty", String::new()),
        ("truncated", GOOD_SIDE[..40].into()),
    ];
    for (name, text) in cases {
        s.put(name, text)?;
    }
    Ok(())
}

/// The index of the first entry of `kind` in a manifest's entries.
fn first(m: &Value, kind: &str) -> usize {
    m["entries"]
        .as_array()
        .and_then(|e| e.iter().position(|e| e["kind"] == kind))
        .unwrap_or(0)
}

pub fn manifests(s: &Seeds, real: &Real) -> Res<()> {
    let m: Value = serde_json::from_slice(&real.manifest)?;
    let (f, d, l) = (first(&m, "file"), first(&m, "dir"), first(&m, "symlink"));
    let file = m["entries"][f].clone();
    let link = m["entries"][l]["path"]
        .as_str()
        .unwrap_or("link")
        .to_string();
    let file_path = file["path"].as_str().unwrap_or("big.bin").to_string();
    let with_file = |path: &str| {
        let mut m = m.clone();
        let mut e = file.clone();
        e["path"] = json!(path);
        if let Some(a) = m["entries"].as_array_mut() {
            a.push(e);
        }
        m
    };
    let set = |path: &[&str], v: Value| {
        let mut m = m.clone();
        let mut at = &mut m;
        for k in path {
            at = match k.parse::<usize>() {
                Ok(i) => &mut at[i],
                Err(_) => &mut at[*k],
            };
        }
        *at = v;
        m
    };
    let (fs, ds, ls) = (f.to_string(), d.to_string(), l.to_string());
    let e = |i: &str, k: &'static str| ["entries", i, k].map(str::to_string);
    let at = |p: &[String; 3], v: Value| set(&[p[0].as_str(), p[1].as_str(), p[2].as_str()], v);
    let cases: Vec<(&str, Value)> = vec![
        ("dotdot", at(&e(&fs, "path"), json!("../evil"))),
        ("absolute", at(&e(&fs, "path"), json!("/etc/passwd"))),
        ("dot", at(&e(&fs, "path"), json!("./a"))),
        ("trailing-slash", at(&e(&fs, "path"), json!("a/"))),
        ("double-slash", at(&e(&fs, "path"), json!("a//b"))),
        ("nul", at(&e(&fs, "path"), json!("a\u{0}b"))),
        ("name-256", at(&e(&fs, "path"), json!("x".repeat(256)))),
        ("path-4097", at(&e(&fs, "path"), json!("ab/".repeat(1366)))),
        ("escape", at(&e(&fs, "path"), json!("\u{1b}[2J\nfake"))),
        ("duplicate", with_file(&file_path)),
        ("under-symlink", with_file(&format!("{link}/x"))),
        ("under-file", with_file(&format!("{file_path}/x"))),
        ("reserved-manifest", with_file("manifest.json")),
        ("reserved-dumps", with_file("dumps/x")),
        ("reserved-delta", with_file(".coffer-delta/x")),
        ("mode-big", at(&e(&fs, "mode"), json!(0o10000))),
        ("size-big", at(&e(&fs, "size"), json!((1u64 << 48) + 1))),
        ("size-u64", at(&e(&fs, "size"), json!(u64::MAX))),
        ("no-how", at(&e(&fs, "how"), Value::Null)),
        ("how-same", at(&e(&fs, "how"), json!("same"))),
        ("how-delta", at(&e(&fs, "how"), json!("delta"))),
        ("sha-upper", at(&e(&fs, "sha256"), json!("A".repeat(64)))),
        ("signature-bad", at(&e(&fs, "signature"), json!("xyz"))),
        ("volume-0", at(&e(&fs, "volume"), json!(0))),
        ("volume-2", at(&e(&fs, "volume"), json!(2))),
        ("dir-size", at(&e(&ds, "size"), json!(5))),
        ("dir-target", at(&e(&ds, "target"), json!("x"))),
        ("link-no-target", at(&e(&ls, "target"), Value::Null)),
        ("link-empty-target", at(&e(&ls, "target"), json!(""))),
        ("volumes-0", set(&["volumes"], json!(0))),
        ("volumes-many", set(&["volumes"], json!(1_000_001))),
        ("block-small", set(&["block_size"], json!(63))),
        ("block-big", set(&["block_size"], json!((16 << 20) + 1))),
        ("format-0", set(&["format"], json!(0))),
        ("format-2", set(&["format"], json!(2))),
        ("sequence-0", set(&["sequence"], json!(0))),
        ("prefix-bad", set(&["prefix"], json!("../x"))),
        ("full-with-base", set(&["base_sequence"], json!(1))),
        ("incremental-no-base", set(&["kind"], json!("incremental"))),
        ("dump-name", set(&["dumps", "0", "name"], json!("../x"))),
        ("dump-volume", set(&["dumps", "0", "volume"], json!(9))),
        (
            "deleted-dotdot",
            set(&["deleted"], json!([{"path": "../x", "kind": "file"}])),
        ),
        ("extra-field", set(&["unknown"], json!({"a": [1, 2]}))),
    ];
    for (name, v) in cases {
        s.put(name, serde_json::to_vec(&v)?)?;
    }
    let text = serde_json::to_vec(&m)?;
    s.put("truncated", &text[..text.len() / 2])?;
    s.put("deep", "[".repeat(5000))?;
    Ok(())
}

fn delta(cmds: &[u8]) -> Vec<u8> {
    let mut d = 0x7273_0236u32.to_be_bytes().to_vec();
    d.extend_from_slice(cmds);
    d
}

pub fn deltas(s: &Seeds) -> Res<()> {
    let base = b"0123456789";
    let mut past = vec![0x54];
    past.extend_from_slice(&5u64.to_be_bytes());
    past.extend_from_slice(&6u64.to_be_bytes());
    past.push(0);
    let mut overflow = vec![0x54];
    overflow.extend_from_slice(&u64::MAX.to_be_bytes());
    overflow.extend_from_slice(&2u64.to_be_bytes());
    overflow.push(0);
    let mut huge = vec![0x44];
    huge.extend_from_slice(&(1u64 << 62).to_be_bytes());
    let cases: Vec<(&str, Vec<u8>, u64)> = vec![
        ("copy-past-end", delta(&past), 100),
        ("copy-overflow", delta(&overflow), 100),
        ("literal-2-62", delta(&huge), 1 << 40),
        ("copy-zero", delta(&[0x45, 0, 0, 0]), 9),
        ("unknown", delta(&[0x55]), 9),
        ("truncated", delta(&[0x05, b'a']), 9),
        ("no-end", delta(&[]), 9),
        ("trailing", delta(&[0, 0]), 9),
        ("magic", b"\0\0\0\0\0".to_vec(), 9),
        ("short-magic", b"rs".to_vec(), 9),
        ("good", delta(&[0x02, b'h', b'i', 0x45, 2, 3, 0]), 5),
        ("limit-0", delta(&[0x02, b'h', b'i', 0]), 0),
        (
            "copies-over-limit",
            delta(&[0x45, 0, 10, 0x45, 0, 10, 0]),
            15,
        ),
    ];
    for (name, d, limit) in cases {
        s.put(name, delta_input(base, limit, &d))?;
    }
    // A few bytes of delta that COPY a 4 KiB base a thousand times.
    let big_base = vec![7u8; 4096];
    let mut cmds = Vec::new();
    for _ in 0..1000 {
        cmds.extend_from_slice(&[0x4a, 0, 0, 0x10, 0]);
    }
    cmds.push(0);
    s.put(
        "amplify",
        delta_input(&big_base, 4096 * 1000, &delta(&cmds)),
    )
}

/// A raw tar header: any name and link bytes (up to 100), any type.
fn header(name: &[u8], kind: EntryType, size: u64, link: &[u8]) -> Vec<u8> {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(if kind == EntryType::Directory {
        0o755
    } else {
        0o644
    });
    h.set_mtime(0);
    let old = h.as_old_mut();
    old.name[..name.len().min(100)].copy_from_slice(&name[..name.len().min(100)]);
    old.linkname[..link.len().min(100)].copy_from_slice(&link[..link.len().min(100)]);
    h.set_cksum();
    h.as_bytes().to_vec()
}

/// A tar stream under construction.
#[derive(Default)]
struct Tar(Vec<u8>);

impl Tar {
    fn raw(
        &mut self,
        name: &[u8],
        kind: EntryType,
        size: u64,
        data: &[u8],
        link: &[u8],
    ) -> &mut Self {
        self.0.extend_from_slice(&header(name, kind, size, link));
        self.0.extend_from_slice(data);
        let pad = data.len().div_ceil(512) * 512 - data.len();
        self.0.resize(self.0.len() + pad, 0);
        self
    }
    fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.raw(
            name.as_bytes(),
            EntryType::Regular,
            data.len() as u64,
            data,
            b"",
        )
    }
    fn pax(&mut self, records: &[(&str, &str)]) -> &mut Self {
        let mut data = Vec::new();
        for (k, v) in records {
            let body = format!(" {k}={v}\n");
            // The length counts its own digits.
            let mut n = body.len() + 1;
            while format!("{n}{body}").len() != n {
                n += 1;
            }
            data.extend_from_slice(format!("{n}{body}").as_bytes());
        }
        self.raw(
            b"PaxHeaders/x",
            EntryType::XHeader,
            data.len() as u64,
            &data,
            b"",
        )
    }
    fn end(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.0);
        out.resize(out.len() + 1024, 0);
        out
    }
}

fn sha(data: &[u8]) -> String {
    coffer_core::ObjectId::of(data).to_hex()
}

/// A manifest of `a.txt` (`hello\n`), folder `d` and symlink `s` → `a.txt`,
/// plus `more` entries.
fn small_manifest(more: &[Value]) -> Res<Vec<u8>> {
    let mut entries = vec![
        json!({"path":"a.txt","kind":"file","size":6,"mtime_ns":0,"mode":420,"sha256":sha(b"hello\n"),"how":"new","volume":1}),
        json!({"path":"d","kind":"dir","mtime_ns":0,"mode":493}),
        json!({"path":"s","kind":"symlink","mtime_ns":0,"mode":511,"target":"a.txt"}),
    ];
    entries.extend_from_slice(more);
    Ok(serde_json::to_vec(&json!({
        "format":1,"id":"00000000-0000-0000-0000-000000000002","kind":"full","prefix":"t",
        "sequence":1,"created_at":0,"basepath":"/","sources":[],"block_size":4096,"volumes":1,
        "dumps":[],"entries":entries
    }))?)
}

pub fn members(s: &Seeds, real: &Real) -> Res<()> {
    let man = small_manifest(&[])?;
    let start = |t: &mut Tar| {
        t.file("manifest.json", &man);
    };
    let valid = |t: &mut Tar| {
        start(t);
        t.file("a.txt", b"hello\n")
            .raw(b"d", EntryType::Directory, 0, b"", b"")
            .raw(b"s", EntryType::Symlink, 0, b"", b"a.txt");
    };
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    let mut t = Tar::default();
    valid(&mut t);
    let good = t.end();
    cases.push(("small", good.clone()));
    valid(&mut t);
    cases.push(("unlisted", t.file("b.txt", b"x").end()));
    valid(&mut t);
    cases.push(("twice", t.file("a.txt", b"hello\n").end()));
    valid(&mut t);
    cases.push(("manifest-twice", t.file("manifest.json", &man).end()));
    start(&mut t);
    cases.push(("dotdot", t.file("../a.txt", b"hello\n").end()));
    start(&mut t);
    cases.push(("absolute", t.file("/a.txt", b"hello\n").end()));
    start(&mut t);
    t.raw(b"s/", EntryType::Symlink, 0, b"", b"/tmp");
    cases.push(("slash-symlink", t.file("s/a.txt", b"hello\n").end()));
    start(&mut t);
    t.pax(&[("size", "999")]);
    cases.push(("pax-size-lie", t.file("a.txt", b"hello\n").end()));
    start(&mut t);
    t.pax(&[("path", "a.txt"), ("mtime", "1.5")]);
    t.file("zzz", b"hello\n")
        .raw(b"d", EntryType::Directory, 0, b"", b"")
        .raw(b"s", EntryType::Symlink, 0, b"", b"a.txt");
    cases.push(("pax-path", t.end()));
    start(&mut t);
    let long = format!("{}\0", "n/".repeat(2500));
    t.raw(
        b"././@LongLink",
        EntryType::GNULongName,
        long.len() as u64,
        long.as_bytes(),
        b"",
    );
    cases.push(("long-name", t.file("a.txt", b"hello\n").end()));
    start(&mut t);
    t.raw(b"a.txt", EntryType::Link, 0, b"", b"/etc/passwd");
    cases.push(("hardlink", t.end()));
    start(&mut t);
    t.file("a.txt", b"hello\n");
    cases.push(("fifo", t.raw(b"d", EntryType::Fifo, 0, b"", b"").end()));
    start(&mut t);
    cases.push(("bad-sha", t.file("a.txt", b"HELLO\n").end()));
    start(&mut t);
    cases.push(("size-differs", t.file("a.txt", b"hello\n\n").end()));
    start(&mut t);
    cases.push((
        "missing",
        t.raw(b"d", EntryType::Directory, 0, b"", b"").end(),
    ));
    let mut trailing = good.clone();
    trailing.extend_from_slice(b"garbage after the end");
    cases.push(("trailing", trailing));
    // One bit of the first file's data flipped: its SHA-256 no longer
    // matches.
    let mut real_flip = real.full_tar.clone();
    let mut ar = tar::Archive::new(&real.full_tar[..]);
    let at = ar
        .entries()?
        .filter_map(Result::ok)
        .find(|e| {
            e.header().entry_type() == EntryType::Regular
                && e.size() > 0
                && e.path_bytes().as_ref() != b"manifest.json"
        })
        .map(|e| e.raw_file_position())
        .ok_or("no file member in the real archive")?;
    real_flip[usize::try_from(at)?] ^= 0x20;
    cases.push(("real-flipped", real_flip));
    for (name, tar) in &cases {
        s.put(&format!("{name}.tar"), member_input(false, 1, tar))?;
    }
    for cut in 2..=4 {
        s.put(&format!("cut{cut}-small.tar"), cut_input(1, cut, &good))?;
    }

    // The gzip layer: cut, flipped, with garbage after it, and a bomb (a
    // member whose header says 4 MiB where the manifest says 6 bytes).
    let gz = gzip(&good)?;
    s.put("small.gz", member_input(true, 1, &gz))?;
    s.put("cut.gz", member_input(true, 1, &gz[..gz.len() / 2]))?;
    let mut flipped = gz.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 1;
    s.put("flipped.gz", member_input(true, 1, &flipped))?;
    let mut after = gz.clone();
    after.extend_from_slice(b"not gzip");
    s.put("trailing.gz", member_input(true, 1, &after))?;
    let mut bomb = Tar::default();
    start(&mut bomb);
    let zeros = vec![0u8; 4 << 20];
    bomb.raw(
        b"a.txt",
        EntryType::Regular,
        zeros.len() as u64,
        &zeros,
        b"",
    );
    s.put("bomb.gz", member_input(true, 1, &gzip(&bomb.end())?))?;
    // A member of 1.5 MiB (zeros, so the seed stays small): large enough
    // that the reader hashes it on its helper thread.
    let zeros = vec![0u8; 3 << 19];
    let z = json!({"path":"z.bin","kind":"file","size":zeros.len(),"mtime_ns":0,"mode":420,"sha256":sha(&zeros),"how":"new","volume":1});
    let mut big = Tar::default();
    big.file("manifest.json", &small_manifest(&[z])?)
        .file("a.txt", b"hello\n")
        .raw(b"d", EntryType::Directory, 0, b"", b"")
        .raw(b"s", EntryType::Symlink, 0, b"", b"a.txt")
        .file("z.bin", &zeros);
    s.put("big-member.gz", member_input(true, 1, &gzip(&big.end())?))?;
    Ok(())
}

fn gzip(data: &[u8]) -> Res<Vec<u8>> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut e, data)?;
    Ok(e.finish()?)
}
