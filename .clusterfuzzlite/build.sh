#!/bin/bash -eu
# .clusterfuzzlite/build.sh: builds cgslab's fuzzers for ClusterFuzzLite and OSS-Fuzz (the same file
# works unchanged as OSS-Fuzz's projects/cgslab/build.sh). `compile` in the base-builder image runs
# it with the variables it sets; to run it by hand, set them the same way:
#
#   SRC=/tmp/src OUT=/tmp/out WORK=/tmp/work CC=clang CXX=clang++ SANITIZER=address \
#   FUZZING_ENGINE=libfuzzer ARCHITECTURE=x86_64 LIB_FUZZING_ENGINE=-fsanitize=fuzzer \
#   CFLAGS="-O1 -fno-omit-frame-pointer -gline-tables-only -fsanitize=address -fsanitize=fuzzer-no-link" \
#   CXXFLAGS="$CFLAGS" .clusterfuzzlite/build.sh          (ci/cflite_test.sh does exactly this)
#
# Source: the current directory if it is cgslab's tree (ClusterFuzzLite's WORKDIR), else
# $SRC/cgslab (OSS-Fuzz's clone). The allocator's sim backend and the harness are compiled with
# $CC/$CXX and $CFLAGS/$CXXFLAGS only (the project's own sanitizer presets stay off:
# CGSLAB_SANITIZE is empty) and fuzz_lifecycle and fuzz_api are linked with $LIB_FUZZING_ENGINE.
# Written to $OUT for each: the fuzzer, <fuzzer>_seed_corpus.zip (corpus/<target>/*.txt and the
# corpus/regressions/*.txt of the target's dialect, encoded to bytes by cgslab-prog, which is built
# natively without fuzzing flags under $WORK), <fuzzer>.dict and <fuzzer>.options.
#
# SANITIZER: address, undefined or coverage (MemorySanitizer would need every library rebuilt with
# it, and is refused). fuzz_threads runs the programs on real threads under ThreadSanitizer, which
# these engines do not offer: it is skipped here, and fuzzed by ci/fuzz.sh (fuzz-tsan preset).
# FUZZING_ENGINE: libfuzzer, afl or honggfuzz (the engine comes in through $CC and
# $LIB_FUZZING_ENGINE). Build parallelism: $CGSLAB_JOBS (default: nproc).
set -euo pipefail

die() { echo "build.sh: $*" >&2; exit 1; }
for v in SRC OUT WORK CC CXX LIB_FUZZING_ENGINE; do
  [ -n "${!v:-}" ] || die "\$$v is not set (the base-builder image sets it; see the header of this script)"
done
CFLAGS=${CFLAGS:-}
CXXFLAGS=${CXXFLAGS:-}
SANITIZER=${SANITIZER:-address}
FUZZING_ENGINE=${FUZZING_ENGINE:-libfuzzer}
ARCHITECTURE=${ARCHITECTURE:-x86_64}
jobs=${CGSLAB_JOBS:-$(nproc)}

case "$SANITIZER" in
  address|undefined|coverage) ;;
  *) die "SANITIZER=$SANITIZER is not supported (address, undefined, coverage; fuzz_threads' ThreadSanitizer build is ci/fuzz.sh's)" ;;
esac
case "$FUZZING_ENGINE" in
  libfuzzer|afl|honggfuzz) ;;
  *) die "FUZZING_ENGINE=$FUZZING_ENGINE is not supported (libfuzzer, afl, honggfuzz)" ;;
esac
[ "$ARCHITECTURE" = x86_64 ] || die "ARCHITECTURE=$ARCHITECTURE is not supported (x86_64)"

if [ -f CMakeLists.txt ] && grep -q '^project(cgslab' CMakeLists.txt; then
  src=$PWD
elif [ -f "$SRC/cgslab/CMakeLists.txt" ]; then
  src=$SRC/cgslab
else
  die "cgslab's source is neither the current directory ($PWD) nor \$SRC/cgslab ($SRC/cgslab)"
fi
command -v cmake >/dev/null || die "cmake not found"
command -v zip >/dev/null || die "zip not found"
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
mkdir -p "$OUT" "$WORK"
# A $WORK kept from a build of another source directory: start those build trees afresh.
for b in "$WORK/prog" "$WORK/fuzz"; do
  if [ -f "$b/CMakeCache.txt" ] && ! grep -qxF "CMAKE_HOME_DIRECTORY:INTERNAL=$src" "$b/CMakeCache.txt"; then rm -rf "$b"; fi
done

echo "build.sh: cgslab from $src: SANITIZER=$SANITIZER FUZZING_ENGINE=$FUZZING_ENGINE ARCHITECTURE=$ARCHITECTURE"
echo "build.sh: fuzz_threads skipped: it needs ThreadSanitizer, which OSS-Fuzz/ClusterFuzzLite builds do not offer (ci/fuzz.sh fuzzes it)"

# 1. cgslab-prog, native and without fuzzing flags: it only turns the text seeds into bytes (and
#    the dictionaries are generated from the operation table by the same build). The
#    engine's compiler wrapper (afl-clang-fast, hfuzz-clang) is not needed for that.
native_cc=$(command -v clang || echo "$CC")
native_cxx=$(command -v clang++ || echo "$CXX")
env -u CFLAGS -u CXXFLAGS -u LDFLAGS \
  cmake -S "$src" -B "$WORK/prog" "${generator[@]}" -DCMAKE_BUILD_TYPE= \
    -DCMAKE_C_COMPILER="$native_cc" -DCMAKE_CXX_COMPILER="$native_cxx" \
    -DCMAKE_C_FLAGS= -DCMAKE_CXX_FLAGS= -DCGSLAB_SANITIZE= \
    -DCGSLAB_BUILD_TESTS=OFF -DCGSLAB_BUILD_FUZZ=OFF -DCGSLAB_BUILD_BENCH=OFF >"$WORK/prog.configure.log" ||
  { cat "$WORK/prog.configure.log" >&2; die "configuring the native cgslab-prog build failed"; }
env -u CFLAGS -u CXXFLAGS -u LDFLAGS cmake --build "$WORK/prog" --target cgslab-prog fuzz_dicts -j "$jobs"
prog=$WORK/prog/fuzz/cgslab-prog

# 2. The fuzzers: flags from the engine only. CMake reads CFLAGS/CXXFLAGS from the environment on
#    the first configure only, so they are passed explicitly (a reused $WORK gets the new ones).
cmake -S "$src" -B "$WORK/fuzz" "${generator[@]}" -DCMAKE_BUILD_TYPE= \
  -DCMAKE_C_COMPILER="$CC" -DCMAKE_CXX_COMPILER="$CXX" \
  -DCMAKE_C_FLAGS="$CFLAGS" -DCMAKE_CXX_FLAGS="$CXXFLAGS" \
  -DCGSLAB_SANITIZE= -DCGSLAB_BUILD_SIM=ON -DCGSLAB_BUILD_FUZZ=ON -DCGSLAB_BUILD_TESTS=OFF \
  -DCGSLAB_BUILD_BENCH=OFF -DCGSLAB_LIB_FUZZING_ENGINE="$LIB_FUZZING_ENGINE" >"$WORK/fuzz.configure.log" ||
  { cat "$WORK/fuzz.configure.log" >&2; die "configuring the fuzzer build failed"; }
fuzzers=(fuzz_lifecycle fuzz_api)
cmake --build "$WORK/fuzz" --target "${fuzzers[@]}" -j "$jobs"

# 3. $OUT: binaries, seed corpora, dictionaries, options.
seeds=$WORK/seeds
rm -rf "$seeds"
for f in "${fuzzers[@]}"; do
  cp "$WORK/fuzz/fuzz/$f" "$OUT/$f"
  cp "$WORK/prog/fuzz/$f.dict" "$OUT/$f.dict"
  cat >"$OUT/$f.options" <<OPTIONS
[libfuzzer]
max_len = 600
dict = $f.dict
OPTIONS
  mkdir -p "$seeds/$f"
done
# A seed's dialect decides its fuzzer: its bytes mean that program only under that dialect.
for txt in "$src"/corpus/fuzz_lifecycle/*.txt "$src"/corpus/fuzz_api/*.txt "$src"/corpus/regressions/*.txt; do
  [ -f "$txt" ] || continue
  if grep -qE '^[[:space:]]*dialect[[:space:]]+api([[:space:]]|$)' "$txt"; then f=fuzz_api; else f=fuzz_lifecycle; fi
  name=$(basename "$(dirname "$txt")")_$(basename "$txt" .txt)
  "$prog" encode "$txt" "$seeds/$f/$name" || die "cgslab-prog encode $txt failed"
done
for f in "${fuzzers[@]}"; do
  n=$(find "$seeds/$f" -type f | wc -l)
  [ "$n" -gt 0 ] || die "no seeds for $f"
  rm -f "$OUT/${f}_seed_corpus.zip"
  (cd "$seeds/$f" && zip -q -j "$OUT/${f}_seed_corpus.zip" ./*)
  echo "build.sh: $OUT/$f ($n seeds in ${f}_seed_corpus.zip, $f.dict, $f.options)"
done
