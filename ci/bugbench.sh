#!/usr/bin/env bash
# ci/bugbench.sh: the time-to-bug benchmark. For every defect switch of the allocator
# (allocator/src/platform/defects.h, CGSLAB_DEFECT=<name>, fuzz builds only) it runs K fuzzing
# trials with different -seed values, each capped, from the generic seed corpus
# (corpus/fuzz_lifecycle; never corpus/defects/ or the regressions), and records whether and when
# the first crash came and what it was. A `base` row runs the unmodified build for the same budget:
# a crash there is a false alarm and fails the bench.
#
# Rows: every defect on fuzz_lifecycle (sim mode, ASan+UBSan); the real-thread races also on
# fuzz_threads (TSan, real threads). Each trial is one process on one core; --jobs N runs N trials
# at a time. Per row: found k/K, median and max seconds to the first crash (a trial that found
# nothing counts as the cap, so a median at the cap means "not found in half the trials"), the crash
# kind (sanitizer report type or oracle, from the first trial that found it), and the size of that
# crash's program after `cgslab-prog minimize` (sim rows).
#
#   ci/bugbench.sh                                  # 10 trials x 300 s per row, 1 job
#   ci/bugbench.sh --trials 10 --cap 300 --jobs 2   # the README's run
#   ci/bugbench.sh --defect no_tryget --trials 3 --cap 60
#
# Output (--out, default bench/results/bugbench-<date>): table.md (also printed), bugbench.json,
# survival.svg (fraction of trials that found the bug vs. seconds, one curve per row), trials.tsv,
# and work/<row>/<trial>/ (log, crash file, decoded program). Exit status: 0 when the base row is
# clean and every trial fuzzed; 1 on a false alarm, a trial that did not fuzz or a failed build; 2
# on bad arguments.
set -uo pipefail
cd "$(dirname "$0")/.."

trials=10
cap=300
jobs=1
out=
threads=1
sim=1
minimize_s=120
defects=()
all_defects=$(sed -n 's/^ *X(k[A-Za-z]*, "\([a-z_]*\)").*/\1/p' allocator/src/platform/defects.h)
# Races that need two threads in the same code at once: also fuzzed on real threads under TSan.
thread_rows="no_tryget array_free_no_rcu publish_before_init free_races_destroy"

usage() {
  cat >&2 <<USAGE
usage: ci/bugbench.sh [--trials K] [--cap SECONDS] [--defect NAME]... [--jobs N] [--out DIR]
                      [--no-threads | --threads-only] [--minimize-time SECONDS]
  --trials K               trials per row, each with its own -seed (default 10)
  --cap SECONDS            time limit of one trial (default 300)
  --defect NAME            only this defect (repeatable; 'base' for the base row alone); default all:
                           $(echo $all_defects | sed 's/ /, /g')
  --jobs N                 trials run at a time, one core each (default 1)
  --out DIR                results directory (default bench/results/bugbench-<date>)
  --no-threads             skip the fuzz_threads (TSan) rows
  --threads-only           only the fuzz_threads rows
  --minimize-time SECONDS  cgslab-prog minimize budget per row (default 120)
USAGE
  exit 2
}
is_uint() { [[ "$1" =~ ^[1-9][0-9]*$ ]]; }
while [ $# -gt 0 ]; do
  case "$1" in
    --trials) [ $# -ge 2 ] && is_uint "$2" || { echo "ci/bugbench.sh: --trials needs a positive number" >&2; usage; }; trials=$2; shift 2 ;;
    --cap) [ $# -ge 2 ] && is_uint "$2" || { echo "ci/bugbench.sh: --cap needs a positive number of seconds" >&2; usage; }; cap=$2; shift 2 ;;
    --jobs) [ $# -ge 2 ] && is_uint "$2" || { echo "ci/bugbench.sh: --jobs needs a positive number" >&2; usage; }; jobs=$2; shift 2 ;;
    --minimize-time) [ $# -ge 2 ] && is_uint "$2" || { echo "ci/bugbench.sh: --minimize-time needs a positive number of seconds" >&2; usage; }; minimize_s=$2; shift 2 ;;
    --out) [ $# -ge 2 ] || usage; out=$2; shift 2 ;;
    --no-threads) threads=0; shift ;;
    --threads-only) sim=0; shift ;;
    --defect)
      [ $# -ge 2 ] || usage
      if [ "$2" != base ] && ! grep -qx "$2" <<<"$all_defects"; then
        echo "ci/bugbench.sh: unknown defect '$2'" >&2; usage
      fi
      defects+=("$2"); shift 2 ;;
    -h|--help) usage ;;
    *) echo "ci/bugbench.sh: unknown argument '$1'" >&2; usage ;;
  esac
done
[ $sim = 1 ] || [ $threads = 1 ] || { echo "ci/bugbench.sh: --no-threads and --threads-only leave no rows" >&2; usage; }
[ ${#defects[@]} -gt 0 ] || defects=(base $all_defects)
[ -n "$out" ] || out=bench/results/bugbench-$(date +%Y-%m-%d)
mkdir -p "$out" || { echo "ci/bugbench.sh: cannot create $out" >&2; exit 1; }
out=$(cd "$out" && pwd)

source ci/env.sh
cgslab_bounded 1800 "ci/install-deps.sh" ci/install-deps.sh >/dev/null || { echo "ci/bugbench.sh: ci/install-deps.sh failed" >&2; exit 1; }

# Rows: "defect target". base runs on every target that some defect row uses.
rows=()
need_tsan=0
for d in "${defects[@]}"; do
  [ $sim = 1 ] && rows+=("$d fuzz_lifecycle")
  if [ $threads = 1 ] && { [ "$d" = base ] || grep -qw "$d" <<<"$thread_rows"; }; then
    rows+=("$d fuzz_threads"); need_tsan=1
  fi
done

echo "=== build (fuzz$([ $need_tsan = 1 ] && echo ", fuzz-tsan")) ==="
{ cgslab_bounded 600 "cmake --preset fuzz" cmake --preset fuzz >/dev/null &&
  cgslab_bounded 3600 "the fuzz build" cmake --build --preset fuzz >"$out/build-fuzz.log" 2>&1; } ||
  { echo "ci/bugbench.sh: the fuzz build failed (see $out/build-fuzz.log)" >&2; exit 1; }
if [ $need_tsan = 1 ]; then
  { cgslab_bounded 600 "cmake --preset fuzz-tsan" cmake --preset fuzz-tsan >/dev/null &&
    cgslab_bounded 3600 "the fuzz-tsan build" cmake --build --preset fuzz-tsan --target fuzz_threads >"$out/build-fuzz-tsan.log" 2>&1; } ||
    { echo "ci/bugbench.sh: the fuzz-tsan build failed (see $out/build-fuzz-tsan.log)" >&2; exit 1; }
fi
prog=build/fuzz/fuzz/cgslab-prog
seeds=build/fuzz/corpus/fuzz_lifecycle
[ -n "$(ls "$seeds"/*.bin 2>/dev/null)" ] || { echo "ci/bugbench.sh: no seeds in $seeds" >&2; exit 1; }

# One trial: prints "row<TAB>trial<TAB>seed<TAB>found<TAB>seconds<TAB>kind<TAB>crash file"; found is
# 1, 0, or E when libFuzzer did not fuzz (no crash and no final stats: a missing file, a bad flag),
# which must never pass for "not found" or for a clean base row.
run_trial() {
  local d=$1 t=$2 i=$3 bin seed=$((i + 1)) work env=() start end secs crash kind found
  work=$out/work/$d-$t/$i
  rm -rf "$work"; mkdir -p "$work/corpus"
  case $t in fuzz_threads) bin=build/fuzz-tsan/fuzz/fuzz_threads ;; *) bin=build/fuzz/fuzz/$t ;; esac
  [ "$d" = base ] || env=(CGSLAB_DEFECT="$d")
  start=$(date +%s.%N)
  env "${env[@]}" timeout --signal=ABRT --kill-after=30 $((cap + 120)) "$bin" "$work/corpus" "$seeds" \
    -seed="$seed" -max_total_time="$cap" -max_len=600 -timeout=30 -rss_limit_mb=4096 \
    -dict="build/fuzz/fuzz/$t.dict" -artifact_prefix="$work/" -print_final_stats=1 >"$work/log" 2>&1
  end=$(date +%s.%N)
  crash=$(find "$work" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | head -1)
  # Found: the time the crash file was written, not the process end (a crash path that stalls
  # after writing it must not count its stall).
  [ -n "$crash" ] && end=$(stat -c %.3Y "$crash")
  secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
  found=0; kind=-
  if [ -n "$crash" ]; then
    found=1
    kind=$(grep -m1 -oE 'ERROR: AddressSanitizer: [a-z-]+|WARNING: ThreadSanitizer: [a-z -]+|runtime error|FAILURE \([a-z]+ mode\): [^:]*|cgslab: [a-z-]+:|deadly signal|ERROR: libFuzzer: [a-z-]+' "$work/log" |
      sed -e 's/ERROR: AddressSanitizer: /asan: /' -e 's/WARNING: ThreadSanitizer: /tsan: /' -e 's/FAILURE ([a-z]* mode): //' -e 's/ *$//' -e 's/ (.*//')
    [ -n "$kind" ] || kind="crash"
    if [ "$t" != fuzz_threads ]; then
      local line sig
      line=$(env "${env[@]}" timeout 300 "$prog" minimize --signature-only --runs 1 "$crash" 2>/dev/null)
      sig=$(printf '%s' "$line" | cut -f2 | cut -c1-90)
      [ -n "$sig" ] && [ "$sig" != passes ] && kind=$sig
    fi
    env "${env[@]}" timeout 60 "$prog" decode "$crash" >"$crash.txt" 2>&1
  elif grep -q 'ERROR: libFuzzer: \|ERROR: AddressSanitizer\|ThreadSanitizer' "$work/log"; then
    found=1; kind="report without a crash file"; crash=-
  elif ! grep -q '^stat::number_of_executed_units: *[1-9]' "$work/log"; then
    found=E; crash=-
    kind="error: did not fuzz: $(grep -v '^INFO\|^ *$' "$work/log" | head -1 | tr '\t' ' ' | cut -c1-100)"
  fi
  rm -rf "$work/corpus"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$d-$t" "$i" "$seed" "$found" "$secs" "$kind" "${crash:--}"
}

tsv=$out/trials.tsv
: >"$tsv"
total=$(( ${#rows[@]} * trials ))
echo "=== $total trials: ${#rows[@]} rows x $trials trials, cap ${cap} s, $jobs at a time (worst case $(( (total * (cap + 5) + jobs - 1) / jobs / 60 )) min) ==="
running=0
for r in "${rows[@]}"; do
  set -- $r
  for ((i = 0; i < trials; i++)); do
    if [ $running -ge $jobs ]; then wait -n; running=$((running - 1)); fi
    { line=$(run_trial "$1" "$2" $i); printf '%s\n' "$line" >>"$tsv"; printf '  %s\n' "$line" | cut -f1-6; } &
    running=$((running + 1))
  done
done
wait

# The minimized program of each row's fastest crash (sim rows: cgslab-prog minimize).
mkdir -p "$out/min"
for r in "${rows[@]}"; do
  set -- $r
  [ "$1" = base ] || [ "$2" = fuzz_threads ] && continue
  best=$(awk -F'\t' -v row="$1-$2" '$1 == row && $4 == 1 && $7 != "-" { print $5 "\t" $7 }' "$tsv" | sort -n | head -1 | cut -f2)
  [ -n "$best" ] || continue
  echo "=== minimize $1 ($best) ==="
  CGSLAB_DEFECT=$1 cgslab_bounded $((minimize_s + 600)) "cgslab-prog minimize $best" "$prog" minimize --runs 10 \
    --time-limit "$minimize_s" --out "$out/min/$1" "$best" >"$out/min/$1.log" 2>&1
  grep -E '^(signature|after|reproduced):' "$out/min/$1.log" | sed 's/^/    /'
done

python3 ci/bugbench_report.py --tsv "$tsv" --min-dir "$out/min" --trials "$trials" --cap "$cap" --jobs "$jobs" --out "$out"
status=$?
echo "results: $out (table.md, bugbench.json, survival.svg, trials.tsv, work/)"
exit $status
