#!/usr/bin/env bash
# fuzz_threads_test.sh BIN clean|race|oracle [REPRODUCER.txt]: the contract of fuzz_threads under ThreadSanitizer, checked
# with no TSAN_OPTIONS at all (the binary must carry its own configuration).
#   clean: 15 s of fuzzing from an empty corpus ends with status 0 and no TSan report (a report
#          on libFuzzer's coverage counters here is a false alarm of our instrumentation).
#   race:  with CGSLAB_FUZZ_SELF_TEST=race (a real data race in the harness) the first report
#          ends the process within the bound, with a non-zero status and a crash file.
#   oracle: with CGSLAB_DEFECT=leak_slab_ref and its reproducer run before every input, a harness
#          oracle fails and aborts; libFuzzer's abort handler must write the crash file and exit
#          within the bound (under TSan it once reported its own signal-unsafe calls and hung).
set -uo pipefail
bin=$1 mode=$2 repro=${3:-}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/corpus" "$dir/art"
unset TSAN_OPTIONS
export CGSLAB_WAIT_BOUND_SEC=20
case $mode in
  clean) timeout --signal=ABRT --kill-after=10 120 "$bin" "$dir/corpus" -max_total_time=15 -max_len=600 \
           -timeout=30 -artifact_prefix="$dir/art/" >"$dir/log" 2>&1 ;;
  race) CGSLAB_FUZZ_SELF_TEST=race timeout --signal=ABRT --kill-after=10 120 "$bin" "$dir/corpus" \
           -max_total_time=60 -artifact_prefix="$dir/art/" >"$dir/log" 2>&1 ;;
  oracle) [ -f "$repro" ] || { echo "fuzz_threads_test.sh: oracle needs the reproducer file" >&2; exit 2; }
          CGSLAB_DEFECT=leak_slab_ref CGSLAB_FUZZ_SELF_TEST="program:$repro" timeout --signal=ABRT --kill-after=10 120 \
            "$bin" "$dir/corpus" -max_total_time=60 -artifact_prefix="$dir/art/" >"$dir/log" 2>&1 ;;
  *) echo "usage: fuzz_threads_test.sh BIN clean|race|oracle [REPRODUCER.txt]" >&2; exit 2 ;;
esac
rc=$?
fail() { echo "FAIL ($mode): $*"; echo "--- last lines of the log:"; tail -n 30 "$dir/log"; exit 1; }
[ $rc -ne 124 ] && [ $rc -ne 137 ] || fail "fuzz_threads did not end within 120 s (hang; exit $rc)"
if [ "$mode" = clean ]; then
  [ $rc -eq 0 ] || fail "exit status $rc"
  ! grep -q "ThreadSanitizer" "$dir/log" || fail "ThreadSanitizer reported on an unmodified build"
  ls "$dir/art" | grep -q . && fail "crash files left: $(ls "$dir/art")"
  echo "PASS: $(grep -o 'Done [0-9]* runs in [0-9]* second(s)' "$dir/log"), no report"
elif [ "$mode" = oracle ]; then
  [ $rc -ne 0 ] || fail "exit status 0 despite the defect"
  grep -q "cgslab harness FAILURE" "$dir/log" || fail "no oracle failure reported"
  ! grep -q "ThreadSanitizer" "$dir/log" || fail "a ThreadSanitizer report on the abort path"
  ls "$dir/art" | grep -q '^crash-' || fail "no crash file written"
  echo "PASS: oracle failed, exit $rc, crash file $(ls "$dir/art")"
else
  [ $rc -ne 0 ] || fail "exit status 0 despite the race"
  grep -q "WARNING: ThreadSanitizer: data race" "$dir/log" || fail "no TSan race report"
  ls "$dir/art" | grep -q '^crash-' || fail "no crash file written"
  # Written by our report hook (crash_dump.h), named as libFuzzer names it.
  f=$(ls "$dir/art" | grep -m1 '^crash-')
  [ "crash-$(sha1sum <"$dir/art/$f" | cut -c1-40)" = "$f" ] || fail "crash file $f is not named by its SHA-1"
  grep -q "Test unit written to $dir/art/$f" "$dir/log" || fail "no 'Test unit written to' line for $f"
  echo "PASS: race reported, exit $rc, crash file $f"
fi
