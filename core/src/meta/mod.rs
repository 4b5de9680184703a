//! What a file is beyond its bytes: extended attributes and ACLs
//! (`xattr`), holes (`sparse`), owners and their names (`owner`), and
//! which of these a backup disk's or a destination's file system can hold
//! (`holds`).
//!
//! Invariant: every reader here is bounded (an attribute set by
//! `xattr`'s caps, a sparse map by the file's own size), and nothing here
//! writes anywhere but to a descriptor its caller opened.

pub mod holds;
pub mod owner;
pub mod sparse;
pub mod xattr;

pub use xattr::Xattrs;
