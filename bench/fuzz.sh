#!/usr/bin/env bash
# Fuzzing: runs each cargo-fuzz target (fuzz/fuzz_targets/) with libFuzzer
# for a given time and prints one row per target: executions, executions
# a second, crashes (new artifacts: crash, OOM, timeout, leak) and peak RSS.
# Exits non-zero if any target crashed. Not part of the test suite.
#
#   bench/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default: 60, all)
#
# Needs the nightly toolchain (libFuzzer's instrumentation); installs
# cargo-fuzz with `cargo install` if it is missing. Each target starts
# from its committed seeds (fuzz/seeds/TARGET) and the corpus it grew
# before (fuzz/corpus/TARGET, not committed); a crashing input lands in
# fuzz/artifacts/TARGET/, and the full libFuzzer logs in bench/out/.
#
# Per target (see the target's file for its input layout):
#   -max_len    identity 64 KiB (the identity reader's cap), sidecar 4 KiB
#               (the sidecar reader's cap), manifest 64 KiB (the real cap,
#               1 GiB, is out of a fuzzer's reach; 64 KiB holds a tree of
#               a hundred entries), delta 64 KiB (a base of up to 64 KiB and
#               its delta), member 128 KiB (the real seed archives are up to
#               38 KiB of tar)
#   -rss_limit_mb  512 for the parsers and the delta, 1024 for the member
#               reader (a 1 MiB read buffer, inflate state and a 4 MiB peek
#               at the stream's own manifest); a single allocation above
#               the limit is a crash too (libFuzzer's -malloc_limit_mb)
#   -timeout    10 s for one input (a hang is a crash)
# Built with AddressSanitizer (cargo-fuzz's default) and debug assertions,
# so integer overflows in core panic instead of wrapping. ASan's quarantine
# of freed memory is cut to 32 MiB (from 256) so that peak RSS says what
# the code under test takes, not what the sanitizer holds back.
set -euo pipefail
cd "$(dirname "$0")/.."

SECS=${1:-60}
shift || true
ALL=(identity sidecar manifest delta member)
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=("${ALL[@]}")
case "$SECS" in ''|*[!0-9]*) echo "usage: $0 [SECONDS_PER_TARGET] [TARGET...]" >&2; exit 2 ;; esac

export PATH="$HOME/.cargo/bin:$PATH"
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "fuzz: installing the nightly toolchain" >&2
  rustup toolchain install nightly --profile minimal >&2 || {
    echo "fuzz: needs a nightly Rust toolchain (rustup toolchain install nightly)" >&2; exit 2; }
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked >&2
fi

max_len() {
  case "$1" in
    identity) echo 65536 ;; sidecar) echo 4096 ;; manifest) echo 65536 ;;
    delta) echo 65536 ;; member) echo 131072 ;; *) echo 65536 ;;
  esac
}
rss_limit() {
  case "$1" in member) echo 1024 ;; *) echo 512 ;; esac
}

FLAGS=(--debug-assertions)
export ASAN_OPTIONS=${ASAN_OPTIONS:-quarantine_size_mb=32}
cargo +nightly fuzz build "${FLAGS[@]}" >&2

OUT=bench/out
mkdir -p "$OUT"
stat_of() {  # $1 = log, $2 = libFuzzer final stat name
  sed -n "s/^stat::$2: *\([0-9]*\).*/\1/p" "$1" | tail -1
}

crashed=0
total=0
printf '| target | seconds | max_len | RSS limit MB | executions | exec/s | crashes | peak RSS MB |\n'
printf '|---|---|---|---|---|---|---|---|\n'
for t in "${TARGETS[@]}"; do
  [ -f "fuzz/fuzz_targets/$t.rs" ] || { echo "fuzz: no target $t (have: ${ALL[*]})" >&2; exit 2; }
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  log=$OUT/fuzz-$t.log
  mark=$(mktemp)
  len=$(max_len "$t")
  rss=$(rss_limit "$t")
  dict=()
  [ -f "fuzz/dicts/$t.dict" ] && dict=("-dict=fuzz/dicts/$t.dict")
  status=0
  cargo +nightly fuzz run "${FLAGS[@]}" "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
    -max_total_time="$SECS" -max_len="$len" -rss_limit_mb="$rss" -timeout=10 \
    -print_final_stats=1 "${dict[@]}" >"$log" 2>&1 || status=$?
  crashes=$(find "fuzz/artifacts/$t" -type f -newer "$mark" \
    \( -name 'crash-*' -o -name 'oom-*' -o -name 'timeout-*' -o -name 'leak-*' \) | wc -l)
  rm -f "$mark"
  if [ "$status" -ne 0 ] && [ "$crashes" -eq 0 ]; then
    crashes=1  # libFuzzer stopped on something it wrote no artifact for
  fi
  execs=$(stat_of "$log" number_of_executed_units)
  rate=$(stat_of "$log" average_exec_per_sec)
  peak=$(stat_of "$log" peak_rss_mb)
  total=$((total + ${execs:-0}))
  [ "$crashes" -eq 0 ] || crashed=1
  printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$t" "$SECS" "$len" "$rss" \
    "${execs:--}" "${rate:--}" "$crashes" "${peak:--}"
  if [ "$crashes" -ne 0 ]; then
    echo "fuzz: $t crashed (exit $status); see $log and fuzz/artifacts/$t/" >&2
    grep -m5 -E 'panicked|ERROR: libFuzzer|SUMMARY' "$log" >&2 || true
  fi
done
printf '| total | | | | %s | | | |\n' "$total"
exit "$crashed"
