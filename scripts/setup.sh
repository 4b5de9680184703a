#!/usr/bin/env bash
# Installs what Coffer needs on a fresh Debian machine: build tools, the
# libraries the window loads at run time, and the tools the tests drive.
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
PKGS=(build-essential pkg-config git curl ca-certificates
      xvfb xauth libxcursor1 libxi6 libxkbcommon-x11-0 libegl1 libegl-mesa0 libgl1-mesa-dri
      xdotool imagemagick rsync dosfstools fusefat e2fsprogs sqlite3 acl attr
      python3 python3-venv
      dbus-daemon gnome-keyring)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  else
    echo "setup: installing Rust with rustup"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c clippy,rustfmt
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
fi
rustup component add clippy rustfmt >/dev/null 2>&1 || true
# The S3 tests start a real S3-compatible server on 127.0.0.1: the moto
# server, from PyPI, in a virtualenv of its own (Debian's Python refuses
# system-wide pip installs). scripts/test.sh puts it on the PATH.
MOTO_VENV="$HOME/.local/share/coffer-test/moto"
if ! command -v moto_server >/dev/null 2>&1 && [ ! -x "$MOTO_VENV/bin/moto_server" ]; then
  echo "setup: installing moto[server] into $MOTO_VENV"
  python3 -m venv "$MOTO_VENV"
  "$MOTO_VENV/bin/pip" install -q 'moto[server]'
fi
