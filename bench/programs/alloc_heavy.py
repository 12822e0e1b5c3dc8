"""alloc_heavy.py: an allocation-heavy Python workload for bench/programs.sh (dicts, lists,
strings, sets, small objects built and torn down). Deterministic: prints the same lines under
every malloc. Usage: python3 alloc_heavy.py [SCALE] (default 1)."""
import random
import sys


class Node:
    __slots__ = ("key", "left", "right")

    def __init__(self, key):
        self.key = key
        self.left = None
        self.right = None


def tree_insert(root, key):
    if root is None:
        return Node(key)
    cur = root
    while True:
        if key < cur.key:
            if cur.left is None:
                cur.left = Node(key)
                return root
            cur = cur.left
        else:
            if cur.right is None:
                cur.right = Node(key)
                return root
            cur = cur.right


def main():
    scale = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    if scale < 1:
        print("usage: alloc_heavy.py [SCALE >= 1]", file=sys.stderr)
        sys.exit(2)
    rnd = random.Random(42)
    total = 0
    for rep in range(scale):
        d = {}
        for i in range(150000):
            d["key-%d-%d" % (rep, i)] = [i, str(i) * (1 + i % 5), (i, i + 1)]
        for k in list(d.keys())[::2]:
            del d[k]
        total += sum(len(v[1]) for v in d.values())
        words = ["".join(rnd.choice("abcdefghij") for _ in range(rnd.randint(1, 16))) for _ in range(60000)]
        counts = {}
        for w in words:
            counts[w] = counts.get(w, 0) + 1
        top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
        s = set(words)
        joined = ",".join(sorted(s))
        parts = joined.split(",")
        root = None
        for _ in range(40000):
            root = tree_insert(root, rnd.random())
        lists = [[j] * (j % 50) for j in range(20000)]
        total += len(parts) + sum(map(len, lists)) + len(joined)
        print("rep %d: %d keys, top %s, %d distinct words" % (rep, len(d), top, len(s)))
        big = [bytes(rnd.randint(1, 200000)) for _ in range(100)]
        total += sum(map(len, big))
    print("total", total)


main()
