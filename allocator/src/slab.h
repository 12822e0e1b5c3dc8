// slab.h: layer 4, slab caches (kernel: mm/slab.c / mm/slub.c and the kmem_cache struct).
//
// A Cache owns its slabs (runs of 2^order pages from PageAlloc) on two lists, partial and full,
// guarded by list_lock, and one magazine (kernel SLAB: array_cache) per cpu slot. The fast path
// pops/pushes the magazine of the slot the thread owns: no shared lock, no shared atomic RMW.
// A full magazine flushes half of itself to the slabs; an empty one refills from partial slabs;
// only when no slab has a free object is a new slab allocated, with the slot released, because
// charging a child cache's page may reclaim ("may sleep").
//
// Invariants (checked by validate): a slab's inuse = objects not on its freelist; it is on the
// full list iff its freelist is empty; a live cache keeps at most min_partial empty slabs; a dead
// (deactivated) cache keeps none and bypasses magazines, so its last free releases its last slab
// (dead cache self-destruction, Davydov 2014). Every free object carries a marker keyed by its
// address, checked on free: a hit is confirmed by searching the free lists before a double free
// is reported, so a live object that happens to hold the marker value is never reported.
//
// Child (per-cgroup) caches: each slab page takes one percpu_ref reference and is charged to the
// cache's current cgroup under memcg's charge_lock, which also guards charged_pages; freeing a
// page uncharges the cache's *current* cgroup (it may have been reparented since).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "list.h"
#include "memcg.h"
#include "page_alloc.h"
#include "percpu_ref.h"
#include "platform/platform.h"

namespace cgslab {

inline constexpr unsigned kMagazineMax = 128;
inline constexpr unsigned kInternalNoMerge = 1u << 30;  // kmalloc caches

class Slab;
struct Cache;

// root->memcg_caches (kernel: struct memcg_cache_array), published with RCU.
struct MemcgCacheArray {
  platform::RcuHead rcu;
  platform::OsMemory* mem;
  int size;
  std::atomic<Cache*> entries[1];  // [size]
};
// Entry value while a creation work item is queued for that id (state kQueued).
inline Cache* const kCachePending = reinterpret_cast<Cache*>(uintptr_t(1));
inline bool is_real_cache(const Cache* c) { return uintptr_t(c) > 1; }

struct alignas(64) CpuCache {
  std::atomic<long> ref{0};  // percpu_ref counter of this slot (child caches)
  uint32_t avail = 0;
  uint32_t limit = 0;
  void* entries[kMagazineMax];
};

struct Cache {
  static constexpr uint64_t kLiveMagic = 0x454843414342414cull;
  static constexpr uint64_t kDeadMagic = 0xdeadcac4edeadca4ull;
  static void destroy(Cache* c);

  // --- hot, read-mostly ---
  std::atomic<uint64_t> magic{kLiveMagic};
  CpuCache* cpu = nullptr;      // [nr_slots]
  std::atomic<bool> dead{false};  // deactivated: no magazines, empty slabs discarded at once
  uint32_t size = 0;            // object size asked for
  uint32_t slot_size = 0;       // bytes per object in a slab
  uint64_t slot_recip = 0;      // ceil(2^64 / slot_size): offset checks without a division
  uint32_t free_off = 0;        // where the free-object metadata (next, marker) lives
  uint32_t align = 0;
  unsigned flags = 0;
  uint8_t order = 0;
  uint16_t objs_per_slab = 0;
  void (*ctor)(void*) = nullptr;
  Cache* root = nullptr;        // self for a root cache
  Slab* slab = nullptr;
  std::string name;

  // --- slabs (kernel: kmem_cache_node) ---
  platform::Mutex list_lock{"kmem_cache_node.list_lock"};
  ListNode partial;  // of PageDesc via PageDesc::lru (see slab.cc)
  ListNode full;
  size_t nr_slabs GUARDED_BY(list_lock) = 0;
  size_t nr_empty GUARDED_BY(list_lock) = 0;
  size_t nr_free GUARDED_BY(list_lock) = 0;  // free objects on slab freelists
  static constexpr unsigned kMinPartial = 8;
  unsigned min_partial = kMinPartial;  // empty slabs a live cache keeps (kernel SLUB: 5..10)
  std::atomic<size_t> nr_rcu_slabs{0};  // TYPESAFE_BY_RCU slabs waiting for a grace period

  // --- root caches (slab_mutex of layer 5) ---
  std::atomic<MemcgCacheArray*> memcg_caches{nullptr};
  ListNode children;       // all child caches, any state
  ListNode list;           // in the list of root caches
  int refcount = 1;        // alias count
  std::atomic<bool> dying{false};
  std::atomic<uint8_t> root_state{0};  // 0 live, 1 destroy failed

  // --- child caches ---
  std::atomic<Cgroup*> memcg{nullptr};  // current cgroup (charge_lock to change)
  std::atomic<long> charged_pages{0};   // charge_lock
  PercpuRef refcnt;
  std::atomic<CacheState> state{CacheState::kRoot};
  ListNode children_node;  // in root->children
  ListNode kmem_caches_node;  // in memcg->kmem_caches
  struct CacheWork : platform::Work {
    Cache* cache;
  } work;
  struct CacheRcu : platform::RcuHead {
    Cache* cache;
  } rcu;

  bool is_root() const { return root == this; }
};

// PageDesc::list of a slab page: which of its cache's lists it is on (list_lock).
enum : uint8_t { kListNone = 0, kListPartial = 1, kListFull = 2 };
inline PageDesc* pd_of(ListNode* n) { return container<PageDesc, &PageDesc::lru>(n); }

inline Cache* cache_of(ListNode* n, ListNode Cache::*m) {
  const size_t off = reinterpret_cast<size_t>(&(static_cast<Cache*>(nullptr)->*m));
  return reinterpret_cast<Cache*>(reinterpret_cast<char*>(n) - off);
}

// An offset into a slab (< 2^32) is the start of an object iff off * recip mod 2^64 < recip,
// and its index is the high half of off * recip (Lemire, Kaser, Kurz 2019, "Faster remainder by
// direct computation"): exact for every 32-bit offset, one multiplication instead of a division.
inline uint64_t slot_reciprocal(uint32_t d) { return ~uint64_t(0) / d + 1; }
CGSLAB_FAST_PATH bool slot_offset_ok(const Cache* c, uint64_t off, uint32_t nr_objects) {
  const uint64_t lo = off * c->slot_recip;
  const uint64_t index = uint64_t((__uint128_t(off) * c->slot_recip) >> 64);
  return off < (uint64_t(1) << 32) && lo < c->slot_recip && index < nr_objects;
}

class Slab {
 public:
  Slab(platform::Platform& p, PageAlloc& pages, Memcg& memcg);

  // Cache objects: geometry computed here; nullptr on internal-allocation failure.
  Cache* new_cache(std::string_view name, size_t size, size_t align, unsigned flags,
                   void (*ctor)(void*), Cache* root);
  void free_cache(Cache* c);  // caller made sure it holds no slabs

  static size_t slot_size_for(size_t size, size_t align, unsigned flags, void (*ctor)(void*));

  // --- allocation ---
  // Fast path inside an owned slot: a magazine pop, or nullptr (empty, or cache dead).
  CGSLAB_FAST_PATH void* alloc_in_slot(Cache* c, unsigned slot) {
    CpuCache& cc = c->cpu[slot];
    if (CGSLAB_LIKELY(cc.avail != 0)) return cc.entries[--cc.avail];
    return nullptr;
  }
  void* alloc_slow(Cache* c, unsigned gfp);  // no slot owned; may sleep for a child cache
  CGSLAB_FAST_PATH void* alloc(Cache* c, unsigned gfp) {
    unsigned s = plat_.slots.acquire();
    void* obj = alloc_in_slot(c, s);
    plat_.slots.release(s);
    if (CGSLAB_LIKELY(obj != nullptr)) return post_alloc(c, obj, gfp);
    return alloc_slow(c, gfp);
  }
  CGSLAB_FAST_PATH void* post_alloc(Cache* c, void* obj, unsigned gfp) {
    platform::asan_unpoison(obj, c->size);
    clear_marker(c, obj);
    if (gfp & kGfpZero) __builtin_memset(obj, 0, c->size);
    return obj;
  }

  // --- free ---
  // Checks p (ours, start of an object, belongs to `expected` or a child of it when non-null,
  // not already free) and frees it. Reports and returns on misuse.
  void free(Cache* expected, void* p, const char* op);
  PageDesc* lookup(const void* p) const { return pages_.lookup(p); }
  Cache* cache_of_object(const void* p) const;

  // --- maintenance ---
  bool shrink(Cache* c);           // flush every slot's magazine, free empty slabs; true if empty
  void deactivate(Cache* c);       // dead: min_partial 0, magazines bypassed from now on
  void flush_slot(Cache* c, unsigned slot);  // slot owned by the caller

  struct Counts {
    size_t slabs, objects, free_in_slabs, in_magazines, rcu_slabs;
  };
  Counts counts(Cache* c);  // quiescent
  // The checks of validate (quiescent; defined in validate.cc). validate_magazine: slot i's
  // magazine of c, the caller owns slot i. validate_slabs: c's slab lists under its list_lock;
  // *pages = the pages of its slabs, those waiting for a grace period included.
  bool validate_magazine(Cache* c, unsigned i, std::string* report);
  bool validate_slabs(Cache* c, std::string* report, size_t* pages);

  platform::Platform& plat() { return plat_; }
  bool poison = true;
  void* upper = nullptr;  // layer 5 owner (MemcgCaches), for work items reached from a cache

 private:
  static constexpr uint64_t kFreeMarker = 0x5a17f4eeb1e55edull;
  static uintptr_t marker(const void* obj) { return kFreeMarker ^ reinterpret_cast<uintptr_t>(obj); }
  CGSLAB_NO_ASAN static void** meta(Cache* c, void* obj) {
    return reinterpret_cast<void**>(static_cast<char*>(obj) + c->free_off);
  }
  CGSLAB_NO_ASAN static void set_marker(Cache* c, void* obj) {
    reinterpret_cast<uintptr_t*>(meta(c, obj))[1] = marker(obj);
  }
  CGSLAB_NO_ASAN static void clear_marker(Cache* c, void* obj) {
    reinterpret_cast<uintptr_t*>(meta(c, obj))[1] = 0;
  }
  CGSLAB_NO_ASAN static bool has_marker(Cache* c, void* obj) {
    return reinterpret_cast<uintptr_t*>(meta(c, obj))[1] == marker(obj);
  }
  CGSLAB_NO_ASAN static void* get_next(Cache* c, void* obj) { return meta(c, obj)[0]; }
  CGSLAB_NO_ASAN static void set_next(Cache* c, void* obj, void* n) { meta(c, obj)[0] = n; }

  void poison_free(Cache* c, void* obj);
  PageDesc* new_slab(Cache* c, unsigned gfp);
  void* take_from_slab(Cache* c, PageDesc* pd) REQUIRES(c->list_lock);
  // Returns the slab to discard, if the object's return emptied it and it is not kept.
  PageDesc* put_to_slab(Cache* c, void* obj, PageDesc* pd) REQUIRES(c->list_lock);
  void list_move(Cache* c, PageDesc* pd, int list) REQUIRES(c->list_lock);
  void discard_slab(Cache* c, PageDesc* pd);  // no slot owned, no lock
  void free_slab_now(Cache* c, PageDesc* pd);
  static void rcu_free_slab(platform::RcuHead* h);
  bool find_free(Cache* c, void* obj);  // exact double-free confirmation; no slot owned
  bool charge_slab(Cache* c, unsigned gfp);
  void uncharge_slab(Cache* c);
  void ref_get(Cache* c);

 public:
  void ref_put(Cache* c);  // no slot owned

 private:

  platform::Platform& plat_;
  PageAlloc& pages_;
  Memcg& memcg_;
};

}  // namespace cgslab
