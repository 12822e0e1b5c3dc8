#!/usr/bin/env bash
# bench/pct_hits.sh: how often PCT schedules hit a defect's window, given the right operations.
#
#   bench/pct_hits.sh --defect NAME [--runs N] [--depth D]... [--horizon H]... FILE.txt
#
# Takes the operations and task count of FILE.txt (a reproducer, e.g. corpus/defects/NAME.txt),
# replaces its schedule with `sched pct seed=S depth=D [horizon=H]` for N fixed seeds (S = 13 +
# 7919 i, i = 1..N, default N = 2000) and counts the runs that fail with CGSLAB_DEFECT=NAME (any
# failure: an oracle or a sanitizer report). Depths default to 2 3 4; horizons to "derived" (no
# horizon=, so the program's own, see README "Schedules"); give --horizon 2048 for the horizon
# every PCT schedule had before 2026-11-30. Sim mode is deterministic, so the counts are exact
# and repeat on every run. Needs the fuzz build (build/fuzz/fuzz/cgslab-prog: defects exist only
# in fuzz builds). Prints one line per (depth, horizon): hits/N, where a hit is a run that fails
# with the defect and passes without it; runs that fail without it too, or take more than 60 s,
# are listed by seed on stderr and make the exit status 1.
set -uo pipefail
cd "$(dirname "$0")/.."
usage() {
  sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}
defect="" runs=2000 depths=() horizons=() file=""
while [ $# -gt 0 ]; do
  case "$1" in
    --defect) [ $# -ge 2 ] || usage; defect=$2; shift 2 ;;
    --runs) [[ "${2:-}" =~ ^[1-9][0-9]*$ ]] || { echo "bench/pct_hits.sh: --runs needs a positive number" >&2; usage; }
            runs=$2; shift 2 ;;
    --depth) [[ "${2:-}" =~ ^[1-4]$ ]] || { echo "bench/pct_hits.sh: --depth needs 1..4" >&2; usage; }
             depths+=("$2"); shift 2 ;;
    --horizon) [ "${2:-}" = derived ] || { [[ "${2:-}" =~ ^[1-9][0-9]{1,3}$ ]] && [ "$2" -ge 16 ] && [ "$2" -le 4080 ] && [ $(("$2" % 16)) = 0 ]; } ||
                 { echo "bench/pct_hits.sh: --horizon needs 'derived' or 16..4080, a multiple of 16" >&2; usage; }
               horizons+=("$2"); shift 2 ;;
    -h|--help) usage ;;
    -*) echo "bench/pct_hits.sh: unknown argument '$1'" >&2; usage ;;
    *) [ -z "$file" ] || { echo "bench/pct_hits.sh: one FILE only" >&2; usage; }; file=$1; shift ;;
  esac
done
[ -n "$defect" ] || { echo "bench/pct_hits.sh: --defect is required" >&2; usage; }
[ -f "$file" ] || { echo "bench/pct_hits.sh: no such file '$file'" >&2; usage; }
[ ${#depths[@]} -gt 0 ] || depths=(2 3 4)
[ ${#horizons[@]} -gt 0 ] || horizons=(derived)
prog=build/fuzz/fuzz/cgslab-prog
[ -x "$prog" ] || { echo "bench/pct_hits.sh: $prog is missing: cmake --preset fuzz && cmake --build --preset fuzz" >&2; exit 1; }
tasks=$(grep -m1 '^tasks ' "$file") || { echo "bench/pct_hits.sh: $file has no 'tasks N' line" >&2; exit 1; }
dialect=$(grep -m1 '^dialect ' "$file" || echo "dialect lifecycle")
ops=$(grep '^t[0-9]' "$file")
[ -n "$ops" ] || { echo "bench/pct_hits.sh: $file has no operations" >&2; exit 1; }
# A misspelled defect must not turn every run into a hit: the replay refuses it (status 2).
if ! err=$(CGSLAB_DEFECT=$defect timeout 60 "$prog" replay --no-validate "$file" 2>&1 >/dev/null) &&
   grep -q "unknown CGSLAB_DEFECT" <<<"$err"; then
  echo "bench/pct_hits.sh: $(grep -m1 "unknown CGSLAB_DEFECT" <<<"$err")" >&2
  exit 2
fi
status=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for h in "${horizons[@]}"; do
  extra=""; [ "$h" = derived ] || extra=" horizon=$h"
  for d in "${depths[@]}"; do
    hits=0 not_defect=() timeouts=()
    for ((i = 1; i <= runs; i++)); do
      seed=$((13 + 7919 * i))
      printf '%s\n%s\nsched pct seed=%d depth=%d%s\n%s\n' "$dialect" "$tasks" $seed "$d" "$extra" "$ops" >"$tmp/p.txt"
      CGSLAB_DEFECT=$defect timeout 60 "$prog" replay "$tmp/p.txt" >/dev/null 2>&1
      rc=$?
      [ $rc = 0 ] && continue
      [ $rc = 124 ] && { timeouts+=($seed); continue; }
      # A hit must pass with the defect off; one that fails there too is not the defect's.
      env -u CGSLAB_DEFECT timeout 60 "$prog" replay "$tmp/p.txt" >/dev/null 2>&1
      case $? in
        0) hits=$((hits + 1)) ;;
        124) timeouts+=($seed) ;;
        *) not_defect+=($seed) ;;
      esac
    done
    printf '%s depth=%s horizon=%s: %d/%d runs fail\n' "$defect" "$d" "$h" "$hits" "$runs"
    if [ ${#not_defect[@]} -gt 0 ]; then
      echo "  not counted: ${#not_defect[@]} runs fail without the defect too, seeds: ${not_defect[*]:0:5}" >&2
      status=1
    fi
    if [ ${#timeouts[@]} -gt 0 ]; then
      echo "  not counted: ${#timeouts[@]} runs took more than 60 s, seeds: ${timeouts[*]:0:5}" >&2
      status=1
    fi
  done
done
exit $status
