// model.h: the harness's book of what a program made: cgroups, caches (and their alias handles)
// and objects, indexed the way operations name them (kCg/kCache/kObj arguments: the n-th eligible
// entry, modulo the count). The model decides which handle an op uses and what may be done to it
// (a cache with objects or users is not destroyed by the lifecycle dialect; a cgroup in use is not
// taken offline); the allocator is never called from here.
//
// Locking: Model::mu guards every table. Perform functions take it to pick and pin an entry, drop
// it across the allocator call and take it again to record the result; it is never held across
// an allocator call (an allocator call may run the program's shrinker, which takes it).
#pragma once

#include <cstdint>
#include <mutex>
#include <vector>

#include "cgslab/cgslab.h"

namespace cgslab::harness {

struct CacheObj {
  Cache* c = nullptr;
  unsigned flags = 0;  // API flags | kCacheCtor
  size_t size = 0;
  uint32_t tag = 0;    // stamp tag of its objects
  int handles = 0;     // alias handles naming it
  long live = 0;       // objects allocated and not yet freed (by the harness's book)
  int busy = 0;        // ops in flight on it, RCU readers holding its objects
  bool destroying = false;
  bool destroyed = false;
};
struct CacheHandle {
  int obj;  // index into caches
  bool alive;
};
struct CgEntry {
  Cgroup* cg;
  int depth;
  bool online = true;
  bool offlining = false;
  int busy = 0;  // ops in flight holding its Cgroup*
};
struct ObjRec {
  void* p;
  int cobj;  // -1: kmalloc
  size_t size;
  uint64_t stamp;
  bool reclaimable;  // the program's shrinker may free it
  int owner;         // task index
};

inline constexpr uint32_t kKmallocTag = 0x4B4D0000u;
inline constexpr uint32_t kCacheTagBase = 0xCA000000u;
inline constexpr size_t kMaxObjects = 4096, kMaxCacheHandles = 32, kMaxCgroups = 24;
inline constexpr int kMaxCgroupDepth = 4;

struct Model {
  std::mutex mu;
  std::vector<CacheObj> caches;
  std::vector<CacheHandle> handles;
  std::vector<CgEntry> cgs;  // [0] is the root
  // The number in the next cgroup's name ("cg<n>"): taken under mu when the create starts, so two
  // tasks creating at once get two names (the path is what the oracles tell cgroups apart by).
  unsigned next_cg_name = 1;
  std::vector<ObjRec> objs;
  uint32_t serial = 0;

  // The (raw % n)-th of the n entries from `from` on that satisfy ok, or -1. mu held.
  template <class V, class Pred>
  static int pick(const V& v, size_t from, uint64_t raw, Pred ok) {
    size_t n = 0;
    for (size_t i = from; i < v.size(); ++i) n += ok(v[i]);
    if (!n) return -1;
    size_t k = size_t(raw % n);
    for (size_t i = from; i < v.size(); ++i)
      if (ok(v[i]) && k-- == 0) return int(i);
    return -1;
  }
  int pick_cg(uint64_t raw, bool allow_root) {
    return pick(cgs, allow_root ? 0 : 1, raw, [](const CgEntry& c) { return c.online && !c.offlining; });
  }
  int pick_cache(uint64_t raw) {
    return pick(handles, 0, raw, [&](const CacheHandle& h) { return h.alive && !caches[size_t(h.obj)].destroying; });
  }
  int pick_obj(uint64_t raw, bool typesafe_only) {
    return pick(objs, 0, raw, [&](const ObjRec& o) {
      return !typesafe_only || (o.cobj >= 0 && (caches[size_t(o.cobj)].flags & kCacheTypesafeByRcu));
    });
  }
  ObjRec take_obj(int i) {
    ObjRec o = objs[size_t(i)];
    objs[size_t(i)] = objs.back();
    objs.pop_back();
    return o;
  }
  uint64_t next_stamp(uint32_t tag) { return (uint64_t(tag) << 32) | ++serial; }
};

}  // namespace cgslab::harness
