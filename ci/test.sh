#!/usr/bin/env bash
# ci/test.sh: the test command. Configures, builds and runs CTest for the asan (ASan+UBSan),
# tsan, release and fuzz (libFuzzer+ASan+UBSan) presets, printing CTest's summary for each. CTest
# includes the corpus replays (every corpus/ program run twice in sim mode: oracles pass, same
# trace hash) in the presets that build the sim backend. Exit status: 0 iff all passed.
#
#   ci/test.sh                 # all four presets
#   ci/test.sh asan            # only the named presets
#   CGSLAB_JOBS=1 ci/test.sh   # build parallelism (default: nproc)
#
# CTest includes the stress binaries' short bounded runs (label "stress", ~15 s per binary, run
# serially; stress/CMakeLists.txt). The long soak is ci/nightly.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

presets=("$@")
[ ${#presets[@]} -eq 0 ] && presets=(asan tsan release fuzz)
for p in "${presets[@]}"; do
  case "$p" in asan|tsan|release|debug|fuzz) ;; *) echo "ci/test.sh: unknown preset '$p' (asan, tsan, release, debug, fuzz)" >&2; exit 2 ;; esac
done

ci/install-deps.sh

jobs="${CGSLAB_JOBS:-$(nproc)}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:check_initialization_order=1:strict_string_checks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}"
# Internal waits are bounded; in CI report a hang after 120 s instead of blocking the job.
export CGSLAB_WAIT_BOUND_SEC="${CGSLAB_WAIT_BOUND_SEC:-120}"

status=0
summary=()
for p in "${presets[@]}"; do
  echo "=== preset $p: configure + build ==="
  start=$(date +%s)
  cmake --preset "$p" >/dev/null
  cmake --build --preset "$p" -j "$jobs"
  echo "=== preset $p: ctest ==="
  if ctest --preset "$p" -j "$jobs" --timeout 600; then
    summary+=("$p: PASS ($(( $(date +%s) - start )) s)")
  else
    summary+=("$p: FAIL")
    status=1
  fi
done
echo
echo "=== ci/test.sh summary ==="
printf '%s\n' "${summary[@]}"
exit $status
