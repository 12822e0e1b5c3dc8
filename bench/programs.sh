#!/usr/bin/env bash
# programs.sh: real programs as the malloc benchmark. Runs, under glibc, cgslab
# (LD_PRELOAD=build/release/malloc/libcgslab_malloc.so), tcmalloc, jemalloc and mimalloc, in one
# run: a GoogleTest binary of the project, python3 (bench/programs/alloc_heavy.py), clang++ -O2 -c
# of allocator/src/memcg_cache.cc, sqlite3 (bench/programs/sqlite.sql), larson and xmalloc
# (bench/programs/*.c). Checks every program's output is identical under every allocator; prints
# and writes a table of median wall time and peak RSS as ratios to glibc (programs.md) and a plot
# (programs.svg). Exit 1 when a program fails or outputs differ, 2 on bad arguments.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
usage() {
  cat >&2 <<USAGE
usage: bench/programs.sh [--reps N] [--timeout S] [--out DIR] [--only NAME[,NAME]] [--no-build]
  --reps N      runs per program and allocator; the median is reported (default 3)
  --timeout S   limit for each child run, in seconds (default 300)
  --out DIR     where programs.md and programs.svg go (default build/programs/<date>)
  --only LIST   run the workloads whose name contains one of LIST (gtest,python,clang,sqlite,larson,xmalloc)
  --no-build    do not (re)build the release preset first
USAGE
  exit 2
}
reps=3 timeout=300 out="" only="" build=1
while [ $# -gt 0 ]; do
  case $1 in
    --reps) [ $# -ge 2 ] || usage; reps=$2; shift 2 ;;
    --timeout) [ $# -ge 2 ] || usage; timeout=$2; shift 2 ;;
    --out) [ $# -ge 2 ] || usage; out=$2; shift 2 ;;
    --only) [ $# -ge 2 ] || usage; only=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    -h|--help) usage ;;
    *) echo "programs.sh: unknown argument '$1'" >&2; usage ;;
  esac
done
[[ $reps =~ ^[1-9][0-9]*$ ]] || { echo "programs.sh: --reps must be a positive integer, got '$reps'" >&2; usage; }
[[ $timeout =~ ^[1-9][0-9]*$ ]] || { echo "programs.sh: --timeout must be a positive integer, got '$timeout'" >&2; usage; }
[ -n "$out" ] || out=$root/build/programs/$(date +%Y-%m-%d_%H%M%S)

# What the workloads need: install when root, otherwise skip what is missing (the driver says so).
need=()
command -v sqlite3 >/dev/null || need+=(sqlite3)
command -v clang++ >/dev/null || need+=(clang)
command -v python3 >/dev/null || need+=(python3)
[ -e /usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 ] || need+=(libgoogle-perftools4)
[ -e /usr/lib/x86_64-linux-gnu/libjemalloc.so.2 ] || need+=(libjemalloc2)
[ -e /usr/lib/x86_64-linux-gnu/libmimalloc.so.2 ] || need+=(libmimalloc2.0)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "programs.sh: installing ${need[*]}" >&2
    timeout 600 apt-get install -y -q "${need[@]}" >&2 || echo "programs.sh: install failed; missing ones are skipped" >&2
  else
    echo "programs.sh: not root: skipping what needs ${need[*]}" >&2
  fi
fi
command -v python3 >/dev/null || { echo "programs.sh: python3 is required for the driver" >&2; exit 1; }

if [ $build = 1 ]; then
  (cd "$root" && cmake --preset release >/dev/null &&
   cmake --build --preset release -j1 --target cgslab_malloc larson xmalloc threads_test >&2)
fi
exec python3 "$root/bench/programs/run_programs.py" root="$root" build="$root/build/release" out="$out" \
  reps="$reps" timeout="$timeout" only="$only"
