// memcg_cache.h: layer 5, the per-cgroup kmem_cache lifecycle (kernel: the memcg parts of
// mm/slab_common.c and mm/memcontrol.c as of Linux 5.3, with Gushchin's 2019 rework).
//
// Owns the list of root caches, their memcg_caches[] arrays (published with RCU, grown under
// ids_sem write, old arrays freed after a grace period) and the child caches' life:
//   queued      first accounted allocation from a cgroup finds no child: the entry becomes
//               kCachePending and a work item (pinning the cgroup with tryget_online) is queued;
//               that allocation is served from the root cache.
//   active      the worker built the child; published in memcg_caches[id] after full init.
//   deactivated the cgroup went offline: entry cleared, magazines bypassed, empty slabs freed.
//   killed      one grace period later, work shrinks it and kills its percpu_ref.
//   released    the ref reached zero (its last slab page was freed): shutdown work queued.
//   freed       shutdown ran: unlinked from root and cgroup, cgroup reference dropped, memory
//               freed after a grace period (TYPESAFE_BY_RCU: after an RCU barrier first).
// Reparenting: at offline the cgroup's caches (and the ones reparented to it before) move to
// its parent under charge_lock exclusive; their charged pages leave the cgroup's own counter
// (the parent levels already hold them), so charges move exactly.
//
// Locks: slab_mutex guards the root list, the children lists, cgroups' kmem_caches lists, array
// replacement and state transitions; order cgroup_mutex -> ids_sem -> slab_mutex -> charge_lock.
#pragma once

#include <atomic>

#include "memcg.h"
#include "platform/task.h"
#include "slab.h"

namespace cgslab {

class MemcgCaches {
 public:
  MemcgCaches(platform::Platform& p, Memcg& memcg, Slab& slab);
  ~MemcgCaches();

  Cache* create_root(std::string_view name, size_t size, size_t align, unsigned flags,
                     void (*ctor)(void*));
  bool destroy_root(Cache* s, bool teardown = false);
  bool check_handle(const Cache* c, const char* op);

  // kernel: slab_alloc -> memcg_kmem_get_cache -> ... -> memcg_kmem_put_cache
  CGSLAB_FAST_PATH void* alloc(Cache* root, unsigned gfp) {
    platform::Task& t = platform::current_task();
    Cgroup* cg = t.active_memcg ? t.active_memcg : t.memcg;
    if (CGSLAB_LIKELY(cg == nullptr) || !((root->flags & kCacheAccount) || (gfp & kGfpAccount)))
      return slab_.alloc(root, gfp);
    return alloc_accounted(root, cg, gfp);
  }

  bool grow_arrays(int size);        // ids_sem held for write
  bool offline(Cgroup* cg);          // false: refused (EBUSY)
  void on_cgroup_release(Cgroup* cg);
  CacheState child_state(Cache* root, Cgroup* cg);
  void shrink_all(Cache* root);
  size_t reclaim(Cgroup* cg);  // shrink caches charged to cg's subtree; bytes freed

  template <typename F>
  void for_each_root(F f) EXCLUDES(slab_mutex) {
    platform::MutexLock g(slab_mutex);
    for (ListNode* n = roots_.next; n != &roots_; n = n->next) f(cache_of(n, &Cache::list));
  }

  template <typename F>
  void for_each_root_locked(F f) REQUIRES(slab_mutex) {
    for (ListNode* n = roots_.next; n != &roots_; n = n->next) f(cache_of(n, &Cache::list));
  }

  platform::Mutex slab_mutex{"slab_mutex"};
  std::atomic<uint64_t> children_created{0};
  std::atomic<uint64_t> children_freed{0};
  std::atomic<size_t> nr_children{0};
  size_t nr_roots() EXCLUDES(slab_mutex);

 private:
  struct CreateWork : platform::Work {
    MemcgCaches* self;
    Cache* root;
    Cgroup* memcg;
  };
  void* alloc_accounted(Cache* root, Cgroup* cg, unsigned gfp);
  MemcgCacheArray* new_array(int size, const MemcgCacheArray* old);
  void free_array(MemcgCacheArray* a);
  static void free_array_rcu(platform::RcuHead* h);
  void schedule_create(Cache* root, Cgroup* cg, int id);
  static void create_workfn(platform::Work* w);
  void create_child(CreateWork* cw);
  void deactivate_child(Cache* c) REQUIRES(slab_mutex);
  static void deactivate_rcufn(platform::RcuHead* h);
  static void deactivate_workfn(platform::Work* w);
  static void release_fn(PercpuRef* r);
  static void shutdown_workfn(platform::Work* w);
  bool shutdown_cache(Cache* c) REQUIRES(slab_mutex);
  static void free_child_rcu(platform::RcuHead* h);

  platform::Platform& plat_;
  Memcg& memcg_;
  Slab& slab_;
  ListNode roots_;  // guarded by slab_mutex
  Quarantine<Cache> quarantine_ GUARDED_BY(slab_mutex){1024};
};

}  // namespace cgslab
