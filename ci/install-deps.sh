#!/usr/bin/env bash
# ci/install-deps.sh: installs what the build needs beyond a fresh machine of this kind (only
# what is missing; needs root and Debian's package registry).
set -euo pipefail
need=()
command -v clang++ >/dev/null || need+=(clang)
command -v ninja >/dev/null || need+=(ninja-build)
command -v cmake >/dev/null || need+=(cmake)
command -v ccache >/dev/null || need+=(ccache)
[ -f /usr/include/gtest/gtest.h ] || need+=(libgtest-dev)
[ -f /usr/include/benchmark/benchmark.h ] || need+=(libbenchmark-dev)
ls /usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.tsan-x86_64.a >/dev/null 2>&1 || need+=(libclang-rt-14-dev)
# The engines tests (ci/cflite_test.sh zips and unzips seed corpora; ci/lint_workflows.py).
command -v zip >/dev/null || need+=(zip)
command -v unzip >/dev/null || need+=(unzip)
command -v python3 >/dev/null || need+=(python3)
python3 -c 'import yaml' 2>/dev/null || need+=(python3-yaml)
if [ ${#need[@]} -gt 0 ]; then
  echo "install-deps: installing ${need[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: not root; install these by hand: ${need[*]}" >&2
    # ccache is optional; anything else is fatal
    for n in "${need[@]}"; do [ "$n" = ccache ] || exit 1; done
    exit 0
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q "${need[@]}" >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q "${need[@]}" >/dev/null; } ||
    { for n in "${need[@]}"; do [ "$n" = ccache ] || { echo "install-deps: failed to install ${need[*]}" >&2; exit 1; }; done; }
fi
