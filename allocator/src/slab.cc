#include "slab.h"
#include "platform/defects.h"

#include <algorithm>
#include <cstring>
#include <new>
#include <vector>

namespace cgslab {

namespace {
size_t round_up(size_t v, size_t a) { return (v + a - 1) & ~(a - 1); }
}  // namespace

void Cache::destroy(Cache* c) {
  platform::OsMemory& mem = c->slab->plat().mem;
  mem.internal_free(c->cpu);
  c->~Cache();
  mem.internal_free(c);
}

Slab::Slab(platform::Platform& p, PageAlloc& pages, Memcg& memcg)
    : plat_(p), pages_(pages), memcg_(memcg) {}

size_t Slab::slot_size_for(size_t size, size_t align, unsigned flags, void (*ctor)(void*)) {
  align = std::max<size_t>(align, 8);
  // A constructed (ctor) or TYPESAFE_BY_RCU object must keep its contents while free, so the
  // free-object metadata goes after it (kernel SLUB: s->offset = s->inuse).
  if (ctor || (flags & kCacheTypesafeByRcu)) return round_up(round_up(size, 8) + 16, align);
  return round_up(std::max<size_t>(size, 16), align);
}

Cache* Slab::new_cache(std::string_view name, size_t size, size_t align, unsigned flags,
                       void (*ctor)(void*), Cache* root) {
  void* mem = plat_.mem.internal_alloc(sizeof(Cache), alignof(Cache));
  if (!mem) return nullptr;
  unsigned n = plat_.slots.size();
  void* cpu = plat_.mem.internal_alloc(sizeof(CpuCache) * n, alignof(CpuCache));
  if (!cpu) {
    plat_.mem.internal_free(mem);
    return nullptr;
  }
  Cache* c = new (mem) Cache();
  c->cpu = new (cpu) CpuCache[n];
  c->name = std::string(name);
  c->size = uint32_t(size);
  c->align = uint32_t(std::max<size_t>(align, 8));
  c->flags = flags;
  c->ctor = ctor;
  c->slot_size = uint32_t(slot_size_for(size, align, flags, ctor));
  c->slot_recip = slot_reciprocal(c->slot_size);
  c->free_off = (ctor || (flags & kCacheTypesafeByRcu)) ? uint32_t(round_up(size, 8)) : 0;
  for (unsigned o = 0; o <= kMaxOrder; ++o) {
    size_t bytes = kPageSize << o, objs = bytes / c->slot_size;
    c->order = uint8_t(o);
    c->objs_per_slab = uint16_t(objs);
    if (objs && (bytes - objs * c->slot_size) * 8 <= bytes) break;  // waste <= 1/8
  }
  unsigned limit = c->slot_size <= 256 ? 128 : c->slot_size <= 1024 ? 32 : 8;
  for (unsigned i = 0; i < n; ++i) c->cpu[i].limit = limit;
  c->root = root ? root : c;
  c->slab = this;
  return c;
}

void Slab::free_cache(Cache* c) {
  c->magic.store(Cache::kDeadMagic, std::memory_order_release);
  Cache::destroy(c);
}

// ---------------------------------------------------------------------------------------------
// slab lists

void Slab::list_move(Cache* c, PageDesc* pd, int list) {
  if (pd->list != kListNone) pd->lru.del();
  pd->list = uint8_t(list);
  if (list == kListPartial) c->partial.add_tail(&pd->lru);
  if (list == kListFull) c->full.add_tail(&pd->lru);
}

void* Slab::take_from_slab(Cache* c, PageDesc* pd) {
  void* obj = pd->freelist;
  pd->freelist = get_next(c, obj);
  if (pd->inuse++ == 0) c->nr_empty--;
  c->nr_free--;
  if (!pd->freelist) list_move(c, pd, kListFull);
  return obj;
}

PageDesc* Slab::put_to_slab(Cache* c, void* obj, PageDesc* pd) {
  set_next(c, obj, pd->freelist);
  pd->freelist = obj;
  if (pd->list == kListFull) list_move(c, pd, kListPartial);
  c->nr_free++;
  if (--pd->inuse == 0) {
    c->nr_empty++;
    const bool dead = c->dead.load(std::memory_order_relaxed) &&
                      !platform::defect(platform::Defect::kDeadCacheKeepsEmptySlabs);
    if (dead || c->nr_empty > c->min_partial) {
      pd->lru.del();
      pd->list = kListNone;
      c->nr_empty--;
      c->nr_slabs--;
      c->nr_free -= pd->objects;
      return pd;
    }
  }
  return nullptr;
}

void Slab::poison_free(Cache* c, void* obj) {
  if (poison && !(c->flags & kCacheTypesafeByRcu)) platform::asan_poison(obj, c->size);
}

// ---------------------------------------------------------------------------------------------
// slab pages

void Slab::ref_get(Cache* c) {
  if (c->is_root()) return;
  unsigned s = plat_.slots.acquire();
  c->refcnt.get(s);
  plat_.slots.release(s);
}

void Slab::ref_put(Cache* c) {
  if (c->is_root()) return;
  unsigned s = plat_.slots.acquire();
  c->refcnt.put(s, plat_);
  plat_.slots.release(s);
}

bool Slab::charge_slab(Cache* c, unsigned gfp) {
  const long nr = 1L << c->order;
  return memcg_.try_charge(
      nr, gfp, [&] { return c->memcg.load(std::memory_order_acquire); },
      [&](Cgroup*) { c->charged_pages.fetch_add(nr, std::memory_order_relaxed); });
}

void Slab::uncharge_slab(Cache* c) {
  const long nr = 1L << c->order;
  platform::ReadLock g(memcg_.charge_lock);
  // The cache's *current* cgroup: after reparenting it is not the one that was charged.
  memcg_.uncharge(c->memcg.load(std::memory_order_acquire), nr);
  c->charged_pages.fetch_sub(nr, std::memory_order_relaxed);
}

PageDesc* Slab::new_slab(Cache* c, unsigned gfp) {
  const bool child = !c->is_root();
  if (child) {
    plat_.might_sleep();
    if (!charge_slab(c, gfp)) return nullptr;
  }
  PageDesc* pd = pages_.alloc(c->order);
  if (!pd) {
    if (child) uncharge_slab(c);
    return nullptr;
  }
  pd->slab_cache = c;
  pd->objects = c->objs_per_slab;
  pd->inuse = 0;
  pd->lru.init();
  pd->list = kListNone;
  char* base = pd->addr;
  void* head = nullptr;
  for (int i = int(pd->objects) - 1; i >= 0; --i) {
    void* obj = base + size_t(i) * c->slot_size;
    if (c->ctor) c->ctor(obj);
    set_next(c, obj, head);
    set_marker(c, obj);
    poison_free(c, obj);
    head = obj;
  }
  // The slack after the last object is never handed out.
  size_t used = size_t(pd->objects) * c->slot_size, bytes = kPageSize << c->order;
  if (used < bytes) platform::asan_poison(base + used, bytes - used);
  if (c->free_off >= c->size)
    for (unsigned i = 0; i < pd->objects; ++i)
      platform::asan_poison(base + size_t(i) * c->slot_size + c->size, c->slot_size - c->size);
  pd->freelist = head;
  ref_get(c);  // the page holds its cache (Gushchin 2019: page -> kmem_cache)
  return pd;
}

void Slab::discard_slab(Cache* c, PageDesc* pd) {
  if (c->flags & kCacheTypesafeByRcu) {
    // Readers inside RCU may still look at objects: the memory stays a slab of this type until
    // a grace period has passed (kernel: rcu_free_slab).
    c->nr_rcu_slabs.fetch_add(1, std::memory_order_relaxed);
    plat_.rcu.call(&pd->rcu, &Slab::rcu_free_slab);
    return;
  }
  free_slab_now(c, pd);
}

void Slab::rcu_free_slab(platform::RcuHead* h) {
  PageDesc* pd = reinterpret_cast<PageDesc*>(reinterpret_cast<char*>(h) - offsetof(PageDesc, rcu));
  Cache* c = static_cast<Cache*>(pd->slab_cache);
  c->nr_rcu_slabs.fetch_sub(1, std::memory_order_relaxed);
  c->slab->free_slab_now(c, pd);
}

void Slab::free_slab_now(Cache* c, PageDesc* pd) {
  const bool child = !c->is_root();
  if (child) uncharge_slab(c);
  pd->slab_cache = nullptr;
  pages_.free(pd);
  if (platform::defect(platform::Defect::kLeakSlabRef)) return;
  ref_put(c);  // last touch of c: it may be released (dead cache self-destruction)
}

// ---------------------------------------------------------------------------------------------
// allocation

void* Slab::alloc_slow(Cache* c, unsigned gfp) {
  for (;;) {
    unsigned s = plat_.slots.acquire();
    void* obj = nullptr;
    {
      platform::MutexLock g(c->list_lock);
      if (!c->dead.load(std::memory_order_relaxed)) {
        CpuCache& cc = c->cpu[s];
        unsigned want = std::max(1u, cc.limit / 2);
        while (cc.avail < want && !c->partial.empty())
          cc.entries[cc.avail++] = take_from_slab(c, pd_of(c->partial.next));
        if (cc.avail) obj = cc.entries[--cc.avail];
      } else if (!c->partial.empty()) {
        obj = take_from_slab(c, pd_of(c->partial.next));
      }
    }
    plat_.slots.release(s);
    if (obj) return post_alloc(c, obj, gfp);

    PageDesc* pd = new_slab(c, gfp);
    if (!pd) return nullptr;
    {
      platform::MutexLock g(c->list_lock);
      c->nr_slabs++;
      c->nr_empty++;
      c->nr_free += pd->objects;
      list_move(c, pd, kListPartial);
      obj = take_from_slab(c, pd);
    }
    return post_alloc(c, obj, gfp);
  }
}

// ---------------------------------------------------------------------------------------------
// free

Cache* Slab::cache_of_object(const void* p) const {
  PageDesc* pd = pages_.lookup(p);
  return pd ? static_cast<Cache*>(pd->slab_cache) : nullptr;
}

bool Slab::find_free(Cache* c, void* obj) {
  for (unsigned i = 0; i < plat_.slots.size(); ++i) {
    plat_.slots.acquire_remote(i);
    CpuCache& cc = c->cpu[i];
    bool found = std::find(cc.entries, cc.entries + cc.avail, obj) != cc.entries + cc.avail;
    plat_.slots.release(i);
    if (found) return true;
  }
  platform::MutexLock g(c->list_lock);
  PageDesc* pd = pages_.lookup(obj);
  if (!pd) return false;
  for (void* f = pd->freelist; f; f = get_next(c, f))
    if (f == obj) return true;
  return false;
}

void Slab::free(Cache* expected, void* p, const char* op) {
  PageDesc* pd = pages_.lookup(p);
  Cache* c = pd ? static_cast<Cache*>(pd->slab_cache) : nullptr;
  if (CGSLAB_UNLIKELY(!c)) {
    plat_.reporter.report(ErrorKind::kInvalidFree, p, expected ? expected->name : "",
                          "%s(%p): pointer was not allocated by this allocator", op, p);
    return;
  }
  size_t off = size_t(static_cast<char*>(p) - pd->addr);
  if (CGSLAB_UNLIKELY(!slot_offset_ok(c, off, pd->objects))) {
    plat_.reporter.report(ErrorKind::kInvalidFree, p, c->name,
                          "%s(%p): not the start of an object: cache %s, slab %p, object size %u, "
                          "offset %zu into the slab",
                          op, p, c->name.c_str(), static_cast<void*>(pd->addr), c->slot_size, off);
    return;
  }
  if (CGSLAB_UNLIKELY(expected && c != expected && c->root != expected)) {
    plat_.reporter.report(ErrorKind::kWrongCache, p, c->name,
                          "%s(%s, %p): object belongs to cache %s (slab %p, %u/%u in use)", op,
                          expected->name.c_str(), p, c->name.c_str(),
                          static_cast<void*>(pd->addr), unsigned(pd->inuse), unsigned(pd->objects));
    return;
  }
  if (CGSLAB_UNLIKELY(has_marker(c, p)) && find_free(c, p)) {
    plat_.reporter.report(ErrorKind::kDoubleFree, p, c->name,
                          "%s(%p): double free: object is already free in cache %s (slab %p, "
                          "%u/%u in use)",
                          op, p, c->name.c_str(), static_cast<void*>(pd->addr),
                          unsigned(pd->inuse), unsigned(pd->objects));
    return;
  }
  set_marker(c, p);
  poison_free(c, p);

  PageDesc* discard[kMagazineMax];
  unsigned nd = 0;
  unsigned s = plat_.slots.acquire();
  // dead is read inside the slot section: deactivation flushes magazines only after a grace
  // period, which waits for this section, so an object pushed here is never stranded.
  if (CGSLAB_LIKELY(!c->dead.load(std::memory_order_acquire))) {
    CpuCache& cc = c->cpu[s];
    if (CGSLAB_UNLIKELY(cc.avail == cc.limit)) {
      unsigned batch = cc.limit / 2;
      platform::MutexLock g(c->list_lock);
      for (unsigned i = 0; i < batch; ++i)
        if (PageDesc* d = put_to_slab(c, cc.entries[i], pages_.lookup(cc.entries[i])))
          discard[nd++] = d;
      std::memmove(cc.entries, cc.entries + batch, (cc.avail - batch) * sizeof(void*));
      cc.avail -= batch;
    }
    cc.entries[cc.avail++] = p;
  } else {
    platform::MutexLock g(c->list_lock);
    if (PageDesc* d = put_to_slab(c, p, pd)) discard[nd++] = d;
  }
  plat_.slots.release(s);
  for (unsigned i = 0; i < nd; ++i) discard_slab(c, discard[i]);
}

// ---------------------------------------------------------------------------------------------
// maintenance

void Slab::flush_slot(Cache* c, unsigned slot) {
  std::vector<PageDesc*> discard;
  {
    CpuCache& cc = c->cpu[slot];
    platform::MutexLock g(c->list_lock);
    for (unsigned i = 0; i < cc.avail; ++i)
      if (PageDesc* d = put_to_slab(c, cc.entries[i], pages_.lookup(cc.entries[i])))
        discard.push_back(d);
    cc.avail = 0;
  }
  plat_.slots.release(slot);
  for (PageDesc* d : discard) discard_slab(c, d);
}

bool Slab::shrink(Cache* c) {
  for (unsigned i = 0; i < plat_.slots.size(); ++i) {
    plat_.slots.acquire_remote(i);
    flush_slot(c, i);  // releases the slot
  }
  std::vector<PageDesc*> discard;
  bool empty;
  {
    platform::MutexLock g(c->list_lock);
    CGSLAB_LIST_FOR_EACH_SAFE(n, nx, &c->partial) {
      PageDesc* pd = pd_of(n);
      if (pd->inuse == 0) {
        pd->lru.del();
        pd->list = kListNone;
        c->nr_empty--;
        c->nr_slabs--;
        c->nr_free -= pd->objects;
        discard.push_back(pd);
      }
    }
    empty = c->nr_slabs == 0;
  }
  for (PageDesc* d : discard) discard_slab(c, d);
  return empty;
}

void Slab::deactivate(Cache* c) {
  platform::MutexLock g(c->list_lock);
  if (!platform::defect(platform::Defect::kDeadCacheKeepsEmptySlabs)) c->min_partial = 0;
  c->dead.store(true, std::memory_order_release);
}

Slab::Counts Slab::counts(Cache* c) {
  Counts k{};
  for (unsigned i = 0; i < plat_.slots.size(); ++i) {
    plat_.slots.acquire_remote(i);
    k.in_magazines += c->cpu[i].avail;
    plat_.slots.release(i);
  }
  platform::MutexLock g(c->list_lock);
  k.slabs = c->nr_slabs;
  k.objects = c->nr_slabs * c->objs_per_slab;
  k.free_in_slabs = c->nr_free;
  k.rcu_slabs = c->nr_rcu_slabs.load(std::memory_order_relaxed);
  return k;
}

}  // namespace cgslab
