//! Extended attributes (and POSIX ACLs, which Linux keeps as the xattrs
//! `system.posix_acl_access` and `system.posix_acl_default`): which names
//! are recorded, reading them from a file under caps, their canonical
//! encoding (what the catalog stores once per distinct set, named by its
//! SHA-256), and setting them again on a restored file.
//!
//! Invariant: a set holds at most [`MAX_COUNT`] names of at most
//! [`MAX_NAME`] bytes, values of at most [`MAX_VALUE`] bytes and
//! [`MAX_TOTAL`] bytes in all, sorted by name without duplicates, whether it
//! was read from a file or decoded from a catalog (a copy from a disk is
//! hostile input and is held to the same caps).

use std::os::fd::AsFd;
use std::path::Path;

use rustix::io::Errno;

/// The longest name Linux allows (`XATTR_NAME_MAX`).
pub const MAX_NAME: usize = 255;
/// The largest value Linux allows (`XATTR_SIZE_MAX`).
pub const MAX_VALUE: usize = 64 << 10;
/// Names and values of one file together.
pub const MAX_TOTAL: usize = 256 << 10;
/// Attributes of one file.
pub const MAX_COUNT: usize = 1024;
/// The largest list of names the kernel returns (`XATTR_LIST_MAX`).
const MAX_LIST: usize = 64 << 10;

pub const ACL_ACCESS: &[u8] = b"system.posix_acl_access";
pub const ACL_DEFAULT: &[u8] = b"system.posix_acl_default";

/// Why a set of attributes was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("more than {MAX_COUNT} extended attributes")]
    TooMany,
    #[error("an extended attribute name longer than {MAX_NAME} bytes, or empty")]
    Name,
    #[error("an extended attribute value larger than {MAX_VALUE} bytes")]
    Value,
    #[error("extended attributes larger than {MAX_TOTAL} bytes in all")]
    Total,
    #[error("extended attribute names out of order or repeated")]
    Order,
    #[error("a damaged encoding of extended attributes")]
    Encoding,
}

/// The attributes of one file, sorted by name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Xattrs(Vec<(Vec<u8>, Vec<u8>)>);

/// The version byte of the canonical encoding.
const ENCODING: u8 = 1;

impl Xattrs {
    /// A set from name/value pairs in any order, checked against the caps.
    pub fn new(mut pairs: Vec<(Vec<u8>, Vec<u8>)>) -> Result<Xattrs, Invalid> {
        pairs.sort();
        let x = Xattrs(pairs);
        x.check()?;
        Ok(x)
    }

    fn check(&self) -> Result<(), Invalid> {
        if self.0.len() > MAX_COUNT {
            return Err(Invalid::TooMany);
        }
        let mut total = 0usize;
        for (i, (n, v)) in self.0.iter().enumerate() {
            if n.is_empty() || n.len() > MAX_NAME || n.contains(&0) {
                return Err(Invalid::Name);
            }
            if v.len() > MAX_VALUE {
                return Err(Invalid::Value);
            }
            total += n.len() + v.len();
            if total > MAX_TOTAL {
                return Err(Invalid::Total);
            }
            if i > 0 && self.0[i - 1].0 >= *n {
                return Err(Invalid::Order);
            }
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.0.iter().map(|(n, v)| (n.as_slice(), v.as_slice()))
    }

    /// Whether the set holds a POSIX ACL (access or default).
    pub fn has_acl(&self) -> bool {
        self.0
            .iter()
            .any(|(n, _)| n.as_slice() == ACL_ACCESS || n.as_slice() == ACL_DEFAULT)
    }

    /// The canonical encoding: a version byte, then for each attribute in
    /// name order the name's length (1 byte), the name, the value's length
    /// (4 bytes, little-endian) and the value. Equal sets encode equally.
    pub fn encode(&self) -> Vec<u8> {
        let size: usize = self.0.iter().map(|(n, v)| 5 + n.len() + v.len()).sum();
        let mut out = Vec::with_capacity(1 + size);
        out.push(ENCODING);
        for (n, v) in &self.0 {
            // Both lengths are within the caps, checked when the set was made.
            out.push(n.len() as u8);
            out.extend_from_slice(n);
            out.extend_from_slice(&(v.len() as u32).to_le_bytes());
            out.extend_from_slice(v);
        }
        out
    }

    /// Reads an encoding back, held to the same caps as a set read from a
    /// file: a catalog copy from a disk may hold anything.
    pub fn decode(bytes: &[u8]) -> Result<Xattrs, Invalid> {
        if bytes.len() > 1 + MAX_TOTAL + 5 * MAX_COUNT {
            return Err(Invalid::Total);
        }
        let Some((&ENCODING, mut rest)) = bytes.split_first() else {
            return Err(Invalid::Encoding);
        };
        let mut pairs = Vec::new();
        while let Some((&nlen, r)) = rest.split_first() {
            if pairs.len() >= MAX_COUNT {
                return Err(Invalid::TooMany);
            }
            let nlen = usize::from(nlen);
            let (name, r) = r.split_at_checked(nlen).ok_or(Invalid::Encoding)?;
            let (len, r) = r.split_at_checked(4).ok_or(Invalid::Encoding)?;
            let vlen = u32::from_le_bytes(len.try_into().map_err(|_| Invalid::Encoding)?) as usize;
            if vlen > MAX_VALUE {
                return Err(Invalid::Value);
            }
            let (value, r) = r.split_at_checked(vlen).ok_or(Invalid::Encoding)?;
            pairs.push((name.to_vec(), value.to_vec()));
            rest = r;
        }
        let x = Xattrs(pairs);
        x.check()?;
        Ok(x)
    }

    /// The SHA-256 of the canonical encoding: the set's name in the catalog.
    pub fn digest(&self) -> [u8; 32] {
        crate::object::ObjectId::of(&self.encode()).0
    }
}

/// Whether an attribute of this name is recorded: `user.*` always, the
/// POSIX ACLs always, `security.*` and `trusted.*` only when running as
/// root (an ordinary user cannot read `trusted.*`, nor set `security.*`
/// back on restore).
pub fn recorded(name: &[u8], root: bool) -> bool {
    name.starts_with(b"user.")
        || name == ACL_ACCESS
        || name == ACL_DEFAULT
        || (root && (name.starts_with(b"security.") || name.starts_with(b"trusted.")))
}

/// Whether this name gives privileges or trust (`security.capability`,
/// SELinux labels, `trusted.*`): set on restore only from this
/// computer's own catalog, or when the user keeps special bits, like
/// setuid.
pub fn privileged(name: &[u8]) -> bool {
    name.starts_with(b"security.") || name.starts_with(b"trusted.")
}

/// What reading a file's attributes found wrong.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot list its extended attributes ({0})")]
    List(std::io::Error),
    #[error("cannot read its extended attribute {name} ({source})")]
    Get {
        name: String,
        source: std::io::Error,
    },
    #[error("{0}; they are left out")]
    Invalid(Invalid),
}

/// Splits a list from `listxattr` into names.
fn names(list: &[u8]) -> impl Iterator<Item = &[u8]> {
    list.split(|b| *b == 0).filter(|n| !n.is_empty())
}

/// The recorded attributes of the file, folder or other thing at `path`,
/// not following a symlink there: one `llistxattr` when it has none. A
/// file system without attributes gives an empty set.
pub fn read_path(path: &Path, root: bool) -> Result<Xattrs, ReadError> {
    read_with(
        |buf| rustix::fs::llistxattr(path, buf),
        |name, buf| rustix::fs::lgetxattr(path, name, buf),
        root,
    )
}

/// Like [`read_path`], on an open descriptor (`flistxattr`).
pub fn read_fd(fd: impl AsFd, root: bool) -> Result<Xattrs, ReadError> {
    let fd = fd.as_fd();
    read_with(
        |buf| rustix::fs::flistxattr(fd, buf),
        |name, buf| rustix::fs::fgetxattr(fd, name, buf),
        root,
    )
}

fn unsupported(e: Errno) -> bool {
    e == Errno::NOTSUP || e == Errno::OPNOTSUPP || e == Errno::NOSYS
}

fn read_with(
    list: impl Fn(&mut [u8]) -> Result<usize, Errno>,
    get: impl Fn(&std::ffi::CStr, &mut [u8]) -> Result<usize, Errno>,
    root: bool,
) -> Result<Xattrs, ReadError> {
    // Most files have no attributes: one call with a small buffer on the
    // stack settles them; a longer list is read again into a larger one.
    let mut small = [0u8; 1024];
    let mut big = Vec::new();
    let listed: &[u8] = match list(&mut small) {
        Ok(0) => return Ok(Xattrs::default()),
        Ok(n) => &small[..n],
        Err(e) if unsupported(e) => return Ok(Xattrs::default()),
        Err(Errno::RANGE) => {
            big.resize(MAX_LIST, 0);
            let n = list(&mut big).map_err(|e| ReadError::List(e.into()))?;
            &big[..n]
        }
        Err(e) => return Err(ReadError::List(e.into())),
    };
    let wanted: Vec<&[u8]> = names(listed).filter(|n| recorded(n, root)).collect();
    if wanted.is_empty() {
        return Ok(Xattrs::default());
    }
    if wanted.len() > MAX_COUNT {
        return Err(ReadError::Invalid(Invalid::TooMany));
    }
    let mut value = vec![0u8; MAX_VALUE];
    let mut pairs = Vec::with_capacity(wanted.len());
    for name in wanted {
        let shown = String::from_utf8_lossy(name).into_owned();
        let c = std::ffi::CString::new(name).map_err(|_| ReadError::Invalid(Invalid::Name))?;
        let n = match get(&c, &mut value) {
            Ok(n) => n,
            // Removed since it was listed.
            Err(Errno::NODATA) => continue,
            Err(Errno::RANGE) => return Err(ReadError::Invalid(Invalid::Value)),
            Err(e) => {
                return Err(ReadError::Get {
                    name: shown,
                    source: e.into(),
                });
            }
        };
        pairs.push((name.to_vec(), value[..n].to_vec()));
    }
    Xattrs::new(pairs).map_err(ReadError::Invalid)
}

/// What setting a file's attributes back could not do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// The destination's file system holds no such attributes.
    pub unsupported: bool,
    /// Privileged names left out (not root, or a catalog not from here).
    pub withheld: bool,
    /// Refused for another reason (a value the file system finds too big).
    pub failed: bool,
}

/// Sets `x` on the open file or folder `fd`. `privileged` allows
/// `security.*` and `trusted.*`; the caller passes it only as root, and
/// for a catalog that is not this computer's only when the user asked to
/// keep special bits.
pub fn apply_fd(fd: impl AsFd, x: &Xattrs, privileged_ok: bool) -> Applied {
    let fd = fd.as_fd();
    let mut out = Applied::default();
    for (name, value) in x.iter() {
        if privileged(name) && !privileged_ok {
            out.withheld = true;
            continue;
        }
        let Ok(c) = std::ffi::CString::new(name) else {
            out.failed = true;
            continue;
        };
        match rustix::fs::fsetxattr(fd, &c, value, rustix::fs::XattrFlags::empty()) {
            Ok(()) => {}
            Err(e) if unsupported(e) => {
                out.unsupported = true;
                // Nothing else will go either.
                return out;
            }
            Err(_) => out.failed = true,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(n: &str, v: &[u8]) -> (Vec<u8>, Vec<u8>) {
        (n.as_bytes().to_vec(), v.to_vec())
    }

    #[test]
    fn sets_encode_canonically_and_round_trip() {
        let a = Xattrs::new(vec![pair("user.b", b"2"), pair("user.a", b"")]).unwrap();
        let b = Xattrs::new(vec![pair("user.a", b""), pair("user.b", b"2")]).unwrap();
        assert_eq!(a.encode(), b.encode());
        assert_eq!(a.digest(), b.digest());
        assert_eq!(Xattrs::decode(&a.encode()).unwrap(), a);
        let c = Xattrs::new(vec![pair("user.a", b"x"), pair("user.b", b"2")]).unwrap();
        assert_ne!(a.digest(), c.digest());
        assert_eq!(Xattrs::decode(&[ENCODING]).unwrap(), Xattrs::default());
    }

    #[test]
    fn caps_hold_when_read_and_when_decoded() {
        let long = "user.".to_string() + &"n".repeat(MAX_NAME);
        assert_eq!(
            Xattrs::new(vec![pair(&long, b"")]).unwrap_err(),
            Invalid::Name
        );
        let big = vec![7u8; MAX_VALUE + 1];
        assert_eq!(
            Xattrs::new(vec![pair("user.a", &big)]).unwrap_err(),
            Invalid::Value
        );
        let many: Vec<_> = (0..5)
            .map(|i| pair(&format!("user.{i}"), &vec![1u8; MAX_VALUE]))
            .collect();
        assert_eq!(Xattrs::new(many).unwrap_err(), Invalid::Total);
        let dup = Xattrs(vec![pair("user.a", b"1"), pair("user.a", b"2")]);
        assert_eq!(Xattrs::decode(&dup.encode()).unwrap_err(), Invalid::Order);

        // Hostile encodings: a value length past the end, past the cap, a
        // name length past the end, another version, too many entries.
        let mut e = vec![ENCODING, 6];
        e.extend_from_slice(b"user.a");
        e.extend_from_slice(&100u32.to_le_bytes());
        e.extend_from_slice(b"short");
        assert_eq!(Xattrs::decode(&e).unwrap_err(), Invalid::Encoding);
        let mut e = vec![ENCODING, 6];
        e.extend_from_slice(b"user.a");
        e.extend_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(Xattrs::decode(&e).unwrap_err(), Invalid::Value);
        assert_eq!(
            Xattrs::decode(&[ENCODING, 200, b'u']).unwrap_err(),
            Invalid::Encoding
        );
        assert_eq!(Xattrs::decode(&[2]).unwrap_err(), Invalid::Encoding);
        assert_eq!(Xattrs::decode(&[]).unwrap_err(), Invalid::Encoding);
        let mut e = vec![ENCODING];
        for i in 0..=MAX_COUNT {
            let n = format!("user.{i:05}");
            e.push(n.len() as u8);
            e.extend_from_slice(n.as_bytes());
            e.extend_from_slice(&0u32.to_le_bytes());
        }
        assert_eq!(Xattrs::decode(&e).unwrap_err(), Invalid::TooMany);
        assert_eq!(
            Xattrs::decode(&vec![ENCODING; 2 << 20]).unwrap_err(),
            Invalid::Total
        );
    }

    #[test]
    fn which_names_are_recorded() {
        assert!(recorded(b"user.xdg.tags", false));
        assert!(recorded(ACL_ACCESS, false));
        assert!(recorded(ACL_DEFAULT, false));
        assert!(!recorded(b"security.selinux", false));
        assert!(recorded(b"security.selinux", true));
        assert!(recorded(b"trusted.overlay", true));
        assert!(!recorded(b"system.nfs4_acl", true));
        assert!(privileged(b"security.capability"));
        assert!(!privileged(b"user.a"));
    }

    #[test]
    fn read_from_a_real_file_and_set_again() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let f = std::fs::File::create(&p).unwrap();
        if rustix::fs::fsetxattr(
            &f,
            "user.tag",
            b"important",
            rustix::fs::XattrFlags::empty(),
        )
        .is_err()
        {
            eprintln!("skipped: this file system takes no user xattrs");
            return;
        }
        // A long list (past the first small buffer) and a large value,
        // within the one block ext4 keeps attributes in.
        for i in 0..30 {
            let name = format!("user.{i:03}-{}", "x".repeat(40));
            rustix::fs::fsetxattr(&f, name.as_str(), b"v", rustix::fs::XattrFlags::empty())
                .unwrap();
        }
        let big = vec![9u8; 800];
        rustix::fs::fsetxattr(&f, "user.big", &big, rustix::fs::XattrFlags::empty()).unwrap();
        let x = read_path(&p, false).unwrap();
        assert_eq!(x.len(), 32);
        assert_eq!(read_fd(&f, false).unwrap(), x);
        assert!(x.iter().any(|(n, v)| n == b"user.tag" && v == b"important"));
        assert!(
            x.iter()
                .any(|(n, v)| n == b"user.big" && v == big.as_slice())
        );
        let q = dir.path().join("g");
        let g = std::fs::File::create(&q).unwrap();
        assert_eq!(apply_fd(&g, &x, false), Applied::default());
        assert_eq!(read_path(&q, false).unwrap(), x);
    }
}
