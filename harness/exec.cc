// exec.cc: World, the part of running a program that both backends share: setup, the per-task
// loop, the one place where ops.def's attributes are applied (RCU skips, nowait, quiescent-only,
// expected errors), the object helpers the perform functions share, the failure report and the
// teardown to quiescence. Backend-specific behaviour comes only through Backend (ops.h).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "ops.h"

namespace cgslab::harness {

namespace {

using Perform = Outcome (*)(Task&, const Op&);
constexpr Perform kPerform[] = {
#define OP(name, group, dialect, attrs, err, a0, a1, a2) &op_##name,
#include "ops.def"
#undef OP
};
static_assert(sizeof(kPerform) / sizeof(kPerform[0]) == size_t(OpKind::kCount));

std::mutex g_fail_mu;

}  // namespace

Outcome Task::skip(const std::string& why) {
  note("skipped: " + why);
  return Outcome::kSkipped;
}

void Task::note(const std::string& s) {
  if (w && w->opts.trace) w->opts.trace("      " + s);
}

World::World(const Program& p, const RunOptions& o, const Backend& b)
    : prog(p), opts(o), backend(b), tasks(p.ntasks) {
  for (int i = 0; i < p.ntasks; ++i) {
    tasks[size_t(i)].idx = i;
    tasks[size_t(i)].w = this;
  }
}

World::~World() = default;

void World::fail(const std::string& what) {
  std::lock_guard<std::mutex> g(g_fail_mu);
  Task* c = backend.current();
  std::fprintf(stderr, "\ncgslab harness FAILURE (%s mode): %s\n", backend.mode, what.c_str());
  if (c && c->op) std::fprintf(stderr, "  while running: %s\n", print_op(*c->op).c_str());
  else std::fprintf(stderr, "  while running: %s\n", c ? "task start/end" : "setup/teardown or a service task");
  std::fprintf(stderr, "  program:\n%s", print(prog).c_str());
  std::fflush(stderr);
  std::abort();
}

void World::setup(unsigned slots) {
  errors = std::make_unique<ErrorChecker>(
      [this]() -> Expectation* {
        Task* t = backend.current();
        return t ? &t->expect : nullptr;
      },
      [this](const std::string& m) { fail(m); });
  Options o;
  o.on_error = errors->handler();
  o.nr_cpu_slots = slots;
  a = std::make_unique<Allocator>(o);
  m.cgs.push_back(CgEntry{a->root_cgroup(), 0});
  // One accounted cache from the start, so that short programs allocate accounted objects.
  Cache* c = a->cache_create("c0", 64, 8, kCacheAccount);
  if (!c) fail("setup: cache_create(c0) failed");
  m.caches.push_back(CacheObj{c, kCacheAccount, 64, kCacheTagBase, 1});
  m.handles.push_back(CacheHandle{0, true});
}

void World::run_task(int idx) {
  Task& t = tasks[size_t(idx)];
  backend.bind(&t);
  for (const Op& op : prog.ops) {
    if (op.task != idx) continue;
    backend.op_point();
    backend.set_boundary(false);
    t.op = &op;
    if (opts.trace) opts.trace(print_op(op));
    exec(t, op);
    ++ops;
    backend.set_boundary(true);
    if (opts.validate_each_op && backend.others_quiescent()) validate("after", op);
    t.op = nullptr;
  }
  backend.set_boundary(false);
  // Task end: leave RCU sections and scopes, like a thread that returns.
  while (t.rcu_depth > 0) rcu_unlock(t);
  while (!t.scopes.empty()) t.scopes.pop_back();
  backend.bind(nullptr);
}

void World::exec(Task& t, const Op& op) {
  const OpInfo& info = op_info(op.kind);
  const bool in_rcu = t.rcu_depth > 0;
  // A sleeping call inside the task's own read section would wait for a grace period on itself:
  // a harness deadlock, not an allocator bug.
  if ((info.attrs & kMaySleep) && !(info.attrs & kAllowedInRcu) && in_rcu) {
    t.skip("may sleep inside an RCU read section");
    return;
  }
  t.quiescent = backend.others_quiescent();
  if ((info.attrs & kQuiescentOnly) && !t.quiescent) {
    t.skip("other tasks are inside operations");
    return;
  }
  t.nowait = in_rcu;
  Perform perform = kPerform[size_t(op.kind)];
  if (!info.expects_error) {
    perform(t, op);
    return;
  }
  Expect e(&t.expect, info.error, /*once=*/true);
  if (perform(t, op) == Outcome::kDone && e.hits() == 0)
    fail(std::string("misuse not reported: ") + print_op(op) + " should report " + error_kind_name(info.error));
}

void World::validate(const char* when, const Op& op) {
  std::string report;
  bool ok = true;
  backend.atomically([&] { ok = a->validate(&report); });
  ++validations;
  if (!ok) fail(std::string("validate() failed ") + when + " " + print_op(op) + ":\n" + report);
}

void World::check_settled(const std::string& when) {
  std::vector<CacheStats> children;
  backend.atomically([&] {
    std::lock_guard<std::mutex> g(m.mu);
    for (const CacheObj& co : m.caches)
      if (!co.destroyed) {
        std::vector<CacheStats> k = a->child_cache_stats(co.c);
        children.insert(children.end(), k.begin(), k.end());
      }
  });
  std::string why;
  if (!harness::check_settled(children, &why)) fail(why + " (" + when + ")");
}

Cache* World::pin_cache(uint64_t raw, int* cobj) {
  std::lock_guard<std::mutex> g(m.mu);
  int h = m.pick_cache(raw);
  if (h < 0) return nullptr;
  *cobj = m.handles[size_t(h)].obj;
  ++m.caches[size_t(*cobj)].busy;
  return m.caches[size_t(*cobj)].c;
}

void World::unpin_cache(int cobj) {
  std::lock_guard<std::mutex> g(m.mu);
  --m.caches[size_t(cobj)].busy;
}

bool World::alloc_one(Task& t, int cobj, Cache* c, unsigned gfp) {
  unsigned real_gfp = gfp & ~kGfpReclaimable;
  unsigned flags;
  {
    std::lock_guard<std::mutex> g(m.mu);
    flags = m.caches[size_t(cobj)].flags;
  }
  // On real threads, zeroing a TYPESAFE_BY_RCU object races with its RCU readers by design
  // (plain memset vs. their atomic loads); keep that benign kernel pattern out of TSan's view.
  if (backend.real_threads && (flags & kCacheTypesafeByRcu)) real_gfp &= ~kGfpZero;
  if (t.nowait) real_gfp |= kGfpNoWait;
  void* p = a->cache_alloc(c, real_gfp);
  if (p) check_charged_to(t, p);
  std::lock_guard<std::mutex> g(m.mu);
  CacheObj& co = m.caches[size_t(cobj)];
  if (!p) return false;
  std::string why;
  if ((real_gfp & kGfpZero) && !(co.flags & kCacheCtor) && !check_zeroed(p, co.size, &why)) fail(why);
  uint64_t st = m.next_stamp(co.tag);
  stamp_write(p, co.size, st);
  ++co.live;
  m.objs.push_back(ObjRec{p, cobj, co.size, st, (gfp & kGfpReclaimable) != 0, t.idx});
  return true;
}

void World::check_charged_to(Task& t, const void* p) {
  // The task's charge target: its innermost remote scope, else its innermost attach, else root.
  Cgroup* target = nullptr;
  for (auto s = t.scopes.rbegin(); s != t.scopes.rend() && !target; ++s)
    if (s->remote && s->remote->cgroup()) target = s->remote->cgroup();
  for (auto s = t.scopes.rbegin(); s != t.scopes.rend() && !target; ++s)
    if (s->attach && s->attach->cgroup()) target = s->attach->cgroup();
  if (!target) target = a->root_cgroup();
  Cgroup* got = a->object_cgroup(p);
  for (Cgroup* x = target; x; x = a->cgroup_parent(x))
    if (x == got) return;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%p", p);
  fail(std::string("object ") + buf + " is charged to cgroup " + (got ? a->cgroup_stats(got).path : "(none)") +
       ", which is neither the allocating task's charge target " + a->cgroup_stats(target).path +
       " nor one of its ancestors");
}

void World::free_obj(const ObjRec& o, bool use_kfree) {
  std::string why;
  if (!stamp_check(o.p, o.size, o.stamp, 0, &why)) fail(why);
  if (o.cobj < 0 || use_kfree) {
    a->kfree(o.p);
  } else {
    Cache* c;
    {
      std::lock_guard<std::mutex> g(m.mu);
      c = m.caches[size_t(o.cobj)].c;
    }
    a->cache_free(c, o.p);
  }
  if (o.cobj >= 0) {
    std::lock_guard<std::mutex> g(m.mu);
    --m.caches[size_t(o.cobj)].live;
  }
}

size_t World::free_some(int owner, size_t n, bool reclaimable_only) {
  size_t bytes = 0;
  for (size_t k = 0; k < n; ++k) {
    ObjRec o;
    {
      std::lock_guard<std::mutex> g(m.mu);
      int pick = -1;
      for (size_t i = m.objs.size(); i-- > 0;)
        if ((owner < 0 || m.objs[i].owner == owner) && (!reclaimable_only || m.objs[i].reclaimable)) {
          pick = int(i);
          break;
        }
      if (pick < 0) break;
      o = m.take_obj(pick);
    }
    free_obj(o, false);
    bytes += o.size;
  }
  return bytes;
}

void World::rcu_check(const RcuRef& r) {
  // A TYPESAFE_BY_RCU object may be freed and reused under a reader, but only as an object of
  // the same cache: its head word is this cache's stamp, zero (__GFP_ZERO) or the ctor pattern.
  uint64_t w = stamp_head(r.p);
  if (stamp_tag(w) != r.tag && w != 0 && w != kCtorPattern) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "TYPESAFE_BY_RCU object changed type inside an RCU read section: word %#llx, cache tag %#x",
                  static_cast<unsigned long long>(w), r.tag);
    fail(buf);
  }
}

void World::rcu_unlock(Task& t) {
  if (t.rcu_depth == 1) {
    for (const RcuRef& r : t.rcu_refs) rcu_check(r);
    std::lock_guard<std::mutex> g(m.mu);
    for (const RcuRef& r : t.rcu_refs) --m.caches[size_t(r.cobj)].busy;
    t.rcu_refs.clear();
  }
  a->rcu_read_unlock();
  --t.rcu_depth;
}

void World::teardown() {
  Task td;
  td.w = this;
  backend.bind(&td);
  a->fail_nth_mapping_for_testing(0);
  a->fail_nth_internal_alloc_for_testing(0);
  for (ObjRec& o : m.objs) free_obj(o, false);
  m.objs.clear();
  a->drain();
  check_settled("teardown, every object freed");
  for (size_t h = 0; h < m.handles.size(); ++h) {
    if (!m.handles[h].alive) continue;
    CacheObj& co = m.caches[size_t(m.handles[h].obj)];
    if (!a->cache_destroy(co.c)) fail("teardown: cache_destroy(" + std::to_string(h) + ") refused");
    m.handles[h].alive = false;
    if (--co.handles == 0) co.destroyed = true;
  }
  std::vector<size_t> order;
  for (size_t i = 1; i < m.cgs.size(); ++i)
    if (m.cgs[i].online) order.push_back(i);
  std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) { return m.cgs[x].depth > m.cgs[y].depth; });
  for (size_t i : order) {
    if (!a->cgroup_offline(m.cgs[i].cg)) fail("teardown: cgroup_offline(cg" + std::to_string(i) + ") refused");
    m.cgs[i].online = false;
  }
  settle(*a);
  std::string why;
  bool ok = nothing_left(*a, &why, [&](std::string* rep) {
    bool v = true;
    backend.atomically([&] { v = a->validate(rep); });
    ++validations;
    return v;
  });
  if (!ok) fail(why);
  a.reset();
  backend.bind(nullptr);
}

RunStats World::stats() const {
  RunStats s;
  s.ops = ops;
  s.validations = validations;
  s.errors_expected = errors ? errors->expected() : 0;
  s.introspections = introspections;
  return s;
}

}  // namespace cgslab::harness
