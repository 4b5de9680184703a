#!/usr/bin/env bash
# Writes the generated files the .deb installs into an `assets/` folder next
# to the binary they come from (target/release/assets/ or target/debug/assets/,
# where cargo-deb looks for them with --profile release or dev):
#   completions/coffer.bash, completions/_coffer, completions/coffer.fish
#   man/coffer.1.gz and a page per subcommand (coffer-sync.1.gz, …)
# They come from the clap definitions through the hidden commands
# `coffer completions <shell>` and `coffer man --out-dir DIR`.
#
# Usage: scripts/gen-assets.sh [PATH-TO-COFFER-BINARY]
#   default binary: target/release/coffer ($CARGO_TARGET_DIR is honoured).
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
bin="${1:-$target/release/coffer}"
if [ ! -x "$bin" ]; then
  echo "gen-assets: no binary at $bin; build it first (cargo build --release -p coffer)" >&2
  exit 1
fi
out="$(dirname "$bin")/assets"
rm -rf "$out"
mkdir -p "$out/completions" "$out/man"
"$bin" completions bash > "$out/completions/coffer.bash"
"$bin" completions zsh > "$out/completions/_coffer"
"$bin" completions fish > "$out/completions/coffer.fish"
"$bin" man --out-dir "$out/man" > /dev/null
# Debian policy: man pages gzipped with -9, without name or time stamp (-n)
# so that the package is reproducible.
gzip -9n "$out"/man/*.1
echo "gen-assets: wrote $(find "$out" -type f | wc -l) files into $out"
