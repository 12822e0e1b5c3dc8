#!/usr/bin/env bash
# minimize_test.sh PROG INPUT: the CTest of `cgslab-prog minimize` (run with CGSLAB_DEFECT=no_tryget
# set by the test, so INPUT fails). Design: the minimizer's contract checked from outside, the way
# a user sees it: INPUT fails; its minimized form fails with the same signature every time, has an
# explicit schedule, and is not larger (ops and bytes); bad arguments give usage and exit 2; a
# malformed file is an error that names its line, exit 1. Every run is bounded.
set -uo pipefail
prog=$1 input=$2
tmp=$(mktemp -d /tmp/cgslab-minimize-test.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "minimize_test: FAIL: $*" >&2; exit 1; }
bounded() { timeout --signal=KILL 300 "$@"; }

[ -n "${CGSLAB_DEFECT:-}" ] || fail "CGSLAB_DEFECT is not set (the test's ENVIRONMENT sets it)"
before=$(bounded "$prog" minimize --signature-only --runs 3 "$input") || fail "the input does not fail: $before"
sig=$(printf '%s' "$before" | cut -f2)
[ "$(printf '%s' "$before" | cut -f1)" = 3/3 ] || fail "the input does not fail every time: $before"
echo "input: $before"

bounded "$prog" minimize "$input" --runs 3 --time-limit 120 --out "$tmp/min" >"$tmp/log" 2>&1 ||
  { cat "$tmp/log"; fail "minimize exited with status $?"; }
sed -n '/=== result ===/,$p' "$tmp/log"
after=$(bounded "$prog" minimize --signature-only --runs 3 "$tmp/min.bin") || fail "the minimized program does not fail: $after"
[ "$after" = "3/3	$sig" ] || fail "the minimized program fails differently: '$after', wanted '3/3	$sig'"
grep -q '^sched explicit' "$tmp/min.txt" || fail "the minimized program has no explicit schedule"

bounded "$prog" encode "$input" "$tmp/in.bin" 2>/dev/null || cp "$input" "$tmp/in.bin"
ops() { bounded "$prog" decode "$1" | grep -c '^t[0-9]'; }
[ "$(stat -c %s "$tmp/min.bin")" -le "$(stat -c %s "$tmp/in.bin")" ] || fail "the minimized program has more bytes"
[ "$(ops "$tmp/min.bin")" -le "$(ops "$tmp/in.bin")" ] || fail "the minimized program has more ops"
cmp -s "$tmp/min.bin" <(bounded "$prog" encode "$tmp/min.txt" /dev/stdout) || fail "min.txt and min.bin differ"

bounded "$prog" minimize >/dev/null 2>&1; [ $? = 2 ] || fail "no CRASH: exit status is not 2"
bounded "$prog" minimize "$input" --runs 0 >/dev/null 2>&1; [ $? = 2 ] || fail "--runs 0: exit status is not 2"
bounded "$prog" minimize "$input" --bogus >/dev/null 2>&1; [ $? = 2 ] || fail "unknown option: exit status is not 2"
printf 'dialect lifecycle\ntasks 1\nsched explicit\nt0 no_such_op\n' >"$tmp/bad.txt"
msg=$(bounded "$prog" minimize "$tmp/bad.txt" 2>&1 >/dev/null); rc=$?
[ $rc = 1 ] && printf '%s' "$msg" | grep -q 'line 4' || fail "malformed file: status $rc, message '$msg'"
bounded "$prog" minimize "$tmp/missing.bin" >/dev/null 2>&1; [ $? = 1 ] || fail "missing file: exit status is not 1"
echo "minimize_test: PASS"
