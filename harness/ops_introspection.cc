// ops_introspection.cc: the read-only API (stats, cgroup_stats, cache_stats, child_cache_stats,
// slabinfo, memory_stat, validate), called by any task at any point while the others churn,
// each result checked for internal consistency (oracles.h). When every other task is at an
// operation boundary (sim: Task::quiescent) the stronger, quiescent checks apply too, read
// without a task switch. A cgroup or cache is pinned in the model while it is read.
#include "ops.h"

namespace cgslab::harness {

namespace {
void check(Task& t, bool ok, const std::string& why) {
  ++t.w->introspections;
  if (!ok) t.w->fail(why);
}
// fn(quiescent) under the backend's no-switch section when quiescent, plainly otherwise.
template <class F>
void read(Task& t, F fn) {
  if (t.quiescent) t.w->backend.atomically([&] { fn(true); });
  else fn(false);
}
// A cgroup to read, pinned (busy) so that no other task takes it offline meanwhile.
Cgroup* pin_cgroup(World& w, const Op& op, int* c) {
  std::lock_guard<std::mutex> g(w.m.mu);
  *c = w.m.pick_cg(arg(op, 0), true);
  if (*c < 0) return nullptr;
  ++w.m.cgs[size_t(*c)].busy;
  return w.m.cgs[size_t(*c)].cg;
}
void unpin_cgroup(World& w, int c) {
  std::lock_guard<std::mutex> g(w.m.mu);
  --w.m.cgs[size_t(c)].busy;
}
}  // namespace

Outcome op_stats(Task& t, const Op&) {
  read(t, [&](bool q) {
    std::string why;
    check(t, check_stats(t.w->a->stats(), q, &why), why);
  });
  return Outcome::kDone;
}

Outcome op_cgroup_stats(Task& t, const Op& op) {
  World& w = *t.w;
  int c;
  Cgroup* cg = pin_cgroup(w, op, &c);
  if (!cg) return t.skip("no cgroup");
  read(t, [&](bool q) {
    std::string why;
    CgroupStats s = w.a->cgroup_stats(cg);
    bool ok = check_cgroup_stats(s, q, &why);
    if (ok && !s.online) ok = false, why = "cgroup_stats: cgroup " + s.path + " is online in the model, stats say offline";
    check(t, ok, why);
  });
  unpin_cgroup(w, c);
  return Outcome::kDone;
}

Outcome op_memory_stat(Task& t, const Op& op) {
  World& w = *t.w;
  int c;
  Cgroup* cg = pin_cgroup(w, op, &c);
  if (!cg) return t.skip("no cgroup");
  read(t, [&](bool q) {
    std::string why, text = w.a->memory_stat(cg);
    CgroupStats s;
    if (q) s = w.a->cgroup_stats(cg);
    check(t, check_memory_stat(text, q ? &s : nullptr, &why), why);
  });
  unpin_cgroup(w, c);
  return Outcome::kDone;
}

Outcome op_cache_stats(Task& t, const Op& op) {
  int cobj;
  Cache* c = t.w->pin_cache(arg(op, 0), &cobj);
  if (!c) return t.skip("no cache");
  std::string why;
  check(t, check_cache_stats(t.w->a->cache_stats(c), &why), why);
  t.w->unpin_cache(cobj);
  return Outcome::kDone;
}

Outcome op_child_cache_stats(Task& t, const Op& op) {
  int cobj;
  Cache* c = t.w->pin_cache(arg(op, 0), &cobj);
  if (!c) return t.skip("no cache");
  read(t, [&](bool q) {
    std::string why;
    CacheStats root = t.w->a->cache_stats(c);
    check(t, check_child_cache_stats(root, t.w->a->child_cache_stats(c), q, &why), why);
  });
  t.w->unpin_cache(cobj);
  return Outcome::kDone;
}

Outcome op_slabinfo(Task& t, const Op&) {
  read(t, [&](bool q) {
    std::string why, text = t.w->a->slabinfo();
    size_t caches = SIZE_MAX;
    if (q) {
      AllocatorStats s = t.w->a->stats();
      caches = s.root_caches + s.child_caches;
    }
    check(t, check_slabinfo(text, caches, &why), why);
  });
  return Outcome::kDone;
}

Outcome op_validate(Task& t, const Op& op) {
  t.w->validate("by", op);
  return Outcome::kDone;
}

}  // namespace cgslab::harness
