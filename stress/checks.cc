// checks.cc: see checks.h.
#include "checks.h"

#include <algorithm>
#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <thread>

namespace cgslab::stress {

namespace {
thread_local int t_expect_kind = -1;
thread_local uint64_t t_expect_hits = 0;
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
}  // namespace

unsigned default_cpu_slots() { return std::max(4u, 2 * std::max(1u, std::thread::hardware_concurrency())); }

ErrorHandler ErrorSink::handler() {
  return [this](const Error& e) {
    if (t_expect_kind == int(e.kind)) {
      ++t_expect_hits;
      expected_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    unexpected_.fetch_add(1, std::memory_order_relaxed);
    run_.fail(std::string("unexpected allocator error: ") + error_kind_name(e.kind) + ": " + e.message);
  };
}

ErrorSink::Expect::Expect(ErrorKind kind) {
  t_expect_kind = int(kind);
  t_expect_hits = 0;
}
ErrorSink::Expect::~Expect() { t_expect_kind = -1; }
uint64_t ErrorSink::Expect::hits() const { return t_expect_hits; }

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

bool check_empty(Allocator& a, std::string* why) {
  a.drain();
  std::string rep;
  if (!a.validate(&rep)) {
    *why = "teardown: validate() failed:\n" + rep;
    return false;
  }
  a.shrink_all();
  a.drain();
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
  if (!a.validate(&rep)) left += " validate() after shrink_all failed: " + rep;
  if (!left.empty()) {
    *why = "teardown to quiescence left:" + left + "\n" + a.slabinfo();
    return false;
  }
  return true;
}

}  // namespace cgslab::stress
