// program.cc: decoder, encoder, printer, parser and dictionaries, all driven by the table in
// ops.def (see program.h for the byte layout and the round-trip invariants). Stateless.
#include "program.h"

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>

namespace cgslab::harness {

namespace {

// The error column of ops.def: kNone or an ErrorKind enumerator.
struct ErrSpec {
  bool expected;
  ErrorKind kind;
};
namespace errspec {
constexpr ErrSpec kNone{false, ErrorKind::kInternal};
constexpr ErrSpec kDoubleFree{true, ErrorKind::kDoubleFree};
constexpr ErrSpec kInvalidFree{true, ErrorKind::kInvalidFree};
constexpr ErrSpec kWrongCache{true, ErrorKind::kWrongCache};
constexpr ErrSpec kUseAfterDestroy{true, ErrorKind::kUseAfterDestroy};
constexpr ErrSpec kOfflineCgroup{true, ErrorKind::kOfflineCgroup};
constexpr ErrSpec kBadArgument{true, ErrorKind::kBadArgument};
constexpr ErrSpec kCacheBusy{true, ErrorKind::kCacheBusy};
}  // namespace errspec

#define A0 ArgSpec{}
#define A(kind, name) ArgSpec{ArgKind::kind, name}
constexpr OpInfo kOps[] = {
#define OP(name, group, dialect, attrs, err, a0, a1, a2) \
  {#name, #group, Dialect::k##dialect, attrs, errspec::err.expected, errspec::err.kind, {a0, a1, a2}},
#include "ops.def"
#undef OP
};
#undef A
#undef A0
static_assert(sizeof(kOps) / sizeof(kOps[0]) == size_t(OpKind::kCount));
static_assert(size_t(OpKind::kCount) <= 64, "the kind has 6 bits in an op record");

constexpr size_t count_lifecycle() {
  size_t n = 0;
  while (n < size_t(OpKind::kCount) && kOps[n].dialect == Dialect::kLifecycle) ++n;
  return n;
}
constexpr bool lifecycle_is_prefix() {
  for (size_t i = count_lifecycle(); i < size_t(OpKind::kCount); ++i)
    if (kOps[i].dialect == Dialect::kLifecycle) return false;
  return true;
}
static_assert(lifecycle_is_prefix(), "ops.def: lifecycle rows must come before api rows");

const char* const kGfpNames[] = {"account", "nowait", "noretry", "nofail", "zero", "reclaimable"};
const char* const kCacheFlagNames[] = {"account", "rcu", "nomerge", "ctor"};
const char* const kForeignNames[] = {"static", "heap"};
const char* const kBadCacheArgNames[] = {"size0", "huge", "align24", "flags"};
constexpr size_t kNumCacheSizes = sizeof(kCacheSizes) / sizeof(kCacheSizes[0]);
constexpr size_t kNumAligns = sizeof(kCacheAligns) / sizeof(kCacheAligns[0]);

std::string flags_text(uint8_t v, const char* const* names, size_t n) {
  if (!v) return "0";
  std::string s;
  for (size_t i = 0; i < n; ++i)
    if (v & (1u << i)) s += (s.empty() ? "" : "|") + std::string(names[i]);
  return s;
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
  if (s.empty() || s[0] == '-') return false;
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(s.c_str(), &end, 0);
  if (errno || *end || v > max) return false;
  *out = v;
  return true;
}

bool parse_name(const std::string& s, const char* const* names, size_t n, uint8_t* out) {
  for (size_t i = 0; i < n; ++i)
    if (s == names[i]) return *out = uint8_t(i), true;
  return false;
}

std::string label(const Program& p, uint8_t idx) {
  if (idx < p.ntasks) return "t" + std::to_string(idx);
  return idx == p.ntasks ? "rcu" : idx == p.ntasks + 1 ? "wq" : "main";
}

}  // namespace

const OpInfo& op_info(OpKind k) { return kOps[size_t(k) < size_t(OpKind::kCount) ? size_t(k) : 0]; }

size_t dialect_kinds(Dialect d) { return d == Dialect::kApi ? size_t(OpKind::kCount) : count_lifecycle(); }

const char* dialect_name(Dialect d) { return d == Dialect::kApi ? "api" : "lifecycle"; }

uint8_t arg_canonical(ArgKind k, uint8_t raw) {
  switch (k) {
    case ArgKind::kNone: return 0;
    case ArgKind::kCount: return uint8_t(std::max(1, raw % 17));
    case ArgKind::kBatch: return uint8_t(raw % 8);
    case ArgKind::kBool: return raw & 1;
    case ArgKind::kCacheSize: return uint8_t(raw % kNumCacheSizes);
    case ArgKind::kAlign: return uint8_t(raw % kNumAligns);
    case ArgKind::kGfp: return raw & 0x3f;
    case ArgKind::kCacheFlags: return raw & 0x0f;
    case ArgKind::kOffset: return raw ? raw : 1;
    case ArgKind::kForeign: return raw % 2;
    case ArgKind::kBadCacheArg: return raw % 4;
    case ArgKind::kGfpBit: return uint8_t(raw % 20);
    default: return raw;  // handles, pages, nth, kmalloc size: every byte is its own value
  }
}

uint64_t arg_value(ArgKind k, uint8_t c) {
  switch (k) {
    case ArgKind::kNone: return 0;
    case ArgKind::kPages: return c == 255 ? UINT64_MAX : c;
    case ArgKind::kKmallocSize: return c < 128 ? uint64_t(c) * 2 + 1 : uint64_t(c - 127) * 256;
    case ArgKind::kCacheSize: return kCacheSizes[c % kNumCacheSizes];
    case ArgKind::kAlign: return kCacheAligns[c % kNumAligns];
    case ArgKind::kGfpBit: return 8 + c;
    case ArgKind::kBatch: return 1 + uint64_t(c);
    default: return c;
  }
}

std::string arg_text(ArgKind k, uint8_t c) {
  switch (k) {
    case ArgKind::kPages: return c == 255 ? "unlimited" : std::to_string(c);
    case ArgKind::kNth: return c == 0 ? "off" : std::to_string(c);
    case ArgKind::kGfp: return flags_text(c, kGfpNames, 6);
    case ArgKind::kCacheFlags: return flags_text(c, kCacheFlagNames, 4);
    case ArgKind::kForeign: return kForeignNames[c % 2];
    case ArgKind::kBadCacheArg: return kBadCacheArgNames[c % 4];
    default: return std::to_string(arg_value(k, c));
  }
}

bool arg_parse(ArgKind k, const std::string& s, uint8_t* out) {
  switch (k) {
    case ArgKind::kGfp: return parse_flags(s, kGfpNames, 6, out);
    case ArgKind::kCacheFlags: return parse_flags(s, kCacheFlagNames, 4, out);
    case ArgKind::kForeign: return parse_name(s, kForeignNames, 2, out);
    case ArgKind::kBadCacheArg: return parse_name(s, kBadCacheArgNames, 4, out);
    case ArgKind::kPages:
      if (s == "unlimited") return *out = 255, true;
      break;
    case ArgKind::kNth:
      if (s == "off") return *out = 0, true;
      break;
    default: break;
  }
  uint64_t v = 0;
  if (!parse_uint(s, UINT64_MAX, &v)) return false;
  // The value must be one this kind takes: find its canonical byte.
  for (uint8_t c : arg_domain(k))
    if (arg_value(k, c) == v && !(k == ArgKind::kPages && c == 255) && !(k == ArgKind::kNth && c == 0))
      return *out = c, true;
  if (k == ArgKind::kNth && v == 0) return *out = 0, true;
  return false;
}

std::vector<uint8_t> arg_domain(ArgKind k) {
  std::vector<uint8_t> d;
  for (int b = 0; b < 256; ++b)
    if (arg_canonical(k, uint8_t(b)) == b) d.push_back(uint8_t(b));
  return d;
}

std::vector<std::string> schedule_labels(const Program& p) {
  std::vector<std::string> l;
  for (uint8_t i = 0; i < schedule_label_count(p); ++i) l.push_back(label(p, i));
  return l;
}

bool schedule_of_decisions(const Program& p, const int8_t* labels, size_t n, std::vector<SchedStep>* steps,
                           std::string* why) {
  steps->clear();
  for (size_t i = 0; i < n; ++i) {
    const int l = labels[i];
    if (l < 0 || l >= schedule_label_count(p)) return *why = "a decision ran a task with no schedule label", false;
    if (!steps->empty() && steps->back().task == l && steps->back().count < 255) ++steps->back().count;
    else steps->push_back({uint8_t(l), 1});
  }
  if (steps->size() > kMaxSteps)
    return *why = std::to_string(steps->size()) + " schedule steps, more than a program holds (" +
                  std::to_string(kMaxSteps) + ")",
           false;
  return true;
}

uint64_t pct_horizon(const Program& p) {
  return p.horizon ? p.horizon : kPctHorizonBase + kPctHorizonPerOp * p.ops.size();
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
    op.kind = OpKind((k >> 2) % dialect_kinds(dialect));
    const OpInfo& info = kOps[size_t(op.kind)];
    for (int a = 0; a < 3; ++a) op.arg[a] = arg_canonical(info.arg[a].kind, next());
    p.ops.push_back(op);
  }
  if (p.pct) {
    for (int i = 0; i < 8; ++i) p.seed |= uint64_t(next()) << (8 * i);
    p.depth = uint8_t(1 + next() % 4);
    // Optional: inputs that end here (all of them before the horizon existed) get the derived one.
    p.horizon = uint16_t(16 * next());
  } else {
    while (pos < size && p.steps.size() < kMaxSteps) {
      SchedStep s;
      s.task = uint8_t(next() % schedule_label_count(p));
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
    for (int a = 0; a < 3; ++a) out.push_back(op.arg[a]);
  }
  if (p.pct) {
    for (int i = 0; i < 8; ++i) out.push_back(uint8_t(p.seed >> (8 * i)));
    out.push_back(uint8_t(p.depth - 1));
    if (p.horizon) out.push_back(uint8_t(p.horizon / 16));
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
  for (int i = 0; i < 3; ++i)
    if (info.arg[i].kind != ArgKind::kNone)
      s += std::string(" ") + info.arg[i].name + "=" + arg_text(info.arg[i].kind, op.arg[i]);
  return s;
}

std::string print(const Program& p) {
  std::string s = "# cgslab program: one op per line, \"t<task> <op> <arg>=<value>\"; handles are indexes\n"
                  "# into the live cgroups/caches/objects, taken modulo their count when the op runs.\n";
  s += std::string("dialect ") + dialect_name(p.dialect) + "\n";
  s += "tasks " + std::to_string(p.ntasks) + "\n";
  if (p.pct) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "sched pct seed=0x%016" PRIx64 " depth=%u", p.seed, unsigned(p.depth));
    s += buf;
    if (p.horizon) s += " horizon=" + std::to_string(p.horizon);
    s += "\n";
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
          else if (w[i].rfind("horizon=", 0) == 0 && parse_uint(w[i].substr(8), 4080, &v) && v >= 16 && v % 16 == 0)
            p.horizon = uint16_t(v);
          else
            return fail("bad pct parameter '" + w[i] + "' (seed=<u64> depth=1..4 horizon=16..4080, a multiple of 16)");
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
      size_t k = 0, n = dialect_kinds(p.dialect);
      while (k < n && w[1] != kOps[k].name) ++k;
      if (k == n) return fail("unknown operation '" + w[1] + "' in this dialect");
      Op op;
      op.task = uint8_t(task);
      op.kind = OpKind(k);
      for (size_t i = 2; i < w.size(); ++i) {
        size_t eq = w[i].find('=');
        if (eq == std::string::npos) return fail("expected name=value, got '" + w[i] + "'");
        std::string name = w[i].substr(0, eq), val = w[i].substr(eq + 1);
        int j = 0;
        while (j < 3 && !(kOps[k].arg[j].kind != ArgKind::kNone && name == kOps[k].arg[j].name)) ++j;
        if (j == 3) return fail("operation " + w[1] + " has no argument '" + name + "'");
        if (!arg_parse(kOps[k].arg[j].kind, val, &op.arg[j])) return fail("bad value '" + val + "' for " + name);
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

}  // namespace cgslab::harness

namespace cgslab::harness {

std::string dictionary(Dialect d) {
  // One record per (kind, task) with the smallest argument values that do something: libFuzzer
  // splices these into inputs, so a mutation can insert a whole well-formed operation.
  std::string out = "# libFuzzer dictionary for the " + std::string(dialect_name(d)) +
                    " dialect, generated from harness/ops.def: one op record (task | kind << 2, a, b, c)"
                    " per operation and task\n";
  const int ntasks = d == Dialect::kApi ? 1 : 4;
  for (size_t k = 0; k < dialect_kinds(d); ++k) {
    const OpInfo& info = kOps[k];
    uint8_t args[3];
    for (int a = 0; a < 3; ++a) {
      ArgKind ak = info.arg[a].kind;
      // Typical values: handle 1 (the first non-root cgroup / second cache), a few objects,
      // an accounted allocation, a 64-byte cache, a limit of 4 pages.
      uint8_t v = ak == ArgKind::kGfp ? 1 : ak == ArgKind::kCacheSize ? 4 : ak == ArgKind::kCacheFlags ? 1
                : ak == ArgKind::kPages ? 4 : ak == ArgKind::kCount ? 8 : ak == ArgKind::kKmallocSize ? 100
                : ak == ArgKind::kNone || ak == ArgKind::kAlign || ak == ArgKind::kBool ? 0 : 1;
      args[a] = arg_canonical(ak, v);
    }
    for (int t = 0; t < ntasks; ++t) {
      char buf[160];
      std::snprintf(buf, sizeof buf, "op_%s_t%d=\"\\x%02x\\x%02x\\x%02x\\x%02x\"\n", info.name, t,
                    unsigned((t & 3) | (k << 2)), args[0], args[1], args[2]);
      out += buf;
    }
  }
  return out;
}

}  // namespace cgslab::harness
