#!/usr/bin/env bash
# Soak: kill -9 a sync again and again, as a laptop lid, a logout or a
# yanked cable would, and check that no run loses work and runs without
# progress (killed in the one step nothing can split) stay few, that what is
# written to the disk over the whole loop stays within 1.3 times the data,
# and that afterwards every object matches its name, both catalogs pass
# `integrity_check` and a restore equals the source. Not a test: it prints
# what it saw and exits non-zero on any broken promise.
#
#   bench/soak.sh [--rounds N] [--every SECONDS] [--scale F] [--work DIR]
#
# The corpus is make-corpus.py's medium profile at --scale (default 1,
# 1.5 GB). By default a run is killed after a tenth of the time one clean
# first sync takes (measured first), as in "a kill every 2 s on a corpus
# that needs 20 s". When a sync finishes before it is killed, the corpus is
# mutated (make-corpus.py mutate) and the loop goes on. As root, the disk is
# an ext4 image on a loop device and the sources and catalog are on tmpfs,
# so the kernel's count of block writes is the disk's alone; otherwise the
# write budget is not measured. COFFER_BIN picks the binary (default: a
# release build made here).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=100
EVERY=""
SCALE=1
WORK=${TMPDIR:-/tmp}/coffer-soak
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --every) EVERY=$2; shift 2 ;;
    --scale) SCALE=$2; shift 2 ;;
    --work) WORK=$2; shift 2 ;;
    *) echo "usage: $0 [--rounds N] [--every SECONDS] [--scale F] [--work DIR]" >&2; exit 2 ;;
  esac
done
CORPUS=../shared/bench/make-corpus.py
[ -f "$CORPUS" ] || CORPUS=shared/bench/make-corpus.py
# The binary, and soak_state: how far the killed runs got, read as the
# next run reads it (the kill test's own measure, coffer_tests::progress).
# One build of the workspace, so both share its features.
cargo build --release --locked --workspace --bin coffer --example soak_state >&2
COFFER_BIN=${COFFER_BIN:-$PWD/target/release/coffer}
STATE_BIN=$PWD/target/release/examples/soak_state
command -v sqlite3 >/dev/null || { echo "needs sqlite3 (apt-get install sqlite3)" >&2; exit 2; }

cleanup() {
  for m in "$WORK/disk" "$WORK/home" "$WORK/data" "$WORK/cal/disk"; do
    mountpoint -q "$m" 2>/dev/null && umount "$m"
  done
  rm -f "$WORK"/*.img
}
trap cleanup EXIT
cleanup 2>/dev/null || true
rm -rf "$WORK"; mkdir -p "$WORK"/{home,data,config,disk,cal}
MEASURED=0
if [ "$(id -u)" = 0 ]; then
  mount -t tmpfs -o size=$((4 + 2 * ${SCALE%.*}))g tmpfs "$WORK/home" \
    && mount -t tmpfs -o size=1g tmpfs "$WORK/data" \
    && truncate -s $((6 * ${SCALE%.*} + 2))G "$WORK/disk.img" \
    && mkfs.ext4 -q -F "$WORK/disk.img" \
    && mount -o loop "$WORK/disk.img" "$WORK/disk" \
    && MEASURED=1
fi
[ "$MEASURED" = 1 ] || echo "(not root: the write budget is not measured)"

echo "== corpus (medium, scale $SCALE)"
python3 "$CORPUS" generate "$WORK/home/medium" --profile medium --scale "$SCALE" >/dev/null
python3 "$CORPUS" stats "$WORK/home/medium" | tail -3

export COFFER_BASEPATH=$WORK/home HOME=$WORK/home
if [ -z "$EVERY" ]; then
  # One clean first sync, on a throwaway disk, sets the pace.
  export COFFER_CONFIG_DIR=$WORK/cal/config COFFER_DATA_DIR=$WORK/cal/data COFFER_MOUNT_ROOT=$WORK/cal/mnt
  mkdir -p "$WORK/cal/mnt/disk"
  "$COFFER_BIN" source add "$WORK/home/medium" >/dev/null
  "$COFFER_BIN" disk init "$WORK/cal/mnt/disk" --label cal >/dev/null
  t0=$(date +%s.%N); "$COFFER_BIN" sync >/dev/null; t1=$(date +%s.%N)
  EVERY=$(python3 -c "print(f'{($t1 - $t0) / 10:.2f}')")
  echo "a clean first sync took $(python3 -c "print(f'{$t1 - $t0:.1f}')") s: a kill every $EVERY s"
  rm -rf "$WORK/cal"
fi

export COFFER_CONFIG_DIR=$WORK/config COFFER_DATA_DIR=$WORK/data COFFER_MOUNT_ROOT=$WORK/mounts
mkdir -p "$COFFER_MOUNT_ROOT"
"$COFFER_BIN" source add "$WORK/home/medium" >/dev/null
"$COFFER_BIN" disk init "$WORK/disk" --label soak >/dev/null

STATE_BIN=$STATE_BIN COFFER_BIN=$COFFER_BIN WORK=$WORK ROUNDS=$ROUNDS EVERY=$EVERY MEASURED=$MEASURED CORPUS=$CORPUS \
python3 - <<'EOF'
import os, random, subprocess, sys, time

work, exe = os.environ["WORK"], os.environ["COFFER_BIN"]
rounds, every = int(os.environ["ROUNDS"]), float(os.environ["EVERY"])
measured = os.environ["MEASURED"] == "1"
disk, medium = f"{work}/disk", f"{work}/home/medium"
rng = random.Random(7)

def pages(root):
    n = 0
    for d, _, fs in os.walk(root):
        for f in fs:
            p = os.path.join(d, f)
            if not os.path.islink(p):
                n += -(-os.path.getsize(p) // 4096) * 4096
    return n

def index(root):
    out = {}
    for d, _, fs in os.walk(root):
        for f in fs:
            p = os.path.join(d, f)
            st = os.lstat(p)
            out[p] = (st.st_size, st.st_mtime_ns)
    return out

def state():
    """Bytes the disk holds that the next run uses, objects, hashed files,
    and whether all that is left is the catalog copy."""
    out = subprocess.run([os.environ["STATE_BIN"], f"{work}/data/catalog.sqlite", disk],
                         capture_output=True, text=True, check=True).stdout.split()
    held, objects, hashed, only = (int(x) for x in out)
    return held, objects, hashed, only == 1

def write_bytes(pid):
    try:
        for line in open(f"/proc/{pid}/io"):
            if line.startswith("write_bytes:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None

data = pages(medium)
written, kills, done, stuck, no_progress, mutation = 0, 0, 0, 0, 0, 0

before = state()
for r in range(1, rounds + 1):
    p = subprocess.Popen([exe, "sync"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # A run killed in the end step is given longer next time, as in the
    # kill test (a person who pulled the disk too early waits longer).
    until = time.time() + every * rng.uniform(0.8, 1.2) * (1 + stuck)
    last = 0
    while p.poll() is None and time.time() < until:
        last = write_bytes(p.pid) or last
        time.sleep(0.01)
    if p.poll() is None:
        last = write_bytes(p.pid) or last
        p.kill(); p.wait()
        kills += 1
        written += last
        now = state()
        if now[0] < before[0] or now[1] < before[1] or now[2] < before[2]:
            sys.exit(f"round {r}: work was lost: {before} -> {now}")
        if now == before:
            # The end of a sync (the snapshot, the plan, the catalog copy)
            # is one step nothing can split, and so is settling what the
            # last run left (flushed before it is trusted): a run killed
            # there may leave nothing more behind. Such runs must get
            # through within a few tries, each given longer.
            stuck += 1
            no_progress += 1
            if stuck >= 5:
                sys.exit(f"round {r}: no progress in {stuck} runs in a row: {before}")
        else:
            stuck = 0
        before = now
    else:
        written += last
        if p.returncode != 0:
            sys.exit(f"round {r}: a sync that was not killed failed: {p.stderr.read().decode()}")
        done += 1
        stuck = 0
        mutation += 1
        old = index(medium)
        subprocess.run(["python3", os.environ["CORPUS"], "mutate", medium, "--round", str(mutation)],
                       check=True, stdout=subprocess.DEVNULL)
        for path, (size, mtime) in index(medium).items():
            if old.get(path) != (size, mtime) and not os.path.islink(path):
                data += -(-size // 4096) * 4096
        before = state()
    print(f"\rround {r}/{rounds}: {kills} killed, {done} finished, {no_progress} without progress", end="", flush=True)
print()
final = subprocess.run([exe, "sync"], capture_output=True)
if final.returncode != 0:
    sys.exit(f"the last sync failed: {final.stderr.decode()}")
v = subprocess.run([exe, "verify", disk], capture_output=True)
if v.returncode != 0:
    sys.exit(f"verify found bad objects: {v.stdout.decode()}{v.stderr.decode()}")
for db in [f"{work}/data/catalog.sqlite"] + [f"{disk}/coffer/{s}" for s in ("catalog-a.sqlite", "catalog-b.sqlite")]:
    if os.path.exists(db):
        out = subprocess.run(["sqlite3", db, "PRAGMA integrity_check"], capture_output=True, text=True).stdout.strip()
        if out != "ok":
            sys.exit(f"{db}: {out}")
restored = f"{work}/restored"
subprocess.run([exe, "restore", medium, "--to", restored], check=True, stdout=subprocess.DEVNULL)
if subprocess.run(["diff", "-r", "--no-dereference", medium, f"{restored}/medium"]).returncode != 0:
    sys.exit("the restore differs from the source")
print(f"{kills} kills, {done} syncs finished, {no_progress} killed runs without progress "
      f"(at most 4 in a row, each killed in a step nothing can split)")
if measured:
    ratio = written / data
    print(f"written to the disk: {written / 1e6:.0f} MB for {data / 1e6:.0f} MB of data: {ratio:.2f}x (budget 1.30x)")
    if ratio > 1.3:
        sys.exit("over the write budget")
print("every object matches its name, both catalogs pass integrity_check, the restore equals the source")
EOF
