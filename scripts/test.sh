#!/usr/bin/env bash
# The one test command: set up, then format check, lints and every test.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH:$HOME/.local/share/coffer-test/moto/bin"
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked 2>&1 | tee /tmp/coffer-test.log
echo "== the window under Xvfb"
COFFER_SHOT_DIR=/tmp/coffer-shots ./tests/gui-smoke.sh
echo "== packaging"
./scripts/check-packaging.sh
