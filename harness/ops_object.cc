// ops_object.cc: allocating and freeing objects. Every object is stamped (oracles.h) when
// allocated and checked when freed; __GFP_ZERO objects are checked for zeros first. Inside an
// RCU read section allocations are made with kGfpNoWait (Task::nowait, set by the executor).
// At most kMaxObjects live objects.
#include <algorithm>

#include "ops.h"

namespace cgslab::harness {

namespace {
Outcome alloc_n(Task& t, uint64_t raw_cache, size_t n, unsigned gfp) {
  World& w = *t.w;
  size_t got = 0;
  for (size_t i = 0; i < n; ++i) {
    {
      std::lock_guard<std::mutex> g(w.m.mu);
      if (w.m.objs.size() >= kMaxObjects) break;
    }
    int cobj;
    Cache* cache = w.pin_cache(raw_cache, &cobj);
    if (!cache) break;
    got += w.alloc_one(t, cobj, cache, gfp);
    w.unpin_cache(cobj);
  }
  t.note("allocated " + std::to_string(got) + "/" + std::to_string(n));
  return Outcome::kDone;
}
}  // namespace

Outcome op_alloc(Task& t, const Op& op) { return alloc_n(t, arg(op, 0), 1, unsigned(arg(op, 1))); }

Outcome op_alloc_many(Task& t, const Op& op) { return alloc_n(t, arg(op, 0), arg(op, 1), unsigned(arg(op, 2))); }

Outcome op_kmalloc(Task& t, const Op& op) {
  World& w = *t.w;
  size_t size = arg(op, 0);
  unsigned want = unsigned(arg(op, 1));
  unsigned gfp = want & ~kGfpReclaimable;
  if (t.nowait) gfp |= kGfpNoWait;
  void* p = w.a->kmalloc(size, gfp);
  if (!p) {
    t.note("-> failed");
    return Outcome::kDone;
  }
  std::string why;
  if ((gfp & kGfpZero) && !check_zeroed(p, size, &why)) w.fail(why);
  std::lock_guard<std::mutex> g(w.m.mu);
  uint64_t st = w.m.next_stamp(kKmallocTag);
  stamp_write(p, size, st);
  w.m.objs.push_back(ObjRec{p, -1, size, st, (want & kGfpReclaimable) != 0, t.idx});
  return Outcome::kDone;
}

Outcome op_free(Task& t, const Op& op) {
  World& w = *t.w;
  ObjRec o;
  {
    std::lock_guard<std::mutex> g(w.m.mu);
    int i = w.m.pick_obj(arg(op, 0), false);
    if (i < 0) return t.skip("no object");
    o = w.m.take_obj(i);
  }
  w.free_obj(o, arg(op, 1) != 0);
  return Outcome::kDone;
}

Outcome op_free_many(Task& t, const Op& op) {
  t.w->free_some(t.idx, arg(op, 0), false);
  return Outcome::kDone;
}

}  // namespace cgslab::harness
