// Page counter limits: charges fail at the limit, shrinkers are called, retries, NOWAIT,
// NORETRY and NOFAIL, failcnt and watermark.
#include "fixture.h"

namespace cgslab::test {
namespace {

using LimitsTest = AllocatorTest;

struct Pool {
  Allocator* a;
  Cache* c;
  std::vector<void*> objs;
  size_t release(size_t n) {
    size_t freed = 0;
    while (n-- && !objs.empty()) {
      a->cache_free(c, objs.back());
      objs.pop_back();
      freed += kPage;  // one object per page in these tests
    }
    return freed;
  }
};

TEST_F(LimitsTest, ChargeFailsAtTheLimitAndCountsFailures) {
  Cache* c = a->cache_create("big", 4096, 8, kCacheAccount);  // one object per page
  Cgroup* g = a->cgroup_create(root, "g");
  a->cgroup_set_max(g, 8 * kPage);
  std::vector<void*> objs;
  activate_child(c, g);
  {
    TaskCgroupScope t(g);
    for (int i = 0; i < 8; ++i) {
      void* o = a->cache_alloc(c, kGfpNoWait);
      ASSERT_NE(o, nullptr) << i;
      objs.push_back(o);
    }
    EXPECT_EQ(a->cache_alloc(c, kGfpNoWait), nullptr);
  }
  CgroupStats st = a->cgroup_stats(g);
  EXPECT_EQ(st.usage, 8 * kPage);
  EXPECT_EQ(st.watermark, 8 * kPage);
  EXPECT_GE(st.failcnt, 1u);
  EXPECT_TRUE(valid());
  for (void* o : objs) a->cache_free(c, o);
  EXPECT_TRUE(a->cgroup_offline(g));
  EXPECT_TRUE(a->cache_destroy(c));
  finish();
}

TEST_F(LimitsTest, ShrinkerMakesRoomAndRetriesSucceed) {
  Cache* c = a->cache_create("big", 4096, 8, kCacheAccount | kCacheNoMerge);
  Cgroup* g = a->cgroup_create(root, "g");
  a->cgroup_set_max(g, 4 * kPage);
  Pool pool{a.get(), c, {}};
  int calls = 0;
  ShrinkerId id = a->register_shrinker([&](const ShrinkControl& sc) {
    ++calls;
    EXPECT_EQ(sc.memcg, g);
    return pool.release(1);
  });
  activate_child(c, g);
  {
    TaskCgroupScope t(g);
    for (int i = 0; i < 10; ++i) {
      void* o = a->cache_alloc(c);
      ASSERT_NE(o, nullptr) << "allocation " << i << " failed despite the shrinker";
      pool.objs.push_back(o);
    }
  }
  EXPECT_GE(calls, 6);
  EXPECT_LE(a->cgroup_stats(g).usage, 4 * kPage);
  a->unregister_shrinker(id);
  pool.release(100);
  EXPECT_TRUE(a->cgroup_offline(g));
  EXPECT_TRUE(a->cache_destroy(c));
  finish();
}

TEST_F(LimitsTest, RetriesAreBoundedNoRetryIsOnePassNoWaitIsNone) {
  Cache* c = a->cache_create("big", 4096, 8, kCacheAccount);
  Cgroup* g = a->cgroup_create(root, "g");
  a->cgroup_set_max(g, 1 * kPage);
  int calls = 0;
  ShrinkerId id = a->register_shrinker([&](const ShrinkControl&) {
    ++calls;
    return size_t(0);
  });
  void* o;
  activate_child(c, g);
  {
    TaskCgroupScope t(g);
    o = a->cache_alloc(c);
    ASSERT_NE(o, nullptr);
    calls = 0;
    EXPECT_EQ(a->cache_alloc(c), nullptr);
    EXPECT_EQ(calls, 5);  // MEM_CGROUP_RECLAIM_RETRIES
    calls = 0;
    EXPECT_EQ(a->cache_alloc(c, kGfpNoRetry), nullptr);
    EXPECT_EQ(calls, 1);
    calls = 0;
    EXPECT_EQ(a->cache_alloc(c, kGfpNoWait), nullptr);
    EXPECT_EQ(calls, 0);
  }
  a->unregister_shrinker(id);
  a->cache_free(c, o);
  EXPECT_TRUE(a->cgroup_offline(g));
  EXPECT_TRUE(a->cache_destroy(c));
  finish();
}

TEST_F(LimitsTest, NoFailForcesTheChargeOverTheLimit) {
  Cache* c = a->cache_create("big", 4096, 8, kCacheAccount);
  Cgroup* p = a->cgroup_create(root, "p");
  Cgroup* g = a->cgroup_create(p, "g");
  a->cgroup_set_max(p, 2 * kPage);  // the parent's limit binds
  std::vector<void*> objs;
  activate_child(c, g);
  {
    TaskCgroupScope t(g);
    for (int i = 0; i < 2; ++i) objs.push_back(a->cache_alloc(c, kGfpNoWait));
    EXPECT_EQ(a->cache_alloc(c, kGfpNoWait), nullptr);
    void* forced = a->cache_alloc(c, kGfpNoFail);
    ASSERT_NE(forced, nullptr);
    objs.push_back(forced);
  }
  EXPECT_EQ(a->cgroup_stats(p).usage, 3 * kPage);  // over max: forced
  EXPECT_GE(a->cgroup_stats(p).failcnt, 1u);
  EXPECT_EQ(a->cgroup_stats(g).failcnt, 0u);  // the level that refused was p
  EXPECT_TRUE(valid());
  for (void* o : objs) a->cache_free(c, o);
  EXPECT_TRUE(a->cgroup_offline(g));
  EXPECT_TRUE(a->cgroup_offline(p));
  EXPECT_TRUE(a->cache_destroy(c));
  finish();
}

TEST_F(LimitsTest, RootCgroupIsNeverCharged) {
  Cache* c = a->cache_create("rootacct", 64, 8, kCacheAccount);
  void* o;
  {
    TaskCgroupScope t(root);
    o = a->cache_alloc(c);
  }
  EXPECT_EQ(a->cgroup_stats(root).usage, 0u);
  EXPECT_TRUE(a->child_cache_stats(c).empty());
  a->cache_free(c, o);
  EXPECT_TRUE(a->cache_destroy(c));
  finish();
}

}  // namespace
}  // namespace cgslab::test
