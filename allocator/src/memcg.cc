#include "memcg.h"
#include "platform/defects.h"

#include <algorithm>

namespace cgslab {

void Cgroup::destroy(Cgroup* cg) {
  platform::OsMemory& mem = cg->owner->plat.mem;
  cg->~Cgroup();
  mem.internal_free(cg);
}

Memcg::Memcg(platform::Platform& p, std::function<bool(int)> grow_arrays,
             std::function<void(Cgroup*)> on_release, std::function<size_t(Cgroup*)> reclaim_slabs)
    : plat(p), stock_(new Stock[p.slots.size()]), grow_arrays_(std::move(grow_arrays)),
      on_release_(std::move(on_release)), reclaim_slabs_(std::move(reclaim_slabs)) {
  void* mem = plat.mem.internal_alloc(sizeof(Cgroup));
  if (!mem) throw std::bad_alloc();
  root_ = new (mem) Cgroup(this, nullptr, "", nullptr);
  root_->path = "/";
  nr_cgroups_.store(1);
}

Memcg::~Memcg() {
  // Layer 5 offlined every cgroup and drained work before this; what is left is the root and
  // cgroups whose release is still pending in the (stopped) work queue.
  for (unsigned i = 0; i < plat.slots.size(); ++i) {
    stock_[i].cached = nullptr;
    stock_[i].nr_pages = 0;
  }
  std::vector<Cgroup*> all;
  {
    platform::MutexLock g(cgroup_mutex);
    for_each_descendant_pre(root_, [&](Cgroup* c) { all.push_back(c); });
    quarantine_.clear();
  }
  for (auto it = all.rbegin(); it != all.rend(); ++it) Cgroup::destroy(*it);
}

bool Memcg::check_handle(const Cgroup* cg, const char* op) {
  if (!cg) {
    plat.reporter.report(ErrorKind::kBadArgument, nullptr, "", "%s: null cgroup", op);
    return false;
  }
  uint64_t m = cg->magic.load(std::memory_order_acquire);
  if (m == Cgroup::kDeadMagic) {
    plat.reporter.report(ErrorKind::kUseAfterDestroy, cg, "",
                         "%s: cgroup %p was released (offline and its last reference dropped)",
                         op, static_cast<const void*>(cg));
    return false;
  }
  if (m != Cgroup::kLiveMagic || cg->owner != this) {
    plat.reporter.report(ErrorKind::kBadArgument, cg, "",
                         "%s: %p is not a cgroup of this allocator", op,
                         static_cast<const void*>(cg));
    return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// css references

void Memcg::css_get(Cgroup* cg) {
  CGSLAB_SCHED(kRefGet);
  cg->css.fetch_add(1, std::memory_order_relaxed);
}

bool Memcg::css_tryget(Cgroup* cg) {
  CGSLAB_SCHED(kRefGet);
  uint64_t v = cg->css.load(std::memory_order_relaxed);
  while (v & Cgroup::kCountMask)
    if (cg->css.compare_exchange_weak(v, v + 1, std::memory_order_acq_rel)) return true;
  return false;
}

bool Memcg::css_tryget_online(Cgroup* cg) {
  CGSLAB_SCHED(kRefGet);
  uint64_t v = cg->css.load(std::memory_order_relaxed);
  while ((v & Cgroup::kOnlineBit) && (v & Cgroup::kCountMask))
    if (cg->css.compare_exchange_weak(v, v + 1, std::memory_order_acq_rel)) return true;
  return false;
}

void Memcg::css_put(Cgroup* cg) {
  CGSLAB_SCHED(kRefPut);
  uint64_t v = cg->css.fetch_sub(1, std::memory_order_acq_rel) - 1;
  if ((v & Cgroup::kCountMask) == Cgroup::kCountMask) {
    plat.reporter.report(ErrorKind::kInternal, cg, "", "cgroup %s: css refcount below zero",
                         cg->path.c_str());
    return;
  }
  if ((v & Cgroup::kCountMask) == 0) {
    if (cg == root_) {
      plat.reporter.report(ErrorKind::kInternal, cg, "", "root cgroup css refcount reached zero");
      return;
    }
    // Release is always deferred: the put may come from a context that owns a cpu slot.
    cg->release_work.cg = cg;
    plat.wq.queue(&cg->release_work, &Memcg::release_workfn);
  }
}

void Memcg::release_workfn(platform::Work* w) {
  Cgroup* cg = static_cast<Cgroup::ReleaseWork*>(w)->cg;
  cg->owner->release(cg);
}

void Memcg::release(Cgroup* cg) {
  platform::MutexLock g(cgroup_mutex);
  CGSLAB_CHECK(plat.reporter, !is_online(cg), "cgroup %s released while online", cg->path.c_str());
  on_release_(cg);  // layer 5: asserts the cgroup owns no caches
  CGSLAB_CHECK(plat.reporter, cg->memory.usage() == 0,
               "cgroup %s released with %ld pages charged", cg->path.c_str(), cg->memory.usage());
  CGSLAB_CHECK(plat.reporter, cg->children.empty(), "cgroup %s released with children",
               cg->path.c_str());
  cg->state.store(CgState::kReleased, std::memory_order_release);
  cg->sibling.del();
  Cgroup* parent = cg->parent;
  cg->magic.store(Cgroup::kDeadMagic, std::memory_order_release);
  quarantine_.add(cg);
  nr_cgroups_.fetch_sub(1, std::memory_order_relaxed);
  css_put(parent);  // a child holds its parent (kernel: css_release -> css_put(parent))
}

// ---------------------------------------------------------------------------------------------
// tree and ids

int Memcg::alloc_cache_id() {
  int id;
  {
    platform::MutexLock g(ids_lock_);
    auto it = std::find(ids_.begin(), ids_.end(), false);
    id = int(it - ids_.begin());
    if (id >= kMemcgCachesMaxSize) return -1;
    if (it == ids_.end())
      ids_.push_back(true);
    else
      *it = true;
  }
  if (id < nr_cache_ids_.load(std::memory_order_acquire)) return id;
  // Grow every root cache's array (kernel: memcg_alloc_cache_id -> memcg_update_all_caches).
  platform::WriteLock w(ids_sem);
  int cur = nr_cache_ids_.load(std::memory_order_relaxed);
  if (id >= cur) {
    int size = std::clamp(2 * (id + 1), kMemcgCachesMinSize, kMemcgCachesMaxSize);
    if (!grow_arrays_(size)) {
      free_cache_id(id);
      return -1;
    }
    nr_cache_ids_.store(size, std::memory_order_release);
  }
  return id;
}

void Memcg::free_cache_id(int id) {
  platform::MutexLock g(ids_lock_);
  if (id >= 0 && size_t(id) < ids_.size()) ids_[size_t(id)] = false;
}

Cgroup* Memcg::create(Cgroup* parent, std::string_view name) {
  platform::MutexLock g(cgroup_mutex);
  if (!is_online(parent)) {
    plat.reporter.report(ErrorKind::kOfflineCgroup, parent, "",
                         "cgroup_create(%.*s): parent %s is offline", int(name.size()), name.data(),
                         parent->path.c_str());
    return nullptr;
  }
  void* mem = plat.mem.internal_alloc(sizeof(Cgroup));
  if (!mem) return nullptr;
  Cgroup* cg = new (mem) Cgroup(this, parent, name, is_root(parent) ? nullptr : &parent->memory);
  int id = alloc_cache_id();
  if (id < 0) {
    cg->~Cgroup();
    plat.mem.internal_free(mem);
    return nullptr;
  }
  cg->own_id = id;
  cg->kmemcg_id.store(id, std::memory_order_release);
  cg->path = (is_root(parent) ? std::string("/") : parent->path + "/") + std::string(name);
  cg->serial = next_serial_++;
  css_get(parent);
  parent->children.add_tail(&cg->sibling);
  nr_cgroups_.fetch_add(1, std::memory_order_relaxed);
  return cg;
}

bool Memcg::is_descendant(const Cgroup* cg, const Cgroup* ancestor) const {
  for (; cg; cg = cg->parent)
    if (cg == ancestor) return true;
  return false;
}

bool Memcg::begin_offline(Cgroup* cg) {
  if (cg->attached.load(std::memory_order_acquire) > 0) return false;
  for (ListNode* n = cg->children.next; n != &cg->children; n = n->next)
    if (is_online(container<Cgroup, &Cgroup::sibling>(n))) return false;
  cg->css.fetch_and(~Cgroup::kOnlineBit, std::memory_order_acq_rel);
  cg->state.store(CgState::kOffline, std::memory_order_release);
  return true;
}

void Memcg::finish_offline(Cgroup* cg) {
  int parent_id = cg->parent->kmemcg_id.load(std::memory_order_relaxed);
  int id = cg->own_id;
  // The cgroup and its (already offline) descendants take the parent's id, so allocations that
  // still charge them (remote charging) find the parent's caches (kernel: memcg_offline_kmem).
  if (platform::defect(platform::Defect::kDescendantIdsNotMoved))
    cg->kmemcg_id.store(parent_id, std::memory_order_release);
  else
    for_each_descendant_pre(cg, [&](Cgroup* d) { d->kmemcg_id.store(parent_id, std::memory_order_release); });
  cg->own_id = -1;
  free_cache_id(id);
  drain_all_stock(cg);
  css_put(cg);  // the base reference (kernel: css_kill)
}

// ---------------------------------------------------------------------------------------------
// charging

bool Memcg::consume_stock(Cgroup* cg, long nr_pages) {
  if (nr_pages > kChargeBatch) return false;
  unsigned s = plat.slots.acquire();
  Stock& st = stock_[s];
  bool ok = st.cached == cg && st.nr_pages >= nr_pages;
  if (ok) st.nr_pages -= nr_pages;
  plat.slots.release(s);
  return ok;
}

void Memcg::drain_stock(Stock& st) {
  if (!st.cached) return;
  if (st.nr_pages) {
    if (!st.cached->memory.uncharge(st.nr_pages))
      plat.reporter.report(ErrorKind::kInternal, st.cached, "",
                           "cgroup %s: stock drain uncharged below zero", st.cached->path.c_str());
  }
  st.nr_pages = 0;
  Cgroup* old = st.cached;
  st.cached = nullptr;
  css_put(old);
}

void Memcg::refill_stock(Cgroup* cg, long nr_pages) {
  unsigned s = plat.slots.acquire();
  Stock& st = stock_[s];
  if (st.cached != cg) {
    drain_stock(st);
    css_get(cg);
    st.cached = cg;
  }
  st.nr_pages += nr_pages;
  if (st.nr_pages > kChargeBatch) drain_stock(st);
  plat.slots.release(s);
}

bool Memcg::charge_counters(Cgroup* cg, long nr_pages, PageCounter** failed) {
  long batch = std::max(kChargeBatch, nr_pages);
  if (cg->memory.try_charge(batch, failed)) {
    if (batch > nr_pages) refill_stock(cg, batch - nr_pages);
    return true;
  }
  return batch > nr_pages && cg->memory.try_charge(nr_pages, failed);
}

void Memcg::uncharge(Cgroup* cg, long nr_pages) {
  if (!cg || (is_root(cg) && !platform::defect(platform::Defect::kRootUnchargeAfterReparent))) return;
  if (!cg->memory.uncharge(nr_pages))
    plat.reporter.report(ErrorKind::kInternal, cg, "", "cgroup %s: uncharge of %ld pages below zero",
                         cg->path.c_str(), nr_pages);
}

void Memcg::drain_all_stock(Cgroup* subtree) {
  for (unsigned i = 0; i < plat.slots.size(); ++i) {
    plat.slots.acquire_remote(i);
    Stock& st = stock_[i];
    if (st.cached && is_descendant(st.cached, subtree)) drain_stock(st);
    plat.slots.release(i);
  }
}

void Memcg::set_max(Cgroup* cg, long nr_pages) {
  cg->memory.set_max(nr_pages);
  // kernel: memory_max_write drains stock and reclaims until usage fits (no OOM kill here).
  drain_all_stock(cg);
  for (int i = 0; i < kMaxReclaimRetries && cg->memory.usage() > nr_pages; ++i)
    if (reclaim(cg, cg->memory.usage() - nr_pages) == 0) break;
}

size_t Memcg::reclaim(Cgroup* over, long nr_pages) {
  plat.might_sleep();
  drain_all_stock(over);
  std::vector<ShrinkerEntry> list;
  {
    platform::MutexLock g(shrinker_lock_);
    list = shrinkers_;
  }
  size_t freed = 0;
  ShrinkControl sc{over, size_t(nr_pages) * kPageSize};
  for (auto& e : list) {
    plat.might_sleep();
    freed += (*e.fn)(sc);
  }
  // Objects the shrinkers freed may sit in per-cpu magazines and empty slabs may be cached:
  // give those pages back too (kernel: slab reclaim of the memcg's caches).
  freed += reclaim_slabs_(over);
  return freed;
}

ShrinkerId Memcg::register_shrinker(ShrinkFn fn) {
  platform::MutexLock g(shrinker_lock_);
  ShrinkerId id = next_shrinker_++;
  shrinkers_.push_back({id, std::make_shared<ShrinkFn>(std::move(fn))});
  return id;
}

void Memcg::unregister_shrinker(ShrinkerId id) {
  platform::MutexLock g(shrinker_lock_);
  auto it = std::find_if(shrinkers_.begin(), shrinkers_.end(),
                         [&](const ShrinkerEntry& e) { return e.id == id; });
  if (it == shrinkers_.end()) {
    plat.reporter.report(ErrorKind::kBadArgument, nullptr, "",
                         "unregister_shrinker: no shrinker with id %llu",
                         static_cast<unsigned long long>(id));
    return;
  }
  shrinkers_.erase(it);
}

}  // namespace cgslab
