// A use-after-free of a freed slab object is reported by ASan like one of a malloc'd block.
#include <cstring>

#include "fixture.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CGSLAB_TEST_ASAN 1
#endif
#endif

namespace cgslab::test {
namespace {

using PoisonTest = AllocatorTest;

TEST_F(PoisonTest, UseAfterFreeOfSlabObjectIsReportedByAsan) {
#ifndef CGSLAB_TEST_ASAN
  GTEST_SKIP() << "needs the asan preset";
#else
  EXPECT_DEATH(
      {
        Allocator b;
        Cache* c = b.cache_create("uaf", 64, 8, 0);
        volatile char* o = static_cast<char*>(b.cache_alloc(c));
        o[0] = 1;
        b.cache_free(c, const_cast<char*>(o));
        o[1] = 2;  // use after free
      },
      "AddressSanitizer: use-after-poison");
#endif
  finish();
}

TEST_F(PoisonTest, FreeSlabMemoryIsPoisoned) {
#ifndef CGSLAB_TEST_ASAN
  GTEST_SKIP() << "needs the asan preset";
#else
  EXPECT_DEATH(
      {
        Allocator b;
        Cache* c = b.cache_create("neverused", 64, 8, 0);
        volatile char* o = static_cast<char*>(b.cache_alloc(c));
        o[64 * 3] = 1;  // an object of the same slab that was never handed out
      },
      "AddressSanitizer: use-after-poison");
#endif
  finish();
}

TEST_F(PoisonTest, AllocatedObjectIsFullyUsable) {
  Cache* c = a->cache_create("ok", 100, 8, 0);
  char* o = static_cast<char*>(a->cache_alloc(c, kGfpZero));
  for (int i = 0; i < 100; ++i) EXPECT_EQ(o[i], 0);
  std::memset(o, 0xab, 100);
  a->cache_free(c, o);
  EXPECT_TRUE(a->cache_destroy(c));
  finish();
}

}  // namespace
}  // namespace cgslab::test
