//! Coffer's engine: everything except drawing and printing.
//!
//! The modules follow the nouns of the domain (see ARCHITECTURE.md). The app
//! calls these functions from `task` threads and never touches SQLite, the
//! object store or the file system directly.
//!
//! Invariant: `core` never prints and never depends on a GUI toolkit.

pub mod archive;
pub mod bucket;
pub mod catalog;
pub mod command;
pub mod config;
pub mod crypto;
pub mod disk;
pub mod human;
pub mod jobs;
pub mod live;
pub mod meta;
pub mod object;
pub mod plan;
pub mod redundancy;
pub mod restore;
pub mod scan;
pub mod sync;
pub mod task;
pub mod verify;
pub mod verify_bucket;
pub mod volumes;

pub use catalog::Catalog;
pub use config::{Config, Paths, Profile, Source};
pub use disk::Disk;
pub use object::ObjectId;
pub use task::{Outcome, Progress, Task, Warning};

/// Every error a Coffer job can end with.
///
/// Each module has its own error type carrying the path and the cause; this
/// enum only gathers them so that a job can use `?` across modules.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Archive(#[from] archive::Error),
    #[error(transparent)]
    Catalog(#[from] catalog::Error),
    #[error(transparent)]
    Config(#[from] config::Error),
    #[error(transparent)]
    Disk(#[from] disk::Error),
    #[error(transparent)]
    Restore(#[from] restore::Error),
    #[error(transparent)]
    Scan(#[from] scan::Error),
    #[error(transparent)]
    Sync(#[from] sync::Error),
    #[error(transparent)]
    Jobs(#[from] jobs::Error),
    /// A user's command (a dump, a hook) that could not run.
    #[error("{0}")]
    Command(String),
    /// A job's failure in plain words, when no module's error fits.
    #[error("{0}")]
    Failed(String),
    #[error("cancelled")]
    Cancelled,
    #[error("internal error: {0}")]
    Panic(String),
}

impl Error {
    /// True when the job stopped because a disk is locked by another Coffer.
    pub fn is_disk_in_use(&self) -> bool {
        matches!(self, Error::Disk(disk::Error::InUse { .. }))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Seconds since the Unix epoch, the unit of every `*_at` column.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
