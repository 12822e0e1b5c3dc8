// page_alloc_test: PageAlloc's own contract (page_alloc.h) on a real platform::Platform.
// A run of 2^order pages is aligned to its size, backed (writable), disjoint from every other
// live run, and described by a head PageDesc; lookup() maps every byte of a live run to that head
// and anything else (free pages, foreign memory) to nullptr. Freed pages are reused, first fit.
// The dirty-page budget holds after every free (dirty <= kDirtyMin + in_use / 2); purge() gives
// every dirty page back and unmaps the kept empty chunk, so freeing everything and purging
// leaves no chunk and no mapped byte. A failed chunk mapping (map_faults) fails the allocation
// and nothing else.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "page_alloc.h"
#include "platform/platform.h"

using cgslab::kChunkSize;
using cgslab::kMaxOrder;
using cgslab::kPagesPerChunk;
using cgslab::PageAlloc;
using cgslab::PageDesc;
using cgslab::PageKind;
using cgslab::platform::Platform;

namespace {

constexpr size_t kPage = 4096;

class PageAllocTest : public ::testing::Test {
 protected:
  PageAllocTest()
      : plat(4, [this](const cgslab::Error& e) {
          std::lock_guard<std::mutex> g(mu);
          errors.push_back(e);
        }),
        pa(std::make_unique<PageAlloc>(plat)) {}
  void TearDown() override {
    pa.reset();
    EXPECT_EQ(plat.mem.mapped_bytes(), 0u) << "chunks left mapped after ~PageAlloc";
    EXPECT_EQ(plat.mem.metadata_bytes(), 0u) << "metadata left mapped after ~PageAlloc";
    std::lock_guard<std::mutex> g(mu);
    for (auto& e : errors) ADD_FAILURE() << "unexpected error: " << e.message;
  }
  static size_t bytes(const PageDesc* pd) { return kPage << pd->order; }

  std::mutex mu;
  std::vector<cgslab::Error> errors;
  Platform plat;
  std::unique_ptr<PageAlloc> pa;
};

TEST_F(PageAllocTest, RunsOfEveryOrderAreAlignedBackedAndDisjoint) {
  std::vector<PageDesc*> runs;
  size_t pages = 0;
  for (int rep = 0; rep < 6; ++rep)
    for (unsigned order = 0; order <= kMaxOrder; ++order) {
      PageDesc* pd = pa->alloc(order);
      ASSERT_NE(pd, nullptr);
      EXPECT_EQ(pd->kind, PageKind::kSlab);
      EXPECT_EQ(pd->order, order);
      ASSERT_NE(pd->addr, nullptr);
      EXPECT_EQ(reinterpret_cast<uintptr_t>(pd->addr) % bytes(pd), 0u) << "order " << order;
      // Backed and writable end to end (ASan: unpoisoned).
      std::memset(pd->addr, 0xa0 + int(order), bytes(pd));
      runs.push_back(pd);
      pages += size_t(1) << order;
    }
  EXPECT_EQ(pa->pages_in_use(), pages);
  std::vector<std::pair<uintptr_t, uintptr_t>> ranges;
  for (PageDesc* pd : runs) {
    auto b = reinterpret_cast<uintptr_t>(pd->addr);
    ranges.push_back({b, b + bytes(pd)});
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i)
    EXPECT_LE(ranges[i - 1].second, ranges[i].first) << "two live runs overlap";
  // Nobody wrote into another run.
  for (PageDesc* pd : runs)
    for (size_t off = 0; off < bytes(pd); off += 512)
      ASSERT_EQ(static_cast<unsigned char>(pd->addr[off]), 0xa0 + pd->order);
  for (PageDesc* pd : runs) pa->free(pd);
  EXPECT_EQ(pa->pages_in_use(), 0u);
}

TEST_F(PageAllocTest, LookupMapsEveryByteOfARunToItsHead) {
  std::vector<PageDesc*> runs;
  for (unsigned order = 0; order <= kMaxOrder; ++order) runs.push_back(pa->alloc(order));
  for (PageDesc* pd : runs) {
    ASSERT_NE(pd, nullptr);
    for (size_t off = 0; off < bytes(pd); ++off)
      ASSERT_EQ(pa->lookup(pd->addr + off), pd) << "order " << int(pd->order) << " offset " << off;
  }
  for (PageDesc* pd : runs) pa->free(pd);
}

TEST_F(PageAllocTest, LookupOfMemoryThatIsNotALiveRunIsNull) {
  PageDesc* a = pa->alloc(2);
  PageDesc* b = pa->alloc(0);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  int on_stack = 0;
  auto on_heap = std::make_unique<char[]>(64);
  EXPECT_EQ(pa->lookup(nullptr), nullptr);
  EXPECT_EQ(pa->lookup(&on_stack), nullptr);
  EXPECT_EQ(pa->lookup(on_heap.get()), nullptr);
  EXPECT_EQ(pa->lookup(reinterpret_cast<void*>(~uintptr_t(0) - 4095)), nullptr) << "beyond the radix range";
  // Free pages of a mapped chunk: every page that is not in a live run.
  char* base = reinterpret_cast<char*>(reinterpret_cast<uintptr_t>(a->addr) & ~(kChunkSize - 1));
  size_t live = 0;
  for (size_t i = 0; i < kPagesPerChunk; ++i) {
    char* p = base + i * kPage;
    bool in_a = p >= a->addr && p < a->addr + bytes(a);
    bool in_b = p >= b->addr && p < b->addr + bytes(b);
    if (in_a || in_b) {
      ++live;
      continue;
    }
    ASSERT_EQ(pa->lookup(p), nullptr) << "free page " << i << " of a chunk";
    ASSERT_EQ(pa->lookup(p + kPage - 1), nullptr);
  }
  EXPECT_EQ(live, 5u);
  // A freed run is no slab any more, though its chunk stays mapped (b is still live).
  char* freed = a->addr;
  pa->free(a);
  EXPECT_EQ(pa->lookup(freed), nullptr);
  EXPECT_EQ(pa->lookup(freed + 3 * kPage + 7), nullptr);
  EXPECT_EQ(pa->lookup(b->addr), b);
  pa->free(b);
}

TEST_F(PageAllocTest, FreedPagesAreReused) {
  PageDesc* keep = pa->alloc(0);  // keeps the chunk non-empty
  ASSERT_NE(keep, nullptr);
  for (unsigned order = 0; order <= kMaxOrder; ++order) {
    PageDesc* a = pa->alloc(order);
    ASSERT_NE(a, nullptr);
    char* addr = a->addr;
    pa->free(a);
    PageDesc* b = pa->alloc(order);
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(b->addr, addr) << "order " << order << ": a just-freed run was not reused";
    pa->free(b);
  }
  // A long alloc/free churn never needs a second chunk.
  for (int i = 0; i < 2000; ++i) {
    PageDesc* r[4];
    for (auto& p : r) ASSERT_NE(p = pa->alloc(unsigned(i % (kMaxOrder + 1))), nullptr);
    for (auto* p : r) pa->free(p);
  }
  EXPECT_EQ(pa->chunks(), 1u);
  pa->free(keep);
}

TEST_F(PageAllocTest, FirstFitReusesFreedRunsAndTheirDirtyPagesAreCountedOff) {
  PageDesc* p[4];
  for (auto& x : p) ASSERT_NE(x = pa->alloc(0), nullptr);
  char* first = p[1]->addr;
  pa->free(p[1]);
  EXPECT_EQ(pa->dirty_pages(), 1u);
  pa->purge();  // p[1]'s page is clean (given back) now
  EXPECT_EQ(pa->dirty_pages(), 0u);
  char* second = p[2]->addr;
  pa->free(p[2]);  // dirty
  EXPECT_EQ(pa->dirty_pages(), 1u);
  // First fit, dirty or not: dirty-first placement kept emptying chunks alive.
  PageDesc* q = pa->alloc(0);
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->addr, first) << "the lowest free run comes first, clean or dirty";
  EXPECT_EQ(pa->dirty_pages(), 1u);
  PageDesc* r = pa->alloc(0);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->addr, second);
  EXPECT_EQ(pa->dirty_pages(), 0u) << "a dirty page taken again is no longer counted as dirty";
  for (PageDesc* x : {p[0], p[3], q, r}) pa->free(x);
}

TEST_F(PageAllocTest, DirtyBudgetHoldsAfterEveryFreeAndPurgeUnmapsEverything) {
  // More than two chunks of single pages and some larger runs.
  std::vector<PageDesc*> runs;
  for (size_t i = 0; i < 2 * kPagesPerChunk + 40; ++i) {
    PageDesc* pd = pa->alloc(i % 7 == 0 ? 2 : 0);
    ASSERT_NE(pd, nullptr);
    runs.push_back(pd);
  }
  const size_t chunks_at_peak = pa->chunks();
  EXPECT_GE(chunks_at_peak, 3u);
  EXPECT_EQ(pa->dirty_pages(), 0u);
  // Free in an interleaved order so chunks empty late.
  std::vector<PageDesc*> order;
  for (size_t i = 0; i < runs.size(); i += 2) order.push_back(runs[i]);
  for (size_t i = 1; i < runs.size(); i += 2) order.push_back(runs[i]);
  // A free either keeps its run dirty (dirty grows by the run, and the result fits the budget
  // for what is still in use) or discards it (dirty does not grow). Releasing an empty chunk
  // beyond the kept one drops that chunk's dirty pages.
  size_t max_dirty = 0, kept_dirty = 0, discarded = 0;
  bool first = true;
  for (PageDesc* pd : order) {
    const size_t len = size_t(1) << pd->order;
    const size_t before = pa->dirty_pages();
    pa->free(pd);
    const size_t d = pa->dirty_pages(), in_use = pa->pages_in_use();
    if (d > before) {
      ASSERT_EQ(d, before + len);
      ASSERT_LE(d, PageAlloc::kDirtyMin + in_use / 2) << "a run was kept dirty beyond the budget";
      ++kept_dirty;
    } else {
      if (before + len <= PageAlloc::kDirtyMin + in_use / 2 && pa->chunks() == chunks_at_peak)
        ADD_FAILURE() << "a run that fit the budget was discarded (dirty " << before << ", in use " << in_use << ")";
      ++discarded;
    }
    if (first) EXPECT_EQ(d, len) << "the first free fits the budget: its pages stay dirty";
    first = false;
    max_dirty = std::max(max_dirty, d);
  }
  EXPECT_GT(kept_dirty, 0u);
  EXPECT_GT(discarded, 0u) << "the budget was never exceeded: the test proves nothing";
  EXPECT_GE(max_dirty, PageAlloc::kDirtyMin) << "the budget was never used";
  EXPECT_EQ(pa->pages_in_use(), 0u);
  EXPECT_EQ(pa->chunks(), 1u) << "one empty chunk is kept mapped, any other is unmapped";
  EXPECT_EQ(plat.mem.mapped_bytes(), kChunkSize);
  pa->purge();
  EXPECT_EQ(pa->dirty_pages(), 0u);
  EXPECT_EQ(pa->chunks(), 0u) << "purge must unmap the kept empty chunk";
  EXPECT_EQ(plat.mem.mapped_bytes(), 0u);
  // And the allocator still works after a purge.
  PageDesc* again = pa->alloc(kMaxOrder);
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(pa->lookup(again->addr + 5), again);
  pa->free(again);
  pa->purge();
  EXPECT_EQ(pa->chunks(), 0u);
}

TEST_F(PageAllocTest, PurgeWithLiveRunsKeepsThemAndDropsOnlyDirtyPages) {
  PageDesc* a = pa->alloc(1);
  PageDesc* b = pa->alloc(3);
  PageDesc* c = pa->alloc(0);
  ASSERT_TRUE(a && b && c);
  std::memset(a->addr, 0x11, bytes(a));
  pa->free(b);
  EXPECT_EQ(pa->dirty_pages(), 8u);
  pa->purge();
  EXPECT_EQ(pa->dirty_pages(), 0u);
  EXPECT_EQ(pa->chunks(), 1u);
  EXPECT_EQ(pa->lookup(a->addr), a);
  EXPECT_EQ(static_cast<unsigned char>(a->addr[bytes(a) - 1]), 0x11) << "purge discarded a live run";
  pa->free(a);
  pa->free(c);
}

TEST_F(PageAllocTest, InjectedMapFaultFailsOneAllocationOnly) {
  ASSERT_EQ(pa->chunks(), 0u);
  plat.mem.map_faults.fail_nth(1);
  EXPECT_EQ(pa->alloc(0), nullptr) << "the chunk mapping was made to fail";
  EXPECT_EQ(plat.mem.map_faults.injected(), 1u);
  EXPECT_EQ(pa->chunks(), 0u);
  EXPECT_EQ(pa->pages_in_use(), 0u);
  EXPECT_EQ(plat.mem.mapped_bytes(), 0u);
  PageDesc* a = pa->alloc(0);
  ASSERT_NE(a, nullptr) << "the fault is injected once";
  // Faults only matter when a new chunk is needed: an allocation served by a mapped chunk works.
  plat.mem.map_faults.fail_nth(1);
  PageDesc* b = pa->alloc(kMaxOrder);
  ASSERT_NE(b, nullptr);
  // Fill the chunk so the next allocation needs a new chunk, which fails.
  std::vector<PageDesc*> fill;
  while (pa->chunks() == 1 && pa->pages_in_use() < kPagesPerChunk) {
    PageDesc* pd = pa->alloc(0);
    ASSERT_NE(pd, nullptr);
    fill.push_back(pd);
  }
  EXPECT_EQ(pa->pages_in_use(), kPagesPerChunk);
  EXPECT_EQ(pa->alloc(0), nullptr);
  EXPECT_EQ(plat.mem.map_faults.injected(), 2u);
  EXPECT_EQ(pa->chunks(), 1u);
  PageDesc* c = pa->alloc(0);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(pa->chunks(), 2u);
  for (PageDesc* pd : fill) pa->free(pd);
  for (PageDesc* pd : {a, b, c}) pa->free(pd);
  pa->purge();
  EXPECT_EQ(pa->chunks(), 0u);
}

// Real threads: each allocates and frees runs of random orders, stamps every run it holds with
// its own tag and checks the stamp (and lookup) before freeing. A run handed to two threads at
// once, or a lookup that goes astray while other threads map and unmap chunks, fails.
TEST_F(PageAllocTest, ConcurrentAllocFreeHandsOutEachRunOnce) {
  constexpr int kThreads = 4, kIters = 3000;
  std::vector<std::thread> ts;
  for (int k = 0; k < kThreads; ++k)
    ts.emplace_back([&, k] {
      std::vector<PageDesc*> held;
      uint32_t x = 0x12345u * uint32_t(k + 1);
      auto check_and_free = [&](PageDesc* pd) {
        const size_t n = kPage << pd->order;
        ASSERT_EQ(pa->lookup(pd->addr + n / 2), pd);
        for (size_t off = 0; off < n; off += kPage)
          ASSERT_EQ(static_cast<unsigned char>(pd->addr[off]), 0x40 + k) << "run shared with another thread";
        pa->free(pd);
      };
      for (int i = 0; i < kIters; ++i) {
        x = x * 1664525u + 1013904223u;
        if (held.size() < 64 && ((x >> 9) & 3) != 0) {
          PageDesc* pd = pa->alloc((x >> 20) % (kMaxOrder + 1));
          ASSERT_NE(pd, nullptr);
          for (size_t off = 0; off < bytes(pd); off += kPage) pd->addr[off] = char(0x40 + k);
          held.push_back(pd);
        } else if (!held.empty()) {
          size_t j = (x >> 13) % held.size();
          check_and_free(held[j]);
          held[j] = held.back();
          held.pop_back();
        }
      }
      for (PageDesc* pd : held) check_and_free(pd);
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(pa->pages_in_use(), 0u);
  EXPECT_LE(pa->dirty_pages(), PageAlloc::kDirtyMin);
  EXPECT_LE(pa->chunks(), 1u);
  pa->purge();
  EXPECT_EQ(pa->chunks(), 0u);
  EXPECT_EQ(pa->dirty_pages(), 0u);
  EXPECT_EQ(plat.mem.mapped_bytes(), 0u);
}

}  // namespace
