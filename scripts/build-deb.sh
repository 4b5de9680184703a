#!/usr/bin/env bash
# Builds Coffer's Debian package into target/debian/coffer_<version>_<arch>.deb.
#
#   scripts/build-deb.sh          release build (for users; takes a while)
#   scripts/build-deb.sh --dev    packages the debug binary the tests build
#                                 (fast; for CI, see scripts/check-packaging.sh)
#
# Then install it with: sudo apt-get install ./target/debian/coffer_*.deb
#
# Installs cargo-deb (pinned, below) with `cargo install` if it is missing.
# Steps: build the binary, write completions and man pages next to it
# (scripts/gen-assets.sh), then `cargo deb --no-build` with the metadata in
# app/Cargo.toml ([package.metadata.deb]).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
# cargo-deb 3.8 warns that `--profile dev` may become an error in a later
# version; pinning keeps the fast CI path working.
CARGO_DEB_VERSION=3.8.0

profile=release
case "${1:-}" in
  "") ;;
  --dev) profile=dev ;;
  *) echo "usage: scripts/build-deb.sh [--dev]" >&2; exit 2 ;;
esac

if ! cargo deb --version >/dev/null 2>&1; then
  echo "build-deb: installing cargo-deb $CARGO_DEB_VERSION"
  cargo install cargo-deb --version "$CARGO_DEB_VERSION" --locked
fi

target="${CARGO_TARGET_DIR:-target}"
if [ "$profile" = release ]; then
  cargo build --release --locked -p coffer
  bin="$target/release/coffer"
  extra=()
else
  # The same targets (and so the same features) as `cargo test --workspace`,
  # so this is a no-op when the tests have built the binary already (`-p
  # coffer` alone resolves other features and rebuilt the GUI stack).
  cargo build --locked --workspace --all-targets
  bin="$target/debug/coffer"
  # Strip the debug info and compress lightly: the package is for checking,
  # not for shipping.
  extra=(--strip --fast --quiet)
fi
scripts/gen-assets.sh "$bin"
rm -f "$target"/debian/coffer_*.deb
cargo deb -p coffer --locked --no-build --profile "$profile" "${extra[@]}"
