// ops_misuse.cc: the api dialect's misuse. Each op does one wrong thing whose error ops.def names;
// the executor arms that expectation around the call and fails the run when the error is missing
// or raised twice. An op that finds nothing to misuse returns kSkipped (no error expected). After
// the misuse the allocator's state must still validate (the faulty call is not carried out).
#include <cstring>

#include "ops.h"

namespace cgslab::harness {

Outcome op_double_free(Task& t, const Op& op) {
  World& w = *t.w;
  int i = w.m.pick_obj(arg(op, 0), false);
  if (i < 0) return t.skip("no object");
  ObjRec o = w.m.take_obj(i);
  w.free_obj(o, false);
  w.a->kfree(o.p);
  return Outcome::kDone;
}

Outcome op_free_interior(Task& t, const Op& op) {
  World& w = *t.w;
  int i = w.m.pick_obj(arg(op, 0), false);
  if (i < 0) return t.skip("no object");
  const ObjRec& o = w.m.objs[size_t(i)];
  size_t off = arg(op, 1);
  if (off >= o.size) return t.skip("offset " + std::to_string(off) + " not inside the object");
  w.a->kfree(static_cast<char*>(o.p) + off);
  return Outcome::kDone;
}

Outcome op_free_foreign(Task& t, const Op& op) {
  static char static_buf[64];
  std::unique_ptr<char[]> heap(new char[64]);
  char* p = arg(op, 0) == 1 ? heap.get() : static_buf;
  t.w->a->kfree(p);
  return Outcome::kDone;
}

Outcome op_free_wrong_cache(Task& t, const Op& op) {
  World& w = *t.w;
  int i = w.m.pick_obj(arg(op, 0), false), h = w.m.pick_cache(arg(op, 1));
  if (i < 0 || h < 0) return t.skip("no object or cache");
  const ObjRec& o = w.m.objs[size_t(i)];
  int cobj = w.m.handles[size_t(h)].obj;
  if (cobj == o.cobj) return t.skip("same cache");
  w.a->cache_free(w.m.caches[size_t(cobj)].c, o.p);
  return Outcome::kDone;
}

Outcome op_use_destroyed_cache(Task& t, const Op& op) {
  World& w = *t.w;
  int h = w.m.pick_cache(arg(op, 0));
  if (h < 0) return t.skip("no cache");
  int cobj = w.m.handles[size_t(h)].obj;
  CacheObj& co = w.m.caches[size_t(cobj)];
  if (co.live || co.handles != 1) return t.skip("cache has objects or aliases");
  if (!w.a->cache_destroy(co.c)) w.fail("cache_destroy refused a cache with no objects");
  w.m.handles[size_t(h)].alive = false;
  co.handles = 0;
  co.destroyed = true;
  if (w.a->cache_alloc(co.c)) w.fail("cache_alloc from a destroyed cache returned an object");
  return Outcome::kDone;
}

Outcome op_offline_twice(Task& t, const Op& op) {
  World& w = *t.w;
  int c = w.m.pick_cg(arg(op, 0), false);
  if (c < 0) return t.skip("no cgroup");
  Cgroup* cg = w.m.cgs[size_t(c)].cg;
  RemoteChargeScope pin(cg);  // a css reference keeps the handle valid after offline
  if (!w.a->cgroup_offline(cg)) return t.skip("busy (attached or has children)");
  w.m.cgs[size_t(c)].online = false;
  if (w.a->cgroup_offline(cg)) w.fail("the second cgroup_offline succeeded");
  return Outcome::kDone;
}

Outcome op_offline_root(Task& t, const Op&) {
  if (t.w->a->cgroup_offline(t.w->a->root_cgroup())) t.w->fail("cgroup_offline(root) succeeded");
  return Outcome::kDone;
}

Outcome op_bad_cache_args(Task& t, const Op& op) {
  Allocator& a = *t.w->a;
  Cache* c = nullptr;
  switch (BadCacheArg(arg(op, 0))) {
    case BadCacheArg::kSizeZero: c = a.cache_create("bad", 0, 8, 0); break;
    case BadCacheArg::kHuge: c = a.cache_create("bad", kMaxObjectSize + 1, 8, 0); break;
    case BadCacheArg::kAlign24: c = a.cache_create("bad", 64, 24, 0); break;
    case BadCacheArg::kFlags: c = a.cache_create("bad", 64, 8, 1u << 12); break;
  }
  if (c) t.w->fail("cache_create with bad arguments returned a cache");
  return Outcome::kDone;
}

Outcome op_bad_gfp(Task& t, const Op& op) {
  if (void* p = t.w->a->kmalloc(64, 1u << arg(op, 0))) {
    t.w->a->kfree(p);
    t.w->fail("kmalloc with unknown gfp bits returned an object");
  }
  return Outcome::kDone;
}

Outcome op_unbalanced_rcu_unlock(Task& t, const Op&) {
  if (t.rcu_depth) return t.skip("inside a read section");
  t.w->a->rcu_read_unlock();
  return Outcome::kDone;
}

Outcome op_sync_in_rcu(Task& t, const Op&) {
  if (!t.rcu_depth) return t.skip("not inside a read section");
  t.w->a->synchronize_rcu();
  return Outcome::kDone;
}

Outcome op_destroy_busy(Task& t, const Op& op) {
  World& w = *t.w;
  int h = w.m.pick_cache(arg(op, 0));
  if (h < 0) return t.skip("no cache");
  int cobj = w.m.handles[size_t(h)].obj;
  if (w.m.caches[size_t(cobj)].live == 0 || w.m.caches[size_t(cobj)].handles != 1 || h == 0)
    return t.skip("no objects, or aliases");
  if (w.a->cache_destroy(w.m.caches[size_t(cobj)].c)) w.fail("cache_destroy with objects succeeded");
  // The cache is kept but dead: free its objects with kfree, never allocate from it again.
  w.m.handles[size_t(h)].alive = false;
  for (size_t i = w.m.objs.size(); i-- > 0;)
    if (w.m.objs[i].cobj == cobj) {
      ObjRec o = w.m.take_obj(int(i));
      w.free_obj(o, true);
    }
  return Outcome::kDone;
}

}  // namespace cgslab::harness
