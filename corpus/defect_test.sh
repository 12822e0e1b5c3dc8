#!/usr/bin/env bash
# defect_test.sh PROG FILE: the CTest of one defect reproducer, corpus/defects/<defect>.txt. The
# file's name is the defect's (allocator/src/platform/defects.h) and a comment line
# "# expect: PREFIX" gives the start of the failure signature it must produce. With
# CGSLAB_DEFECT=<defect> the program fails 3 times out of 3 in sim mode with that signature
# (cgslab-prog minimize --signature-only); without it, it passes every oracle twice with the same
# trace (cgslab-prog replay --repeat 2). Fuzz builds only: other builds have no defect switches.
set -uo pipefail
prog=$1 file=$2
defect=$(basename "$file" .txt)
fail() { echo "defect_test $defect: FAIL: $*" >&2; exit 1; }
expect=$(sed -n 's/^# expect: *//p' "$file" | head -1)
[ -n "$expect" ] || fail "$file has no '# expect: SIGNATURE' line"

got=$(CGSLAB_DEFECT=$defect timeout --signal=KILL 300 "$prog" minimize --signature-only --runs 3 "$file")
echo "with CGSLAB_DEFECT=$defect: $got"
[ "$(printf '%s' "$got" | cut -f1)" = 3/3 ] || fail "does not fail 3/3 with the defect on: '$got'"
case "$(printf '%s' "$got" | cut -f2)" in
  "$expect"*) ;;
  *) fail "fails with another signature: '$(printf '%s' "$got" | cut -f2)', expected '$expect...'" ;;
esac
env -u CGSLAB_DEFECT timeout --signal=KILL 300 "$prog" replay --repeat 2 "$file" || fail "fails with the defect off"
echo "defect_test $defect: PASS"
