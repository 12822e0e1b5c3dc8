# ci/env.sh: the one place where the scripts under ci/ get their sanitizer environment and the
# bound on every child they start. Sourced (not run) by ci/test.sh, ci/fuzz.sh and ci/nightly.sh.
#
# Sanitizer options: ours come first and a caller's own ASAN_OPTIONS/UBSAN_OPTIONS/TSAN_OPTIONS are
# appended after them, so a caller can add or override a flag but never loses ours (the runtime
# takes the last value of a flag). Sourcing twice (nightly.sh runs fuzz.sh) changes nothing.
# fuzz_threads carries its TSan suppression and halt-on-report setting in the binary itself.
#
# cgslab_bounded SECONDS WHAT CMD...: runs CMD with a time bound; on expiry it sends SIGABRT (a
# sanitizer or libFuzzer prints where it was), then SIGKILL 30 s later, and says on stderr what it
# waited for. Returns CMD's status (124 or 137 after a timeout).
if [ -z "${CGSLAB_ENV_SOURCED:-}" ]; then
  export CGSLAB_ENV_SOURCED=1
  cgslab_asan="detect_leaks=1:check_initialization_order=1:strict_string_checks=1:halt_on_error=1"
  cgslab_ubsan="print_stacktrace=1:halt_on_error=1"
  cgslab_tsan="halt_on_error=1:second_deadlock_stack=1"
  export ASAN_OPTIONS="$cgslab_asan${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
  export UBSAN_OPTIONS="$cgslab_ubsan${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
  export TSAN_OPTIONS="$cgslab_tsan${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
  unset cgslab_asan cgslab_ubsan cgslab_tsan
  # The allocator's own waits (locks, grace periods, slots) report a hang after this many seconds.
  export CGSLAB_WAIT_BOUND_SEC="${CGSLAB_WAIT_BOUND_SEC:-120}"
fi

cgslab_bounded() {
  local secs=$1 what=$2 rc
  shift 2
  timeout --signal=ABRT --kill-after=30 "$secs" "$@"
  rc=$?
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    echo "ci: gave up waiting after ${secs} s for $what (exit $rc)" >&2
  fi
  return $rc
}
