#!/usr/bin/env bash
# ci/afl.sh: fuzzes a sim-mode target with AFL++ (Debian package afl++; installed here when
# missing and running as root). Builds the target with afl-clang-fast++ (AFL++'s LLVM
# instrumentation; -fsanitize=fuzzer links AFL++'s libFuzzer-compatible driver, persistent mode,
# around LLVMFuzzerTestOneInput) in build/afl (build/afl-asan with --asan), seeds afl-fuzz with the
# binary corpus (corpus/<target>/*.txt and the corpus/regressions/*.txt of the target's dialect,
# encoded by the build), runs it for --time seconds and prints AFL++'s own summary from
# fuzzer_stats: executions, exec/s, corpus, crashes, hangs, bitmap coverage and stability.
#
# Stability is the share of edges that every execution of the same input hits the same way. Sim
# mode promises that one input is one run, so anything under 100% is a defect (state kept across
# executions: a global counter, an address-dependent hash, a static in the harness or allocator).
#
#   ci/afl.sh --time 60                            # fuzz_lifecycle, 60 s
#   ci/afl.sh --time 600 --target fuzz_api --asan  # fuzz_api with AFL++'s ASan build
#   ci/afl.sh --time 60 --min-stability 99.5       # accept a lower stability
#
# Output: build/afl-out/<target>/default/ (queue/, crashes/, hangs/, fuzzer_stats, plot_data); a
# crash replays with build/afl/fuzz/<target> FILE or cgslab-prog replay --trace FILE. Exit status: 0
# iff there was no crash and stability >= --min-stability (default 100); 2 on bad arguments.
set -uo pipefail
cd "$(dirname "$0")/.."

time_s=60
target=fuzz_lifecycle
asan=0
min_stability=100
usage() {
  cat >&2 <<USAGE
usage: ci/afl.sh [--time SECONDS] [--target fuzz_lifecycle|fuzz_api] [--asan] [--min-stability PERCENT]
  --time SECONDS           afl-fuzz run time (default 60)
  --target NAME            fuzz_lifecycle (default) or fuzz_api (fuzz_threads needs TSan: ci/fuzz.sh)
  --asan                   build with AFL_USE_ASAN=1 (slower, finds memory errors)
  --min-stability PERCENT  fail below this stability (default 100)
USAGE
  exit 2
}
while [ $# -gt 0 ]; do
  case "$1" in
    --time) [ $# -ge 2 ] && [[ "$2" =~ ^[1-9][0-9]*$ ]] || { echo "ci/afl.sh: --time needs a positive number of seconds" >&2; usage; }
            time_s=$2; shift 2 ;;
    --target) [ $# -ge 2 ] || usage
              case "$2" in fuzz_lifecycle|fuzz_api) ;; *) echo "ci/afl.sh: unknown target '$2'" >&2; usage ;; esac
              target=$2; shift 2 ;;
    --asan) asan=1; shift ;;
    --min-stability) [ $# -ge 2 ] && [[ "$2" =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "ci/afl.sh: --min-stability needs a percentage" >&2; usage; }
                     min_stability=$2; shift 2 ;;
    -h|--help) usage ;;
    *) echo "ci/afl.sh: unknown argument '$1'" >&2; usage ;;
  esac
done

source ci/env.sh
cgslab_bounded 1800 "ci/install-deps.sh" ci/install-deps.sh >/dev/null || { echo "ci/afl.sh: ci/install-deps.sh failed" >&2; exit 1; }
if ! command -v afl-clang-fast++ >/dev/null || ! command -v afl-fuzz >/dev/null; then
  [ "$(id -u)" -eq 0 ] || { echo "ci/afl.sh: AFL++ is missing; install the Debian package afl++ (needs root)" >&2; exit 1; }
  echo "=== installing afl++ ==="
  export DEBIAN_FRONTEND=noninteractive
  { cgslab_bounded 900 "apt-get install afl++" apt-get install -y -q afl++ >/dev/null 2>&1 ||
    { cgslab_bounded 900 "apt-get update" apt-get update -q >/dev/null &&
      cgslab_bounded 900 "apt-get install afl++" apt-get install -y -q afl++ >/dev/null; }; } ||
    { echo "ci/afl.sh: installing afl++ failed" >&2; exit 1; }
fi

build=build/afl
[ $asan = 1 ] && build=build/afl-asan
echo "=== building $target with afl-clang-fast++ in $build ==="
# The compile flags come from here, not from a preset: no libFuzzer (the engine is AFL++), and
# ASan only through AFL_USE_ASAN (set at configure and build time, read by afl-clang-fast).
if [ $asan = 1 ]; then export AFL_USE_ASAN=1; else unset AFL_USE_ASAN; fi
export AFL_QUIET=1
# As in the libFuzzer builds (allocator/CMakeLists.txt), the sim scheduler and the fiber code are
# not instrumented: interleavings are the harness's own coverage, and both keep memo state across
# executions (the where_hash cache keyed by __func__ pointers, the pool of fiber stacks) that
# changes which of their edges run without changing the run.
mkdir -p "$build"
printf 'src: *platform/sim_scheduler.cc\nsrc: *platform/fiber.cc\n' >"$build/afl-denylist.txt"
export AFL_LLVM_DENYLIST=$PWD/$build/afl-denylist.txt
# ccache does not see AFL_USE_ASAN or the denylist (environment, not command line): not used here.
export CCACHE_DISABLE=1
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
{ cgslab_bounded 600 "cmake (AFL++ build)" cmake -S . -B "$build" "${generator[@]}" \
    -DCMAKE_C_COMPILER=afl-clang-fast -DCMAKE_CXX_COMPILER=afl-clang-fast++ \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g" \
    -DCMAKE_CXX_FLAGS="-DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION -DCGSLAB_AFL_BUILD=$asan" -DCGSLAB_SANITIZE= \
    -DCGSLAB_BUILD_FUZZ=ON -DCGSLAB_BUILD_TESTS=OFF -DCGSLAB_BUILD_BENCH=OFF \
    -DCGSLAB_LIB_FUZZING_ENGINE=-fsanitize=fuzzer >"$build.configure.log" 2>&1 ||
    { cat "$build.configure.log" >&2; false; }; } &&
  cgslab_bounded 3600 "the AFL++ build" cmake --build "$build" --target "$target" corpus_seeds fuzz_dicts -j "${CGSLAB_JOBS:-$(nproc)}" ||
  { echo "ci/afl.sh: build failed" >&2; exit 1; }

# Seeds: the target's corpus and the regressions written in its dialect.
dialect=lifecycle
[ $target = fuzz_api ] && dialect=api
out=build/afl-out/$target
seeds=build/afl-out/$target.seeds
rm -rf "$out" "$seeds"
mkdir -p "$seeds" "$(dirname "$out")"
cp "$build/corpus/$target"/*.bin "$seeds/" 2>/dev/null
for txt in corpus/regressions/*.txt; do
  d=lifecycle
  grep -qE '^[[:space:]]*dialect[[:space:]]+api([[:space:]]|$)' "$txt" && d=api
  [ $d = $dialect ] && cp "$build/corpus/regressions/$(basename "$txt" .txt).bin" "$seeds/regression_$(basename "$txt" .txt).bin"
done
nseeds=$(find "$seeds" -type f | wc -l)
[ "$nseeds" -gt 0 ] || { echo "ci/afl.sh: no seeds for $target in $build/corpus" >&2; exit 1; }

# In a container: no CPU frequency control, no core_pattern to change, cores shared with others.
export AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_AFFINITY=1
# AFL++ needs the sanitizers to abort (a signal it sees) and not symbolize (slow).
export ASAN_OPTIONS="$ASAN_OPTIONS:abort_on_error=1:symbolize=0"
export UBSAN_OPTIONS="$UBSAN_OPTIONS:abort_on_error=1:symbolize=0"
# The allocator's own waits report a hang after 20 s, before afl-fuzz's 30-s timeout would.
export CGSLAB_WAIT_BOUND_SEC=20
echo "=== afl-fuzz $target for ${time_s}s from $nseeds seeds ==="
cgslab_bounded $((time_s + 300)) "afl-fuzz $target" afl-fuzz -i "$seeds" -o "$out" -V "$time_s" -G 600 \
  -t 30000+ -m none -x "$build/fuzz/$target.dict" -- "$build/fuzz/$target" >"$out.log" 2>&1
rc=$?
stats=$out/default/fuzzer_stats
if [ ! -f "$stats" ]; then
  echo "ci/afl.sh: afl-fuzz exited with status $rc and wrote no fuzzer_stats; its log ($out.log) ends:" >&2
  tail -25 "$out.log" >&2
  exit 1
fi
stat() { sed -n "s/^$1 *: *//p" "$stats" | head -1; }
crashes=$(stat saved_crashes); [ -n "$crashes" ] || crashes=$(stat unique_crashes)
hangs=$(stat saved_hangs); [ -n "$hangs" ] || hangs=$(stat unique_hangs)
stability=$(stat stability)
echo
echo "=== ci/afl.sh: AFL++ $(stat afl_version), $target, ${time_s}s ==="
printf '%-16s %s\n' "execs_done" "$(stat execs_done)" "execs_per_sec" "$(stat execs_per_sec)" \
  "corpus_count" "$(stat corpus_count) (from $nseeds seeds)" "saved_crashes" "$crashes" \
  "saved_hangs" "$hangs" "bitmap_cvg" "$(stat bitmap_cvg)" "stability" "$stability" \
  "run_time" "$(stat run_time) s" "output" "$out/default"

status=0
[ "$rc" -eq 0 ] || { echo "ci/afl.sh: afl-fuzz exited with status $rc (log $out.log)"; status=1; }
if [ "${crashes:-0}" != 0 ]; then
  status=1
  for c in "$out"/default/crashes/id:*; do
    [ -f "$c" ] || continue
    echo "    crash: $c"
    cgslab_bounded 120 "cgslab-prog decode $c" "$build/fuzz/cgslab-prog" decode --dialect $dialect "$c" >"$c.txt" 2>&1
    echo "      program: $c.txt; reproduce: $build/fuzz/$target '$c'"
  done
fi
if ! awk -v s="${stability%\%}" -v m="$min_stability" 'BEGIN { exit !(s + 0 >= m + 0) }'; then
  echo "ci/afl.sh: stability $stability is below $min_stability%: some input does not run the same way every time"
  status=1
fi
exit $status
