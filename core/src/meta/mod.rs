//! What a file is beyond its bytes: extended attributes and ACLs
//! (`xattr`), holes (`sparse`), owners and their names (`owner`). Which of
//! these a source holds and a disk cannot is `redundancy::holds` (it reads
//! the catalog, which stores these types).
//!
//! Invariant: every reader here is bounded (an attribute set by
//! `xattr`'s caps, a sparse map by the file's own size), and nothing here
//! writes anywhere but to a descriptor its caller opened.

pub mod owner;
pub mod sparse;
pub mod xattr;

pub use xattr::Xattrs;
