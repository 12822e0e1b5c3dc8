// Lifecycle of per-cgroup child caches: every CacheState (cgslab.h) reached and left,
// with exact charge numbers at each step.
#include <cstring>

#include "fixture.h"

namespace cgslab::test {
namespace {

using LifecycleTest = AllocatorTest;

TEST_F(LifecycleTest, ChildCacheStatesWithExactCharges) {
  // 256-byte objects: 16 per one-page slab.
  Cache* c = a->cache_create("obj256", 256, 8, kCacheAccount);
  ASSERT_NE(c, nullptr);
  Cgroup* p = a->cgroup_create(root, "p");
  Cgroup* g = a->cgroup_create(p, "g");
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(a->child_state_for_testing(c, g), CacheState::kRoot);

  std::vector<void*> objs;
  {
    TaskCgroupScope task(g);
    // queued: the first accounted allocation schedules creation and is served by the root.
    a->pause_for_testing(false, true);
    objs.push_back(a->cache_alloc(c));
    ASSERT_NE(objs[0], nullptr);
    EXPECT_EQ(a->child_state_for_testing(c, g), CacheState::kQueued);
    EXPECT_EQ(a->cache_stats(c).active_objects, 1u);
    EXPECT_EQ(a->cgroup_stats(g).usage, 0u);  // served from the root cache: not charged
    EXPECT_EQ(a->cgroup_stats(g).css_refs, 3);  // base + attached task + queued creation work
    a->pause_for_testing(false, false);
    a->drain();
    // active
    EXPECT_EQ(a->child_state_for_testing(c, g), CacheState::kActive);
    EXPECT_TRUE(valid());
    for (int i = 0; i < 16; ++i) objs.push_back(a->cache_alloc(c));
  }
  CacheStats child = child_of(c, "/p/g");
  EXPECT_EQ(child.state, CacheState::kActive);
  EXPECT_EQ(child.active_objects, 16u);
  EXPECT_EQ(child.slabs, 1u);
  EXPECT_EQ(child.charged_pages, 1u);
  // One page charged through a batch of 32: 31 pages sit in the per-cpu stock.
  EXPECT_EQ(a->cgroup_stats(g).usage, 32 * kPage);
  EXPECT_EQ(a->cgroup_stats(p).usage, 32 * kPage);
  EXPECT_EQ(a->cgroup_stats(g).slab_bytes, kPage);
  EXPECT_EQ(a->cgroup_stats(g).live_caches, 1u);
  EXPECT_TRUE(valid());

  // deactivated: offline clears the entry and reparents to p; the stock is drained, so p keeps
  // exactly the one slab page and g's own counter is empty.
  a->pause_for_testing(true, true);
  ASSERT_TRUE(a->cgroup_offline(g));
  child = child_of(c, "/p");
  EXPECT_EQ(child.state, CacheState::kDeactivated);
  EXPECT_EQ(a->child_state_for_testing(c, p), CacheState::kRoot);  // p never allocated itself
  EXPECT_EQ(a->cgroup_stats(g).usage, 0u);
  EXPECT_EQ(a->cgroup_stats(p).usage, kPage);
  EXPECT_EQ(a->cgroup_stats(p).slab_bytes, kPage);
  EXPECT_EQ(a->cgroup_stats(p).dying_caches, 1u);
  EXPECT_FALSE(a->cgroup_stats(g).online);
  EXPECT_EQ(a->cgroup_stats(g).kmemcg_id, a->cgroup_stats(p).kmemcg_id);

  // killed: after a grace period the work shrinks the cache and kills its ref.
  a->pause_for_testing(false, false);
  a->drain();
  child = child_of(c, "/p");
  EXPECT_EQ(child.state, CacheState::kKilled);
  EXPECT_EQ(child.refcount, 1);  // one slab page holds it
  EXPECT_TRUE(valid());

  // released: the last free empties the last slab; the dead cache discards it at once.
  a->pause_for_testing(false, true);
  for (size_t i = 1; i < objs.size(); ++i) a->cache_free(c, objs[i]);
  child = child_of(c, "/p");
  EXPECT_EQ(child.state, CacheState::kReleased);
  EXPECT_EQ(child.slabs, 0u);
  EXPECT_EQ(a->cgroup_stats(p).usage, 0u);

  // freed: the shutdown work unlinks it and drops its cgroup reference; g is released.
  a->pause_for_testing(false, false);
  a->drain();
  EXPECT_TRUE(a->child_cache_stats(c).empty());
  EXPECT_EQ(a->stats().children_created, 1u);
  EXPECT_EQ(a->stats().children_freed, 1u);
  EXPECT_EQ(a->stats().cgroups, 2u);  // root + p: g was released
  EXPECT_EQ(a->cgroup_stats(p).css_refs, 1);

  a->cache_free(c, objs[0]);
  EXPECT_TRUE(a->cgroup_offline(p));
  EXPECT_TRUE(a->cache_destroy(c));
  finish();
}

TEST_F(LifecycleTest, EmptyChildIsFreedRightAfterOffline) {
  Cache* c = a->cache_create("empty", 64, 8, kCacheAccount);
  Cgroup* g = a->cgroup_create(root, "g");
  activate_child(c, g);
  {
    TaskCgroupScope t(g);
    void* o = a->cache_alloc(c);
    a->cache_free(c, o);
  }
  EXPECT_EQ(a->child_state_for_testing(c, g), CacheState::kActive);
  ASSERT_TRUE(a->cgroup_offline(g));
  a->drain();
  EXPECT_TRUE(a->child_cache_stats(c).empty());
  EXPECT_EQ(a->stats().cgroups, 1u);
  EXPECT_TRUE(a->cache_destroy(c));
  finish();
}

TEST_F(LifecycleTest, ReparentingMovesChargesExactlyUpSeveralLevels) {
  Cache* c = a->cache_create("r", 1024, 8, kCacheAccount);  // 4 per page
  Cgroup* x = a->cgroup_create(root, "x");
  Cgroup* y = a->cgroup_create(x, "y");
  Cgroup* z = a->cgroup_create(y, "z");
  std::vector<void*> zo, yo;
  activate_child(c, z);
  {
    TaskCgroupScope t(z);
    for (int i = 0; i < 10; ++i) zo.push_back(a->cache_alloc(c));  // 3 slabs
  }
  activate_child(c, y);
  {
    TaskCgroupScope t(y);
    for (int i = 0; i < 5; ++i) yo.push_back(a->cache_alloc(c));  // 2 slabs
  }
  a->shrink_all();
  EXPECT_EQ(a->cgroup_stats(z).slab_bytes, 3 * kPage);
  EXPECT_EQ(a->cgroup_stats(y).slab_bytes, 2 * kPage);
  ASSERT_TRUE(a->cgroup_offline(z));
  EXPECT_EQ(a->cgroup_stats(y).slab_bytes, 5 * kPage);
  EXPECT_EQ(a->cgroup_stats(y).dying_caches, 1u);
  ASSERT_TRUE(a->cgroup_offline(y));
  a->drain();
  EXPECT_EQ(a->cgroup_stats(x).slab_bytes, 5 * kPage);
  EXPECT_EQ(a->cgroup_stats(x).usage, 5 * kPage);
  EXPECT_EQ(a->cgroup_stats(x).dying_caches, 2u);
  EXPECT_TRUE(valid());
  for (void* o : zo) a->cache_free(c, o);
  a->drain();
  EXPECT_EQ(a->cgroup_stats(x).usage, 2 * kPage);  // the z cache freed itself
  EXPECT_EQ(a->cgroup_stats(x).dying_caches, 1u);
  for (void* o : yo) a->cache_free(c, o);
  a->drain();
  EXPECT_EQ(a->cgroup_stats(x).usage, 0u);
  EXPECT_EQ(a->cgroup_stats(x).css_refs, 1);
  EXPECT_TRUE(a->cgroup_offline(x));
  EXPECT_TRUE(a->cache_destroy(c));
  finish();
}

TEST_F(LifecycleTest, KmemcgIdsRecycleAndArraysGrow) {
  Cache* c = a->cache_create("ids", 32, 8, kCacheAccount);
  std::vector<Cgroup*> cgs;
  for (int i = 0; i < 9; ++i) cgs.push_back(a->cgroup_create(root, "c" + std::to_string(i)));
  for (int i = 0; i < 9; ++i) EXPECT_EQ(a->cgroup_stats(cgs[i]).kmemcg_id, i);
  // Growth: 4 -> 8 -> 20 entries (2 * (id + 1)), old arrays freed after a grace period.
  std::vector<std::pair<Cgroup*, void*>> objs;
  for (Cgroup* g : cgs) {
    TaskCgroupScope t(g);
    a->cache_free(c, a->cache_alloc(c));
  }
  a->drain();
  for (Cgroup* g : cgs) {
    EXPECT_EQ(a->child_state_for_testing(c, g), CacheState::kActive);
    TaskCgroupScope t(g);
    objs.push_back({g, a->cache_alloc(c)});
  }
  EXPECT_TRUE(valid());
  ASSERT_TRUE(a->cgroup_offline(cgs[3]));
  Cgroup* fresh = a->cgroup_create(root, "fresh");
  EXPECT_EQ(a->cgroup_stats(fresh).kmemcg_id, 3);  // recycled
  EXPECT_EQ(a->child_state_for_testing(c, fresh), CacheState::kRoot);  // no stale entry
  // A cache created after growth gets an array of the grown size.
  Cache* d = a->cache_create("late", 48, 8, kCacheAccount);
  {
    TaskCgroupScope t(cgs[8]);
    a->cache_free(d, a->cache_alloc(d));
  }
  a->drain();
  EXPECT_EQ(a->child_state_for_testing(d, cgs[8]), CacheState::kActive);
  EXPECT_TRUE(valid());
  for (auto& [g, o] : objs) a->cache_free(c, o);
  for (Cgroup* g : cgs)
    if (g != cgs[3]) EXPECT_TRUE(a->cgroup_offline(g));
  EXPECT_TRUE(a->cgroup_offline(fresh));
  EXPECT_TRUE(a->cache_destroy(c));
  EXPECT_TRUE(a->cache_destroy(d));
  finish();
}

TEST_F(LifecycleTest, AliasesShareOneCacheUntilTheLastDestroy) {
  Cache* c1 = a->cache_create("a1", 60, 8, 0);
  Cache* c2 = a->cache_create("a2", 64, 8, 0);  // same 64-byte slots, same flags
  Cache* c3 = a->cache_create("a3", 64, 8, kCacheNoMerge);
  Cache* c4 = a->cache_create("a4", 64, 8, kCacheAccount);  // different flags
  EXPECT_EQ(c1, c2);
  EXPECT_NE(c1, c3);
  EXPECT_NE(c1, c4);
  EXPECT_EQ(a->cache_stats(c1).refcount, 2);
  void* o = a->cache_alloc(c2);
  EXPECT_TRUE(a->cache_destroy(c1));  // alias count drops, cache stays
  a->cache_free(c2, o);
  EXPECT_TRUE(a->cache_destroy(c2));
  EXPECT_TRUE(a->cache_destroy(c3));
  EXPECT_TRUE(a->cache_destroy(c4));
  a->cache_alloc(c1);  // destroyed: reported
  EXPECT_EQ(take_errors(ErrorKind::kUseAfterDestroy), 1u);
  finish();
}

TEST_F(LifecycleTest, RootDestroyWithLiveObjectsFailsAndKeepsTheCache) {
  Cache* c = a->cache_create("busy", 128, 8, kCacheAccount);
  Cgroup* g = a->cgroup_create(root, "g");
  void* child_obj;
  activate_child(c, g);
  {
    TaskCgroupScope t(g);
    child_obj = a->cache_alloc(c);
  }
  EXPECT_FALSE(a->cache_destroy(c));
  ASSERT_EQ(take_errors(ErrorKind::kCacheBusy), 1u);
  EXPECT_EQ(a->cache_stats(c).state, CacheState::kDestroyFailed);
  EXPECT_NE(a->cache_stats(c).name.find("busy"), std::string::npos);
  EXPECT_EQ(a->cache_alloc(c), nullptr);  // a destroyed cache is not allocated from
  EXPECT_EQ(take_errors(ErrorKind::kUseAfterDestroy), 1u);
  EXPECT_TRUE(valid());
  a->cache_free(c, child_obj);  // nothing lost: the object can still be freed
  EXPECT_TRUE(a->cache_destroy(c));  // and the destroy retried
  EXPECT_TRUE(a->cgroup_offline(g));
  finish();
}

TEST_F(LifecycleTest, RootDestroyShutsDownActiveAndDyingChildren) {
  Cache* c = a->cache_create("kids", 64, 8, kCacheAccount);
  Cgroup* g1 = a->cgroup_create(root, "g1");
  Cgroup* g2 = a->cgroup_create(root, "g2");
  for (Cgroup* g : {g1, g2}) {
    TaskCgroupScope t(g);
    a->cache_free(c, a->cache_alloc(c));
  }
  a->drain();
  ASSERT_TRUE(a->cgroup_offline(g2));  // its child is mid-deactivation when the root goes
  EXPECT_TRUE(a->cache_destroy(c));
  EXPECT_EQ(a->stats().children_freed, 2u);
  EXPECT_TRUE(a->cgroup_offline(g1));
  finish();
}

TEST_F(LifecycleTest, TypesafeByRcuSlabOutlivesTheGracePeriod) {
  static int constructed = 0;
  Cache* c = a->cache_create("rcu", 100, 8, kCacheTypesafeByRcu | kCacheAccount,
                             [](void* p) { ++constructed, std::memset(p, 0x5a, 100); });
  Cgroup* g = a->cgroup_create(root, "g");
  void* o;
  activate_child(c, g);
  {
    TaskCgroupScope t(g);
    o = a->cache_alloc(c);
  }
  EXPECT_GT(constructed, 0);
  ASSERT_TRUE(a->cgroup_offline(g));
  a->drain();  // killed; the object's slab holds the cache
  a->rcu_read_lock();
  a->pause_for_testing(true, false);
  a->cache_free(c, o);
  // A reader inside RCU may still read the object: type-stable, constructed contents kept.
  EXPECT_EQ(static_cast<unsigned char*>(o)[0], 0x5a);
  CacheStats child = child_of(c, "/");
  EXPECT_EQ(child.state, CacheState::kKilled);  // the slab waits for a grace period
  a->rcu_read_unlock();
  a->pause_for_testing(false, false);
  a->drain();
  EXPECT_TRUE(a->child_cache_stats(c).empty());
  EXPECT_TRUE(a->cache_destroy(c));
  finish();
}

TEST_F(LifecycleTest, RemoteChargingIntoACgroupThatGoesOffline) {
  Cache* c = a->cache_create("remote", 512, 8, kCacheAccount);
  Cgroup* p = a->cgroup_create(root, "p");
  Cgroup* g = a->cgroup_create(p, "g");
  std::vector<void*> objs;
  {
    TaskCgroupScope t(p);  // p has its own child cache
    a->cache_free(c, a->cache_alloc(c));
  }
  {
    RemoteChargeScope r(g);  // holds a reference: g may go offline meanwhile (the 2019 race)
    a->cache_free(c, a->cache_alloc(c));
    a->drain();
    objs.push_back(a->cache_alloc(c));
    EXPECT_EQ(a->cgroup_stats(g).slab_bytes, kPage);
    ASSERT_TRUE(a->cgroup_offline(g));
    // g now uses p's kmemcg id: allocations charge p's own child cache. (An offline cgroup
    // cannot schedule a cache creation: css_tryget_online fails.)
    a->drain();
    EXPECT_EQ(a->child_state_for_testing(c, p), CacheState::kActive);
    for (int i = 0; i < 9; ++i) objs.push_back(a->cache_alloc(c));
    EXPECT_EQ(a->cgroup_stats(g).usage, 0u);
    EXPECT_TRUE(valid());
  }
  a->shrink_all();
  // 1 page reparented from g + 2 pages of p's own cache (8 objects of 512 bytes per page).
  EXPECT_EQ(a->cgroup_stats(p).slab_bytes, 3 * kPage);
  for (void* o : objs) a->cache_free(c, o);
  EXPECT_TRUE(a->cgroup_offline(p));
  EXPECT_TRUE(a->cache_destroy(c));
  finish();
}

TEST_F(LifecycleTest, KmallocAccountedWithGfpAccount) {
  Cgroup* g = a->cgroup_create(root, "g");
  void* plain;
  void* acc;
  {
    TaskCgroupScope t(g);
    plain = a->kmalloc(100);  // not accounted: root kmalloc-128
    a->kfree(a->kmalloc(100, kGfpAccount));
    a->drain();
    acc = a->kmalloc(100, kGfpAccount | kGfpZero);
  }
  EXPECT_EQ(static_cast<char*>(acc)[99], 0);
  EXPECT_EQ(a->ksize(acc), 128u);
  EXPECT_EQ(a->cgroup_stats(g).slab_bytes, kPage);
  a->kfree(plain);
  a->kfree(acc);
  EXPECT_TRUE(a->cgroup_offline(g));
  finish();
}

TEST_F(LifecycleTest, FaultInjectionLosesNothing) {
  Cache* c = a->cache_create("faulty", 64, 8, kCacheAccount);
  Cgroup* g = a->cgroup_create(root, "g");
  a->fail_nth_mapping_for_testing(1);
  EXPECT_EQ(a->cache_alloc(c), nullptr);  // the chunk mapping failed
  void* o = a->cache_alloc(c);
  EXPECT_NE(o, nullptr);
  a->cache_free(c, o);
  {
    TaskCgroupScope t(g);
    a->fail_nth_internal_alloc_for_testing(1);  // the creation work item
    a->cache_free(c, a->cache_alloc(c));
    EXPECT_EQ(a->child_state_for_testing(c, g), CacheState::kRoot);  // pending mark undone
    a->cache_free(c, a->cache_alloc(c));
    a->drain();
    EXPECT_EQ(a->child_state_for_testing(c, g), CacheState::kActive);
  }
  a->fail_nth_internal_alloc_for_testing(1);
  EXPECT_EQ(a->cgroup_create(root, "nomem"), nullptr);
  EXPECT_TRUE(valid());
  EXPECT_TRUE(a->cgroup_offline(g));
  EXPECT_TRUE(a->cache_destroy(c));
  finish();
}

}  // namespace
}  // namespace cgslab::test
