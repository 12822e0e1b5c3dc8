// Every misuse is reported through Options::on_error with a clear message, and the allocator
// stays consistent (validate() passes afterwards, nothing is lost).
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "fixture.h"

namespace cgslab::test {
namespace {

using MisuseTest = AllocatorTest;

TEST_F(MisuseTest, DoubleFreeIsReportedOnceAndStateStaysValid) {
  Cache* c = a->cache_create("df", 64, 8, 0);
  void* o = a->cache_alloc(c);
  a->cache_free(c, o);
  a->cache_free(c, o);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].kind, ErrorKind::kDoubleFree);
  EXPECT_NE(errors[0].message.find("df"), std::string::npos);
  EXPECT_EQ(errors[0].addr, o);
  errors.clear();
  EXPECT_TRUE(valid());
  EXPECT_EQ(a->cache_stats(c).active_objects, 0u);
  EXPECT_TRUE(a->cache_destroy(c));
  finish();
}

TEST_F(MisuseTest, DoubleFreeDetectedAfterTheObjectWentBackToItsSlab) {
  Cache* c = a->cache_create("df2", 64, 8, 0);
  std::vector<void*> v;
  for (int i = 0; i < 200; ++i) v.push_back(a->cache_alloc(c));
  for (void* o : v) a->cache_free(c, o);  // overflows magazines into slabs
  a->cache_free(c, v[0]);
  EXPECT_EQ(take_errors(ErrorKind::kDoubleFree), 1u);
  EXPECT_TRUE(a->cache_destroy(c));
  finish();
}

TEST_F(MisuseTest, LiveObjectHoldingTheMarkerValueIsNotADoubleFree) {
  Cache* c = a->cache_create("nowolf", 64, 8, 0);
  void* o = a->cache_alloc(c);
  void* freed = a->cache_alloc(c);
  a->cache_free(c, freed);
  // Copy the free marker of a free object into a live one: the exact check must clear it.
  uintptr_t* w = static_cast<uintptr_t*>(o);
  w[1] = 0x5a17f4eeb1e55edull ^ reinterpret_cast<uintptr_t>(o);
  a->cache_free(c, o);
  EXPECT_TRUE(errors.empty());
  EXPECT_TRUE(a->cache_destroy(c));
  finish();
}

TEST_F(MisuseTest, FreeOfForeignPointerAndInteriorPointer) {
  Cache* c = a->cache_create("inv", 64, 8, 0);
  int on_stack = 0;
  a->cache_free(c, &on_stack);
  EXPECT_EQ(take_errors(ErrorKind::kInvalidFree), 1u);
  void* m = std::malloc(64);
  a->kfree(m);
  EXPECT_EQ(take_errors(ErrorKind::kInvalidFree), 1u);
  std::free(m);
  char* o = static_cast<char*>(a->cache_alloc(c));
  a->cache_free(c, o + 8);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].kind, ErrorKind::kInvalidFree);
  EXPECT_NE(errors[0].message.find("not the start of an object"), std::string::npos);
  errors.clear();
  a->cache_free(c, o);
  EXPECT_TRUE(a->cache_destroy(c));
  finish();
}

TEST_F(MisuseTest, FreeIntoTheWrongCache) {
  Cache* c1 = a->cache_create("one", 64, 8, kCacheNoMerge);
  Cache* c2 = a->cache_create("two", 64, 8, kCacheNoMerge);
  void* o = a->cache_alloc(c1);
  a->cache_free(c2, o);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].kind, ErrorKind::kWrongCache);
  EXPECT_NE(errors[0].message.find("one"), std::string::npos);
  errors.clear();
  a->cache_free(c1, o);  // nothing lost
  EXPECT_TRUE(a->cache_destroy(c1));
  EXPECT_TRUE(a->cache_destroy(c2));
  finish();
}

TEST_F(MisuseTest, ChildObjectFreedThroughItsRootIsFine) {
  Cache* c = a->cache_create("viaroot", 64, 8, kCacheAccount);
  Cgroup* g = a->cgroup_create(root, "g");
  void* o;
  activate_child(c, g);
  {
    TaskCgroupScope t(g);
    o = a->cache_alloc(c);
  }
  a->kfree(o);  // kfree of a cache object works too (kernel SLUB semantics)
  EXPECT_TRUE(errors.empty());
  EXPECT_TRUE(a->cgroup_offline(g));
  EXPECT_TRUE(a->cache_destroy(c));
  finish();
}

TEST_F(MisuseTest, UseOfDestroyedCacheAndReleasedCgroup) {
  Cache* c = a->cache_create("gone", 64, 8, 0);
  EXPECT_TRUE(a->cache_destroy(c));
  EXPECT_EQ(a->cache_alloc(c), nullptr);
  EXPECT_FALSE(a->cache_destroy(c));
  a->cache_shrink(c);
  EXPECT_EQ(take_errors(ErrorKind::kUseAfterDestroy), 3u);
  Cgroup* g = a->cgroup_create(root, "g");
  EXPECT_TRUE(a->cgroup_offline(g));
  a->drain();  // released
  EXPECT_EQ(a->cgroup_create(g, "x"), nullptr);
  a->cgroup_set_max(g, 4096);
  EXPECT_EQ(take_errors(ErrorKind::kUseAfterDestroy), 2u);
  finish();
}

TEST_F(MisuseTest, OfflineCgroupOperations) {
  Cgroup* g = a->cgroup_create(root, "g");
  {
    RemoteChargeScope r(g);  // keeps g from being released
    EXPECT_TRUE(a->cgroup_offline(g));
    EXPECT_FALSE(a->cgroup_offline(g));
    EXPECT_EQ(a->cgroup_create(g, "child"), nullptr);
    a->cgroup_set_max(g, 1 << 20);
    { TaskCgroupScope t(g); }
    EXPECT_EQ(take_errors(ErrorKind::kOfflineCgroup), 4u);
  }
  finish();
}

TEST_F(MisuseTest, RootOfflineAndBusyOfflineAreRefused) {
  EXPECT_FALSE(a->cgroup_offline(root));
  EXPECT_EQ(take_errors(ErrorKind::kBadArgument), 1u);
  Cgroup* g = a->cgroup_create(root, "g");
  Cgroup* k = a->cgroup_create(g, "k");
  {
    TaskCgroupScope t(k);
    EXPECT_FALSE(a->cgroup_offline(k));  // EBUSY: a task is attached (not an error report)
  }
  EXPECT_FALSE(a->cgroup_offline(g));    // EBUSY: has an online child
  EXPECT_TRUE(errors.empty());
  EXPECT_TRUE(a->cgroup_offline(k));
  EXPECT_TRUE(a->cgroup_offline(g));
  finish();
}

TEST_F(MisuseTest, BadSizesAlignmentsFlagsAndNames) {
  EXPECT_EQ(a->cache_create("zero", 0, 8, 0), nullptr);
  EXPECT_EQ(a->cache_create("huge", kMaxObjectSize + 1, 8, 0), nullptr);
  EXPECT_EQ(a->cache_create("align", 64, 24, 0), nullptr);
  EXPECT_EQ(a->cache_create("align2", 64, 8192, 0), nullptr);
  EXPECT_EQ(a->cache_create("", 64, 8, 0), nullptr);
  EXPECT_EQ(a->cache_create("flags", 64, 8, 1u << 12), nullptr);
  EXPECT_EQ(a->kmalloc(0), nullptr);
  EXPECT_EQ(a->kmalloc(kMaxObjectSize + 1), nullptr);
  EXPECT_EQ(a->kmalloc(8, 1u << 20), nullptr);
  EXPECT_EQ(a->cache_alloc(nullptr), nullptr);
  EXPECT_EQ(a->cgroup_create(root, "a/b"), nullptr);
  EXPECT_EQ(a->cgroup_create(nullptr, "x"), nullptr);
  a->rcu_read_unlock();
  a->unregister_shrinker(12345);
  size_t n = errors.size();
  EXPECT_EQ(n, 14u);
  EXPECT_EQ(take_errors(ErrorKind::kBadArgument), n);
  finish();
}

TEST_F(MisuseTest, AlignmentIsHonoured) {
  for (size_t al : {8, 16, 64, 256, 4096}) {
    Cache* c = a->cache_create("al" + std::to_string(al), 40, al, kCacheNoMerge);
    std::vector<void*> v;
    for (int i = 0; i < 5; ++i) {
      v.push_back(a->cache_alloc(c));
      EXPECT_EQ(reinterpret_cast<uintptr_t>(v.back()) % al, 0u);
    }
    for (void* o : v) a->cache_free(c, o);
    EXPECT_TRUE(a->cache_destroy(c));
  }
  finish();
}

TEST_F(MisuseTest, DefaultHandlerAbortsWithCacheAndAddress) {
  EXPECT_DEATH(
      {
        Allocator b;
        Cache* c = b.cache_create("deathcache", 64, 8, 0);
        void* o = b.cache_alloc(c);
        b.cache_free(c, o);
        b.cache_free(c, o);
      },
      "double-free.*deathcache");
  finish();
}

TEST_F(MisuseTest, LeakAtDestructionIsReported) {
  Cache* c = a->cache_create("leaky", 64, 8, 0);
  ASSERT_NE(a->cache_alloc(c), nullptr);
  a.reset();
  EXPECT_EQ(take_errors(ErrorKind::kLeak), 1u);
  EXPECT_TRUE(errors.empty());
}

}  // namespace
}  // namespace cgslab::test
