//! How a bucket is reached: the standard AWS variables
//! (`AWS_ENDPOINT_URL`, `AWS_REGION`/`AWS_DEFAULT_REGION`,
//! `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), else
//! the profile (`AWS_PROFILE`, else `default`) in
//! `AWS_SHARED_CREDENTIALS_FILE` or `~/.aws/credentials`; plus how hard to
//! retry and how big the upload parts are.
//!
//! Invariant: credentials are only ever handed to the S3 client; they are
//! never printed (`Settings`' `Debug` leaves them out) nor stored.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// What a bucket connection needs.
#[derive(Clone)]
pub struct Settings {
    /// A custom endpoint (`http://127.0.0.1:9000`); `None`: AWS itself.
    pub endpoint: Option<String>,
    pub region: String,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    /// Retries of one request (throttling, server errors, broken
    /// connections) before it fails.
    pub retries: usize,
    /// The first wait between retries (doubling up to 15 s).
    pub backoff: Duration,
    /// No request is retried after this long.
    pub retry_timeout: Duration,
    /// One request's time limit.
    pub timeout: Duration,
    /// Objects above this are uploaded in parts of this size (S3 wants at
    /// least 5 MiB), `parallel` parts at a time: memory stays under
    /// `part_size × (parallel + 1)` whatever the object's size.
    pub part_size: usize,
    pub parallel: usize,
    /// Objects a sync uploads at once (each with up to `parallel` parts).
    pub uploads: usize,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("credentials", &self.access_key_id.is_some())
            .field("retries", &self.retries)
            .field("part_size", &self.part_size)
            .finish_non_exhaustive()
    }
}

/// The smallest part S3 accepts (but the last).
pub const MIN_PART: usize = 5 << 20;

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            endpoint: None,
            region: "us-east-1".into(),
            access_key_id: None,
            secret_access_key: None,
            session_token: None,
            retries: 10,
            backoff: Duration::from_millis(100),
            retry_timeout: Duration::from_secs(180),
            timeout: Duration::from_secs(120),
            part_size: 16 << 20,
            parallel: 2,
            uploads: 12,
        }
    }
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl Settings {
    /// Settings from the environment and the shared credentials file.
    pub fn from_env() -> Settings {
        let mut s = Settings {
            endpoint: var("AWS_ENDPOINT_URL_S3").or_else(|| var("AWS_ENDPOINT_URL")),
            region: var("AWS_REGION")
                .or_else(|| var("AWS_DEFAULT_REGION"))
                .unwrap_or_else(|| "us-east-1".into()),
            access_key_id: var("AWS_ACCESS_KEY_ID"),
            secret_access_key: var("AWS_SECRET_ACCESS_KEY"),
            session_token: var("AWS_SESSION_TOKEN"),
            ..Settings::default()
        };
        if s.access_key_id.is_none() || s.secret_access_key.is_none() {
            let file = var("AWS_SHARED_CREDENTIALS_FILE")
                .map(PathBuf::from)
                .or_else(|| var("HOME").map(|h| Path::new(&h).join(".aws/credentials")));
            let profile = var("AWS_PROFILE").unwrap_or_else(|| "default".into());
            if let Some(text) = file.and_then(|f| read_capped(&f)) {
                let p = profile_of(&text, &profile);
                s.access_key_id = p.get("aws_access_key_id").cloned();
                s.secret_access_key = p.get("aws_secret_access_key").cloned();
                s.session_token = p.get("aws_session_token").cloned();
            }
        }
        s
    }
}

/// A credentials file, if it is readable and of a sane size.
fn read_capped(file: &Path) -> Option<String> {
    use std::io::Read;
    let f = std::fs::File::open(file).ok()?;
    let mut text = String::new();
    f.take(1 << 20).read_to_string(&mut text).ok()?;
    Some(text)
}

/// The keys of `[profile]` in an INI-style credentials file.
pub fn profile_of(text: &str, profile: &str) -> std::collections::HashMap<String, String> {
    let mut out = std::collections::HashMap::new();
    let mut inside = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = name.trim() == profile;
            continue;
        }
        if inside && let Some((k, v)) = line.split_once('=') {
            out.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_profile_is_read_from_its_section_only() {
        let text = "[default]\naws_access_key_id = A1\naws_secret_access_key=S1\n\n# note\n[work]\naws_access_key_id = A2\nAWS_SECRET_ACCESS_KEY = S2\naws_session_token = T2\n";
        let d = profile_of(text, "default");
        assert_eq!(d.get("aws_access_key_id").map(String::as_str), Some("A1"));
        assert_eq!(d.get("aws_session_token"), None);
        let w = profile_of(text, "work");
        assert_eq!(
            w.get("aws_secret_access_key").map(String::as_str),
            Some("S2")
        );
        assert_eq!(w.get("aws_session_token").map(String::as_str), Some("T2"));
        assert!(profile_of(text, "none").is_empty());
    }
}
