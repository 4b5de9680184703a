#!/usr/bin/env bash
# Benchmark: many small files. Coffer's first sync of the `many` corpus
# (200,000 files of about 1 KB; `--scale 5` for a million), a sync after one
# file changed and a no-change re-sync, beside `cp -a`, `rsync -a`, restic
# and borg on the same tree, each on a fresh file system, in one run; then
# `coffer status`, `coffer ls` of the corpus and `coffer find` of a name
# on the catalog that made. Not a test: it prints figures and ratios.
#
#   bench/many.sh [--scale F] [--work DIR] [--size 12G]
#
# As root, each tool writes to a fresh journaled ext4 image mounted on a
# loop device (a file system that just had 200,000 files deleted is slower
# to create them on for minutes; a fresh one makes the runs comparable), and
# restic and borg are installed when missing. Otherwise every tool writes to
# a fresh folder under --work. Peak memory is the process's maximum RSS; the
# writes are its own block writes (`ru_oublock`, 512-byte units).
#
# COFFER_BIN picks the binary (default: a release build made here).
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE=1
WORK=${TMPDIR:-/tmp}/coffer-bench-many
SIZE=12G
while [ $# -gt 0 ]; do
  case "$1" in
    --scale) SCALE=$2; shift 2 ;;
    --work) WORK=$2; shift 2 ;;
    --size) SIZE=$2; shift 2 ;;
    *) echo "usage: $0 [--scale F] [--work DIR] [--size 12G]" >&2; exit 2 ;;
  esac
done
CORPUS=../shared/bench/make-corpus.py
[ -f "$CORPUS" ] || CORPUS=shared/bench/make-corpus.py
if [ -z "${COFFER_BIN:-}" ]; then
  cargo build --release --locked -p coffer >&2
  COFFER_BIN=$PWD/target/release/coffer
fi
ROOT=0; [ "$(id -u)" = 0 ] && ROOT=1
if [ $ROOT = 1 ]; then
  for p in rsync:rsync restic:restic borg:borgbackup; do
    command -v "${p%%:*}" >/dev/null || apt-get install -y -q "${p#*:}" >/dev/null
  done
fi
command -v rsync >/dev/null || { echo "needs rsync (apt-get install rsync)" >&2; exit 2; }
TIME=/usr/bin/time
[ -x $TIME ] || { echo "needs GNU time (apt-get install time)" >&2; exit 2; }

mkdir -p "$WORK"
SRC=$WORK/many-$SCALE
if [ ! -d "$SRC" ]; then
  echo "generating the corpus in $SRC (kept for later runs)" >&2
  python3 "$CORPUS" generate "$SRC" --profile many --scale "$SCALE" >&2
fi
files=$(find "$SRC" -type f | wc -l)

# A fresh place to write to, at $WORK/target: a new ext4 image as root.
fresh() {
  local T=$WORK/target
  if mountpoint -q "$T"; then umount "$T"; fi
  rm -rf "$T" "$WORK/target.img"; mkdir -p "$T"
  if [ $ROOT = 1 ]; then
    truncate -s "$SIZE" "$WORK/target.img"
    # One inode per 4 KiB: room for a million files and their copies.
    mkfs.ext4 -q -F -i 4096 "$WORK/target.img"
    mount -o loop "$WORK/target.img" "$T"
  fi
  sync
  echo "$T"
}
cleanup() {
  if mountpoint -q "$WORK/target"; then umount "$WORK/target"; fi
  rm -f "$WORK/target.img"
}
trap cleanup EXIT

# Runs "$@" under GNU time; prints "seconds rss_kib blocks_written".
measure() {
  local out=$WORK/time.txt
  $TIME -o "$out" -f "%e %M %O" "$@" >/dev/null 2>"$WORK/stderr.txt" || {
    cat "$WORK/stderr.txt" >&2; return 1
  }
  tail -1 "$out"
}
f() { echo "$1" | cut -d' ' -f"$2"; }
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
mib() { python3 -c "print(f'{$1 * 512 / 1048576:.1f}')"; }

echo "many-small-files benchmark: $files files in $SRC"
T=$(fresh)
cp_=$(measure sh -c "cp -a '$SRC' '$T/copy' && sync")
T=$(fresh)
rs=$(measure sh -c "rsync -a '$SRC/' '$T/rs/' && sync")
rs0=$(measure rsync -a "$SRC/" "$T/rs/")
have_restic=0; have_borg=0
command -v restic >/dev/null && have_restic=1
command -v borg >/dev/null && have_borg=1
export RESTIC_PASSWORD=bench BORG_PASSPHRASE=bench
export BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
if [ $have_restic = 1 ]; then
  T=$(fresh)
  restic init -q -r "$T/restic"
  re=$(measure sh -c "restic backup -q -r '$T/restic' '$SRC' && sync")
  re0=$(measure restic backup -q -r "$T/restic" "$SRC")
fi
if [ $have_borg = 1 ]; then
  T=$(fresh)
  borg init -e none "$T/borg"
  bo=$(measure sh -c "borg create '$T/borg::a' '$SRC' && sync")
  bo0=$(measure borg create "$T/borg::b" "$SRC")
fi
T=$(fresh)
export COFFER_CONFIG_DIR=$WORK/coffer/config COFFER_DATA_DIR=$WORK/coffer/data
export COFFER_BASEPATH=$WORK COFFER_MOUNT_ROOT=$T
rm -rf "$WORK/coffer"
mkdir -p "$T/disk"
"$COFFER_BIN" source add "$SRC" >/dev/null
"$COFFER_BIN" disk init "$T/disk" --label bench >/dev/null
sync
co=$(measure "$COFFER_BIN" sync)
one=$(find "$SRC" -type f -print -quit)
cp "$one" "$WORK/one.bak"
echo "one more line" >> "$one"
co1=$(measure "$COFFER_BIN" sync)
cp -p "$WORK/one.bak" "$one"
co2=$(measure "$COFFER_BIN" sync)
co0=$(measure "$COFFER_BIN" sync)
st=$(measure "$COFFER_BIN" status)
ls_=$(measure "$COFFER_BIN" ls "$SRC")
fi_=$(measure "$COFFER_BIN" find "$(basename "$one")")
cat_size=$(stat -c %s "$COFFER_DATA_DIR/catalog.sqlite")

echo
printf '%-34s %9s %10s %12s\n' "" "seconds" "peak MiB" "written MiB"
row() { printf '%-34s %9s %10s %12s\n' "$1" "$(f "$2" 1)" "$(( $(f "$2" 2) / 1024 ))" "$(mib "$(f "$2" 3)")"; }
row "cp -a + sync" "$cp_"
row "rsync -a + sync" "$rs"
row "rsync -a, no change" "$rs0"
[ $have_restic = 1 ] && row "restic backup + sync" "$re" && row "restic, no change" "$re0"
[ $have_borg = 1 ] && row "borg create + sync" "$bo" && row "borg, no change" "$bo0"
row "coffer sync (first)" "$co"
row "coffer sync (one file changed)" "$co1"
row "coffer sync (changed back)" "$co2"
row "coffer sync (no change)" "$co0"
row "coffer status" "$st"
row "coffer ls (the corpus folder)" "$ls_"
row "coffer find (one name)" "$fi_"
echo
echo "catalog: $(( cat_size / 1048576 )) MiB for $files files"
echo "first sync / cp -a + sync:      $(ratio "$(f "$co" 1)" "$(f "$cp_" 1)")"
echo "first sync / rsync -a + sync:   $(ratio "$(f "$co" 1)" "$(f "$rs" 1)")"
[ $have_restic = 1 ] && echo "first sync / restic:            $(ratio "$(f "$co" 1)" "$(f "$re" 1)")"
[ $have_borg = 1 ] && echo "first sync / borg:              $(ratio "$(f "$co" 1)" "$(f "$bo" 1)")"
echo "no change / rsync -a no change: $(ratio "$(f "$co0" 1)" "$(f "$rs0" 1)")"
echo "peak memory per file (first):   $(( $(f "$co" 2) * 1024 / files )) bytes"
echo "one-file change wrote:          $(mib "$(f "$co1" 3)") MiB (target: at most 2 MiB at 200k files)"
