#!/usr/bin/env bash
# bench/fuzz_speed.sh: the harness's throughput, side by side with its targets, in one run.
#
#   bench/fuzz_speed.sh                    # 3 rounds of 20 s per fuzz target
#   bench/fuzz_speed.sh --rounds 5 --time 30 --out FILE.md
#
# Figures (a fuzz figure is the median of --rounds rounds, min-max beside it; one process at a time,
# so each has one core; every round starts from the seeds with an empty corpus directory):
#   fuzz_lifecycle, fuzz_api exec/s   fuzz preset (ASan+UBSan), -max_len=600, the dictionary, the
#                                     seeds of ci/fuzz.sh
#   fuzz_threads exec/s               fuzz-tsan preset (TSan, real threads), same flags
#   fuzz_lifecycle -fork=2 exec/s     two workers on the two cores (ci/fuzz.sh --jobs 2 --target ...),
#                                     the total of both: inputs / seconds of the last fork-mode
#                                     status line (its own exec/s field is not the total)
#   replay ms                         release cgslab-prog replay --repeat 1000 of the 64-op, 4-task
#                                     seed corpus/fuzz_lifecycle/mix64_explicit_0.txt (median of rounds)
#   explore                           release cgslab-prog explore --delays 1 and --delays 2 of that
#                                     seed, the latter stopped after 60 s
# The machine is shared: compare figures of one run, not across runs.
set -uo pipefail
cd "$(dirname "$0")/.."
rounds=3
time_s=20
out=""
usage() {
  sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) [[ "${2:-}" =~ ^[1-9][0-9]?$ ]] || { echo "fuzz_speed.sh: --rounds takes 1..99" >&2; usage; }; rounds=$2; shift 2 ;;
    --time) [[ "${2:-}" =~ ^[1-9][0-9]{0,3}$ ]] || { echo "fuzz_speed.sh: --time takes 1..9999 seconds" >&2; usage; }; time_s=$2; shift 2 ;;
    --out) [ -n "${2:-}" ] || { echo "fuzz_speed.sh: --out takes a file" >&2; usage; }; out=$2; shift 2 ;;
    -h|--help) usage ;;
    *) echo "fuzz_speed.sh: unknown argument '$1'" >&2; usage ;;
  esac
done
source ci/env.sh
source ci/libfuzzer_stats.sh
seed=corpus/fuzz_lifecycle/mix64_explicit_0.txt

echo "=== building the fuzz, fuzz-tsan and release presets ==="
for p in fuzz fuzz-tsan release; do
  { cgslab_bounded 600 "cmake --preset $p" cmake --preset "$p" >/dev/null &&
    cgslab_bounded 3600 "the $p build" cmake --build --preset "$p" >/dev/null; } ||
    { echo "fuzz_speed.sh: the $p build failed" >&2; exit 1; }
done

work=$(mktemp -d /tmp/cgslab-fuzz-speed.XXXXXX)
trap 'rm -rf "$work"' EXIT
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "?"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
range() { sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { print lo "-" hi }'; }

declare -A fig
exec_per_s() {
  local t=$1 bin=$2 dict=$3; shift 3
  : >"$work/$t.eps"
  for r in $(seq "$rounds"); do
    rm -rf "$work/corpus"; mkdir -p "$work/corpus"
    cgslab_bounded $((time_s + 120)) "$t round $r" "$bin" "$work/corpus" "$@" -max_total_time="$time_s" \
      -max_len=600 -timeout=30 -rss_limit_mb=4096 -dict="$dict" -print_final_stats=1 \
      -artifact_prefix="$work/" >"$work/$t.log" 2>&1 ||
      { echo "fuzz_speed.sh: $t exited with status $? (log: below)" >&2; tail -20 "$work/$t.log" >&2; exit 1; }
    v=$(lf_exec_per_s "$work/$t.log")
    [ -n "$v" ] && echo "$v" >>"$work/$t.eps"
  done
  fig[$t]=$(median <"$work/$t.eps")
  fig[$t.range]=$(range <"$work/$t.eps")
  echo "  $t: $(tr '\n' ' ' <"$work/$t.eps")exec/s"
}
echo "=== fuzzing: $rounds rounds of ${time_s}s per target ==="
exec_per_s fuzz_lifecycle build/fuzz/fuzz/fuzz_lifecycle build/fuzz/fuzz/fuzz_lifecycle.dict \
  build/fuzz/corpus/fuzz_lifecycle build/fuzz/corpus/regressions
exec_per_s fuzz_lifecycle_fork2 build/fuzz/fuzz/fuzz_lifecycle build/fuzz/fuzz/fuzz_lifecycle.dict \
  build/fuzz/corpus/fuzz_lifecycle build/fuzz/corpus/regressions -fork=2
exec_per_s fuzz_api build/fuzz/fuzz/fuzz_api build/fuzz/fuzz/fuzz_api.dict build/fuzz/corpus/fuzz_api
exec_per_s fuzz_threads build/fuzz-tsan/fuzz/fuzz_threads build/fuzz/fuzz/fuzz_threads.dict \
  build/fuzz/corpus/fuzz_lifecycle build/fuzz/corpus/regressions

echo "=== replay: $rounds rounds of 1000 runs of $seed (release) ==="
: >"$work/replay.ms"
for r in $(seq "$rounds"); do
  t0=$(date +%s.%N)
  cgslab_bounded 600 "replay" build/release/fuzz/cgslab-prog replay --repeat 1000 "$seed" >/dev/null ||
    { echo "fuzz_speed.sh: replay of $seed failed" >&2; exit 1; }
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f\n", (b - a) }' >>"$work/replay.ms"  # s per 1000 runs = ms per run
done
fig[replay]=$(median <"$work/replay.ms")
fig[replay.range]=$(range <"$work/replay.ms")

echo "=== explore: $seed (release) ==="
explore() {
  cgslab_bounded 900 "explore --delays $1" build/release/fuzz/cgslab-prog explore --delays "$1" --time-limit "$2" "$seed" |
    grep -E ': (PASS|INCOMPLETE|FAIL|ERROR): |^  bound' | tee "$work/explore$1"
}
explore 1 600 >/dev/null
explore 2 60 >/dev/null
fig[x1]=$(sed -n 's/.*PASS: all \([0-9]*\) schedules.*(\([0-9.]*\) s)$/\1 schedules in \2 s/p' "$work/explore1")
fig[x2]=$(sed -n 's/.*PASS: all \([0-9]*\) schedules.*(\([0-9.]*\) s)$/\1 schedules in \2 s (complete)/p' "$work/explore2")
[ -n "${fig[x2]}" ] || fig[x2]=$(sed -n 's/.*INCOMPLETE: stopped by a limit after \([0-9]*\) runs;.*bound 2 has \([0-9]*\) schedules so far.*/\1 runs in 60 s, incomplete (\2 schedules with 2 delays done)/p' "$work/explore2")

verdict() {  # measured target higher_is_better
  awk -v m="$1" -v t="$2" -v h="$3" 'BEGIN {
    if (m == "?" || m == "") { print "not measured"; exit }
    if (h) r = m / t; else r = t / m
    if (r >= 1) print "met"; else printf "missed: %.2fx of target\n", r }'
}
{
  echo "| figure | measured (median, range) | target | verdict |"
  echo "|---|---|---|---|"
  echo "| fuzz_lifecycle exec/s (ASan+UBSan, one core) | ${fig[fuzz_lifecycle]} (${fig[fuzz_lifecycle.range]}) | 5,000 | $(verdict "${fig[fuzz_lifecycle]}" 5000 1) |"
  echo "| fuzz_lifecycle -fork=2 exec/s (2 workers, total) | ${fig[fuzz_lifecycle_fork2]} (${fig[fuzz_lifecycle_fork2.range]}) | - | - |"
  echo "| fuzz_api exec/s (ASan+UBSan, one core) | ${fig[fuzz_api]} (${fig[fuzz_api.range]}) | - | - |"
  echo "| fuzz_threads exec/s (TSan) | ${fig[fuzz_threads]} (${fig[fuzz_threads.range]}) | 1,000 | $(verdict "${fig[fuzz_threads]}" 1000 1) |"
  echo "| replay of a 64-op 4-task seed, ms (release) | ${fig[replay]} (${fig[replay.range]}) | 0.15 | $(verdict "${fig[replay]}" 0.15 0) |"
  echo "| explore --delays 1 of that seed (release) | ${fig[x1]:-?} | - | - |"
  echo "| explore --delays 2 of that seed (release) | ${fig[x2]:-?} | complete < 60 s | $(grep -q 'PASS' "$work/explore2" && echo met || echo missed) |"
} | tee "$work/table.md"
echo "(bench/fuzz_speed.sh --rounds $rounds --time $time_s, $(date -u +%Y-%m-%d), $(nproc) cores)"
if [ -n "$out" ]; then cp "$work/table.md" "$out" && echo "written: $out"; fi
