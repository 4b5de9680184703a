#!/usr/bin/env bash
# Benchmark: Coffer's first sync vs `cp -a`, and a no-change re-sync of the
# 200k-file corpus vs `rsync -a`, measured side by side in one run on the
# same file system. Not a test: it prints figures and ratios.
#
#   bench/sync.sh [--scale F] [--work DIR]
#
# COFFER_BIN picks the binary (default: a release build made here).
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE=1
WORK=${TMPDIR:-/tmp}/coffer-bench
while [ $# -gt 0 ]; do
  case "$1" in
    --scale) SCALE=$2; shift 2 ;;
    --work) WORK=$2; shift 2 ;;
    *) echo "usage: $0 [--scale F] [--work DIR]" >&2; exit 2 ;;
  esac
done
CORPUS=../shared/bench/make-corpus.py
[ -f "$CORPUS" ] || CORPUS=shared/bench/make-corpus.py
if [ -z "${COFFER_BIN:-}" ]; then
  cargo build --release --locked -p coffer >&2
  COFFER_BIN=$PWD/target/release/coffer
fi
command -v rsync >/dev/null || { echo "needs rsync (apt-get install rsync)" >&2; exit 2; }

rm -rf "$WORK"; mkdir -p "$WORK"
now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.2f}')"; }
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }

world() {  # $1 = name: fresh config/data/mount dirs for one Coffer run
  export COFFER_CONFIG_DIR=$WORK/$1/config COFFER_DATA_DIR=$WORK/$1/data
  export COFFER_BASEPATH=$WORK COFFER_MOUNT_ROOT=$WORK/$1/mounts
  mkdir -p "$COFFER_MOUNT_ROOT/disk"
}

echo "== corpus (medium, scale $SCALE)"
python3 "$CORPUS" generate "$WORK/medium" --profile medium --scale "$SCALE" >/dev/null
du -sh "$WORK/medium" | cut -f1
cat $(find "$WORK/medium" -type f) >/dev/null 2>&1 || true   # same warm cache for both

t0=$(now); cp -a "$WORK/medium" "$WORK/cp-copy"; t1=$(now); sync; t2=$(now)
CP=$(secs "$t0" "$t1"); CPS=$(secs "$t0" "$t2")
world first
"$COFFER_BIN" source add "$WORK/medium" >/dev/null
"$COFFER_BIN" disk init "$COFFER_MOUNT_ROOT/disk" --label bench >/dev/null
sync
t0=$(now); "$COFFER_BIN" sync >/dev/null; t1=$(now)
CO=$(secs "$t0" "$t1")
echo "first sync:  coffer ${CO}s   cp -a ${CP}s   cp -a + sync ${CPS}s"
echo "  ratio coffer / cp -a        = $(ratio "$CO" "$CP")   (target <= 1.15)"
echo "  ratio coffer / (cp -a+sync) = $(ratio "$CO" "$CPS")  (coffer flushes every batch; cp does not)"

echo "== corpus (many: 200k tiny files, scale $SCALE)"
python3 "$CORPUS" generate "$WORK/many" --profile many --scale "$SCALE" >/dev/null
world many
"$COFFER_BIN" source add "$WORK/many" >/dev/null
"$COFFER_BIN" disk init "$COFFER_MOUNT_ROOT/disk" --label bench >/dev/null
"$COFFER_BIN" sync >/dev/null
rsync -a "$WORK/many/" "$WORK/rsync-copy/"
t0=$(now); "$COFFER_BIN" sync >/dev/null; t1=$(now)
t2=$(now); rsync -a "$WORK/many/" "$WORK/rsync-copy/"; t3=$(now)
RE=$(secs "$t0" "$t1"); RS=$(secs "$t2" "$t3")
echo "no-change re-sync: coffer ${RE}s   rsync -a ${RS}s"
echo "  ratio coffer / rsync -a = $(ratio "$RE" "$RS")   (target <= 0.5)"
rm -rf "$WORK"
