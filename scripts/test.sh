#!/usr/bin/env bash
# The one test command: set up, then format check, lints and every test.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH:$HOME/.local/share/coffer-test/moto/bin"
echo "== cargo fmt --check"
cargo fmt --all -- --check
# Clippy lints the workspace's own crates while they are compiled for the
# tests, as `cargo clippy --workspace --all-targets -- -D warnings` does in
# a check build of its own: clippy-driver is cargo's compiler for the
# workspace members (dependencies are compiled by rustc as usual), and
# CLIPPY_ARGS carries `-D warnings` the way cargo-clippy passes it. One
# build instead of two saves a clean run about ten minutes on two cores.
# Every cargo command below builds with it, so none rebuilds another's work.
RUSTC_WORKSPACE_WRAPPER="$(rustup which clippy-driver 2>/dev/null || command -v clippy-driver)"
export RUSTC_WORKSPACE_WRAPPER
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
echo "== cargo clippy (-D warnings) while the tests build"
cargo test --workspace --all-targets --locked --no-run
echo "== cargo test"
cargo test --workspace --locked 2>&1 | tee /tmp/coffer-test.log
echo "== the window under Xvfb"
COFFER_SHOT_DIR=/tmp/coffer-shots ./tests/gui-smoke.sh
echo "== packaging"
./scripts/check-packaging.sh
