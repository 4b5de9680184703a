#!/usr/bin/env bash
# The one command to set up and start Coffer's window.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --locked -p coffer
if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
  echo "No display found, so the window cannot open. Use the command line instead:"
  echo "  ./target/release/coffer --help"
  echo "  ./target/release/coffer source add ~/Photos"
  echo "  ./target/release/coffer disk init /media/\$USER/MyDisk --label 'Blue WD'"
  echo "  ./target/release/coffer sync"
  exit 2
fi
exec ./target/release/coffer
