// oracles.cc: see oracles.h.
#include "oracles.h"

#include <algorithm>
#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>
#include <sstream>
#include <thread>

namespace cgslab::harness {

namespace {
constexpr size_t kChargeBatchBytes = 32 * kPageSize;  // kernel: MEMCG_CHARGE_BATCH pages

std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));
std::string fmt(const char* f, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, f);
  std::vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  return buf;
}

// The last whole word; 0 (no tail) for objects of one word.
size_t tail_offset(size_t size) { return size >= 16 ? (size - 8) & ~size_t(7) : 0; }
}  // namespace

// ---- stamp ----
void stamp_write(void* p, size_t size, uint64_t v, size_t head) {
  __atomic_store_n(reinterpret_cast<uint64_t*>(static_cast<char*>(p) + head), v, __ATOMIC_RELAXED);
  size_t tail = tail_offset(size);
  if (tail > head) {
    uint64_t t = ~v;
    std::memcpy(static_cast<char*>(p) + tail, &t, 8);
  }
}

uint64_t stamp_head(const void* p, size_t head) {
  return __atomic_load_n(reinterpret_cast<const uint64_t*>(static_cast<const char*>(p) + head), __ATOMIC_RELAXED);
}

bool stamp_check(const void* p, size_t size, uint64_t v, size_t head, std::string* why) {
  uint64_t h = stamp_head(p, head), t = ~v;
  size_t tail = tail_offset(size);
  if (tail > head) std::memcpy(&t, static_cast<const char*>(p) + tail, 8);
  if (h == v && t == ~v) return true;
  if (why)
    *why = fmt("object contents changed while allocated: %p (%zu bytes) stamp %#" PRIx64 ", found head %#" PRIx64
               " tail %#" PRIx64 " (want %#" PRIx64 "): the allocator handed it out twice or wrote into a live object",
               p, size, v, h, t, ~v);
  return false;
}

bool check_zeroed(const void* p, size_t n, std::string* why) {
  const auto* b = static_cast<const unsigned char*>(p);
  size_t i = 0;
  for (uint64_t w; i + 8 <= n; i += 8) {  // a word at a time up to the first non-zero word
    std::memcpy(&w, b + i, 8);
    if (w) break;
  }
  for (; i < n; ++i)
    if (b[i]) {
      if (why) *why = fmt("__GFP_ZERO object %p (%zu bytes) has a non-zero byte at offset %zu", p, n, i);
      return false;
    }
  return true;
}

// ---- errors ----
ErrorHandler ErrorChecker::handler() {
  return [this](const Error& e) {
    Expectation* x = current_ ? current_() : nullptr;
    if (x && x->armed && x->kind == e.kind && !(x->once && x->hits)) {
      ++x->hits;
      expected_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    unexpected_.fetch_add(1, std::memory_order_relaxed);
    fail_(std::string("unexpected allocator error ") + error_kind_name(e.kind) + ": " + e.message);
  };
}

Expectation* thread_expectation() {
  thread_local Expectation e;
  return &e;
}

// ---- teardown ----
void settle(Allocator& a) {
  a.drain();
  a.shrink_all();
  a.drain();
}

bool nothing_left(Allocator& a, std::string* why, const std::function<bool(std::string*)>& validate) {
  std::string rep;
  if (!(validate ? validate(&rep) : a.validate(&rep))) {
    *why = "teardown: validate() failed:\n" + rep;
    return false;
  }
  AllocatorStats s = a.stats();
  std::string left;
  if (s.child_caches) left += fmt(" %zu child caches;", s.child_caches);
  if (s.cgroups != 1) left += fmt(" %zu cgroups (want 1: the root);", s.cgroups);
  if (s.slab_pages) left += fmt(" %zu slab pages;", s.slab_pages);
  if (s.mapped_bytes) left += fmt(" %zu mapped bytes;", s.mapped_bytes);
  if (s.pending_work) left += fmt(" %zu pending work items;", s.pending_work);
  if (s.children_created != s.children_freed)
    left += fmt(" children created %" PRIu64 " != freed %" PRIu64 ";", s.children_created, s.children_freed);
  CgroupStats root = a.cgroup_stats(a.root_cgroup());
  if (root.usage || root.live_caches || root.dying_caches)
    left += fmt(" root cgroup usage %zu, %zu live + %zu dying caches;", root.usage, root.live_caches,
                root.dying_caches);
  if (!left.empty()) {
    *why = "teardown to quiescence left:" + left + "\n" + a.slabinfo();
    return false;
  }
  return true;
}

// ---- quiescent state ----
unsigned default_cpu_slots() { return std::max(4u, 2 * std::max(1u, std::thread::hardware_concurrency())); }

bool check_quiescent(Allocator& a, const std::vector<CgNode>& online, unsigned nr_cpu_slots, Census* census,
                     std::string* why) {
  a.drain();
  std::string rep;
  if (!a.validate(&rep)) {
    *why = "validate() failed:\n" + rep;
    return false;
  }
  const size_t n = online.size();
  // Subtree sums need every node's ancestors: walk parents (the vector is small).
  auto subtree_slab = [&](const std::vector<CgroupStats>& st, size_t i) {
    size_t sum = 0;
    for (size_t j = 0; j < n; ++j)
      for (int k = int(j); k >= 0; k = online[size_t(k)].parent)
        if (size_t(k) == i) {
          sum += st[j].slab_bytes;
          break;
        }
    return sum;
  };
  auto read = [&](std::vector<CgroupStats>* st) {
    st->clear();
    for (auto& node : online) st->push_back(a.cgroup_stats(node.cg));
  };
  std::vector<CgroupStats> st;
  read(&st);
  CgroupStats root = a.cgroup_stats(a.root_cgroup());
  if (root.usage != 0) {
    *why = fmt("root cgroup has usage %zu bytes (the root is never charged)", root.usage);
    return false;
  }
  const size_t stock_bound = size_t(nr_cpu_slots) * kChargeBatchBytes;
  for (size_t i = 0; i < n; ++i) {
    if (!st[i].online || st[i].kmemcg_id < 0) {
      *why = fmt("cgroup %s: the run has it online, stats say online=%d kmemcg_id=%d", st[i].path.c_str(),
                 int(st[i].online), st[i].kmemcg_id);
      return false;
    }
    size_t slab = subtree_slab(st, i);
    if (st[i].usage < slab || st[i].usage - slab > stock_bound) {
      *why = fmt("charge conservation: cgroup %s usage %zu bytes, slab pages of its subtree's caches %zu bytes; "
                 "the difference (per-cpu stock) must lie in [0, %zu]",
                 st[i].path.c_str(), st[i].usage, slab, stock_bound);
      return false;
    }
    if (st[i].watermark < st[i].usage) {
      *why = fmt("cgroup %s: watermark %zu below usage %zu", st[i].path.c_str(), st[i].watermark, st[i].usage);
      return false;
    }
  }
  // Drain the per-cpu stock of every top-level subtree, then the equation is exact.
  for (size_t i = 0; i < n; ++i)
    if (online[i].parent < 0) a.cgroup_set_max(online[i].cg, st[i].max);
  a.drain();
  read(&st);
  for (size_t i = 0; i < n; ++i) {
    size_t slab = subtree_slab(st, i);
    if (st[i].usage != slab) {
      *why = fmt("charge conservation after draining the stock: cgroup %s usage %zu bytes != %zu bytes of slab "
                 "pages owned by caches in its subtree",
                 st[i].path.c_str(), st[i].usage, slab);
      return false;
    }
  }
  AllocatorStats as = a.stats();
  Census c;
  root = a.cgroup_stats(a.root_cgroup());
  c.live_caches = root.live_caches;
  c.dying_caches = root.dying_caches;
  for (size_t i = 0; i < n; ++i) {
    c.live_caches += st[i].live_caches;
    c.dying_caches += st[i].dying_caches;
    c.max_usage_bytes = std::max(c.max_usage_bytes, st[i].usage);
    c.failcnt += st[i].failcnt;
  }
  c.child_caches = as.child_caches;
  c.cgroups = as.cgroups;
  c.slab_pages = as.slab_pages;
  c.mapped_bytes = as.mapped_bytes;
  c.children_created = as.children_created;
  c.children_freed = as.children_freed;
  if (c.live_caches + c.dying_caches != c.child_caches) {
    *why = fmt("child caches: %zu live + %zu dying found on the online cgroups, stats() says %zu child caches "
               "(a child cache on an offline cgroup, or lost)",
               c.live_caches, c.dying_caches, c.child_caches);
    return false;
  }
  if (as.pending_work != 0) {
    *why = fmt("%zu RCU callbacks/work items pending after drain()", as.pending_work);
    return false;
  }
  if (census) *census = c;
  return true;
}

bool check_settled(const std::vector<CacheStats>& children, std::string* why) {
  for (const CacheStats& c : children) {
    if (c.is_root) continue;
    if (c.state == CacheState::kDeactivated || c.state == CacheState::kReleased) {
      *why = fmt("after drain(): child cache %s is still %s (the RCU callback or work that moves it on never ran)",
                 c.name.c_str(), cache_state_name(c.state));
      return false;
    }
    if (c.state == CacheState::kKilled && c.active_objects == 0) {
      *why = fmt("after drain(): dead child cache %s has no objects but was not released (%zu slabs, refcount %ld): "
                 "a dead cache must destroy itself when its last object is freed",
                 c.name.c_str(), c.slabs, c.refcount);
      return false;
    }
  }
  return true;
}

// ---- results of the read-only API ----
bool check_stats(const AllocatorStats& s, bool quiescent, std::string* why) {
  if (s.cgroups < 1) return *why = "stats(): no cgroup (the root always exists)", false;
  if (s.root_caches < 1) return *why = "stats(): no root cache (the kmalloc caches always exist)", false;
  if (s.children_freed > s.children_created)
    return *why = fmt("stats(): %" PRIu64 " children freed > %" PRIu64 " created", s.children_freed,
                      s.children_created),
           false;
  if (s.mapped_bytes % kPageSize)
    return *why = fmt("stats(): mapped_bytes %zu is not a whole number of pages", s.mapped_bytes), false;
  // Two counters read one after the other: while others churn, a slab and its chunk can be freed
  // between the two reads (a fuzz_threads base trial failed so, 1 page against 0 bytes).
  if (quiescent && s.slab_pages * kPageSize > s.mapped_bytes)
    return *why = fmt("stats(): %zu slab pages but only %zu bytes mapped", s.slab_pages, s.mapped_bytes), false;
  if (quiescent && s.child_caches != s.children_created - s.children_freed)
    return *why = fmt("stats() at a quiescent point: %zu child caches, but %" PRIu64 " created - %" PRIu64 " freed",
                      s.child_caches, s.children_created, s.children_freed),
           false;
  return true;
}

bool check_cgroup_stats(const CgroupStats& s, bool quiescent, std::string* why) {
  const char* p = s.path.c_str();
  if (s.path.empty() || s.path[0] != '/') return *why = fmt("cgroup_stats: path '%s' is not absolute", p), false;
  if (s.path != "/" && s.path.substr(s.path.rfind('/') + 1) != s.name)
    return *why = fmt("cgroup_stats: name '%s' is not the last component of '%s'", s.name.c_str(), p), false;
  if (s.css_refs < 0) return *why = fmt("cgroup_stats %s: css_refs %ld < 0", p, s.css_refs), false;
  if (s.usage % kPageSize || s.slab_bytes % kPageSize)
    return *why = fmt("cgroup_stats %s: usage %zu / slab %zu not whole pages", p, s.usage, s.slab_bytes), false;
  if (s.online && s.kmemcg_id < 0 && s.path != "/")
    return *why = fmt("cgroup_stats %s: online without a kmemcg id", p), false;
  if (s.usage > (size_t(1) << 48) || s.watermark > (size_t(1) << 48))
    return *why = fmt("cgroup_stats %s: usage %zu / watermark %zu (an underflow)", p, s.usage, s.watermark), false;
  if (quiescent && s.watermark < s.usage)
    return *why = fmt("cgroup_stats %s: watermark %zu below usage %zu", p, s.watermark, s.usage), false;
  return true;
}

namespace {
bool check_one_cache(const CacheStats& s, const char* what, std::string* why) {
  const char* n = s.name.c_str();
  if (s.active_objects > s.total_objects)
    return *why = fmt("%s %s: %zu active objects > %zu total", what, n, s.active_objects, s.total_objects), false;
  if (s.slot_size < s.object_size)
    return *why = fmt("%s %s: slot %zu smaller than the object %zu", what, n, s.slot_size, s.object_size), false;
  if (s.slab_pages == 0 || s.slab_pages > 64)
    return *why = fmt("%s %s: %u pages per slab", what, n, s.slab_pages), false;
  if (s.slabs && s.total_objects % s.slabs)
    return *why = fmt("%s %s: %zu objects in %zu slabs (not a whole number per slab)", what, n, s.total_objects,
                      s.slabs),
           false;
  if (s.total_objects > s.slabs * (s.slab_pages * kPageSize / std::max<size_t>(1, s.slot_size)))
    return *why = fmt("%s %s: %zu objects cannot fit %zu slabs of %u pages with %zu-byte slots", what, n,
                      s.total_objects, s.slabs, s.slab_pages, s.slot_size),
           false;
  return true;
}
}  // namespace

bool check_cache_stats(const CacheStats& s, std::string* why) {
  if (!s.is_root) return *why = "cache_stats of a root cache returned a child (" + s.name + ")", false;
  if (s.state != CacheState::kRoot && s.state != CacheState::kDestroyFailed)
    return *why = fmt("cache_stats %s: root in state %s", s.name.c_str(), cache_state_name(s.state)), false;
  if (s.refcount < 1) return *why = fmt("cache_stats %s: alias count %ld", s.name.c_str(), s.refcount), false;
  return check_one_cache(s, "cache_stats", why);
}

bool check_child_cache_stats(const CacheStats& root, const std::vector<CacheStats>& children, bool quiescent,
                             std::string* why) {
  std::map<std::string, std::string> active_in;  // cgroup -> its active child (the one in the root's array slot)
  for (const CacheStats& c : children) {
    if (c.is_root || c.state == CacheState::kRoot || c.state == CacheState::kFreed)
      return *why = fmt("child_cache_stats %s: child %s in state %s", root.name.c_str(), c.name.c_str(),
                        cache_state_name(c.state)),
             false;
    if (c.cgroup.empty() || c.cgroup[0] != '/')
      return *why = fmt("child_cache_stats: child %s has cgroup '%s'", c.name.c_str(), c.cgroup.c_str()), false;
    if (c.object_size != root.object_size || c.slot_size != root.slot_size)
      return *why = fmt("child %s: object/slot size %zu/%zu, its root %zu/%zu", c.name.c_str(), c.object_size,
                        c.slot_size, root.object_size, root.slot_size),
             false;
    if (c.state == CacheState::kActive && !active_in.emplace(c.cgroup, c.name).second)
      return *why = fmt("child_cache_stats %s: two active children for cgroup %s: %s and %s", root.name.c_str(),
                        c.cgroup.c_str(), active_in[c.cgroup].c_str(), c.name.c_str()),
             false;
    if (!check_one_cache(c, "child_cache_stats", why)) return false;
  }
  if (quiescent && root.children != children.size())
    return *why = fmt("cache %s: cache_stats says %zu children, child_cache_stats lists %zu", root.name.c_str(),
                      root.children, children.size()),
           false;
  return true;
}

bool check_slabinfo(const std::string& text, size_t quiescent_caches, std::string* why) {
  std::istringstream in(text);
  std::string line;
  if (!std::getline(in, line) || line.rfind("slabinfo - version:", 0) != 0)
    return *why = "slabinfo: first line is not the version line: '" + line + "'", false;
  if (!std::getline(in, line) || line.rfind("# name", 0) != 0)
    return *why = "slabinfo: second line is not the header: '" + line + "'", false;
  size_t caches = 0;
  while (std::getline(in, line)) {
    char name[128], state[32], cg[256];
    size_t active, num, objsize, aslabs, nslabs;
    unsigned perslab, pages;
    long ref;
    int n = std::sscanf(line.c_str(), "%127s %zu %zu %zu %u %u : slabdata %zu %zu : %31s %ld %255s", name, &active,
                        &num, &objsize, &perslab, &pages, &aslabs, &nslabs, state, &ref, cg);
    if (n != 11) return *why = fmt("slabinfo: line %zu does not parse (%d fields): '%s'", caches + 3, n, line.c_str()), false;
    if (active > num) return *why = "slabinfo: active > total objects: '" + line + "'", false;
    if (num != nslabs * perslab) return *why = "slabinfo: objects != slabs x objects per slab: '" + line + "'", false;
    bool known = false;
    for (int s = int(CacheState::kRoot); s <= int(CacheState::kDestroyFailed); ++s)
      known |= std::strcmp(state, cache_state_name(CacheState(s))) == 0;
    if (!known) return *why = fmt("slabinfo: unknown state '%s': '%s'", state, line.c_str()), false;
    ++caches;
  }
  if (quiescent_caches != SIZE_MAX && caches != quiescent_caches)
    return *why = fmt("slabinfo lists %zu caches, stats() says %zu", caches, quiescent_caches), false;
  return true;
}

bool check_memory_stat(const std::string& text, const CgroupStats* q, std::string* why) {
  static const char* const kKeys[] = {"path", "online", "kmemcg_id", "usage", "max", "watermark", "failcnt",
                                      "slab", "live_caches", "dying_caches", "css_refs", "attached_tasks"};
  std::map<std::string, std::string> kv;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    size_t sp = line.find(' ');
    if (sp == std::string::npos || sp == 0 || sp + 1 == line.size())
      return *why = "memory_stat: line is not 'key value': '" + line + "'", false;
    if (!kv.emplace(line.substr(0, sp), line.substr(sp + 1)).second)
      return *why = "memory_stat: key listed twice: '" + line + "'", false;
  }
  for (const char* k : kKeys) {
    auto it = kv.find(k);
    if (it == kv.end()) return *why = fmt("memory_stat: no '%s' line:\n%s", k, text.c_str()), false;
    if (std::strcmp(k, "path") == 0 || (std::strcmp(k, "max") == 0 && it->second == "max")) continue;
    const std::string& v = it->second;
    size_t i = v[0] == '-' && (std::strcmp(k, "kmemcg_id") == 0) ? 1 : 0;
    if (i == v.size() || v.find_first_not_of("0123456789", i) != std::string::npos)
      return *why = fmt("memory_stat: %s is not a count: '%s'", k, v.c_str()), false;
  }
  if (kv.size() != sizeof(kKeys) / sizeof(kKeys[0]))
    return *why = fmt("memory_stat: %zu keys, want %zu:\n%s", kv.size(), sizeof(kKeys) / sizeof(kKeys[0]), text.c_str()),
           false;
  if (q && (kv["path"] != q->path || kv["usage"] != std::to_string(q->usage) ||
            kv["slab"] != std::to_string(q->slab_bytes)))
    return *why = "memory_stat at a quiescent point disagrees with cgroup_stats (path " + q->path + ", usage " +
                  std::to_string(q->usage) + "):\n" + text,
           false;
  return true;
}

}  // namespace cgslab::harness
