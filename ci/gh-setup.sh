#!/usr/bin/env bash
# ci/gh-setup.sh: prepares a GitHub Actions job for the ci/ scripts. The jobs run as root in a
# debian:bookworm container (the packages of the project's own machines) started with --privileged,
# so this can lower vm.mmap_rnd_bits to 28 when the runner's kernel uses more: clang 14's
# ThreadSanitizer cannot map its shadow with 32 bits of mmap randomness. Then it installs what the
# build needs (ci/install-deps.sh) and prints the tool versions.
#
#   ci/gh-setup.sh          # first step of every job after actions/checkout
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "ci/gh-setup.sh: needs root (the workflows run it in a root container)" >&2; exit 1; }
source ci/env.sh
bits=$(cat /proc/sys/vm/mmap_rnd_bits 2>/dev/null || echo 0)
if [ "$bits" -gt 28 ]; then
  if sysctl -qw vm.mmap_rnd_bits=28 2>/dev/null; then
    echo "ci/gh-setup.sh: vm.mmap_rnd_bits $bits -> 28 (for TSan)"
  else
    echo "ci/gh-setup.sh: warning: vm.mmap_rnd_bits is $bits and cannot be lowered; TSan runs may fail to start" >&2
  fi
fi
export DEBIAN_FRONTEND=noninteractive
cgslab_bounded 900 "apt-get update" apt-get update -q >/dev/null
cgslab_bounded 1800 "ci/install-deps.sh" ci/install-deps.sh
clang++ --version | head -1
cmake --version | head -1
