//! Helpers shared by the tests that drive the real binary and the window.
#![allow(dead_code, clippy::unwrap_used)] // each test file uses a part of them

pub mod gui;

use std::path::Path;

use coffer_tests::{World, both, code};
use serde_json::Value;

pub fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_coffer"))
}

/// Runs `coffer ARGS` in the world; it must exit 0. Its stdout.
pub fn ok(w: &World, args: &[&str]) -> String {
    let o = w.run(exe(), args);
    assert_eq!(code(&o), 0, "coffer {args:?}\n{}", both(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Runs `coffer --json ARGS`: its exit code and JSON.
pub fn json(w: &World, args: &[&str]) -> (i32, Value) {
    let mut a = vec!["--json"];
    a.extend_from_slice(args);
    let o = w.run(exe(), &a);
    let v: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", both(&o)));
    (code(&o), v)
}
