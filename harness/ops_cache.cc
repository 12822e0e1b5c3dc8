// ops_cache.cc: the cache operations: create (same geometry and flags = an alias of an existing
// cache, one more handle on the same CacheObj), shrink, destroy (an alias handle at any time; the
// last handle only of a cache with no objects and no users: destroying a busy cache is misuse,
// covered by destroy_busy), shrink_all.
#include <cstring>

#include "ops.h"

namespace cgslab::harness {

namespace {
void harness_ctor(void* p) { std::memcpy(p, &kCtorPattern, sizeof kCtorPattern); }
}  // namespace

Outcome op_cache_create(Task& t, const Op& op) {
  World& w = *t.w;
  unsigned all = unsigned(arg(op, 1));
  unsigned flags = all & ~kCacheCtor;
  bool ctor = all & kCacheCtor;
  size_t size = arg(op, 0);
  std::string name;
  {
    std::lock_guard<std::mutex> g(w.m.mu);
    if (w.m.handles.size() >= kMaxCacheHandles) return t.skip("handle limit");
    name = "c" + std::to_string(w.m.handles.size());
  }
  Cache* c = w.a->cache_create(name, size, arg(op, 2), flags, ctor ? &harness_ctor : nullptr);
  if (!c) {
    t.note("-> failed (injected fault)");
    return Outcome::kDone;
  }
  std::lock_guard<std::mutex> g(w.m.mu);
  int found = -1;
  for (size_t i = 0; i < w.m.caches.size(); ++i)
    if (w.m.caches[i].c == c && !w.m.caches[i].destroyed) found = int(i);
  if (found < 0) {
    w.m.caches.push_back(CacheObj{c, all, size, kCacheTagBase + uint32_t(w.m.caches.size())});
    found = int(w.m.caches.size() - 1);
  }
  ++w.m.caches[size_t(found)].handles;
  w.m.handles.push_back(CacheHandle{found, true});
  t.note("-> cache" + std::to_string(w.m.handles.size() - 1) + " (object " + std::to_string(found) + ")");
  return Outcome::kDone;
}

Outcome op_cache_shrink(Task& t, const Op& op) {
  int cobj;
  Cache* cache = t.w->pin_cache(arg(op, 0), &cobj);
  if (!cache) return t.skip("no cache");
  t.w->a->cache_shrink(cache);
  t.w->unpin_cache(cobj);
  return Outcome::kDone;
}

Outcome op_cache_destroy(Task& t, const Op& op) {
  World& w = *t.w;
  int h, cobj;
  Cache* cache;
  {
    std::lock_guard<std::mutex> g(w.m.mu);
    h = w.m.pick_cache(arg(op, 0));
    if (h < 0) return t.skip("no cache");
    cobj = w.m.handles[size_t(h)].obj;
    CacheObj& co = w.m.caches[size_t(cobj)];
    // Dropping one alias of a merged cache is allowed with objects live; the last handle only
    // without. One destroy per cache object at a time, so the harness knows which one is last.
    if (co.destroying) return t.skip("cache being destroyed");
    if (co.handles == 1 && (co.live || co.busy)) return t.skip("cache in use");
    w.m.handles[size_t(h)].alive = false;
    co.destroying = true;
    cache = co.c;
  }
  if (!w.a->cache_destroy(cache)) w.fail("cache_destroy refused a cache with no objects");
  std::lock_guard<std::mutex> g(w.m.mu);
  CacheObj& co = w.m.caches[size_t(cobj)];
  if (--co.handles == 0) co.destroyed = true;
  co.destroying = false;
  t.note("cache" + std::to_string(h) + " destroyed");
  return Outcome::kDone;
}

Outcome op_shrink_all(Task& t, const Op&) {
  t.w->a->shrink_all();
  return Outcome::kDone;
}

}  // namespace cgslab::harness
