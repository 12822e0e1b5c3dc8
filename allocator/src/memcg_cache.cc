#include "memcg_cache.h"
#include "platform/defects.h"

#include <cstring>
#include <vector>

namespace cgslab {

MemcgCaches::MemcgCaches(platform::Platform& p, Memcg& memcg, Slab& slab)
    : plat_(p), memcg_(memcg), slab_(slab) {
  slab_.upper = this;
}

MemcgCaches::~MemcgCaches() {
  platform::MutexLock g(slab_mutex);
  quarantine_.clear();
}

size_t MemcgCaches::nr_roots() {
  platform::MutexLock g(slab_mutex);
  return roots_.size();
}

bool MemcgCaches::check_handle(const Cache* c, const char* op) {
  if (!c) {
    plat_.reporter.report(ErrorKind::kBadArgument, nullptr, "", "%s: null cache", op);
    return false;
  }
  uint64_t m = c->magic.load(std::memory_order_acquire);
  if (m == Cache::kDeadMagic) {
    plat_.reporter.report(ErrorKind::kUseAfterDestroy, c, "",
                          "%s: cache %p was destroyed", op, static_cast<const void*>(c));
    return false;
  }
  if (m != Cache::kLiveMagic || c->slab != &slab_ || !c->is_root()) {
    plat_.reporter.report(ErrorKind::kBadArgument, c, "", "%s: %p is not a cache of this allocator",
                          op, static_cast<const void*>(c));
    return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// memcg_caches arrays

MemcgCacheArray* MemcgCaches::new_array(int size, const MemcgCacheArray* old) {
  size_t bytes = sizeof(MemcgCacheArray) + sizeof(std::atomic<Cache*>) * size_t(size > 0 ? size : 0);
  auto* a = static_cast<MemcgCacheArray*>(plat_.mem.internal_alloc(bytes));
  if (!a) return nullptr;
  a->size = size;
  a->mem = &plat_.mem;
  for (int i = 0; i < size; ++i)
    a->entries[i].store(old && i < old->size ? old->entries[i].load(std::memory_order_relaxed) : nullptr,
                        std::memory_order_relaxed);
  return a;
}

void MemcgCaches::free_array_rcu(platform::RcuHead* h) {
  auto* a = reinterpret_cast<MemcgCacheArray*>(h);  // rcu is the first member
  a->mem->internal_free(a);
}

void MemcgCaches::free_array(MemcgCacheArray* a) { plat_.mem.internal_free(a); }

bool MemcgCaches::grow_arrays(int size) {
  platform::MutexLock g(slab_mutex);
  std::vector<std::pair<Cache*, MemcgCacheArray*>> fresh;
  for (ListNode* n = roots_.next; n != &roots_; n = n->next) {
    Cache* r = cache_of(n, &Cache::list);
    MemcgCacheArray* a = new_array(size, r->memcg_caches.load(std::memory_order_relaxed));
    if (!a) {
      for (auto& f : fresh) free_array(f.second);
      return false;
    }
    fresh.push_back({r, a});
  }
  for (auto& [r, a] : fresh) {
    MemcgCacheArray* old = r->memcg_caches.exchange(a, std::memory_order_acq_rel);
    // Readers in a slot section may still hold `old`: free it after a grace period.
    if (platform::defect(platform::Defect::kArrayFreeNoRcu))
      free_array(old);
    else
      plat_.rcu.call(&old->rcu, &MemcgCaches::free_array_rcu);
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// root caches

Cache* MemcgCaches::create_root(std::string_view name, size_t size, size_t align, unsigned flags,
                                void (*ctor)(void*)) {
  std::string nm(name);
  if (name.empty()) {
    plat_.reporter.report(ErrorKind::kBadArgument, nullptr, "", "cache_create: empty name");
    return nullptr;
  }
  if (size == 0 || size > kMaxObjectSize) {
    plat_.reporter.report(ErrorKind::kBadArgument, nullptr, nm,
                          "cache_create(%s): object size %zu out of range (1..%zu)", nm.c_str(),
                          size, kMaxObjectSize);
    return nullptr;
  }
  if ((align & (align - 1)) != 0 || align > kPageSize) {
    plat_.reporter.report(ErrorKind::kBadArgument, nullptr, nm,
                          "cache_create(%s): alignment %zu is not a power of two <= %zu",
                          nm.c_str(), align, kPageSize);
    return nullptr;
  }
  if (flags & ~(kCacheAccount | kCacheTypesafeByRcu | kCacheNoMerge | kInternalNoMerge)) {
    plat_.reporter.report(ErrorKind::kBadArgument, nullptr, nm,
                          "cache_create(%s): unknown flags %#x", nm.c_str(), flags);
    return nullptr;
  }
  platform::ReadLock ids(memcg_.ids_sem);
  platform::MutexLock g(slab_mutex);
  // kernel: find_mergeable. Never merged: ctor, TYPESAFE_BY_RCU, NO_MERGE, kmalloc caches.
  const bool mergeable = !ctor && !(flags & (kCacheTypesafeByRcu | kCacheNoMerge | kInternalNoMerge));
  if (mergeable) {
    size_t slot = Slab::slot_size_for(size, align, flags, ctor);
    for (ListNode* n = roots_.next; n != &roots_; n = n->next) {
      Cache* r = cache_of(n, &Cache::list);
      if (r->slot_size == slot && r->flags == flags && !r->ctor && r->refcount > 0 &&
          !r->dying.load(std::memory_order_relaxed) && r->slot_size % std::max<size_t>(align, 8) == 0) {
        r->refcount++;
        return r;
      }
    }
  }
  Cache* c = slab_.new_cache(name, size, align, flags, ctor, nullptr);
  if (!c) return nullptr;
  MemcgCacheArray* a = new_array(memcg_.nr_cache_ids(), nullptr);
  if (!a) {
    slab_.free_cache(c);
    return nullptr;
  }
  c->memcg_caches.store(a, std::memory_order_release);
  c->state.store(CacheState::kRoot, std::memory_order_relaxed);
  roots_.add_tail(&c->list);
  return c;
}

// kernel: flush_memcg_workqueue + shutdown_memcg_caches + shutdown_cache.
bool MemcgCaches::destroy_root(Cache* s, bool teardown) {
  {
    platform::MutexLock g(slab_mutex);
    if (platform::defect(platform::Defect::kAliasMarksDying)) s->dying.store(true, std::memory_order_release);
    if (s->root_state.load() == 0 && --s->refcount > 0) return true;
    s->dying.store(true, std::memory_order_release);
  }
  // Deactivation runs through call_rcu and creation/deactivation through the work queue: let
  // everything already queued finish. A child caught mid-kill needs one more grace period to
  // switch its ref to atomic mode.
  if (!platform::defect(platform::Defect::kRootDestroyNoFlush)) {
    plat_.rcu.barrier();
    plat_.wq.flush();
    bool children;
    {
      platform::MutexLock g(slab_mutex);
      children = !s->children.empty();
    }
    if (children) plat_.rcu.barrier();
  }

  platform::MutexLock g(slab_mutex);
  MemcgCacheArray* a = s->memcg_caches.load(std::memory_order_relaxed);
  std::vector<Cache*> busy;
  for (int i = 0; i < a->size; ++i) {
    Cache* c = a->entries[i].load(std::memory_order_relaxed);
    if (c == kCachePending) a->entries[i].store(nullptr);
    if (!is_real_cache(c)) continue;
    if (shutdown_cache(c)) a->entries[i].store(nullptr);
  }
  std::vector<Cache*> rest;
  for (ListNode* n = s->children.next; n != &s->children; n = n->next)
    rest.push_back(cache_of(n, &Cache::children_node));
  for (Cache* c : rest) shutdown_cache(c);
  size_t nbusy = s->children.size();
  bool ok = nbusy == 0 && shutdown_cache(s);
  if (!ok) {
    auto k = slab_.counts(s);
    s->root_state.store(1);
    s->state.store(CacheState::kDestroyFailed);
    // The root is kept, so its children go on with their own lifecycle: a child deactivated
    // while the root was dying skipped its deactivation (the destroy meant to shut it down);
    // start it now, or the dead child would never destroy itself. Found by fuzz_api.
    s->dying.store(false, std::memory_order_release);
    for (ListNode* n = s->children.next; n != &s->children; n = n->next) {
      Cache* c = cache_of(n, &Cache::children_node);
      if (c->state.load() != CacheState::kDeactivated) continue;
      c->rcu.cache = c;
      plat_.rcu.call(&c->rcu, &MemcgCaches::deactivate_rcufn);
    }
    if (!teardown)
      plat_.reporter.report(ErrorKind::kCacheBusy, s, s->name,
                            "kmem_cache_destroy %s: Slab cache still has objects (%zu of %zu "
                            "objects in use in the root cache, %zu child caches busy)",
                            s->name.c_str(), k.objects - k.free_in_slabs - k.in_magazines, k.objects,
                            nbusy);
    return false;
  }
  return true;
}

// kernel: shutdown_cache. Shrinks; a cache with slabs left is kept (false).
bool MemcgCaches::shutdown_cache(Cache* c) {
  if (!slab_.shrink(c)) return false;
  if (c->flags & kCacheTypesafeByRcu) plat_.rcu.barrier();  // slabs waiting for a grace period
  if (c->is_root()) {
    c->list.del();
    MemcgCacheArray* a = c->memcg_caches.exchange(nullptr);
    free_array(a);
    c->magic.store(Cache::kDeadMagic, std::memory_order_release);
    quarantine_.add(c);
    return true;
  }
  // Child: unlink from its root and its current cgroup, drop the cgroup reference.
  c->children_node.del();
  Cgroup* cg;
  {
    platform::WriteLock cl(memcg_.charge_lock);
    c->kmem_caches_node.del();
    cg = c->memcg.exchange(nullptr);
  }
  c->state.store(CacheState::kFreed, std::memory_order_release);
  children_freed.fetch_add(1, std::memory_order_relaxed);
  nr_children.fetch_sub(1, std::memory_order_relaxed);
  if (cg) memcg_.css_put(cg);
  // Threads that found the cache inside a slot section may still touch it: free after a GP.
  if (platform::defect(platform::Defect::kFreeRacesDestroy)) {
    c->slab->free_cache(c);
    return true;
  }
  c->rcu.cache = c;
  plat_.rcu.call(&c->rcu, &MemcgCaches::free_child_rcu);
  return true;
}

void MemcgCaches::free_child_rcu(platform::RcuHead* h) {
  Cache* c = static_cast<Cache::CacheRcu*>(h)->cache;
  c->slab->free_cache(c);
}

size_t MemcgCaches::reclaim(Cgroup* cg) {
  platform::MutexLock g(slab_mutex);
  long before = 0, after = 0;
  std::vector<Cache*> list;
  for (ListNode* n = roots_.next; n != &roots_; n = n->next) {
    Cache* r = cache_of(n, &Cache::list);
    for (ListNode* k = r->children.next; k != &r->children; k = k->next) {
      Cache* c = cache_of(k, &Cache::children_node);
      if (memcg_.is_descendant(c->memcg.load(std::memory_order_acquire), cg)) list.push_back(c);
    }
  }
  for (Cache* c : list) before += c->charged_pages.load(std::memory_order_relaxed);
  for (Cache* c : list) slab_.shrink(c);
  for (Cache* c : list) after += c->charged_pages.load(std::memory_order_relaxed);
  return size_t(before - after) * kPageSize;
}

void MemcgCaches::shrink_all(Cache* root) {
  slab_.shrink(root);
  platform::MutexLock g(slab_mutex);
  for (ListNode* n = root->children.next; n != &root->children; n = n->next)
    slab_.shrink(cache_of(n, &Cache::children_node));
}

// ---------------------------------------------------------------------------------------------
// accounted allocation

void* MemcgCaches::alloc_accounted(Cache* root, Cgroup* cg, unsigned gfp) {
  if (CGSLAB_UNLIKELY(cg->owner != &memcg_)) return slab_.alloc(root, gfp);
  unsigned s = plat_.slots.acquire();  // RCU-sched read section
  MemcgCacheArray* a = root->memcg_caches.load(std::memory_order_acquire);
  int id = cg->kmemcg_id.load(std::memory_order_acquire);
  Cache* c = (id >= 0 && id < a->size) ? a->entries[id].load(std::memory_order_acquire) : nullptr;
  if (CGSLAB_LIKELY(is_real_cache(c))) {
    void* obj = slab_.alloc_in_slot(c, s);
    if (CGSLAB_LIKELY(obj != nullptr)) {
      plat_.slots.release(s);
      return slab_.post_alloc(c, obj, gfp);
    }
    // The slow path may sleep (reclaim): hold a reference on the cache across it, or a
    // concurrent offline could free it under us (Shakeel Butt, 2019).
    if (platform::defect(platform::Defect::kNoTryget)) {
      plat_.slots.release(s);
      return slab_.alloc_slow(c, gfp);
    }
    if (!c->refcnt.tryget(s)) {
      plat_.slots.release(s);
      return slab_.alloc(root, gfp);
    }
    plat_.slots.release(s);
    void* p = slab_.alloc_slow(c, gfp);
    slab_.ref_put(c);
    return p;
  }
  bool queue = false;
  if (c == nullptr && id >= 0 && id < a->size && memcg_.css_tryget_online(cg)) {
    Cache* expected = nullptr;
    if (a->entries[id].compare_exchange_strong(expected, kCachePending, std::memory_order_acq_rel))
      queue = true;
    else
      memcg_.css_put(cg);
  }
  plat_.slots.release(s);
  if (queue) schedule_create(root, cg, id);
  return slab_.alloc(root, gfp);
}

void MemcgCaches::schedule_create(Cache* root, Cgroup* cg, int id) {
  auto* cw = static_cast<CreateWork*>(plat_.mem.internal_alloc(sizeof(CreateWork)));
  if (!cw) {
    // Undo the pending mark so a later allocation tries again.
    unsigned s = plat_.slots.acquire();
    MemcgCacheArray* a = root->memcg_caches.load(std::memory_order_acquire);
    Cache* expected = kCachePending;
    if (id < a->size) a->entries[id].compare_exchange_strong(expected, nullptr);
    plat_.slots.release(s);
    memcg_.css_put(cg);
    return;
  }
  cg->pending_creates.fetch_add(1, std::memory_order_relaxed);
  new (cw) CreateWork();
  cw->self = this;
  cw->root = root;
  cw->memcg = cg;
  plat_.wq.queue(cw, &MemcgCaches::create_workfn);
}

void MemcgCaches::create_workfn(platform::Work* w) {
  auto* cw = static_cast<CreateWork*>(w);
  cw->self->create_child(cw);
}

// kernel: memcg_kmem_cache_create_func -> memcg_create_kmem_cache
void MemcgCaches::create_child(CreateWork* cw) {
  Cgroup* cg = cw->memcg;
  Cache* root = cw->root;
  bool transferred = false;
  plat_.might_sleep();
  {
    platform::ReadLock ids(memcg_.ids_sem);
    platform::MutexLock g(slab_mutex);
    MemcgCacheArray* a = root->memcg_caches.load(std::memory_order_relaxed);
    int id = cg->kmemcg_id.load(std::memory_order_relaxed);
    bool in_range = a && id >= 0 && id < a->size;
    Cache* cur = in_range ? a->entries[id].load(std::memory_order_relaxed) : nullptr;
    if (in_range && memcg_.is_online(cg) && !root->dying.load() && !is_real_cache(cur)) {
      std::string name = root->name + "(" + std::to_string(id) + ":" + cg->path + ")";
      Cache* c = slab_.new_cache(name, root->size, root->align, root->flags, root->ctor, root);
      if (c) {
        const bool early = platform::defect(platform::Defect::kPublishBeforeInit);
        if (early) a->entries[id].store(c, std::memory_order_release);
        // kernel: percpu_ref_init allocates the per-cpu counters with GFP_KERNEL.
        plat_.might_sleep();
        c->refcnt.init(&c->cpu[0].ref, sizeof(CpuCache), plat_.slots.size(), &MemcgCaches::release_fn, c);
        c->memcg.store(cg, std::memory_order_relaxed);  // the work's reference moves to the cache
        c->state.store(CacheState::kActive, std::memory_order_relaxed);
        root->children.add_tail(&c->children_node);
        {
          platform::WriteLock cl(memcg_.charge_lock);
          cg->kmem_caches.add_tail(&c->kmem_caches_node);
        }
        children_created.fetch_add(1, std::memory_order_relaxed);
        nr_children.fetch_add(1, std::memory_order_relaxed);
        // Publish only after full initialization (release ordering).
        if (!early) a->entries[id].store(c, std::memory_order_release);
        transferred = true;
      } else {
        a->entries[id].store(nullptr, std::memory_order_release);  // a later allocation retries
      }
    } else if (in_range && cur == kCachePending && memcg_.is_online(cg)) {
      a->entries[id].store(nullptr, std::memory_order_release);  // root dying
    }
  }
  cg->pending_creates.fetch_sub(1, std::memory_order_relaxed);
  if (!transferred) memcg_.css_put(cg);
  plat_.mem.internal_free(cw);
}

// ---------------------------------------------------------------------------------------------
// offline, deactivation, release

bool MemcgCaches::offline(Cgroup* cg) {
  platform::MutexLock cm(memcg_.cgroup_mutex);
  {
    platform::MutexLock g(slab_mutex);
    platform::WriteLock cl(memcg_.charge_lock);
    if (!memcg_.begin_offline(cg)) return false;
    // kernel: memcg_deactivate_kmem_caches(memcg, parent)
    int id = cg->own_id;
    for (ListNode* n = roots_.next; n != &roots_; n = n->next) {
      Cache* r = cache_of(n, &Cache::list);
      MemcgCacheArray* a = r->memcg_caches.load(std::memory_order_relaxed);
      if (id < 0 || id >= a->size) continue;
      Cache* c = a->entries[id].exchange(nullptr, std::memory_order_seq_cst);
      if (is_real_cache(c)) deactivate_child(c);
    }
    // Reparent: every cache whose current cgroup is cg (its own and those reparented to it
    // earlier) moves to the parent with its cgroup reference and its charged pages.
    Cgroup* parent = cg->parent;
    CGSLAB_LIST_FOR_EACH_SAFE(n, nx, &cg->kmem_caches) {
      Cache* c = cache_of(n, &Cache::kmem_caches_node);
      long pages = c->charged_pages.load(std::memory_order_relaxed);
      if (pages && !cg->memory.cancel_local(pages))
        plat_.reporter.report(ErrorKind::kInternal, cg, c->name,
                              "reparent %s: cgroup %s holds fewer than %ld pages", c->name.c_str(),
                              cg->path.c_str(), pages);
      memcg_.css_get(parent);
      c->memcg.store(parent, std::memory_order_release);
      n->del();
      parent->kmem_caches.add_tail(n);
      memcg_.css_put(cg);  // cannot reach zero: the base reference is still held
    }
  }
  memcg_.finish_offline(cg);
  return true;
}

void MemcgCaches::deactivate_child(Cache* c) {
  c->state.store(CacheState::kDeactivated, std::memory_order_release);
  slab_.deactivate(c);
  // The root's destroy shuts its children down itself (kernel: dying check).
  if (c->root->dying.load(std::memory_order_acquire)) return;
  c->rcu.cache = c;
  plat_.rcu.call(&c->rcu, &MemcgCaches::deactivate_rcufn);
}

void MemcgCaches::deactivate_rcufn(platform::RcuHead* h) {
  Cache* c = static_cast<Cache::CacheRcu*>(h)->cache;
  c->work.cache = c;
  c->slab->plat().wq.queue(&c->work, &MemcgCaches::deactivate_workfn);
}

static MemcgCaches* owner_of(Cache* c) { return static_cast<MemcgCaches*>(c->slab->upper); }

void MemcgCaches::deactivate_workfn(platform::Work* w) {
  Cache* c = static_cast<Cache::CacheWork*>(w)->cache;
  MemcgCaches* self = owner_of(c);
  platform::MutexLock g(self->slab_mutex);
  // kernel: kmemcg_cache_deactivate_after_rcu: shrink, then percpu_ref_kill.
  self->slab_.shrink(c);
  c->state.store(CacheState::kKilled, std::memory_order_release);
  c->refcnt.kill(self->plat_);
}

void MemcgCaches::release_fn(PercpuRef* r) {
  Cache* c = static_cast<Cache*>(r->owner());
  c->state.store(CacheState::kReleased, std::memory_order_release);
  if (c->root->dying.load(std::memory_order_acquire)) return;
  c->work.cache = c;
  c->slab->plat().wq.queue(&c->work, &MemcgCaches::shutdown_workfn);
}

void MemcgCaches::shutdown_workfn(platform::Work* w) {
  Cache* c = static_cast<Cache::CacheWork*>(w)->cache;
  MemcgCaches* self = owner_of(c);
  platform::MutexLock g(self->slab_mutex);
  if (c->state.load() != CacheState::kReleased) return;  // the root's destroy got it first
  if (!self->shutdown_cache(c))
    self->plat_.reporter.report(ErrorKind::kInternal, c, c->name,
                                "released cache %s still has slabs", c->name.c_str());
}

void MemcgCaches::on_cgroup_release(Cgroup* cg) {
  platform::MutexLock g(slab_mutex);
  CGSLAB_CHECK(plat_.reporter, cg->kmem_caches.empty(), "cgroup %s released while owning %zu caches",
               cg->path.c_str(), cg->kmem_caches.size());
}

CacheState MemcgCaches::child_state(Cache* root, Cgroup* cg) {
  platform::MutexLock g(slab_mutex);
  MemcgCacheArray* a = root->memcg_caches.load(std::memory_order_relaxed);
  int id = cg->kmemcg_id.load(std::memory_order_relaxed);
  if (!a || id < 0 || id >= a->size) return CacheState::kRoot;
  Cache* c = a->entries[id].load(std::memory_order_relaxed);
  if (c == kCachePending) return CacheState::kQueued;
  if (!c) return CacheState::kRoot;
  return c->state.load();
}

}  // namespace cgslab
