# ci/libfuzzer_stats.sh: reading libFuzzer's log, once for the scripts that need it (ci/fuzz.sh,
# bench/fuzz_speed.sh). Sourced. A normal run ends with -print_final_stats; fork mode (-fork=N)
# prints none, and the exec/s field of its status lines is not the total: there the total is the
# last status line's inputs divided by its seconds.
#
# lf_runs LOG, lf_exec_per_s LOG: print the figure, or nothing when the log has none.
lf_runs() {
  local v
  v=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$1" | grep -o '[0-9]*$' | tail -1)
  [ -n "$v" ] || v=$(grep -oE '^#[0-9]+' "$1" | tail -1 | tr -d '#')
  printf '%s' "$v"
}
lf_exec_per_s() {
  local v
  v=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$1" | grep -o '[0-9]*$' | tail -1)
  [ -n "$v" ] || v=$(grep -E '^#[0-9]+: .* time: [0-9]+s' "$1" | tail -1 |
    sed -E 's/^#([0-9]+):.* time: ([0-9]+)s.*/\1 \2/' | awk '$2 > 0 { printf "%d", $1 / $2 }')
  [ -n "$v" ] || v=$(grep -oE 'exec/s:? [0-9]+' "$1" | tail -1 | grep -o '[0-9]*$')
  printf '%s' "$v"
}
