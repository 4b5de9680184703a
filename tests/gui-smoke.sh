#!/usr/bin/env bash
# Starts the real window under Xvfb over a temp world (one source folder, one
# backup disk folder), clicks the disk's Sync button with xdotool, and saves
# screenshots of every tab: docs/screenshot-first-run.png (the assistant),
# docs/screenshot.png (sync in progress), docs/screenshot-done.png (after
# the sync), then screenshot-sources, -map, -restore, -archives, -history,
# and screenshot-light.png (the Disks tab in the light theme, with a bucket
# disk's card when moto_server is installed).
#
# Needs: xvfb (Xvfb), xdotool, imagemagick (import). Run from anywhere:
#   tests/gui-smoke.sh            (COFFER_SHOT_DIR=DIR to keep docs/ as it is)
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
# The same targets (and so the same features) as `cargo test --workspace`:
# after the tests this builds nothing.
cargo build --locked --workspace --all-targets
target="${CARGO_TARGET_DIR:-$repo/target}"
bin="$target/debug/coffer"
# Where the screenshots go: docs/ by default (the README shows them).
shots="${COFFER_SHOT_DIR:-$repo/docs}"
mkdir -p "$shots"

world="$(mktemp -d)"
xvfb_pid=""
app_pid=""
moto_pid=""
cleanup() {
    [ -n "$app_pid" ] && kill "$app_pid" 2>/dev/null || true
    [ -n "$moto_pid" ] && kill "$moto_pid" 2>/dev/null || true
    [ -n "$xvfb_pid" ] && kill "$xvfb_pid" 2>/dev/null || true
    rm -rf "$world"
}
trap cleanup EXIT

mkdir -p "$world"/{home,config,data,mounts/blue}
export COFFER_CONFIG_DIR="$world/config" COFFER_DATA_DIR="$world/data"
export COFFER_BASEPATH="$world/home" COFFER_MOUNT_ROOT="$world/mounts" HOME="$world/home"

# A source with enough data that the screenshot catches the sync running.
for d in Photos/2024 Photos/2025 Documents/letters Music; do
    mkdir -p "$world/home/$d"
done
for i in $(seq 1 80); do
    head -c $((4 * 1024 * 1024)) /dev/urandom >"$world/home/Photos/202$((4 + i % 2))/img_$i.jpg"
done
for i in $(seq 1 30); do echo "letter $i" >"$world/home/Documents/letters/letter_$i.txt"; done
head -c $((8 * 1024 * 1024)) /dev/urandom >"$world/home/Music/song.flac"
"$bin" source add "$world/home/Photos" >/dev/null
"$bin" source add "$world/home/Documents" >/dev/null
"$bin" source add "$world/home/Music" --copies 1 >/dev/null
"$bin" disk init "$world/mounts/blue" --label "Blue WD" >/dev/null

# Xvfb picks a free display itself and writes its number once it is ready.
Xvfb -displayfd 3 -screen 0 1280x800x24 -nolisten tcp 3>"$world/display" &
xvfb_pid=$!
for _ in $(seq 100); do [ -s "$world/display" ] && break; sleep 0.1; done
[ -s "$world/display" ] || { echo "gui-smoke: Xvfb did not start" >&2; exit 1; }
export DISPLAY=":$(head -n1 "$world/display")"
unset WAYLAND_DISPLAY
for _ in $(seq 50); do xdotool getdisplaygeometry >/dev/null 2>&1 && break; sleep 0.1; done

"$bin" &
app_pid=$!

win=""
for _ in $(seq 100); do
    win="$(xdotool search --name '^Coffer$' 2>/dev/null | head -n1 || true)"
    [ -n "$win" ] && break
    sleep 0.2
done
[ -n "$win" ] || { echo "gui-smoke: the Coffer window did not appear" >&2; exit 1; }
xdotool windowmove "$win" 0 0
sleep 2 # first frames, the volume watcher and the catalog refresh

import -window root "$shots/screenshot-first-run.png"
# The first card's "Sync Blue WD" button (the window lays out the same way
# every time at this size: tabs, headline, the first-run assistant, the
# agent switch, "Sync all connected disks", then the card).
xdotool mousemove --window "$win" 60 386 click 1
sleep 0.4 # the sync runs a few seconds: catch it under way
import -window root "$shots/screenshot.png"

for _ in $(seq 120); do
    sleep 0.5
    # The bottom panel shows "Sync of Blue WD done" when it ends; the
    # catalog's last sync is the machine-checkable trace of the same.
    if "$bin" disks --json 2>/dev/null | grep -q '"last_sync": [0-9]'; then break; fi
done
sleep 1
import -window root "$shots/screenshot-done.png"
# Every other tab, by its place in the tab bar.
for tab in sources:165 map:262 restore:358 archives:430 history:498; do
    xdotool mousemove --window "$win" "${tab#*:}" 12 click 1
    sleep 1
    import -window root "$shots/screenshot-${tab%%:*}.png"
done
# Light, as chosen in the top bar and remembered: the window started again,
# now with an encrypted bucket disk on a local S3 server (moto, as the
# tests use) synced from the command line, so its card shows too.
kill "$app_pid"
wait "$app_pid" 2>/dev/null || true
if command -v moto_server >/dev/null 2>&1; then
    port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    moto_server -H 127.0.0.1 -p "$port" >/dev/null 2>&1 &
    moto_pid=$!
    export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_REGION=us-east-1
    export AWS_ACCESS_KEY_ID=coffer AWS_SECRET_ACCESS_KEY=coffer-secret COFFER_PASSPHRASE=shots
    for _ in $(seq 150); do curl -s -o /dev/null "$AWS_ENDPOINT_URL/" && break; sleep 0.2; done
    curl -s -f -X PUT -o /dev/null "$AWS_ENDPOINT_URL/shots"
    "$bin" disk init s3://shots/home --label Cloud --quota 2G --encrypt >/dev/null
    "$bin" sync s3://shots/home >/dev/null
else
    echo "gui-smoke: no moto_server, so no bucket card in the light screenshot"
fi
echo '{"theme": "light"}' >"$COFFER_CONFIG_DIR/window.json"
"$bin" &
app_pid=$!
for _ in $(seq 100); do
    win="$(xdotool search --name '^Coffer$' 2>/dev/null | head -n1 || true)"
    [ -n "$win" ] && break
    sleep 0.2
done
[ -n "$win" ] || { echo "gui-smoke: the Coffer window did not come back" >&2; exit 1; }
xdotool windowmove "$win" 0 0
sleep 2
import -window root "$shots/screenshot-light.png"
"$bin" status
echo "gui-smoke: screenshots in $shots/"
