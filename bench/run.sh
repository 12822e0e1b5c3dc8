#!/usr/bin/env bash
# Build and run the cgslab fast-path benchmark (release preset).
#
#   bench/run.sh                                   # all variants, 5 repetitions, ratio table
#   bench/run.sh --benchmark_filter=pair           # extra args go to cgslab_bench
#   bench/run.sh --benchmark_repetitions=9 --benchmark_min_time=1
#
# The peer allocators (tcmalloc, jemalloc, mimalloc) are loaded by the bench at run time with
# dlopen; when they are missing and we are root they are installed from Debian here, otherwise
# their benchmarks are skipped and the bench says so.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="$repo/build/release"
bench_bin="$build_dir/bench/cgslab_bench"

echo "== reproduce: cd $repo && bench/run.sh $*"
echo "==   (= apt-get install -y libjemalloc-dev libgoogle-perftools-dev libmimalloc-dev;"
echo "==      cmake --preset release; cmake --build --preset release --target cgslab_bench -j1;"
echo "==      build/release/bench/cgslab_bench $*)"

# --- peer allocators ----------------------------------------------------------------------------
ld_cache="$(ldconfig -p 2>/dev/null || true)"  # read once: grep -q on a pipe + pipefail = SIGPIPE
have_lib() { grep -q "[[:space:]]$1 " <<<"$ld_cache"; }

missing_pkgs=()
have_lib libjemalloc.so.2 || missing_pkgs+=(libjemalloc-dev)
have_lib libtcmalloc_minimal.so.4 || have_lib libtcmalloc.so.4 || missing_pkgs+=(libgoogle-perftools-dev)
have_lib libmimalloc.so.2 || missing_pkgs+=(libmimalloc-dev)

if ((${#missing_pkgs[@]})); then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "== installing peer allocators: ${missing_pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q "${missing_pkgs[@]}"; then
      echo "== apt-get install failed; running apt-get update once and retrying"
      if ! { apt-get update -q && apt-get install -y -q "${missing_pkgs[@]}"; }; then
        echo "== could not install ${missing_pkgs[*]}; the bench will skip what is missing"
      fi
    fi
  else
    echo "== missing peer allocators (${missing_pkgs[*]}) and not root/no apt-get:" \
         "the bench will skip them"
  fi
fi

# --- build ----------------------------------------------------------------------------------------
cd "$repo"
if [[ ! -f "$build_dir/build.ninja" ]]; then
  cmake --preset release
fi
# One compile job: the machine's two cores are shared.
cmake --build --preset release --target cgslab_bench -j1

# --- run ------------------------------------------------------------------------------------------
echo "== $bench_bin $*"
exec "$bench_bin" "$@"
