// allocator.cc: the public API (include/cgslab/cgslab.h) over layer 5. Owns the layer objects of
// one Allocator, the kmalloc caches, handle checks, stats, dumps, validate() and the teardown.
#include <algorithm>
#include <optional>
#include <cinttypes>
#include <thread>

#include "cgslab/cgslab.h"
#include "memcg.h"
#include "memcg_cache.h"
#include "page_alloc.h"
#include "platform/platform.h"
#include "slab.h"
#include "validate.h"

namespace cgslab {

namespace {
constexpr size_t kKmallocSizes[] = {16,   32,   64,   96,   128,  192,   256,
                                    512,  1024, 2048, 4096, 8192, 16384, 32768};
constexpr size_t kNrKmalloc = sizeof(kKmallocSizes) / sizeof(kKmallocSizes[0]);
constexpr unsigned kGfpMask = kGfpAccount | kGfpNoWait | kGfpNoRetry | kGfpNoFail | kGfpZero;

unsigned default_slots() {
  unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  return std::max(4u, 2 * hw);
}
}  // namespace

const char* cache_state_name(CacheState s) {
  switch (s) {
    case CacheState::kRoot: return "root";
    case CacheState::kQueued: return "queued";
    case CacheState::kActive: return "active";
    case CacheState::kDeactivated: return "deactivated";
    case CacheState::kKilled: return "killed";
    case CacheState::kReleased: return "released";
    case CacheState::kFreed: return "freed";
    case CacheState::kDestroyFailed: return "destroy-failed";
  }
  return "?";
}

struct Allocator::Impl {
  explicit Impl(const Options& o)
      : plat(o.nr_cpu_slots ? o.nr_cpu_slots : default_slots(), o.on_error),
        pages(plat),
        memcg(plat, [this](int size) { return caches.grow_arrays(size); },
              [this](Cgroup* cg) { caches.on_cgroup_release(cg); },
              [this](Cgroup* cg) { return caches.reclaim(cg); }),
        slab(plat, pages, memcg),
        caches(plat, memcg, slab) {
    slab.poison = o.poison;
    for (size_t i = 0; i < kNrKmalloc; ++i) {
      std::string name = "kmalloc-" + (kKmallocSizes[i] >= 1024 ? std::to_string(kKmallocSizes[i] / 1024) + "k"
                                                                 : std::to_string(kKmallocSizes[i]));
      kmalloc_caches[i] = caches.create_root(name, kKmallocSizes[i], 8, kInternalNoMerge, nullptr);
      if (!kmalloc_caches[i]) throw std::bad_alloc();
    }
  }
  ~Impl() {
    plat.rcu.pause_for_testing(false);
    plat.wq.pause_for_testing(false);
    teardown();
  }

  CGSLAB_FAST_PATH bool cache_ok(const Cache* c, const char* op) {
    if (CGSLAB_LIKELY(c && c->magic.load(std::memory_order_relaxed) == Cache::kLiveMagic && c->root == c &&
                      c->root_state.load(std::memory_order_relaxed) == 0))
      return true;
    return cache_bad(c, op);
  }
  CGSLAB_SLOW_PATH bool cache_bad(const Cache* c, const char* op) {
    if (!caches.check_handle(c, op)) return false;
    plat.reporter.report(ErrorKind::kUseAfterDestroy, c, c->name,
                         "%s: cache %s was destroyed (destroy failed: still has objects)", op,
                         c->name.c_str());
    return false;
  }
  bool gfp_ok(unsigned gfp, const char* op) {
    if (CGSLAB_LIKELY((gfp & ~kGfpMask) == 0)) return true;
    plat.reporter.report(ErrorKind::kBadArgument, nullptr, "", "%s: unknown gfp flags %#x", op, gfp);
    return false;
  }
  static size_t kmalloc_index(size_t size) {
    if (size <= 16) return 0;
    if (size <= 32) return 1;
    if (size <= 64) return 2;
    if (size <= 96) return 3;
    if (size <= 128) return 4;
    if (size <= 192) return 5;
    size_t i = 6;
    for (size_t s = 256; s < size; s <<= 1) ++i;
    return i;
  }

  void drain() {
    for (int i = 0; i < 1000; ++i) {
      plat.rcu.barrier();
      plat.wq.flush();
      if (plat.rcu.pending() == 0 && plat.wq.pending() == 0) {
        // Quiescent: the free pages kept backed for reuse go back to the OS too.
        pages.purge();
        return;
      }
    }
    platform::report_hang("RCU callbacks and work items to stop requeueing each other (drain)", 0);
  }

  void teardown();
  bool validate(std::string* out);
  // root_fields = false: a root's alias count and child count are left for the caller, who read
  // them under slab_mutex (which must not be taken here inside an RCU read section: its holders
  // wait for grace periods).
  CacheStats stats_of(Cache* c, bool root_fields = true);
  // What slabinfo and child_cache_stats report on, collected under slab_mutex. The reader then
  // enters an RCU read section before it drops the mutex: a child unlinked meanwhile is freed
  // only after a grace period (shutdown_cache -> call_rcu), so it stays readable until the
  // section ends; a destroyed root stays in the quarantine.
  struct Reported {
    Cache* c;
    unsigned objs_per_slab;
    long root_refcount;
    size_t root_children;
  };
  static Reported reported(Cache* c) {
    return {c, c->objs_per_slab, c->is_root() ? c->refcount : 0, c->is_root() ? c->children.size() : 0};
  }
  // nullopt: a child shut down since it was collected (unlinked, waiting for its grace period).
  std::optional<CacheStats> stats_reported(const Reported& r) {
    if (!r.c->is_root() && r.c->state.load(std::memory_order_acquire) == CacheState::kFreed) return std::nullopt;
    CacheStats st = stats_of(r.c, false);
    // Shut down while being read: it gave up its cgroup before it was marked freed.
    if (!st.is_root && (st.state == CacheState::kFreed || st.cgroup.empty())) return std::nullopt;
    if (st.is_root) {
      st.refcount = r.root_refcount;
      st.children = r.root_children;
    }
    return st;
  }

  platform::Platform plat;
  PageAlloc pages;
  Memcg memcg;
  Slab slab;
  MemcgCaches caches;
  Cache* kmalloc_caches[kNrKmalloc] = {};
};

void Allocator::Impl::teardown() {
  drain();
  std::vector<Cache*> roots;
  caches.for_each_root([&](Cache* r) { roots.push_back(r); });
  size_t leaked_objects = 0;
  std::string leaked;
  for (Cache* r : roots) {
    {
      platform::MutexLock g(caches.slab_mutex);
      r->refcount = 1;
      r->root_state.store(0);
    }
    if (!caches.destroy_root(r, /*teardown=*/true)) {
      auto k = slab.counts(r);
      size_t n = k.objects - k.free_in_slabs - k.in_magazines;
      leaked_objects += n;
      leaked += " " + r->name;
    }
  }
  // Offline every cgroup, leaves first.
  std::vector<Cgroup*> cgs;
  {
    platform::MutexLock g(memcg.cgroup_mutex);
    memcg.for_each_descendant_pre(memcg.root(), [&](Cgroup* c) { cgs.push_back(c); });
  }
  for (auto it = cgs.rbegin(); it != cgs.rend(); ++it)
    if (*it != memcg.root() && memcg.is_online(*it)) caches.offline(*it);
  drain();
  if (!leaked.empty())
    plat.reporter.report(ErrorKind::kLeak, nullptr, "",
                         "allocator destroyed with objects still allocated in:%s (%zu objects "
                         "in root caches; child caches not counted)",
                         leaked.c_str(), leaked_objects);
  // Whatever is left (leaked objects) is unmapped by PageAlloc's destructor; cache structs
  // that could not be shut down are freed here.
  std::vector<Cache*> left;
  caches.for_each_root([&](Cache* r) {
    for (ListNode* n = r->children.next; n != &r->children; n = n->next)
      left.push_back(cache_of(n, &Cache::children_node));
    left.push_back(r);
  });
  for (Cache* c : left) {
    if (c->is_root()) plat.mem.internal_free(c->memcg_caches.exchange(nullptr));
    Cache::destroy(c);
  }
}

// ---------------------------------------------------------------------------------------------

Allocator::Allocator(const Options& o) : impl_(std::make_unique<Impl>(o)) {}
Allocator::~Allocator() = default;

Cgroup* Allocator::root_cgroup() { return impl_->memcg.root(); }

Cgroup* Allocator::cgroup_parent(Cgroup* cg) {
  if (!impl_->memcg.check_handle(cg, "cgroup_parent")) return nullptr;
  return cg->parent;
}

Cgroup* Allocator::cgroup_create(Cgroup* parent, std::string_view name) {
  if (!impl_->memcg.check_handle(parent, "cgroup_create")) return nullptr;
  if (name.empty() || name.find('/') != std::string_view::npos) {
    impl_->plat.reporter.report(ErrorKind::kBadArgument, nullptr, "",
                                "cgroup_create: bad name '%.*s' (empty or contains '/')",
                                int(name.size()), name.data());
    return nullptr;
  }
  return impl_->memcg.create(parent, name);
}

bool Allocator::cgroup_offline(Cgroup* cg) {
  auto& m = impl_->memcg;
  if (!m.check_handle(cg, "cgroup_offline")) return false;
  if (m.is_root(cg)) {
    impl_->plat.reporter.report(ErrorKind::kBadArgument, cg, "", "cgroup_offline: the root cgroup cannot go offline");
    return false;
  }
  if (!m.is_online(cg)) {
    impl_->plat.reporter.report(ErrorKind::kOfflineCgroup, cg, "", "cgroup_offline(%s): already offline",
                                cg->path.c_str());
    return false;
  }
  return impl_->caches.offline(cg);
}

void Allocator::cgroup_set_max(Cgroup* cg, size_t bytes) {
  auto& m = impl_->memcg;
  if (!m.check_handle(cg, "cgroup_set_max")) return;
  if (m.is_root(cg)) {
    impl_->plat.reporter.report(ErrorKind::kBadArgument, cg, "", "cgroup_set_max: the root cgroup has no limit");
    return;
  }
  if (!m.is_online(cg)) {
    impl_->plat.reporter.report(ErrorKind::kOfflineCgroup, cg, "", "cgroup_set_max(%s): cgroup is offline",
                                cg->path.c_str());
    return;
  }
  long pages = bytes >= size_t(PageCounter::kUnlimited) / kPageSize ? PageCounter::kUnlimited : long(bytes / kPageSize);
  m.set_max(cg, pages);
}

Cache* Allocator::cache_create(std::string_view name, size_t size, size_t align, unsigned flags,
                               void (*ctor)(void*)) {
  if (flags & kInternalNoMerge) {  // reserved for the kmalloc caches
    impl_->plat.reporter.report(ErrorKind::kBadArgument, nullptr, std::string(name),
                                "cache_create: unknown flags %#x", flags);
    return nullptr;
  }
  return impl_->caches.create_root(name, size, align, flags, ctor);
}

bool Allocator::cache_destroy(Cache* c) {
  if (!impl_->caches.check_handle(c, "cache_destroy")) return false;
  for (Cache* k : impl_->kmalloc_caches)
    if (k == c) {
      impl_->plat.reporter.report(ErrorKind::kBadArgument, c, c->name, "cache_destroy: %s is a kmalloc cache",
                                  c->name.c_str());
      return false;
    }
  return impl_->caches.destroy_root(c);
}

void Allocator::cache_shrink(Cache* c) {
  if (!impl_->caches.check_handle(c, "cache_shrink")) return;
  impl_->caches.shrink_all(c);
  impl_->pages.purge();  // what the shrink freed leaves the process now, not on a later free
}

void* Allocator::cache_alloc(Cache* c, unsigned gfp) {
  if (CGSLAB_UNLIKELY(!impl_->cache_ok(c, "cache_alloc")) || CGSLAB_UNLIKELY(!impl_->gfp_ok(gfp, "cache_alloc")))
    return nullptr;
  return impl_->caches.alloc(c, gfp);
}

void Allocator::cache_free(Cache* c, void* p) {
  if (CGSLAB_UNLIKELY(!c || c->magic.load(std::memory_order_relaxed) != Cache::kLiveMagic || c->root != c) &&
      !impl_->caches.check_handle(c, "cache_free"))
    return;
  if (!p) return;
  impl_->slab.free(c, p, "cache_free");
}

void* Allocator::kmalloc(size_t size, unsigned gfp) {
  if (CGSLAB_UNLIKELY(size == 0 || size > kMaxObjectSize)) {
    impl_->plat.reporter.report(ErrorKind::kBadArgument, nullptr, "", "kmalloc(%zu): size out of range (1..%zu)",
                                size, kMaxObjectSize);
    return nullptr;
  }
  if (CGSLAB_UNLIKELY(!impl_->gfp_ok(gfp, "kmalloc"))) return nullptr;
  return impl_->caches.alloc(impl_->kmalloc_caches[Impl::kmalloc_index(size)], gfp);
}

void Allocator::kfree(void* p) {
  if (!p) return;
  impl_->slab.free(nullptr, p, "kfree");
}

size_t Allocator::ksize(const void* p) {
  Cache* c = impl_->slab.cache_of_object(p);
  if (!c) {
    impl_->plat.reporter.report(ErrorKind::kInvalidFree, p, "", "ksize(%p): not an object of this allocator", p);
    return 0;
  }
  return c->size;
}

Cgroup* Allocator::object_cgroup(const void* p) {
  Cache* c = impl_->slab.cache_of_object(p);
  if (!c) {
    impl_->plat.reporter.report(ErrorKind::kInvalidFree, p, "", "object_cgroup(%p): not an object of this allocator", p);
    return nullptr;
  }
  if (c->is_root()) return impl_->memcg.root();
  // Reparenting moves c->memcg under charge_lock held for write.
  platform::ReadLock g(impl_->memcg.charge_lock);
  Cgroup* cg = c->memcg.load(std::memory_order_acquire);
  return cg ? cg : impl_->memcg.root();
}

void Allocator::rcu_read_lock() { impl_->plat.rcu.read_lock(); }
void Allocator::rcu_read_unlock() {
  if (!impl_->plat.rcu.in_read_section()) {
    impl_->plat.reporter.report(ErrorKind::kBadArgument, nullptr, "", "rcu_read_unlock without rcu_read_lock");
    return;
  }
  impl_->plat.rcu.read_unlock();
}
void Allocator::synchronize_rcu() {
  if (impl_->plat.rcu.in_read_section()) {
    impl_->plat.reporter.report(ErrorKind::kBadArgument, nullptr, "",
                                "synchronize_rcu inside an RCU read-side section would deadlock");
    return;
  }
  impl_->plat.rcu.synchronize();
}

ShrinkerId Allocator::register_shrinker(ShrinkFn fn) {
  if (!fn) {
    impl_->plat.reporter.report(ErrorKind::kBadArgument, nullptr, "", "register_shrinker: empty function");
    return 0;
  }
  return impl_->memcg.register_shrinker(std::move(fn));
}
void Allocator::unregister_shrinker(ShrinkerId id) { impl_->memcg.unregister_shrinker(id); }

void Allocator::drain() { impl_->drain(); }

void Allocator::shrink_all() {
  std::vector<Cache*> roots;
  impl_->caches.for_each_root([&](Cache* r) { roots.push_back(r); });
  for (Cache* r : roots) impl_->caches.shrink_all(r);
  impl_->pages.purge();
}

void Allocator::pause_for_testing(bool rcu, bool work) {
  impl_->plat.rcu.pause_for_testing(rcu);
  impl_->plat.wq.pause_for_testing(work);
}

void Allocator::fail_nth_mapping_for_testing(uint64_t n) { impl_->plat.mem.map_faults.fail_nth(n); }
void Allocator::fail_nth_internal_alloc_for_testing(uint64_t n) { impl_->plat.mem.internal_faults.fail_nth(n); }

// ---------------------------------------------------------------------------------------------
// scopes

TaskCgroupScope::TaskCgroupScope(Cgroup* cg) : cg_(nullptr), prev_(platform::current_task().memcg) {
  if (!cg) return;  // null: run in the root (reported by check_handle below would need an owner)
  Memcg* m = cg->owner;
  if (cg->magic.load() != Cgroup::kLiveMagic || !m->check_handle(cg, "TaskCgroupScope")) return;
  {
    platform::MutexLock g(m->cgroup_mutex);
    if (!m->is_online(cg)) {
      m->plat.reporter.report(ErrorKind::kOfflineCgroup, cg, "", "TaskCgroupScope(%s): cgroup is offline",
                              cg->path.c_str());
      return;
    }
    m->css_get(cg);
    cg->attached.fetch_add(1, std::memory_order_acq_rel);
  }
  cg_ = cg;
  platform::current_task().memcg = cg;
}

TaskCgroupScope::~TaskCgroupScope() {
  if (!cg_) return;
  platform::current_task().memcg = prev_;
  cg_->attached.fetch_sub(1, std::memory_order_acq_rel);
  cg_->owner->css_put(cg_);
}

RemoteChargeScope::RemoteChargeScope(Cgroup* cg) : cg_(nullptr), prev_(platform::current_task().active_memcg) {
  if (!cg) return;
  Memcg* m = cg->owner;
  if (cg->magic.load() != Cgroup::kLiveMagic || !m->check_handle(cg, "RemoteChargeScope")) return;
  if (!m->css_tryget(cg)) {
    m->plat.reporter.report(ErrorKind::kUseAfterDestroy, cg, "", "RemoteChargeScope(%s): cgroup is being released",
                            cg->path.c_str());
    return;
  }
  cg->remote_scopes.fetch_add(1, std::memory_order_acq_rel);
  cg_ = cg;
  platform::current_task().active_memcg = cg;
}

RemoteChargeScope::~RemoteChargeScope() {
  if (!cg_) return;
  platform::current_task().active_memcg = prev_;
  cg_->remote_scopes.fetch_sub(1, std::memory_order_acq_rel);
  cg_->owner->css_put(cg_);
}

// ---------------------------------------------------------------------------------------------
// stats

CacheStats Allocator::Impl::stats_of(Cache* c, bool root_fields) {
  CacheStats st;
  auto k = slab.counts(c);
  st.name = c->name;
  st.is_root = c->is_root();
  st.state = c->state.load();
  st.object_size = c->size;
  st.slot_size = c->slot_size;
  st.slab_pages = 1u << c->order;
  st.slabs = k.slabs;
  st.total_objects = k.objects;
  // The magazines are summed slot by slot before list_lock is taken (list_lock is never waited for
  // with a slot owned), so while other threads run an object can be counted both in a magazine
  // and free in a slab: the sum is an estimate then, exact at quiescence. Saturate instead of
  // wrapping to a huge count.
  size_t idle = k.free_in_slabs + k.in_magazines;
  st.active_objects = k.objects > idle ? k.objects - idle : 0;
  if (c->is_root()) {
    if (root_fields) {
      platform::MutexLock g(caches.slab_mutex);
      st.refcount = c->refcount;
      st.children = c->children.size();
    }
  } else {
    st.refcount = c->refcnt.read();
    st.charged_pages = size_t(c->charged_pages.load());
    // Offline deactivates and reparents under charge_lock: read state and cgroup together, or a
    // child read between the two looks active in its new parent (two active children for it).
    platform::ReadLock g(memcg.charge_lock);
    st.state = c->state.load();
    Cgroup* cg = c->memcg.load();
    st.cgroup = cg ? cg->path : "";
  }
  return st;
}

CacheStats Allocator::cache_stats(Cache* c) {
  if (!impl_->caches.check_handle(c, "cache_stats")) return {};
  return impl_->stats_of(c);
}

std::vector<CacheStats> Allocator::child_cache_stats(Cache* root) {
  if (!impl_->caches.check_handle(root, "child_cache_stats")) return {};
  std::vector<Impl::Reported> kids;
  {
    platform::MutexLock g(impl_->caches.slab_mutex);
    for (ListNode* n = root->children.next; n != &root->children; n = n->next)
      kids.push_back(Impl::reported(cache_of(n, &Cache::children_node)));
    impl_->plat.rcu.read_lock();
  }
  std::vector<CacheStats> out;
  for (const Impl::Reported& r : kids)
    if (auto st = impl_->stats_reported(r)) out.push_back(std::move(*st));
  impl_->plat.rcu.read_unlock();
  return out;
}

CacheState Allocator::child_state_for_testing(Cache* root, Cgroup* cg) {
  if (!impl_->caches.check_handle(root, "child_state_for_testing") ||
      !impl_->memcg.check_handle(cg, "child_state_for_testing"))
    return CacheState::kRoot;
  return impl_->caches.child_state(root, cg);
}

CgroupStats Allocator::cgroup_stats(Cgroup* cg) {
  auto& m = impl_->memcg;
  if (!m.check_handle(cg, "cgroup_stats")) return {};
  CgroupStats st;
  st.name = cg->name;
  st.path = cg->path;
  st.online = m.is_online(cg);
  st.kmemcg_id = cg->kmemcg_id.load();
  st.usage = size_t(cg->memory.usage()) * kPageSize;
  long max = cg->memory.max();
  st.max = m.is_root(cg) || max >= PageCounter::kUnlimited ? SIZE_MAX : size_t(max) * kPageSize;
  st.watermark = size_t(cg->memory.watermark()) * kPageSize;
  st.failcnt = size_t(cg->memory.failcnt());
  st.css_refs = m.css_refs(cg);
  st.attached_tasks = size_t(cg->attached.load());
  platform::MutexLock g(impl_->caches.slab_mutex);
  for (ListNode* n = cg->kmem_caches.next; n != &cg->kmem_caches; n = n->next) {
    Cache* c = cache_of(n, &Cache::kmem_caches_node);
    st.slab_bytes += size_t(c->charged_pages.load()) * kPageSize;
    if (c->state.load() == CacheState::kActive)
      st.live_caches++;
    else
      st.dying_caches++;
  }
  return st;
}

AllocatorStats Allocator::stats() {
  AllocatorStats s;
  s.mapped_bytes = impl_->plat.mem.mapped_bytes();
  s.metadata_bytes = impl_->plat.mem.metadata_bytes();
  s.slab_pages = impl_->pages.pages_in_use();
  s.root_caches = impl_->caches.nr_roots();
  s.child_caches = impl_->caches.nr_children.load();
  s.cgroups = impl_->memcg.nr_cgroups();
  s.pending_work = impl_->plat.wq.pending() + impl_->plat.rcu.pending();
  s.children_created = impl_->caches.children_created.load();
  s.children_freed = impl_->caches.children_freed.load();
  return s;
}

std::string Allocator::slabinfo() {
  std::string out = "slabinfo - version: 2.1 (cgslab)\n"
                    "# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab>"
                    " : slabdata <active_slabs> <num_slabs> : state refcount cgroup\n";
  std::vector<Impl::Reported> all;
  {
    platform::MutexLock g(impl_->caches.slab_mutex);
    impl_->caches.for_each_root_locked([&](Cache* r) REQUIRES(impl_->caches.slab_mutex) {
      all.push_back(Impl::reported(r));
      for (ListNode* n = r->children.next; n != &r->children; n = n->next)
        all.push_back(Impl::reported(cache_of(n, &Cache::children_node)));
    });
    impl_->plat.rcu.read_lock();
  }
  for (const Impl::Reported& rep : all) {
    std::optional<CacheStats> got = impl_->stats_reported(rep);
    if (!got) continue;
    const CacheStats& st = *got;
    out += platform::strprintf("%-24s %8zu %8zu %6zu %4u %4u : slabdata %6zu %6zu : %s %ld %s\n",
                               st.name.c_str(), st.active_objects, st.total_objects, st.slot_size,
                               rep.objs_per_slab, st.slab_pages, st.slabs, st.slabs,
                               cache_state_name(st.state), st.refcount,
                               st.is_root ? "-" : st.cgroup.c_str());
  }
  impl_->plat.rcu.read_unlock();
  return out;
}

std::string Allocator::memory_stat(Cgroup* cg) {
  CgroupStats st = cgroup_stats(cg);
  return platform::strprintf(
      "path %s\nonline %d\nkmemcg_id %d\nusage %zu\nmax %s\nwatermark %zu\nfailcnt %zu\nslab %zu\n"
      "live_caches %zu\ndying_caches %zu\ncss_refs %ld\nattached_tasks %zu\n",
      st.path.c_str(), int(st.online), st.kmemcg_id, st.usage,
      st.max == SIZE_MAX ? "max" : std::to_string(st.max).c_str(), st.watermark, st.failcnt,
      st.slab_bytes, st.live_caches, st.dying_caches, st.css_refs, st.attached_tasks);
}

// ---------------------------------------------------------------------------------------------
// validate

bool Allocator::validate(std::string* report) { return impl_->validate(report); }

bool Allocator::Impl::validate(std::string* out) { return validate_allocator(memcg, caches, slab, pages, out); }

}  // namespace cgslab
