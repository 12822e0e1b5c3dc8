#include "program.h"

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <sstream>

namespace cgslab::fuzz {

namespace {

enum class Arg : uint8_t { kNone, kCg, kCache, kObj, kInt, kGfp, kCacheFlags, kSize, kAlign };

struct OpInfo {
  const char* name;
  Arg arg[3];
  const char* argname[3];
};

// Indexed by OpKind. Argument names are what the text form prints.
constexpr OpInfo kOps[] = {
    {"yield", {}, {}},
    {"cgroup_create", {Arg::kCg}, {"parent"}},
    {"cgroup_offline", {Arg::kCg}, {"cg"}},
    {"cgroup_set_max", {Arg::kCg, Arg::kInt}, {"cg", "pages"}},
    {"attach", {Arg::kCg}, {"cg"}},
    {"remote_begin", {Arg::kCg}, {"cg"}},
    {"scope_end", {}, {}},
    {"cache_create", {Arg::kSize, Arg::kCacheFlags, Arg::kAlign}, {"size", "flags", "align"}},
    {"cache_shrink", {Arg::kCache}, {"cache"}},
    {"cache_destroy", {Arg::kCache}, {"cache"}},
    {"alloc", {Arg::kCache, Arg::kGfp}, {"cache", "gfp"}},
    {"alloc_many", {Arg::kCache, Arg::kInt, Arg::kGfp}, {"cache", "n", "gfp"}},
    {"free", {Arg::kObj, Arg::kInt}, {"obj", "kfree"}},
    {"free_many", {Arg::kInt}, {"n"}},
    {"kmalloc", {Arg::kInt, Arg::kGfp}, {"size", "gfp"}},
    {"rcu_lock", {}, {}},
    {"rcu_read", {Arg::kObj}, {"obj"}},
    {"rcu_unlock", {}, {}},
    {"register_shrinker", {Arg::kInt}, {"batch"}},
    {"fail_mapping", {Arg::kInt}, {"nth"}},
    {"fail_internal", {Arg::kInt}, {"nth"}},
    {"synchronize_rcu", {}, {}},
    {"shrink_all", {}, {}},
    {"drain", {}, {}},
    // API dialect
    {"double_free", {Arg::kObj}, {"obj"}},
    {"free_interior", {Arg::kObj, Arg::kInt}, {"obj", "offset"}},
    {"free_foreign", {Arg::kInt}, {"kind"}},
    {"free_wrong_cache", {Arg::kObj, Arg::kCache}, {"obj", "cache"}},
    {"use_destroyed_cache", {Arg::kCache}, {"cache"}},
    {"offline_twice", {Arg::kCg}, {"cg"}},
    {"offline_root", {}, {}},
    {"bad_cache_args", {Arg::kInt}, {"kind"}},
    {"bad_gfp", {Arg::kInt}, {"bits"}},
    {"unbalanced_rcu_unlock", {}, {}},
    {"sync_in_rcu", {}, {}},
    {"destroy_busy", {Arg::kCache}, {"cache"}},
};
static_assert(sizeof(kOps) / sizeof(kOps[0]) == size_t(OpKind::kApiCount));

const char* const kGfpNames[] = {"account", "nowait", "noretry", "nofail", "zero", "reclaimable"};
const char* const kCacheFlagNames[] = {"account", "rcu", "nomerge", "ctor"};

size_t nkinds(Dialect d) { return d == Dialect::kApi ? size_t(OpKind::kApiCount) : size_t(OpKind::kLifecycleCount); }

uint8_t normalize(Arg t, uint8_t v) {
  switch (t) {
    case Arg::kNone: return 0;
    case Arg::kGfp: return v & 0x3f;
    case Arg::kCacheFlags: return v & 0x0f;
    case Arg::kSize: return v % (sizeof(kCacheSizes) / sizeof(kCacheSizes[0]));
    case Arg::kAlign: return v % (sizeof(kCacheAligns) / sizeof(kCacheAligns[0]));
    default: return v;
  }
}

std::string flags_text(uint8_t v, const char* const* names, size_t n) {
  if (!v) return "0";
  std::string s;
  for (size_t i = 0; i < n; ++i)
    if (v & (1u << i)) s += (s.empty() ? "" : "|") + std::string(names[i]);
  return s;
}

std::string arg_text(Arg t, uint8_t v) {
  switch (t) {
    case Arg::kGfp: return flags_text(v, kGfpNames, 6);
    case Arg::kCacheFlags: return flags_text(v, kCacheFlagNames, 4);
    case Arg::kSize: return std::to_string(kCacheSizes[v]);
    case Arg::kAlign: return std::to_string(kCacheAligns[v]);
    default: return std::to_string(v);
  }
}

bool parse_flags(const std::string& s, const char* const* names, size_t n, uint8_t* out) {
  if (s == "0") return *out = 0, true;
  uint8_t v = 0;
  std::stringstream ss(s);
  std::string part;
  while (std::getline(ss, part, '|')) {
    size_t i = 0;
    while (i < n && part != names[i]) ++i;
    if (i == n) return false;
    v |= uint8_t(1u << i);
  }
  *out = v;
  return true;
}

bool parse_uint(const std::string& s, uint64_t max, uint64_t* out) {
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(s.c_str(), &end, 0);
  if (errno || *end || v > max || s[0] == '-') return false;
  *out = v;
  return true;
}

bool parse_arg(Arg t, const std::string& s, uint8_t* out) {
  uint64_t v = 0;
  switch (t) {
    case Arg::kGfp: return parse_flags(s, kGfpNames, 6, out);
    case Arg::kCacheFlags: return parse_flags(s, kCacheFlagNames, 4, out);
    case Arg::kSize:
      if (!parse_uint(s, ~0ull, &v)) return false;
      for (size_t i = 0; i < sizeof(kCacheSizes) / sizeof(kCacheSizes[0]); ++i)
        if (kCacheSizes[i] == v) return *out = uint8_t(i), true;
      return false;
    case Arg::kAlign:
      if (!parse_uint(s, ~0ull, &v)) return false;
      for (size_t i = 0; i < sizeof(kCacheAligns) / sizeof(kCacheAligns[0]); ++i)
        if (kCacheAligns[i] == v) return *out = uint8_t(i), true;
      return false;
    default:
      if (!parse_uint(s, 255, &v)) return false;
      *out = uint8_t(v);
      return true;
  }
}

std::string label(const Program& p, uint8_t idx) {
  if (idx < p.ntasks) return "t" + std::to_string(idx);
  return idx == p.ntasks ? "rcu" : "wq";
}

}  // namespace

std::vector<std::string> schedule_labels(const Program& p) {
  std::vector<std::string> l;
  for (uint8_t i = 0; i < p.ntasks + 2; ++i) l.push_back(label(p, i));
  return l;
}

Program decode(const uint8_t* data, size_t size, Dialect dialect) {
  size_t pos = 0;
  auto next = [&]() -> uint8_t { return pos < size ? data[pos++] : 0; };
  Program p;
  p.dialect = dialect;
  uint8_t h = next();
  p.ntasks = dialect == Dialect::kApi ? 1 : uint8_t(1 + (h & 3));
  p.pct = (h >> 2) & 1;
  size_t nops = next();
  for (size_t i = 0; i < nops && i < kMaxOps; ++i) {
    Op op;
    uint8_t k = next();
    op.task = uint8_t((k & 3) % p.ntasks);
    op.kind = OpKind((k >> 2) % nkinds(dialect));
    const OpInfo& info = kOps[size_t(op.kind)];
    op.a = normalize(info.arg[0], next());
    op.b = normalize(info.arg[1], next());
    op.c = normalize(info.arg[2], next());
    p.ops.push_back(op);
  }
  if (p.pct) {
    for (int i = 0; i < 8; ++i) p.seed |= uint64_t(next()) << (8 * i);
    p.depth = uint8_t(1 + next() % 4);
  } else {
    while (pos < size && p.steps.size() < kMaxSteps) {
      SchedStep s;
      s.task = uint8_t(next() % (p.ntasks + 2));
      s.count = std::max<uint8_t>(1, next());
      p.steps.push_back(s);
    }
  }
  return p;
}

std::vector<uint8_t> encode(const Program& p) {
  std::vector<uint8_t> out;
  out.push_back(uint8_t(((p.ntasks - 1) & 3) | (p.pct ? 4 : 0)));
  out.push_back(uint8_t(p.ops.size()));
  for (const Op& op : p.ops) {
    out.push_back(uint8_t((op.task & 3) | (uint8_t(op.kind) << 2)));
    out.push_back(op.a);
    out.push_back(op.b);
    out.push_back(op.c);
  }
  if (p.pct) {
    for (int i = 0; i < 8; ++i) out.push_back(uint8_t(p.seed >> (8 * i)));
    out.push_back(uint8_t(p.depth - 1));
  } else {
    for (const SchedStep& s : p.steps) {
      out.push_back(s.task);
      out.push_back(s.count);
    }
  }
  return out;
}

std::string print_op(const Op& op) {
  const OpInfo& info = kOps[size_t(op.kind)];
  std::string s = "t" + std::to_string(op.task) + " " + info.name;
  const uint8_t v[3] = {op.a, op.b, op.c};
  for (int i = 0; i < 3; ++i)
    if (info.arg[i] != Arg::kNone) s += std::string(" ") + info.argname[i] + "=" + arg_text(info.arg[i], v[i]);
  return s;
}

std::string print(const Program& p) {
  std::string s = "# cgslab program: one op per line, \"t<task> <op> <arg>=<value>\"; handles are indexes\n"
                  "# into the live cgroups/caches/objects, taken modulo their count when the op runs.\n";
  s += std::string("dialect ") + (p.dialect == Dialect::kApi ? "api" : "lifecycle") + "\n";
  s += "tasks " + std::to_string(p.ntasks) + "\n";
  if (p.pct) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "sched pct seed=0x%016" PRIx64 " depth=%u\n", p.seed, unsigned(p.depth));
    s += buf;
  } else {
    s += "sched explicit";
    for (const SchedStep& st : p.steps) s += " " + label(p, st.task) + "*" + std::to_string(st.count);
    s += "\n";
  }
  for (const Op& op : p.ops) s += print_op(op) + "\n";
  return s;
}

bool parse(const std::string& text, Program* out, std::string* error) {
  Program p;
  std::istringstream in(text);
  std::string line;
  int lineno = 0;
  bool have_tasks = false;
  auto fail = [&](const std::string& msg) {
    if (error) *error = "line " + std::to_string(lineno) + ": " + msg + ": \"" + line + "\"";
    return false;
  };
  std::vector<std::string> pending_steps;  // labels resolve once the task count is known
  while (std::getline(in, line)) {
    ++lineno;
    size_t hash = line.find('#');
    std::string body = hash == std::string::npos ? line : line.substr(0, hash);
    std::istringstream ls(body);
    std::vector<std::string> w;
    for (std::string t; ls >> t;) w.push_back(t);
    if (w.empty()) continue;
    if (w[0] == "dialect") {
      if (w.size() != 2 || (w[1] != "api" && w[1] != "lifecycle")) return fail("expected 'dialect lifecycle|api'");
      p.dialect = w[1] == "api" ? Dialect::kApi : Dialect::kLifecycle;
    } else if (w[0] == "tasks") {
      uint64_t n = 0;
      if (w.size() != 2 || !parse_uint(w[1], 4, &n) || n < 1) return fail("expected 'tasks N' with N in 1..4");
      p.ntasks = uint8_t(n);
      have_tasks = true;
    } else if (w[0] == "sched") {
      if (w.size() < 2) return fail("expected 'sched explicit ...' or 'sched pct seed=.. depth=..'");
      if (w[1] == "pct") {
        p.pct = true;
        for (size_t i = 2; i < w.size(); ++i) {
          uint64_t v = 0;
          if (w[i].rfind("seed=", 0) == 0 && parse_uint(w[i].substr(5), ~0ull, &v)) p.seed = v;
          else if (w[i].rfind("depth=", 0) == 0 && parse_uint(w[i].substr(6), 4, &v) && v >= 1) p.depth = uint8_t(v);
          else return fail("bad pct parameter '" + w[i] + "' (seed=<u64> depth=1..4)");
        }
      } else if (w[1] == "explicit") {
        p.pct = false;
        pending_steps.assign(w.begin() + 2, w.end());
        if (pending_steps.size() > kMaxSteps) return fail("more than 512 schedule steps");
      } else {
        return fail("unknown schedule kind '" + w[1] + "'");
      }
    } else if (w[0].size() >= 2 && w[0][0] == 't' && isdigit(uint8_t(w[0][1]))) {
      uint64_t task = 0;
      if (!parse_uint(w[0].substr(1), 3, &task)) return fail("bad task '" + w[0] + "' (t0..t3)");
      if (w.size() < 2) return fail("missing operation");
      size_t k = 0, n = nkinds(p.dialect);
      while (k < n && w[1] != kOps[k].name) ++k;
      if (k == n) return fail("unknown operation '" + w[1] + "' in this dialect");
      Op op;
      op.task = uint8_t(task);
      op.kind = OpKind(k);
      uint8_t* v[3] = {&op.a, &op.b, &op.c};
      for (size_t i = 2; i < w.size(); ++i) {
        size_t eq = w[i].find('=');
        if (eq == std::string::npos) return fail("expected name=value, got '" + w[i] + "'");
        std::string name = w[i].substr(0, eq), val = w[i].substr(eq + 1);
        int j = 0;
        while (j < 3 && !(kOps[k].arg[j] != Arg::kNone && name == kOps[k].argname[j])) ++j;
        if (j == 3) return fail("operation " + w[1] + " has no argument '" + name + "'");
        if (!parse_arg(kOps[k].arg[j], val, v[j])) return fail("bad value '" + val + "' for " + name);
      }
      if (p.ops.size() >= kMaxOps) return fail("more than 255 operations");
      p.ops.push_back(op);
    } else {
      return fail("unknown line");
    }
  }
  if (!have_tasks) {
    lineno = 0, line.clear();
    return fail("missing 'tasks N'");
  }
  if (p.dialect == Dialect::kApi && p.ntasks != 1) return fail("the api dialect has exactly 1 task");
  for (const Op& op : p.ops)
    if (op.task >= p.ntasks) return fail("operation for task t" + std::to_string(op.task) + " but tasks " +
                                         std::to_string(p.ntasks));
  for (const std::string& st : pending_steps) {
    size_t star = st.find('*');
    std::string who = st.substr(0, star);
    uint64_t count = 1;
    if (star != std::string::npos && (!parse_uint(st.substr(star + 1), 255, &count) || count < 1))
      return fail("bad schedule step '" + st + "' (label*count, count 1..255)");
    SchedStep s;
    s.count = uint8_t(count);
    auto labels = schedule_labels(p);
    size_t i = 0;
    while (i < labels.size() && labels[i] != who) ++i;
    if (i == labels.size()) return fail("unknown schedule label '" + who + "'");
    s.task = uint8_t(i);
    p.steps.push_back(s);
  }
  *out = p;
  return true;
}

}  // namespace cgslab::fuzz
