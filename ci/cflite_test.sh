#!/usr/bin/env bash
# ci/cflite_test.sh: runs .clusterfuzzlite/build.sh here, without Docker, with the variables that
# OSS-Fuzz's base-builder image sets for a libFuzzer build (CC=clang, CXX=clang++, CFLAGS and
# CXXFLAGS of the sanitizer, LIB_FUZZING_ENGINE=-fsanitize=fuzzer, SRC/OUT/WORK), then checks what
# OSS-Fuzz and ClusterFuzzLite need from it: every fuzzer in $OUT with its
# <fuzzer>_seed_corpus.zip, .dict and .options; the engine's flags in the binary and not the
# project's own sanitizer preset; fuzz_threads announced as skipped; and each fuzzer running on its
# unzipped seed corpus for a few seconds with exit status 0. It also checks that an unsupported
# SANITIZER and a missing $OUT are refused with a message. CTest runs it (fuzz preset, label
# "engines"); exit status 0 iff every check passed.
#
#   ci/cflite_test.sh [--sanitizer address|undefined|coverage] [--time SECONDS] [--dir DIR]
#
# --dir: where SRC/, OUT/ and WORK/ go (default build/cflite); WORK/ is kept between runs, so a
# second run rebuilds only what changed. --time: seconds per fuzzer (default 5).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD

sanitizer=address
time_s=5
dir=build/cflite
usage() {
  echo "usage: ci/cflite_test.sh [--sanitizer address|undefined|coverage] [--time SECONDS] [--dir DIR]" >&2
  exit 2
}
while [ $# -gt 0 ]; do
  case "$1" in
    --sanitizer) [ $# -ge 2 ] || usage; case "$2" in address|undefined|coverage) ;; *) echo "ci/cflite_test.sh: unknown sanitizer '$2'" >&2; usage ;; esac
                 sanitizer=$2; shift 2 ;;
    --time) [ $# -ge 2 ] && [[ "$2" =~ ^[1-9][0-9]*$ ]] || { echo "ci/cflite_test.sh: --time needs a positive number of seconds" >&2; usage; }
            time_s=$2; shift 2 ;;
    --dir) [ $# -ge 2 ] || usage; dir=$2; shift 2 ;;
    -h|--help) usage ;;
    *) echo "ci/cflite_test.sh: unknown argument '$1'" >&2; usage ;;
  esac
done
source ci/env.sh
source ci/libfuzzer_stats.sh
command -v unzip >/dev/null || { echo "ci/cflite_test.sh: unzip not found (ci/install-deps.sh installs it)" >&2; exit 1; }

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
fails=0
check() {  # check WHAT CONDITION-STATUS
  if [ "$2" -eq 0 ]; then echo "ok   $1"; else echo "FAIL $1"; fails=$((fails + 1)); fi
}

# The flags of OSS-Fuzz's base-builder: its CFLAGS plus the sanitizer's and the engine's flags.
base="-O1 -fno-omit-frame-pointer -gline-tables-only -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION"
case $sanitizer in
  address) sflags="-fsanitize=address -fsanitize-address-use-after-scope" ;;
  undefined) checks=array-bounds,bool,builtin,enum,float-divide-by-zero,function,integer-divide-by-zero,null,object-size,return,returns-nonnull-attribute,shift,signed-integer-overflow,unsigned-integer-overflow,unreachable,vla-bound,vptr
             sflags="-fsanitize=$checks -fno-sanitize-recover=${checks/unsigned-integer-overflow,/}" ;;
  coverage) sflags="-fprofile-instr-generate -fcoverage-mapping -pthread -Wl,--no-as-needed -Wl,-ldl -Wl,-lm -Wno-unused-command-line-argument" ;;
esac
[ $sanitizer = coverage ] || sflags="$sflags -fsanitize=fuzzer-no-link"
# ClusterFuzz runs UBSan builds with silence_unsigned_overflow=1: the reports it halts on are the
# -fno-sanitize-recover checks (wrapping unsigned hashes are intended).
ubsan_extra=""
[ $sanitizer = undefined ] && ubsan_extra="silence_unsigned_overflow=1"

# build.sh runs in the source tree, as in ClusterFuzzLite's image (WORKDIR $SRC/cgslab); $SRC holds
# the copy of build.sh that the Dockerfile puts there.
src=$dir/src out=$dir/out/$sanitizer work=$dir/work/$sanitizer
rm -rf "$src" "$out"
mkdir -p "$src" "$out" "$work"
cp .clusterfuzzlite/build.sh "$src/build.sh"
builder_env=(SRC="$src" OUT="$out" WORK="$work" CC=clang CXX=clang++ CFLAGS="$base $sflags"
             CXXFLAGS="$base $sflags" LIB_FUZZING_ENGINE=-fsanitize=fuzzer SANITIZER=$sanitizer
             FUZZING_ENGINE=libfuzzer ARCHITECTURE=x86_64 FUZZING_LANGUAGE=c++
             CGSLAB_JOBS="${CGSLAB_JOBS:-1}")

echo "=== refused configurations ==="
msg=$(cd "$root" && env "${builder_env[@]}" SANITIZER=memory bash "$src/build.sh" 2>&1)
rc=$?
[ $rc -ne 0 ] && grep -q "SANITIZER=memory is not supported" <<<"$msg"; check "SANITIZER=memory refused with a message" $?
msg=$(cd "$root" && env "${builder_env[@]}" OUT= bash "$src/build.sh" 2>&1)
rc=$?
[ $rc -ne 0 ] && grep -q 'OUT is not set' <<<"$msg"; check "an unset \$OUT refused with a message" $?

echo "=== build.sh, SANITIZER=$sanitizer ==="
start=$(date +%s)
(cd "$root" && cgslab_bounded 1500 "build.sh" env "${builder_env[@]}" bash "$src/build.sh") >"$dir/build-$sanitizer.log" 2>&1
rc=$?
tail -5 "$dir/build-$sanitizer.log"
check "build.sh exits 0 ($(( $(date +%s) - start )) s; log $dir/build-$sanitizer.log)" $rc
[ $rc -eq 0 ] || { echo "ci/cflite_test.sh: build.sh failed:"; tail -40 "$dir/build-$sanitizer.log"; exit 1; }
grep -q "fuzz_threads skipped" "$dir/build-$sanitizer.log"; check "build.sh says fuzz_threads is skipped" $?
grep -q '^CGSLAB_SANITIZE:STRING=$' "$work/fuzz/CMakeCache.txt"; check "CGSLAB_SANITIZE is empty in the fuzzer build" $?
# Every compile line has the engine's flags and none of the project's own sanitizer flags.
python3 - "$work/fuzz/compile_commands.json" "$base $sflags" <<'PY'
import json, sys
cmds = json.load(open(sys.argv[1]))
bad = [c["file"] for c in cmds if sys.argv[2] not in c["command"] or "-fno-sanitize-recover=undefined" in c["command"]]
print(f"{len(cmds)} compile commands, {len(bad)} without the engine's flags or with the project's own: {bad[:3]}")
sys.exit(1 if bad or not cmds else 0)
PY
check "compiled with \$CXXFLAGS only (compile_commands.json)" $?
[ ! -e "$out/fuzz_threads" ]; check "no fuzz_threads in \$OUT" $?

for f in fuzz_lifecycle fuzz_api; do
  echo "=== $f ==="
  [ -x "$out/$f" ]; check "$f built" $?
  [ -x "$out/$f" ] || continue
  for x in _seed_corpus.zip .dict .options; do [ -s "$out/$f$x" ]; check "$f$x written" $?; done
  grep -q '^max_len = 600$' "$out/$f.options" && grep -q "^dict = $f.dict\$" "$out/$f.options"; check "$f.options: max_len and dict" $?
  syms=$(nm "$out/$f")
  case $sanitizer in
    address) grep -q __asan_report_load <<<"$syms"; check "$f carries ASan instrumentation" $? ;;
    undefined) grep -q __ubsan_handle <<<"$syms"; check "$f carries UBSan instrumentation" $?
               ! grep -q __asan_report_load <<<"$syms"; check "$f has no ASan" $? ;;
    coverage) grep -q __llvm_profile_runtime <<<"$syms"; check "$f carries profile instrumentation" $? ;;
  esac
  corpus=$dir/corpus/$sanitizer/$f
  rm -rf "$corpus" && mkdir -p "$corpus"
  unzip -q "$out/${f}_seed_corpus.zip" -d "$corpus"
  n=$(find "$corpus" -type f | wc -l)
  [ "$n" -gt 0 ]; check "$f seed corpus has $n inputs" $?
  # As ClusterFuzz runs it: from $OUT, with the .options' flags; every seed once, then mutations
  # with a fixed seed and a run count, so the executions are the same every time (a crash here
  # is a reproducible finding, its file under $dir/crashes/), capped at --time seconds.
  # A coverage build has no fuzzing coverage (OSS-Fuzz only replays corpora with it): seeds only.
  nruns=$((time_s * 400))
  [ $sanitizer = coverage ] && nruns=0
  log=$dir/run-$sanitizer-$f.log
  art=$dir/crashes/$sanitizer/$f
  mkdir -p "$art"
  (cd "$out" && CGSLAB_WAIT_BOUND_SEC=20 UBSAN_OPTIONS="$ubsan_extra${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}" \
     cgslab_bounded $((time_s + 120)) "$f on its seed corpus" \
     "./$f" -max_len=600 -dict="$f.dict" -seed=1 -runs=$nruns -max_total_time="$time_s" \
     -timeout=30 -print_final_stats=1 -artifact_prefix="$art/" "$corpus") >"$log" 2>&1
  rc=$?
  runs=$(lf_runs "$log")
  check "$f runs on its seeds, then mutates (-seed=1), exit $rc, ${runs:-?} executions (log $log)" $rc
  [ $rc -eq 0 ] || { grep -m1 -A8 -E "FAILURE|ERROR:|runtime error" "$log"; ls "$art"; }
  grep -q "INITED" "$log"; check "$f read its seed corpus (INITED)" $?
done

echo
if [ $fails -eq 0 ]; then echo "ci/cflite_test.sh: all checks passed"; else echo "ci/cflite_test.sh: $fails check(s) failed"; fi
[ $fails -eq 0 ]
