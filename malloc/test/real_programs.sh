#!/usr/bin/env bash
# real_programs.sh LIB: real programs under LD_PRELOAD=LIB must print exactly what they print on
# glibc and exit 0: python3 doing allocation-heavy work, `ls -R /usr/include`, `sort` of a large
# input; then python3 again inside a cgroup (CGSLAB_CGROUP=/job, CGSLAB_MAX=1G, CGSLAB_STAT=1),
# whose exit statistics must name the cgroup. Every child has a timeout. Exit 1 on a difference.
set -u
if [ $# -ne 1 ] || [ ! -f "$1" ]; then
  echo "usage: $0 path/to/libcgslab_malloc.so" >&2
  exit 2
fi
LIB=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

PY='
import json, random, re
random.seed(7)
d = {}
for i in range(200000):
    d["k%d" % i] = [i, str(i) * (i % 7), {"x": i}]
s = 0
for k in list(d)[::3]:
    s += len(d.pop(k)[1])
words = ["".join(random.choice("abcdef") for _ in range(random.randint(1, 12))) for _ in range(100000)]
words.sort()
blob = json.dumps({"words": words[:20000], "n": s})
back = json.loads(blob)
big = [bytearray(random.randint(1, 300000)) for _ in range(200)]
print(len(d), s, len(back["words"]), sum(map(len, big)), len(re.findall(r"a+b", " ".join(words))))
'

run() {  # name, then the command
  local name=$1
  shift
  timeout 120 "$@" >"$tmp/$name.glibc" 2>"$tmp/$name.glibc.err"
  local rc0=$?
  timeout 120 env LD_PRELOAD="$LIB" "$@" >"$tmp/$name.cgslab" 2>"$tmp/$name.cgslab.err"
  local rc1=$?
  if [ $rc1 -ne 0 ] || [ $rc0 -ne $rc1 ]; then
    echo "FAIL $name: exit $rc1 under cgslab (glibc: $rc0)"; head -5 "$tmp/$name.cgslab.err"; fail=1
  elif ! cmp -s "$tmp/$name.glibc" "$tmp/$name.cgslab"; then
    echo "FAIL $name: output differs from glibc"; diff "$tmp/$name.glibc" "$tmp/$name.cgslab" | head -5; fail=1
  else
    echo "ok   $name ($(wc -c <"$tmp/$name.cgslab") bytes of identical output)"
  fi
}

run python python3 -c "$PY"
run ls-R ls -R /usr/include
seq 1 300000 | shuf --random-source=<(yes) >"$tmp/in.txt"
run sort sort -n "$tmp/in.txt"

timeout 120 env LD_PRELOAD="$LIB" CGSLAB_CGROUP=/job CGSLAB_MAX=1G CGSLAB_STAT=1 python3 -c "$PY" \
  >"$tmp/cg.out" 2>"$tmp/cg.err"
rc=$?
if [ $rc -ne 0 ] || ! cmp -s "$tmp/python.glibc" "$tmp/cg.out"; then
  echo "FAIL python in /job: exit $rc or output differs"; head -5 "$tmp/cg.err"; fail=1
elif ! grep -q "cgroup /job: usage" "$tmp/cg.err" || ! grep -q "kmalloc-" "$tmp/cg.err"; then
  echo "FAIL python in /job: CGSLAB_STAT=1 printed no statistics of /job"; head -5 "$tmp/cg.err"; fail=1
else
  echo "ok   python in /job ($(grep -m1 'cgroup /job' "$tmp/cg.err"))"
fi

# A bad configuration is a clear error, not a silent default.
timeout 20 env LD_PRELOAD="$LIB" CGSLAB_CGROUP=/job CGSLAB_MAX=12Q true 2>"$tmp/bad.err"
if [ $? -eq 0 ] || ! grep -q "CGSLAB_MAX='12Q'" "$tmp/bad.err"; then
  echo "FAIL: CGSLAB_MAX=12Q was not rejected with a message"; cat "$tmp/bad.err"; fail=1
else
  echo "ok   CGSLAB_MAX=12Q rejected: $(head -1 "$tmp/bad.err")"
fi
exit $fail
