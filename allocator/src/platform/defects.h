// defects.h: historical bugs re-injected as switches, to prove that the harness catches what it
// exists to catch and to time how fast (ci/bugbench.sh; README.md, "Fuzzing", Defects). Only fuzz
// builds (FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION) can turn one on, with CGSLAB_DEFECT=<name> in
// the environment; in every other build defect() is constexpr false and the code folds away. Each
// switch is the smallest change to the real code path that brings the old bug back.
//
//   no_tryget  alloc_accounted's slow path uses the child cache without percpu_ref_tryget, so a
//     concurrent offline can free the cache while the allocation sleeps in reclaim. History: Shakeel
//     Butt's review of Roman Gushchin's 2019 series "mm: memcg/slab: reparent memcg kmem_caches on
//     cgroup removal". Symptom: a use-after-free of the cache (ASan), or a released cache that still
//     has slabs.
//   leak_slab_ref  freeing a slab page does not drop its cache reference, so a dead cache never
//     destroys itself. History: the page -> kmem_cache reference of the same 2019 series, whose
//     point is Vladimir Davydov's 2014 self-destruction of dead caches. Symptom: child caches left
//     at teardown.
//   array_free_no_rcu  growing the memcg_caches arrays (a new cgroup id past their size) frees each
//     old array at once, not after a grace period, while lock-free readers in alloc_accounted may
//     still index it. History: Vladimir Davydov, 2014, "memcg, slab: RCU protect memcg_params for
//     root caches". Symptom: heap-use-after-free in alloc_accounted (ASan).
//   publish_before_init  a new child cache is stored in memcg_caches[] before it is initialized
//     (its percpu_ref, its cgroup, its state), so a concurrent allocation uses a half-built cache.
//     History: the smp_wmb() before the store in memcg_create_kmem_cache ("readers won't lock, so
//     nobody may see the kmem_cache partially initialized"). Symptom: a charge that goes nowhere
//     and an uncharge below zero, or a wrong refcount (oracles), or a crash.
//   root_destroy_no_flush  kmem_cache_destroy of a root does not wait for queued creation and
//     deactivation work and RCU callbacks (flush_memcg_workqueue: rcu_barrier and flush_workqueue
//     after marking the root dying, 2018). Symptom: work running on a child cache that the destroy
//     already freed (heap-use-after-free), or a child created for a destroyed root.
//   dead_cache_keeps_empty_slabs  a deactivated cache keeps empty slabs as a live one does (up to
//     min_partial), so its last objects can be freed without the cache ever destroying itself: the
//     2014 problem of the seed mail (Davydov, "slub: make dead caches discard free slabs
//     immediately"). Symptom: a killed cache holding empty slabs (validate()).
//   free_races_destroy  the shutdown of a released child cache frees it at once instead of after a
//     grace period, so code still running inside the cache (a free that dropped the last slab,
//     a reader that found the cache under RCU) touches freed memory. History: Davydov, 2014,
//     "memcg: wait for kfree's to finish before destroying cache" (kmem_cache_free is not
//     preemptible, so an RCU-sched grace period waits for every one of them). Symptom:
//     heap-use-after-free of the cache.
//   root_uncharge_after_reparent  the root cgroup's page counter is uncharged like any other, so
//     after a top-level cgroup's caches are reparented to the root, freeing their slab pages
//     uncharges pages the root was never charged (the mem_cgroup_is_root() checks of the kmem
//     uncharge paths). Symptom: an uncharge below zero (internal error).
//   alias_marks_dying  destroying one alias of a merged root cache marks the shared root dying
//     before dropping its reference count, so the surviving root never deactivates the children of
//     cgroups removed later (the order of the refcount drop and the dying flag in
//     kmem_cache_destroy). Symptom: dead child caches that never destroy themselves (a leak).
//   descendant_ids_not_moved  at offline only the cgroup takes its parent's kmemcg_id; its offline
//     descendants keep the id it frees, so once the id is reused they allocate from another
//     cgroup's caches (memcg_offline_kmem's css_for_each_descendant_pre loop; Davydov, 2016,
//     "mm: memcontrol: reparent list_lrus and free kmemcg_id on css offline"). Symptom: objects
//     charged to the wrong cgroup (charge conservation).
#pragma once

namespace cgslab::platform {

// The one list: X(enumerator, name).
#define CGSLAB_DEFECTS(X)                                        \
  X(kNoTryget, "no_tryget")                                      \
  X(kLeakSlabRef, "leak_slab_ref")                               \
  X(kArrayFreeNoRcu, "array_free_no_rcu")                        \
  X(kPublishBeforeInit, "publish_before_init")                   \
  X(kRootDestroyNoFlush, "root_destroy_no_flush")                \
  X(kDeadCacheKeepsEmptySlabs, "dead_cache_keeps_empty_slabs")   \
  X(kFreeRacesDestroy, "free_races_destroy")                     \
  X(kRootUnchargeAfterReparent, "root_uncharge_after_reparent")  \
  X(kAliasMarksDying, "alias_marks_dying")                       \
  X(kDescendantIdsNotMoved, "descendant_ids_not_moved")

enum class Defect {
#define CGSLAB_DEFECT_ENUM(e, name) e,
  CGSLAB_DEFECTS(CGSLAB_DEFECT_ENUM)
#undef CGSLAB_DEFECT_ENUM
};

#if defined(FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION)
bool defect(Defect d);
#else
constexpr bool defect(Defect) { return false; }
#endif

}  // namespace cgslab::platform
