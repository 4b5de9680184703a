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
median() { python3 -c "import sys; v = sorted(map(float, sys.argv[1:])); print(f'{v[len(v) // 2]:.2f}')" "$@"; }

world() {  # $1 = name, $2 = base folder: fresh config/data/mount dirs for one Coffer run
  local base=${2:-$WORK}
  export COFFER_CONFIG_DIR=$base/$1/config COFFER_DATA_DIR=$base/$1/data
  export COFFER_BASEPATH=$base COFFER_MOUNT_ROOT=$base/$1/mounts
  mkdir -p "$COFFER_MOUNT_ROOT/disk"
}

# First sync and whole restore of $1/medium, each beside cp -a of the same
# tree on the same file system. Coffer flushes what it writes (syncfs per
# batch), so cp -a is also timed with the sync that makes it as durable.
# Three rounds, each: cp -a, a fresh first sync, a whole restore; the
# figures are the medians (a single run on a shared machine is noise).
first_sync_and_restore() {  # $1 = folder holding medium/, $2 = what it is
  local W=$1 CPs=() CPSs=() COs=() RTs=()
  echo "-- on $2"
  for round in 1 2 3; do
    rm -rf "$W/cp-copy" "$W/first" "$W/restored"; sync
    t0=$(now); cp -a "$W/medium" "$W/cp-copy"; t1=$(now); sync; t2=$(now)
    CPs+=("$(secs "$t0" "$t1")"); CPSs+=("$(secs "$t0" "$t2")")
    rm -rf "$W/cp-copy"; sync
    world first "$W"
    "$COFFER_BIN" source add "$W/medium" >/dev/null
    "$COFFER_BIN" disk init "$COFFER_MOUNT_ROOT/disk" --label bench >/dev/null
    sync
    t0=$(now); "$COFFER_BIN" sync >/dev/null; t1=$(now)
    COs+=("$(secs "$t0" "$t1")")
    sync
    t0=$(now); "$COFFER_BIN" restore "$W/medium" --to "$W/restored" >/dev/null; t1=$(now)
    RTs+=("$(secs "$t0" "$t1")")
    if [ "$round" = 1 ]; then
      diff -r --no-dereference "$W/medium" "$W/restored/medium" >/dev/null \
        || { echo "restore differs from the source" >&2; exit 1; }
    fi
  done
  rm -rf "$W/restored"   # the last round's world stays: the archive part uses it
  CP=$(median "${CPs[@]}"); CPS=$(median "${CPSs[@]}"); CO=$(median "${COs[@]}"); RT=$(median "${RTs[@]}")
  echo "cp -a:       ${CP}s (${CPs[*]})   cp -a + sync ${CPS}s (${CPSs[*]})"
  echo "first sync:  coffer ${CO}s (${COs[*]})"
  echo "  ratio coffer / cp -a        = $(ratio "$CO" "$CP")   (target <= 1.15)"
  echo "  ratio coffer / (cp -a+sync) = $(ratio "$CO" "$CPS")"
  echo "restore:     coffer ${RT}s (${RTs[*]})"
  echo "  ratio coffer restore / cp -a        = $(ratio "$RT" "$CP")   (target <= 1.15)"
  echo "  ratio coffer restore / (cp -a+sync) = $(ratio "$RT" "$CPS")"
}

echo "== corpus (medium, scale $SCALE)"
python3 "$CORPUS" generate "$WORK/medium" --profile medium --scale "$SCALE" >/dev/null
du -sh "$WORK/medium" | cut -f1
cat $(find "$WORK/medium" -type f) >/dev/null 2>&1 || true   # same warm cache for both

echo "== first sync and restore of the whole corpus vs cp -a"
first_sync_and_restore "$WORK" "the work folder's file system ($(stat -f -c %T "$WORK"))"
# On a RAM file system a flush costs nothing, so the ratio shows Coffer's own
# work (hashing, the catalog) against a plain copy. Needs root to mount.
if [ "$(id -u)" = 0 ] && mkdir -p "$WORK/ram" \
  && mount -t tmpfs -o size=$(( $(du -sm "$WORK/medium" | cut -f1) * 4 + 512 ))m tmpfs "$WORK/ram" 2>/dev/null; then
  trap 'umount "$WORK/ram" 2>/dev/null || true' EXIT
  cp -a "$WORK/medium" "$WORK/ram/medium"
  first_sync_and_restore "$WORK/ram" "tmpfs"
  umount "$WORK/ram"; trap - EXIT
else
  echo "-- (not root: the tmpfs run is skipped)"
fi
world first

echo "== archives vs tar czf"
mkdir -p "$WORK/arch"
t0=$(now); tar czf "$WORK/tar.tar.gz" -C "$WORK" medium; t1=$(now)
t2=$(now); "$COFFER_BIN" archive full --to "$WORK/arch" --prefix bench >/dev/null; t3=$(now)
TZ=$(secs "$t0" "$t1"); AF=$(secs "$t2" "$t3")
echo "full archive: coffer ${AF}s   tar czf ${TZ}s"
echo "  throughput ratio coffer / tar czf = $(ratio "$TZ" "$AF")   (target >= 1.5)"
BEFORE=$(du -sb "$WORK/medium" | cut -f1)
cp -a "$WORK/medium" "$WORK/before"
python3 "$CORPUS" mutate "$WORK/medium" --round 1 >/dev/null
# Bytes that really changed: new files whole; for changed files, the 4 KiB
# blocks that differ from before plus any growth.
CHANGED=$(python3 - "$WORK/before" "$WORK/medium" <<'PY'
import os, sys
before, after = sys.argv[1], sys.argv[2]
total = 0
for d, _, fs in os.walk(after):
    for f in fs:
        p = os.path.join(d, f)
        if os.path.islink(p):
            continue
        q = os.path.join(before, os.path.relpath(p, after))
        if not os.path.isfile(q):
            total += os.path.getsize(p)
            continue
        if os.path.getsize(p) == os.path.getsize(q) and os.path.getmtime(p) == os.path.getmtime(q):
            continue
        with open(p, "rb") as a, open(q, "rb") as b:
            while True:
                x, y = a.read(4096), b.read(4096)
                if not x:
                    break
                if x != y:
                    total += len(x)
print(total)
PY
)
rm -rf "$WORK/before"
"$COFFER_BIN" archive inc --to "$WORK/arch" --prefix bench >/dev/null
INC=$(stat -c %s "$WORK"/arch/bench-1-to-2.tar.gz)
echo "incremental after a 1% mutation: ${INC} bytes for ${CHANGED} bytes in changed files"
echo "  ratio archive / changed bytes = $(ratio "$INC" "$CHANGED")   (target <= 1.1)"
mkdir -p "$WORK/vol"
"$COFFER_BIN" archive full --to "$WORK/vol" --prefix vol --volume-size "$(( BEFORE / 10 + 1 ))" >/dev/null
ONE=$(cd "$WORK" && find medium -type f -size +100k | sort | tail -1)
echo "volumes written: $(ls "$WORK"/vol/*.tar.gz | wc -l)"
t0=$(now); "$COFFER_BIN" archive restore "$WORK/vol" --at 1 "$ONE" --to "$WORK/one" >/dev/null; t1=$(now)
t2=$(now); "$COFFER_BIN" archive restore "$WORK/vol" --at 1 --to "$WORK/all" >/dev/null; t3=$(now)
S1=$(secs "$t0" "$t1"); SA=$(secs "$t2" "$t3")
echo "one file from the volume set ${S1}s   whole extract ${SA}s   ratio $(ratio "$S1" "$SA")"
rm -rf "$WORK/arch" "$WORK/vol" "$WORK/one" "$WORK/all" "$WORK/tar.tar.gz"

echo "== corpus (many: 200k tiny files, scale $SCALE)"
python3 "$CORPUS" generate "$WORK/many" --profile many --scale "$SCALE" >/dev/null
world resync   # not "many": the corpus folder has that name
"$COFFER_BIN" source add "$WORK/many" >/dev/null
"$COFFER_BIN" disk init "$COFFER_MOUNT_ROOT/disk" --label bench >/dev/null
sync
t0=$(now); cp -a "$WORK/many" "$WORK/cp-many"; t1=$(now); sync; t2=$(now)
rm -rf "$WORK/cp-many"; sync
t3=$(now); "$COFFER_BIN" sync >/dev/null; t4=$(now)
MC=$(secs "$t0" "$t1"); MCS=$(secs "$t0" "$t2"); MS=$(secs "$t3" "$t4")
echo "first sync of 200k files: coffer ${MS}s   cp -a ${MC}s   cp -a + sync ${MCS}s"
echo "  ratio coffer / cp -a = $(ratio "$MS" "$MC")   ratio coffer / (cp -a+sync) = $(ratio "$MS" "$MCS")"
rsync -a "$WORK/many/" "$WORK/rsync-copy/"
# Three rounds, alternating, and the median of each: a second is short.
RES=(); RSS=()
for _ in 1 2 3; do
  t0=$(now); "$COFFER_BIN" sync >/dev/null; t1=$(now)
  t2=$(now); rsync -a "$WORK/many/" "$WORK/rsync-copy/"; t3=$(now)
  RES+=("$(secs "$t0" "$t1")"); RSS+=("$(secs "$t2" "$t3")")
done
RE=$(median "${RES[@]}"); RS=$(median "${RSS[@]}")
echo "no-change re-sync (median of 3): coffer ${RE}s (${RES[*]})   rsync -a ${RS}s (${RSS[*]})"
echo "  ratio coffer / rsync -a = $(ratio "$RE" "$RS")   (target <= 0.5)"
rm -rf "$WORK"
