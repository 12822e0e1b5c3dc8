#!/usr/bin/env bash
# explore_test.sh PROG CORPUS_DIR: the CTest of `cgslab-prog explore` (a fuzz build, where the
# defect switches exist). Design: the explorer's contract checked from outside, as a user sees it:
# with CGSLAB_DEFECT=no_tryget it finds the 2019 race in its regression program within 2 delays,
# writes an explicit schedule that replay runs to a failure, and that schedule passes without the
# defect; without the defect, every seed and regression program passes every schedule with at most
# 1 delay, and the 2019 program every one with 2 (no false alarm at the bound that finds the bug);
# bad arguments give usage and exit 2, an unreadable or malformed file exit 1. Every run is bounded.
set -uo pipefail
prog=$1 corpus=$2
race=$corpus/regressions/race_2019_pct_minimized.txt
tmp=$(mktemp -d /tmp/cgslab-explore-test.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "explore_test: FAIL: $*" >&2; exit 1; }
bounded() { timeout --signal=KILL 600 "$@"; }
unset CGSLAB_DEFECT

CGSLAB_DEFECT=no_tryget bounded "$prog" explore --delays 2 --time-limit 300 --out "$tmp/found" "$race" \
  >"$tmp/log" 2>"$tmp/err"
rc=$?
grep -v '^#\|^t[0-9]\|^dialect\|^tasks' "$tmp/log"
[ $rc = 1 ] || fail "no_tryget: exit status $rc, wanted 1 (a failing schedule)"
grep -q ': FAIL: ' "$tmp/log" || fail "no_tryget: no FAIL line"
grep -q '^sched explicit ' "$tmp/found.txt" || fail "no_tryget: $tmp/found.txt has no explicit schedule"
grep -q 'replayed from .*: fails' "$tmp/log" || fail "no_tryget: explore did not confirm the written schedule"
CGSLAB_DEFECT=no_tryget bounded "$prog" replay "$tmp/found.txt" >/dev/null 2>&1 &&
  fail "no_tryget: replay of the written schedule does not fail"
bounded "$prog" replay "$tmp/found.txt" >/dev/null 2>&1 || fail "the written schedule fails without the defect"

for f in "$corpus"/fuzz_lifecycle/*.txt "$corpus"/regressions/*.txt; do
  out=$(bounded "$prog" explore --delays 1 --time-limit 300 --out "$tmp/clean" "$f" 2>&1) ||
    { printf '%s\n' "$out"; fail "$f fails a schedule with at most 1 delay"; }
  printf '%s\n' "$out" | grep ': PASS: ' || { printf '%s\n' "$out"; fail "$f: no PASS line"; }
done
out=$(bounded "$prog" explore --delays 2 --time-limit 300 "$race" 2>&1) ||
  { printf '%s\n' "$out"; fail "$race fails a schedule with at most 2 delays without the defect"; }
printf '%s\n' "$out" | grep ': PASS: ' || fail "$race at 2 delays: no PASS line"

bounded "$prog" explore >/dev/null 2>&1; [ $? = 2 ] || fail "no FILE: exit status is not 2"
bounded "$prog" explore --delays 9 "$race" >/dev/null 2>&1; [ $? = 2 ] || fail "--delays 9: exit status is not 2"
bounded "$prog" explore --preemptions x "$race" >/dev/null 2>&1; [ $? = 2 ] || fail "--preemptions x: status is not 2"
bounded "$prog" explore "$tmp/missing.txt" >/dev/null 2>&1; [ $? = 1 ] || fail "missing file: exit status is not 1"
printf 'dialect lifecycle\ntasks 1\nsched explicit\nt0 no_such_op\n' >"$tmp/bad.txt"
msg=$(bounded "$prog" explore "$tmp/bad.txt" 2>&1 >/dev/null); rc=$?
[ $rc = 1 ] && printf '%s' "$msg" | grep -q 'line 4' || fail "malformed file: status $rc, message '$msg'"
echo "explore_test: PASS"
