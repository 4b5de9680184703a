#!/usr/bin/env bash
# Benchmark: Coffer's first sync and no-change re-sync of the medium corpus
# to a bucket disk, against `restic backup` of the same tree to the same
# local S3 server (moto on 127.0.0.1), in the same run. Not a test: it
# prints figures and ratios (target: coffer <= 1.0 x restic for both).
#
#   bench/s3.sh [--scale F] [--rounds N] [--work DIR] [--plain]
#
# --plain: a bucket disk without encryption (restic always encrypts, so the
# default compares an encrypted bucket disk). COFFER_BIN picks the binary
# (default: a release build made here); moto_server and restic must be on
# the PATH (scripts/setup.sh installs moto; apt-get install restic).
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE=1
WORK=${TMPDIR:-/tmp}/coffer-bench-s3
ENCRYPT=--encrypt
ROUNDS=3
while [ $# -gt 0 ]; do
  case "$1" in
    --scale) SCALE=$2; shift 2 ;;
    --work) WORK=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --plain) ENCRYPT=; shift ;;
    *) echo "usage: $0 [--scale F] [--rounds N] [--work DIR] [--plain]" >&2; exit 2 ;;
  esac
done
CORPUS=../shared/bench/make-corpus.py
[ -f "$CORPUS" ] || CORPUS=shared/bench/make-corpus.py
export PATH="$PATH:$HOME/.local/share/coffer-test/moto/bin"
command -v moto_server >/dev/null || { echo "needs moto_server (scripts/setup.sh)" >&2; exit 2; }
command -v restic >/dev/null || { echo "needs restic (apt-get install restic)" >&2; exit 2; }
if [ -z "${COFFER_BIN:-}" ]; then
  cargo build --release --locked -p coffer >&2
  COFFER_BIN=$PWD/target/release/coffer
fi

rm -rf "$WORK"; mkdir -p "$WORK"
now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.2f}')"; }
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
median() { python3 -c "import sys; v = sorted(map(float, sys.argv[1:])); print(f'{v[len(v) // 2]:.2f}')" "$@"; }

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
MOTO=
stop_moto() { if [ -n "$MOTO" ]; then kill "$MOTO" 2>/dev/null || true; wait "$MOTO" 2>/dev/null || true; MOTO=; fi; }
# A fresh server per round: moto keeps what it stores in memory.
start_moto() {
  stop_moto
  moto_server -H 127.0.0.1 -p "$PORT" >>"$WORK/moto.log" 2>&1 &
  MOTO=$!
  for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$PORT/" && return
    sleep 0.1
  done
  echo "moto_server did not answer" >&2; exit 1
}
trap stop_moto EXIT
export AWS_ENDPOINT_URL=http://127.0.0.1:$PORT AWS_REGION=us-east-1
export AWS_ACCESS_KEY_ID=coffer-bench AWS_SECRET_ACCESS_KEY=coffer-bench-secret
export COFFER_PASSPHRASE=bench-passphrase RESTIC_PASSWORD=bench-passphrase
bucket() {  # $1 = name
  curl -s -X PUT -H "Authorization: AWS4-HMAC-SHA256 Credential=$AWS_ACCESS_KEY_ID/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0" \
    "http://127.0.0.1:$PORT/$1" >/dev/null
}

echo "== corpus (medium, scale $SCALE)"
python3 "$CORPUS" generate "$WORK/medium" --profile medium --scale "$SCALE" >/dev/null
du -sh "$WORK/medium" | cut -f1
cat $(find "$WORK/medium" -type f) >/dev/null 2>&1 || true   # same warm cache for both

# Rounds alternating coffer and restic, each on a fresh server; the
# figures are medians.
CFs=(); RFs=(); CRs=(); RRs=()
for round in $(seq "$ROUNDS"); do
  start_moto
  bucket "coffer-$round"; bucket "restic-$round"
  export COFFER_CONFIG_DIR=$WORK/c$round/config COFFER_DATA_DIR=$WORK/c$round/data
  export COFFER_BASEPATH=$WORK COFFER_MOUNT_ROOT=$WORK/c$round/mounts
  mkdir -p "$COFFER_MOUNT_ROOT"
  "$COFFER_BIN" source add "$WORK/medium" >/dev/null
  # shellcheck disable=SC2086 # ENCRYPT is empty or one flag
  "$COFFER_BIN" disk init "s3://coffer-$round/bench" --label bench $ENCRYPT >/dev/null
  t0=$(now); "$COFFER_BIN" sync "s3://coffer-$round/bench" >/dev/null; t1=$(now)
  CFs+=("$(secs "$t0" "$t1")")
  export RESTIC_REPOSITORY=s3:http://127.0.0.1:$PORT/restic-$round/bench
  export RESTIC_CACHE_DIR=$WORK/r$round/cache
  restic init >/dev/null
  t0=$(now); restic backup --quiet "$WORK/medium" >/dev/null; t1=$(now)
  RFs+=("$(secs "$t0" "$t1")")
  t0=$(now); "$COFFER_BIN" sync "s3://coffer-$round/bench" >/dev/null; t1=$(now)
  CRs+=("$(secs "$t0" "$t1")")
  t0=$(now); restic backup --quiet "$WORK/medium" >/dev/null; t1=$(now)
  RRs+=("$(secs "$t0" "$t1")")
  if [ "$round" = 1 ]; then
    "$COFFER_BIN" restore "$WORK/medium" --to "$WORK/restored" >/dev/null
    diff -r --no-dereference "$WORK/medium" "$WORK/restored/medium" >/dev/null \
      || { echo "the restore from the bucket differs from the source" >&2; exit 1; }
    rm -rf "$WORK/restored"
  fi
  rm -rf "$WORK/c$round" "$WORK/r$round"
done
CF=$(median "${CFs[@]}"); RF=$(median "${RFs[@]}"); CR=$(median "${CRs[@]}"); RR=$(median "${RRs[@]}")
echo "first sync:          coffer ${CF}s (${CFs[*]})   restic ${RF}s (${RFs[*]})"
echo "  ratio coffer / restic = $(ratio "$CF" "$RF")   (target <= 1.0)"
echo "no-change re-sync:   coffer ${CR}s (${CRs[*]})   restic ${RR}s (${RRs[*]})"
echo "  ratio coffer / restic = $(ratio "$CR" "$RR")   (target <= 1.0)"
rm -rf "$WORK"
