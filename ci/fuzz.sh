#!/usr/bin/env bash
# ci/fuzz.sh: the main job. Builds the fuzz presets if needed, runs every libFuzzer target for a
# time budget starting from the seed corpora, merges new inputs into the persistent corpus, and
# prints a table: target, runs, exec/s, coverage, new corpus files, crashes. Every crash is kept
# with its decoded program text next to it. Then triage: every crash file's signature (the oracle,
# or the sanitizer report kind and top allocator frames: `cgslab-prog minimize --signature-only`,
# sim mode) deduplicates them; each unique crash is minimized (`cgslab-prog minimize`, bounded by
# --minimize-time) and listed once with its reproduction rate, minimized size and the command that
# replays it. With --explore K, the corpus entries that the run added are then explored by
# `cgslab-prog explore --delays K` (every schedule with at most K deviations from the default one,
# sim targets only), within a second budget of --time seconds per target; a failing schedule is a
# crash. Exit status: 0 iff no target crashed.
#
#   ci/fuzz.sh                         # every target, 60 s each
#   ci/fuzz.sh --time 300 --target fuzz_lifecycle
#   ci/fuzz.sh --jobs 2                # several targets: run two targets at a time
#   ci/fuzz.sh --jobs 4 --target fuzz_lifecycle   # one target: libFuzzer -fork=4 (4 processes)
#   ci/fuzz.sh --explore 1             # then explore each new corpus entry's schedules
#
# Corpus: $CGSLAB_FUZZ_CORPUS/<target> (default build/fuzz-corpus/<target>; cache it between CI
# runs). Crashes: build/fuzz-artifacts/<target>/, minimized ones in build/fuzz-artifacts/<target>/min/,
# explore's failing schedules in build/fuzz-artifacts/<target>/explore/.
# Reproduce one with
#   build/fuzz/fuzz/fuzz_lifecycle <crash-file>        (or cgslab-prog replay --trace <crash-file>)
set -uo pipefail
cd "$(dirname "$0")/.."

all_targets=(fuzz_lifecycle fuzz_api fuzz_threads)
time_s=60
jobs=1
minimize_s=120
explore_k=""
targets=()
usage() {
  cat >&2 <<USAGE
usage: ci/fuzz.sh [--time SECONDS] [--target NAME]... [--jobs N] [--minimize-time SECONDS]
  --time SECONDS   fuzzing budget per target (default 60)
  --target NAME    one of: ${all_targets[*]} (repeatable; default: all)
  --jobs N         with one --target: libFuzzer -fork=N (N fuzzing processes on that target);
                   with several targets: N targets fuzzed at the same time (default 1)
  --minimize-time SECONDS  budget of cgslab-prog minimize per unique crash (default 120)
  --explore K      then run cgslab-prog explore --delays K (0..8) on each corpus entry the run
                   added, for at most --time seconds per target (fuzz_lifecycle, fuzz_api)
USAGE
  exit 2
}
is_uint() { [[ "$1" =~ ^[0-9]+$ ]] && [ "$1" -gt 0 ]; }
while [ $# -gt 0 ]; do
  case "$1" in
    --time) [ $# -ge 2 ] && is_uint "$2" || { echo "ci/fuzz.sh: --time needs a positive number of seconds" >&2; usage; }; time_s=$2; shift 2 ;;
    --jobs) [ $# -ge 2 ] && is_uint "$2" || { echo "ci/fuzz.sh: --jobs needs a positive number" >&2; usage; }; jobs=$2; shift 2 ;;
    --explore) [ $# -ge 2 ] && [[ "$2" =~ ^[0-8]$ ]] || { echo "ci/fuzz.sh: --explore needs a bound in 0..8" >&2; usage; }; explore_k=$2; shift 2 ;;
    --minimize-time) [ $# -ge 2 ] && is_uint "$2" || { echo "ci/fuzz.sh: --minimize-time needs a positive number of seconds" >&2; usage; }; minimize_s=$2; shift 2 ;;
    --target)
      [ $# -ge 2 ] || usage
      ok=0; for t in "${all_targets[@]}"; do [ "$t" = "$2" ] && ok=1; done
      [ $ok = 1 ] || { echo "ci/fuzz.sh: unknown target '$2'" >&2; usage; }
      targets+=("$2"); shift 2 ;;
    -h|--help) usage ;;
    *) echo "ci/fuzz.sh: unknown argument '$1'" >&2; usage ;;
  esac
done
[ ${#targets[@]} -eq 0 ] && targets=("${all_targets[@]}")
# One target and --jobs N: libFuzzer's fork mode runs N fuzzing processes on it (a crash in any of
# them ends the run, as without forks). Several targets: --jobs N targets at a time, one process each.
fork=0
if [ ${#targets[@]} -eq 1 ] && [ "$jobs" -gt 1 ]; then fork=$jobs; jobs=1; fi

source ci/env.sh
source ci/libfuzzer_stats.sh
cgslab_bounded 1800 "ci/install-deps.sh" ci/install-deps.sh >/dev/null

need_tsan=0
for t in "${targets[@]}"; do [ "$t" = fuzz_threads ] && need_tsan=1; done
echo "=== building the fuzz preset ==="
{ cgslab_bounded 600 "cmake --preset fuzz" cmake --preset fuzz >/dev/null &&
  cgslab_bounded 3600 "the fuzz build" cmake --build --preset fuzz; } || { echo "ci/fuzz.sh: build failed" >&2; exit 1; }
if [ $need_tsan = 1 ]; then
  echo "=== building the fuzz-tsan preset ==="
  { cgslab_bounded 600 "cmake --preset fuzz-tsan" cmake --preset fuzz-tsan >/dev/null &&
    cgslab_bounded 3600 "the fuzz-tsan build" cmake --build --preset fuzz-tsan --target fuzz_threads; } ||
    { echo "ci/fuzz.sh: build failed" >&2; exit 1; }
fi

# The allocator's own waits report a hang after 20 s, before libFuzzer's -timeout=30 would.
export CGSLAB_WAIT_BOUND_SEC=20
corpus_root="${CGSLAB_FUZZ_CORPUS:-build/fuzz-corpus}"
prog=build/fuzz/fuzz/cgslab-prog

fuzz_one() {
  local t=$1 bin dialect seeds work corpus art before after fork_args=()
  case $t in
    fuzz_threads) bin=build/fuzz-tsan/fuzz/fuzz_threads; dialect=lifecycle; seeds="build/fuzz/corpus/fuzz_lifecycle build/fuzz/corpus/regressions" ;;
    fuzz_api) bin=build/fuzz/fuzz/fuzz_api; dialect=api; seeds="build/fuzz/corpus/fuzz_api" ;;
    *) bin=build/fuzz/fuzz/$t; dialect=lifecycle; seeds="build/fuzz/corpus/$t build/fuzz/corpus/regressions" ;;
  esac
  work=build/fuzz-work/$t; corpus=$corpus_root/$t; art=build/fuzz-artifacts/$t
  rm -rf "$work"; mkdir -p "$work/new" "$corpus" "$art"
  before=$(find "$corpus" -type f | wc -l)
  local existing_seeds=()
  for s in $seeds; do [ -d "$s" ] && existing_seeds+=("$s"); done
  # The dictionaries come from the fuzz build (target fuzz_dicts); the fuzz-tsan build makes only
  # fuzz_threads. A missing one is an error of ours, not a reason for libFuzzer to exit 1 silently.
  [ -s "build/fuzz/fuzz/$t.dict" ] || { echo "ci/fuzz.sh: build/fuzz/fuzz/$t.dict is missing (fuzz preset, target fuzz_dicts)" >&2; return 1; }
  touch "$work/start"
  [ "$fork" -gt 1 ] && fork_args=(-fork="$fork")
  # The bound is a backstop; libFuzzer stops itself after -max_total_time.
  cgslab_bounded $((time_s + 300)) "$t to stop fuzzing" "$bin" "$work/new" "$corpus" "${existing_seeds[@]}" \
    -max_total_time="$time_s" -max_len=600 -timeout=30 -rss_limit_mb=4096 -dict="build/fuzz/fuzz/$t.dict" \
    -print_final_stats=1 -artifact_prefix="$art/" "${fork_args[@]}" >"$work/log" 2>&1
  echo $? >"$work/rc"
  # The merge replays every input once more: bounded like the run (a crash here is in merge.log).
  cgslab_bounded $((time_s + 300)) "$t -merge=1" "$bin" -merge=1 -timeout=30 -rss_limit_mb=4096 \
    "$corpus" "$work/new" >"$work/merge.log" 2>&1 ||
    echo "ci/fuzz.sh: $t -merge=1 failed (exit $?); see $work/merge.log" >&2
  after=$(find "$corpus" -type f | wc -l)
  echo $((after - before)) >"$work/new_files"
  [ -n "$explore_k" ] && [ "$t" != fuzz_threads ] && explore_new "$t" "$dialect" "$work" "$corpus" "$art"
  # Decode every crash found in this run next to it.
  find "$art" -maxdepth 1 -type f -newer "$work/start" ! -name '*.txt' | while read -r c; do
    cgslab_bounded 60 "cgslab-prog decode $c" "$prog" decode --dialect "$dialect" "$c" >"$c.txt" 2>&1
  done
}

# Explores the schedules of each corpus entry added by this run, within time_s seconds in all; one
# line per entry in $work/explore.tsv: file, explore's exit status, its verdict line.
explore_new() {
  local t=$1 dialect=$2 work=$3 corpus=$4 art=$5 deadline left f out rc
  deadline=$(( $(date +%s) + time_s ))
  mkdir -p "$art/explore"
  : >"$work/explore.tsv"
  # Smallest first: a short program's schedules are explored in full soonest.
  for f in $(find "$corpus" -type f -newer "$work/start" -printf '%s %p\n' | sort -n -k1,1 -k2 | cut -d' ' -f2-); do
    left=$(( deadline - $(date +%s) ))
    if [ $left -le 0 ]; then printf '%s\t-\tnot explored: out of budget\n' "$f" >>"$work/explore.tsv"; continue; fi
    # explore's own bound: the walk (--time-limit + 60 s) and the check of a failing schedule (120 s).
    out=$(cgslab_bounded $((left + 240)) "cgslab-prog explore $f" "$prog" explore --dialect "$dialect"       --delays "$explore_k" --time-limit "$left" --out "$art/explore/$(basename "$f")" "$f"       2>"$art/explore/$(basename "$f").log")
    rc=$?
    printf '%s\n' "$out" >>"$art/explore/$(basename "$f").log"
    printf '%s\t%s\t%s\n' "$f" "$rc" "$(printf '%s\n' "$out" | grep -m1 -E ': (PASS|INCOMPLETE|FAIL|ERROR): ' |
      sed 's/^explore [^:]*: //')" >>"$work/explore.tsv"
  done
}

start=$(date +%s)
running=0
for t in "${targets[@]}"; do
  echo "=== fuzzing $t for ${time_s}s$([ "$fork" -gt 1 ] && echo " (-fork=$fork)") ==="
  fuzz_one "$t" &
  running=$((running + 1))
  if [ $running -ge "$jobs" ]; then wait -n; running=$((running - 1)); fi
done
wait

status=0
echo
echo "=== ci/fuzz.sh: ${time_s}s per target, $(( $(date +%s) - start ))s total ==="
printf '%-16s %10s %8s %8s %8s %6s  %s\n' target runs exec/s cov ft new crashes
for t in "${targets[@]}"; do
  work=build/fuzz-work/$t; log=$work/log
  runs=$(lf_runs "$log")
  eps=$(lf_exec_per_s "$log")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
  crashes=$(find "build/fuzz-artifacts/$t" -maxdepth 1 -type f -newer "$work/start" ! -name '*.txt' 2>/dev/null)
  ncrash=$(printf '%s' "$crashes" | grep -c . || true)
  printf '%-16s %10s %8s %8s %8s %6s  %s\n' "$t" "${runs:-?}" "${eps:-?}" "${cov:-?}" "${ft:-?}" "$(cat "$work/new_files")" "$ncrash"
  rc=$(cat "$work/rc")
  if [ "$ncrash" -gt 0 ] || [ "$rc" != 0 ]; then
    status=1
    if [ "$ncrash" -eq 0 ]; then
      echo "    $t exited with status $rc without a crash file; log: $log"
      grep -m3 -E "^SUMMARY|FAILURE|hang:" "$log" | sed 's/^/      /'
    fi
    for c in $crashes; do
      echo "    crash: $c  (program: $c.txt; log: $log)"
      grep -m1 -E "FAILURE|ERROR: AddressSanitizer|runtime error|WARNING: ThreadSanitizer|deadly signal" "$log" | sed 's/^/      /'
    done
  fi
done

if [ -n "$explore_k" ]; then
  echo
  echo "=== explore: schedules of the new corpus entries, at most $explore_k delays, ${time_s}s per target ==="
  for t in "${targets[@]}"; do
    tsv=build/fuzz-work/$t/explore.tsv
    [ -f "$tsv" ] || continue
    n=$(grep -c . "$tsv"); pass=$(grep -c $'\tPASS: ' "$tsv"); inc=$(grep -c $'\tINCOMPLETE: ' "$tsv")
    skip=$(grep -c $'\tnot explored' "$tsv")
    echo "$t: $n new entries: $pass explored in full, $inc stopped by the budget, $skip not reached"
    while IFS=$'\t' read -r f rc verdict; do
      case $verdict in
        PASS:*|INCOMPLETE:*|"not explored"*) ;;
        FAIL:*) status=1
           echo "    $f: $verdict"
           echo "      failing schedule: build/fuzz-artifacts/$t/explore/$(basename "$f").txt (log: .log next to it)"
           echo "      reproduce: ${CGSLAB_DEFECT:+CGSLAB_DEFECT=$CGSLAB_DEFECT }$prog replay --trace build/fuzz-artifacts/$t/explore/$(basename "$f").txt" ;;
        *) status=1
           echo "    $f: ${verdict:-explore exited with status $rc and no verdict}"
           echo "      log: build/fuzz-artifacts/$t/explore/$(basename "$f").log" ;;
      esac
    done <"$tsv"
  done
fi

# Triage: one line of signature per crash file (sim mode, 3 runs), then each unique signature
# minimized once. fuzz_threads runs on real threads: its crashes are tried in sim mode too, and one
# that does not reproduce there is listed under the first report line of its log.
defect=${CGSLAB_DEFECT:+CGSLAB_DEFECT=$CGSLAB_DEFECT }
declare -A first_of count_of target_of
order=()
total=0
for t in "${targets[@]}"; do
  work=build/fuzz-work/$t
  case $t in fuzz_api) dialect=api ;; *) dialect=lifecycle ;; esac
  for c in $(find "build/fuzz-artifacts/$t" -maxdepth 1 -type f -newer "$work/start" ! -name '*.txt' 2>/dev/null | sort); do
    total=$((total + 1))
    line=$(cgslab_bounded 300 "cgslab-prog minimize --signature-only $c" \
      "$prog" minimize --signature-only --runs 3 --dialect "$dialect" "$c" 2>/dev/null)
    sig=$(printf '%s' "$line" | cut -f2)
    if [ -z "$line" ] || [ "$sig" = passes ]; then
      sig="not reproduced in sim mode: $(grep -m1 -E "FAILURE|ERROR: |runtime error|WARNING: ThreadSanitizer|deadly signal|timeout" "$work/log" | cut -c1-120)"
    fi
    key="$t	$sig"
    if [ -z "${first_of[$key]:-}" ]; then
      first_of[$key]=$c; count_of[$key]=0; target_of[$key]=$t; order+=("$key")
    fi
    count_of[$key]=$((count_of[$key] + 1))
  done
done
if [ $total -gt 0 ]; then
  echo
  echo "=== triage: $total crash file(s), ${#order[@]} unique ==="
  n=0
  for key in "${order[@]}"; do
    n=$((n + 1)); t=${target_of[$key]}; c=${first_of[$key]}; sig=${key#*	}
    case $t in fuzz_api) dialect=api ;; *) dialect=lifecycle ;; esac
    echo "[$n] $t: $sig"
    echo "    files: ${count_of[$key]} (first: $c)"
    case $sig in
      "not reproduced in sim mode"*)
        echo "    reproduce: ${defect}$([ "$t" = fuzz_threads ] && echo build/fuzz-tsan/fuzz/fuzz_threads || echo "build/fuzz/fuzz/$t") $c"
        continue ;;
    esac
    min=build/fuzz-artifacts/$t/min/$(basename "$c")
    mkdir -p "$(dirname "$min")"
    cgslab_bounded $((minimize_s + 600)) "cgslab-prog minimize $c" "$prog" minimize --dialect "$dialect" --runs 10 \
      --time-limit "$minimize_s" --out "$min" "$c" >"$min.log" 2>&1
    rate=$(sed -n 's/^reproduced: *//p' "$min.log")
    if [ -n "$rate" ]; then
      echo "    reproduced: $rate (10 runs each, sim mode)"
      echo "    minimized: $(sed -n 's/^before: *//p' "$min.log")  ->  $(sed -n 's/^after: *//p' "$min.log") ($(sed -n 's/^time: *//p' "$min.log"))"
      echo "    program: $min.txt (bytes: $min.bin; trace: $min.trace; log: $min.log)"
      echo "    reproduce: ${defect}$prog replay --trace $min.txt"
      echo "               ${defect}build/fuzz/fuzz/$([ "$t" = fuzz_threads ] && echo fuzz_lifecycle || echo "$t") $min.bin"
    else
      echo "    minimize did not finish; see $min.log"
      echo "    reproduce: ${defect}$prog replay --trace $c"
    fi
  done
fi
exit $status
