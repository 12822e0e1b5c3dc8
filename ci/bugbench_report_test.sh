#!/usr/bin/env bash
# bugbench_report_test.sh: ci/bugbench_report.py judges trials.tsv the way a reader of the bench
# would: a clean base row and found/not-found rows exit 0; a base row that crashed is a false
# alarm (exit 1); a trial in which libFuzzer did not fuzz (found = E) makes its row say so, is
# never counted as "clean" or "not found", and fails the report (exit 1); a malformed line is bad
# input (exit 2).
set -uo pipefail
report="$(dirname "$0")/bugbench_report.py"
work=$(mktemp -d /tmp/bugbench-report-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
fails=0
check() {  # name expected_status grep_pattern tsv_lines...
  local name=$1 want=$2 pat=$3; shift 3
  mkdir -p "$work/$name"
  printf '%s\n' "$@" >"$work/$name/trials.tsv"
  python3 "$report" --tsv "$work/$name/trials.tsv" --min-dir "$work/none" --trials 2 --cap 10 \
    --out "$work/$name" >"$work/$name/out" 2>&1
  local got=$?
  if [ "$got" != "$want" ]; then echo "FAIL $name: exit $got, expected $want"; cat "$work/$name/out"; fails=1; return; fi
  if [ -n "$pat" ] && ! grep -q -- "$pat" "$work/$name/out"; then
    echo "FAIL $name: output lacks '$pat'"; cat "$work/$name/out"; fails=1; return
  fi
  echo "ok $name"
}
T=$'\t'
check clean 0 "| base | fuzz_lifecycle | 0/2 (clean) |" \
  "base-fuzz_lifecycle${T}0${T}1${T}0${T}10.1${T}-${T}-" "base-fuzz_lifecycle${T}1${T}2${T}0${T}10.1${T}-${T}-" \
  "d-fuzz_lifecycle${T}0${T}1${T}1${T}2.5${T}oracle: x${T}c" "d-fuzz_lifecycle${T}1${T}2${T}0${T}10.1${T}-${T}-"
check false_alarm 1 "FALSE ALARM" \
  "base-fuzz_lifecycle${T}0${T}1${T}1${T}3.0${T}asan: y${T}c" "base-fuzz_lifecycle${T}1${T}2${T}0${T}10.1${T}-${T}-"
check did_not_fuzz 1 "did not fuzz" \
  "base-fuzz_threads${T}0${T}1${T}E${T}0.0${T}error: did not fuzz: no dict${T}-" \
  "base-fuzz_threads${T}1${T}2${T}E${T}0.0${T}error: did not fuzz: no dict${T}-"
if grep -q "(clean)" "$work/did_not_fuzz/out"; then echo "FAIL did_not_fuzz: a base row that did not fuzz is called clean"; fails=1; fi
check malformed 2 "not a trial line" "base-fuzz_lifecycle${T}0${T}1${T}maybe${T}1.0${T}-${T}-"
exit $fails
