#!/usr/bin/env bash
# ci/nightly.sh: the nightly soak. Builds the asan (ASan+UBSan) and tsan presets, runs each stress
# binary in both for its share of the time budget, plus stress_lifecycle in release (where RSS
# means what it says), runs the fuzz targets (ci/fuzz.sh, once the fuzz issue has landed) for a
# long budget, and writes a markdown summary with a plot and a verdict per run. Exit status 0 iff
# every run passed.
#
#   ci/nightly.sh                   # 1 hour of runs (build time not included)
#   ci/nightly.sh --hours 8         # a longer night
#   ci/nightly.sh --hours 0.05      # a 3-minute smoke test of the whole pipeline
#   ci/nightly.sh --out DIR --presets "asan tsan release" --seed N
#
# Time budget: with ci/fuzz.sh present, a third goes to fuzzing and two thirds to the stress runs;
# without it, all of it to the stress runs. The stress share is split evenly over the runs (asan
# and tsan x both binaries, release x stress_lifecycle: 5 by default).
#
# A run fails when: the binary exits non-zero (a check failed: validate(), charge conservation,
# object stamps, teardown to quiescence, an unexpected allocator error, a hang), the sanitizer
# printed any report (even one that did not stop the run), or memory grew after warm-up by more
# than --max-rss-growth (10%, and more than 8 MiB). Memory is judged only for runs of at least
# 5 minutes (a shorter run's growth is warm-up, not a leak; the summary says "not judged"). The
# release run judges RSS. Sanitizer runs judge live memory (bytes malloc'd and not freed +
# cgslab's mappings), which is what a leak in cgslab or the harness grows: their RSS moves for
# reasons of the runtime's own — ASan's quarantine, allocator caches and the shadow of every range
# cgslab ever mapped creep upwards; TSan's shadow follows the slab footprint of the moment by tens
# of MiB — while cgslab's mappings stay flat (measured: stress/results/, README "Stress and soak").
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"

hours=1
out=""
presets=(asan tsan release)
seed=""
rss_limit=10
usage() {
  sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'
}
while [ $# -gt 0 ]; do
  case "$1" in
    --hours) hours="${2:-}"; shift 2 || { echo "nightly.sh: --hours needs a value" >&2; exit 2; } ;;
    --hours=*) hours="${1#*=}"; shift ;;
    --out) out="${2:-}"; shift 2 || { echo "nightly.sh: --out needs a value" >&2; exit 2; } ;;
    --out=*) out="${1#*=}"; shift ;;
    --presets) read -r -a presets <<<"${2:-}"; shift 2 || { echo "nightly.sh: --presets needs a value" >&2; exit 2; } ;;
    --seed) seed="${2:-}"; shift 2 || { echo "nightly.sh: --seed needs a value" >&2; exit 2; } ;;
    -h|--help) usage; exit 0 ;;
    *) echo "nightly.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
if ! awk -v h="$hours" 'BEGIN { exit !(h ~ /^[0-9]*\.?[0-9]+$/ && h > 0) }'; then
  echo "nightly.sh: --hours '$hours' is not a positive number" >&2
  exit 2
fi
for p in "${presets[@]}"; do
  case "$p" in asan|tsan|release|debug) ;; *) echo "nightly.sh: unknown preset '$p'" >&2; exit 2 ;; esac
done
[ -n "$seed" ] || seed=$(( $(date +%s) % 1000000007 + 1 ))
[ -n "$out" ] || out="$repo/build/nightly/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

source ci/env.sh
cgslab_bounded 1800 "ci/install-deps.sh" ci/install-deps.sh

total=$(awk -v h="$hours" 'BEGIN { printf "%d", h * 3600 }')
have_fuzz=0
[ -x ci/fuzz.sh ] && have_fuzz=1
fuzz_s=0
if [ $have_fuzz -eq 1 ]; then fuzz_s=$(( total / 3 )); fi
stress_total=$(( total - fuzz_s ))
# The runs: "preset binary measure". Release runs only stress_lifecycle, judged on RSS.
runs=()
for p in "${presets[@]}"; do
  case "$p" in
    release|debug) runs+=("$p stress_lifecycle rss") ;;
    *) runs+=("$p stress_lifecycle live" "$p stress_patterns live") ;;
  esac
done
nruns=${#runs[@]}
share=$(( stress_total / nruns ))
[ $share -ge 10 ] || share=10
check_every=$(( share / 60 ))
[ $check_every -ge 3 ] || check_every=3
[ $check_every -le 60 ] || check_every=60
rss_args=()
rss_note="not judged (runs shorter than 5 min)"
if [ $share -ge 300 ]; then
  rss_args=(--max-rss-growth "$rss_limit")
  rss_note="judged (RSS for release, live memory for asan/tsan): fail above ${rss_limit}% and 8 MiB growth after warm-up (first 20%, at most 5 min)"
fi

jobs="${CGSLAB_JOBS:-$(nproc)}"

echo "=== nightly: ${hours} h budget -> ${share} s per stress run (${nruns} runs), fuzz ${fuzz_s} s; seed $seed; out $out"

# --- build ----------------------------------------------------------------------------------------
status=0
declare -A built
for p in "${presets[@]}"; do
  echo "=== build $p"
  if { cgslab_bounded 600 "cmake --preset $p" cmake --preset "$p" &&
       cgslab_bounded 3600 "the $p build" cmake --build --preset "$p" -j "$jobs" --target stress_lifecycle stress_patterns stress_plot; } \
       >"$out/build-$p.log" 2>&1; then
    built[$p]=1
  else
    built[$p]=0
    status=1
    echo "    build FAILED (see $out/build-$p.log)"
  fi
done

# --- stress runs ----------------------------------------------------------------------------------
sanitizer_re='ERROR: AddressSanitizer|ERROR: LeakSanitizer|WARNING: ThreadSanitizer|ThreadSanitizer:|runtime error:|SUMMARY: (Address|Thread|UndefinedBehavior)Sanitizer'
rows=()
details=()
for r in "${runs[@]}"; do
  read -r p b measure_arg <<<"$r"
  {
    name="$p-$b"
    log="$out/$name.log"
    json="$out/$name.json"
    svg="$out/$name.svg"
    if [ "${built[$p]}" != 1 ]; then
      rows+=("| $b | $p | - | - | - | - | **FAIL** (build failed) | |")
      continue
    fi
    echo "=== run $name for ${share} s"
    bin="build/$p/stress/$b"
    set +e
    # The binary bounds its own waits; timeout is the last line of defence (share + 10 min).
    judge=(--judge-memory "$measure_arg")
    cgslab_bounded $(( share + 600 )) "$name to finish" "$bin" --duration "${share}s" --check-every "${check_every}s" \
      --seed "$seed" --report "$json" "${rss_args[@]}" "${judge[@]}" >"$log" 2>&1
    rc=$?
    set -e
    why=()
    [ $rc -eq 0 ] || why+=("exit $rc")
    if grep -Eq "$sanitizer_re" "$log"; then why+=("sanitizer report"); fi
    line=""
    if [ -f "$json" ]; then
      line=$(cgslab_bounded 120 "stress_plot $json" "build/$p/stress/stress_plot" "$json" "$svg" 2>>"$log" || true)
    else
      why+=("no report")
    fi
    kv() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$line"; }
    ops=$(kv ops_per_s); checks=$(kv checks); base=$(kv rss_baseline_mb); fin=$(kv rss_final_mb)
    growth=$(kv rss_growth_pct); judged=$(kv rss_judged); dying=$(kv dying_caches_max); measure=$(kv measure)
    if [ ${#why[@]} -eq 0 ]; then verdict="PASS"; else verdict="**FAIL** (${why[*]})"; status=1; fi
    opsm=$(awk -v o="${ops:-0}" 'BEGIN { printf "%.2fM", o / 1e6 }')
    rows+=("| $b | $p | ${share} s | $opsm | ${measure:-rss}: ${base:-?} -> ${fin:-?} MiB (${growth:-?}%, judged: ${judged:-no}) | ${dying:-?} | $verdict | [plot]($name.svg) |")
    d="### $name: $verdict"$'\n\n'"\`$bin --duration ${share}s --check-every ${check_every}s --seed $seed ${rss_args[*]} ${judge[*]}\`"$'\n\n'
    [ -f "$svg" ] && d+="![$name]($name.svg)"$'\n\n'
    if [ ${#why[@]} -ne 0 ]; then
      d+="Last lines of [$name.log]($name.log):"$'\n\n```\n'"$(tail -n 40 "$log")"$'\n```\n'
    else
      d+="$(grep -E 'PASS' "$log" | head -n 1)"$'\n'
    fi
    details+=("$d")
    echo "    $verdict  ops/s $opsm  ${measure:-rss} ${base:-?} -> ${fin:-?} MiB"
  }
done

# --- fuzzing --------------------------------------------------------------------------------------
fuzz_row=""
if [ $have_fuzz -eq 1 ]; then
  # ci/fuzz.sh --time is per target and runs the targets one after another: split the budget.
  ntargets=$(sed -n 's/^all_targets=(\(.*\))/\1/p' ci/fuzz.sh | wc -w)
  [ "$ntargets" -ge 1 ] || ntargets=3
  per_target=$(( fuzz_s / ntargets ))
  [ $per_target -ge 1 ] || per_target=1
  echo "=== fuzz for ${fuzz_s} s (ci/fuzz.sh --time $per_target: $ntargets targets)"
  set +e
  # fuzz.sh bounds each of its children; this bound covers its builds and merges as a whole.
  cgslab_bounded $(( fuzz_s + 3 * 3600 )) "ci/fuzz.sh" ci/fuzz.sh --time "$per_target" >"$out/fuzz.log" 2>&1
  rc=$?
  set -e
  if [ $rc -eq 0 ]; then v="PASS"; else v="**FAIL** (exit $rc)"; status=1; fi
  fuzz_row="| fuzz targets (ci/fuzz.sh --time $per_target, $ntargets targets) | - | ${fuzz_s} s | - | - | - | $v | [log](fuzz.log) |"
  details+=("### fuzz: $v"$'\n\n```\n'"$(tail -n 30 "$out/fuzz.log")"$'\n```\n')
  echo "    $v"
else
  fuzz_row="| fuzz targets | - | - | - | - | - | not run: ci/fuzz.sh does not exist yet (fuzz issue) | |"
fi

# --- summary --------------------------------------------------------------------------------------
{
  echo "# cgslab nightly soak — $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "commit \`$(git rev-parse --short HEAD 2>/dev/null || echo '?')\`, ${hours} h budget, $(nproc) cores, seed $seed;" \
       "RSS $rss_note. Overall: $([ $status -eq 0 ] && echo PASS || echo '**FAIL**')"
  echo
  echo "| run | preset | time | ops/s | memory after warm-up | dying caches (max) | verdict | plot |"
  echo "|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo "$fuzz_row"
  echo
  printf '%s\n' "${details[@]}"
} >"$out/summary.md"

echo
echo "=== nightly summary: $out/summary.md"
sed -n '1,/^$/p;/^| run/,/^$/p' "$out/summary.md"
exit $status
