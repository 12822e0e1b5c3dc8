#!/usr/bin/env bash
# ci/test.sh: the test command. Configures, builds and runs CTest for the asan (ASan+UBSan),
# tsan, release, fuzz (libFuzzer+ASan+UBSan) and fuzz-tsan (fuzz_threads' own contract: no false
# alarm, a race ends the run with a crash file) presets, printing CTest's summary for each. CTest
# includes the corpus replays (every corpus/ program run twice in sim mode: oracles pass, same
# trace hash) in the presets that build the sim backend. Exit status: 0 iff all passed.
#
#   ci/test.sh                 # all five presets
#   ci/test.sh asan            # only the named presets
#   CGSLAB_JOBS=1 ci/test.sh   # build parallelism (default: nproc)
#
# CTest includes the stress binaries' short bounded runs (label "stress", ~15 s per binary, run
# serially; stress/CMakeLists.txt). The long soak is ci/nightly.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

presets=("$@")
[ ${#presets[@]} -eq 0 ] && presets=(asan tsan release fuzz fuzz-tsan)
for p in "${presets[@]}"; do
  case "$p" in asan|tsan|release|debug|fuzz|fuzz-tsan) ;; *) echo "ci/test.sh: unknown preset '$p' (asan, tsan, release, debug, fuzz, fuzz-tsan)" >&2; exit 2 ;; esac
done

jobs="${CGSLAB_JOBS:-$(nproc)}"
# Sanitizer options and the allocator's wait bound (120 s: a hang is reported, not waited out).
source ci/env.sh
cgslab_bounded 1800 "ci/install-deps.sh" ci/install-deps.sh

status=0
summary=()
for p in "${presets[@]}"; do
  echo "=== preset $p: configure + build ==="
  start=$(date +%s)
  cgslab_bounded 600 "cmake --preset $p" cmake --preset "$p" >/dev/null
  cgslab_bounded 3600 "the $p build" cmake --build --preset "$p" -j "$jobs"
  echo "=== preset $p: ctest ==="
  if cgslab_bounded 3600 "ctest --preset $p" ctest --preset "$p" -j "$jobs" --timeout 600; then
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
