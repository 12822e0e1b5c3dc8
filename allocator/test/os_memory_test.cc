// os_memory_test: OsMemory's own contract (os_memory.h). A mapping is aligned, writable and
// zeroed, and counted while mapped; a mapping given back is counted as unmapped at once, is
// inaccessible (a stale pointer faults as after munmap), comes back zeroed when the same size
// is mapped again, and the process keeps at most kCacheBytes of such mappings.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <vector>

#include "platform/os_memory.h"

using cgslab::platform::OsMemory;

namespace {

constexpr size_t kChunk = size_t(1) << 20;

bool all_zero(const void* p, size_t n) {
  const auto* b = static_cast<const unsigned char*>(p);
  for (size_t i = 0; i < n; i += 512)
    if (b[i]) return false;
  return true;
}

TEST(OsMemoryTest, MappingIsAlignedZeroedAndCounted) {
  OsMemory mem;
  void* p = mem.map_aligned(kChunk, kChunk);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % kChunk, 0u);
  EXPECT_TRUE(all_zero(p, kChunk));
  std::memset(p, 0xab, kChunk);
  EXPECT_EQ(mem.mapped_bytes(), kChunk);
  mem.unmap(p, kChunk);
  EXPECT_EQ(mem.mapped_bytes(), 0u);
}

TEST(OsMemoryTest, AGivenBackMappingComesBackZeroed) {
  OsMemory mem;
  void* p = mem.map_aligned(kChunk, kChunk);
  ASSERT_NE(p, nullptr);
  std::memset(p, 0xcd, kChunk);
  mem.unmap(p, kChunk);
  void* q = mem.map_aligned(kChunk, kChunk);
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q, p) << "the cached mapping is handed out again";
  EXPECT_TRUE(all_zero(q, kChunk));
  EXPECT_EQ(mem.mapped_bytes(), kChunk);
  mem.unmap(q, kChunk);

  void* m = mem.map_metadata(8192);
  ASSERT_NE(m, nullptr);
  std::memset(m, 0x11, 8192);
  mem.unmap_metadata(m, 8192);
  void* m2 = mem.map_metadata(8192);
  EXPECT_TRUE(all_zero(m2, 8192));
  mem.unmap_metadata(m2, 8192);
  EXPECT_EQ(mem.metadata_bytes(), 0u);
}

TEST(OsMemoryTest, AStalePointerIntoAGivenBackMappingFaults) {
  OsMemory mem;
  auto* p = static_cast<volatile char*>(mem.map_aligned(kChunk, kChunk));
  ASSERT_NE(p, nullptr);
  p[100] = 1;
  mem.unmap(const_cast<char*>(p), kChunk);
  EXPECT_DEATH({ p[100] = 2; }, "");
}

TEST(OsMemoryTest, TheCacheKeepsAtMostItsBound) {
  OsMemory mem;
  const size_t n = OsMemory::kCacheBytes / kChunk + 16;
  std::vector<void*> maps;
  for (size_t i = 0; i < n; ++i) {
    void* p = mem.map_aligned(kChunk, kChunk);
    ASSERT_NE(p, nullptr);
    maps.push_back(p);
  }
  for (void* p : maps) mem.unmap(p, kChunk);
  EXPECT_EQ(mem.mapped_bytes(), 0u);
  size_t still_mapped = 0;
  unsigned char v[1];
  for (void* p : maps) still_mapped += mincore(p, 4096, v) == 0;
  EXPECT_LE(still_mapped * kChunk, OsMemory::kCacheBytes);
  EXPECT_GT(still_mapped, 0u);
}

}  // namespace
