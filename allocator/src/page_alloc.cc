#include "page_alloc.h"

#include <cstring>
#include <new>

namespace cgslab {

PageAlloc::PageAlloc(platform::Platform& p) : plat_(p) {
  l1_ = static_cast<std::atomic<std::atomic<ChunkMeta*>*>*>(
      plat_.mem.map_metadata(kL1Size * sizeof(void*)));
  if (!l1_) throw std::bad_alloc();
}

PageAlloc::~PageAlloc() {
  {
    platform::MutexLock g(lock_);
    empty_chunk_ = nullptr;
    while (chunks_) release_chunk(chunks_);
  }
  auto free_leaf = [&](size_t i) {
    if (auto* leaf = l1_[i].load(std::memory_order_relaxed)) {
      plat_.mem.unmap_metadata(leaf, kL2Size * sizeof(void*));
      l1_[i].store(nullptr, std::memory_order_relaxed);
    }
  };
  if (nr_leaves_ <= kMaxLeaves) {
    for (unsigned k = 0; k < nr_leaves_; ++k) free_leaf(leaves_[k]);
  } else {
    for (size_t i = 0; i < kL1Size; ++i) free_leaf(i);
  }
  plat_.mem.unmap_metadata(l1_, kL1Size * sizeof(void*));
}


PageAlloc::ChunkMeta* PageAlloc::new_chunk() {
  const size_t msize = (sizeof(ChunkMeta) + 4095) & ~size_t(4095);
  char* base = static_cast<char*>(plat_.mem.map_aligned(kChunkSize, kChunkSize));
  if (!base) return nullptr;
  auto* c = static_cast<ChunkMeta*>(plat_.mem.map_metadata(msize));
  if (!c) {
    plat_.mem.unmap(base, kChunkSize);
    return nullptr;
  }
  new (c) ChunkMeta{};
  c->base = base;
  uintptr_t n = reinterpret_cast<uintptr_t>(base) >> kChunkShift;
  size_t i1 = (n >> kL2Bits) & (kL1Size - 1), i2 = n & (kL2Size - 1);
  auto* leaf = l1_[i1].load(std::memory_order_acquire);
  if (!leaf) {
    leaf = static_cast<std::atomic<ChunkMeta*>*>(plat_.mem.map_metadata(kL2Size * sizeof(void*)));
    if (!leaf) {
      plat_.mem.unmap_metadata(c, msize);
      plat_.mem.unmap(base, kChunkSize);
      return nullptr;
    }
    l1_[i1].store(leaf, std::memory_order_release);
    if (nr_leaves_ < kMaxLeaves) leaves_[nr_leaves_] = uint16_t(i1);
    ++nr_leaves_;
  }
  leaf[i2].store(c, std::memory_order_release);
  platform::asan_poison(base, kChunkSize);
  c->next = chunks_;
  chunks_ = c;
  nr_chunks_.fetch_add(1, std::memory_order_relaxed);
  return c;
}

void PageAlloc::release_chunk(ChunkMeta* c) {
  size_t d = 0;
  for (uint64_t w : c->dirty) d += size_t(__builtin_popcountll(w));
  dirty_pages_.fetch_sub(d, std::memory_order_relaxed);
  for (ChunkMeta** pp = &chunks_; *pp; pp = &(*pp)->next)
    if (*pp == c) {
      *pp = c->next;
      break;
    }
  uintptr_t n = reinterpret_cast<uintptr_t>(c->base) >> kChunkShift;
  l1_[(n >> kL2Bits) & (kL1Size - 1)].load(std::memory_order_relaxed)[n & (kL2Size - 1)].store(
      nullptr, std::memory_order_release);
  // The address range may be reused by anyone: its shadow must not stay poisoned.
  platform::asan_unpoison(c->base, kChunkSize);
  plat_.mem.unmap(c->base, kChunkSize);
  plat_.mem.unmap_metadata(c, (sizeof(ChunkMeta) + 4095) & ~size_t(4095));
  nr_chunks_.fetch_sub(1, std::memory_order_relaxed);
}

static bool run_free(const uint64_t* bm, unsigned start, unsigned len) {
  for (unsigned i = start; i < start + len; ++i)
    if (bm[i / 64] & (uint64_t(1) << (i % 64))) return false;
  return true;
}

PageDesc* PageAlloc::alloc(unsigned order) {
  const unsigned len = 1u << order;
  platform::MutexLock g(lock_);
  ChunkMeta* found = nullptr;
  unsigned at = 0;
  // First fit, newest chunk first. Runs that start on a dirty page are not preferred: that
  // steered new slabs into chunks that were emptying, so fewer chunks emptied and got unmapped (a
  // 10-minute ASan stress_lifecycle: mapped chunks 36-78 MiB for 7-18 MiB of slabs, live memory
  // +27.7%; first fit: -5.5%). Freed runs are still reused while they stay dirty.
  for (ChunkMeta* c = chunks_; c && !found; c = c->next) {
    if (c->used + len > kPagesPerChunk) continue;
    for (unsigned i = 0; i + len <= kPagesPerChunk; i += len) {
      if (c->bitmap[i / 64] == ~uint64_t(0)) {
        i = (i / 64) * 64 + 64 - len;
        continue;
      }
      if (run_free(c->bitmap, i, len)) {
        found = c;
        at = i;
        break;
      }
    }
  }
  if (!found) {
    found = new_chunk();
    if (!found) return nullptr;
    at = 0;
  }
  if (found == empty_chunk_) empty_chunk_ = nullptr;
  size_t was_dirty = 0;
  for (unsigned i = at; i < at + len; ++i) {
    const uint64_t bit = uint64_t(1) << (i % 64);
    found->bitmap[i / 64] |= bit;
    if (found->dirty[i / 64] & bit) {
      found->dirty[i / 64] &= ~bit;
      ++was_dirty;
    }
    PageDesc& pd = found->pages[i];
    std::memset(static_cast<void*>(&pd), 0, sizeof pd);
    pd.kind = i == at ? PageKind::kSlab : PageKind::kTail;
    pd.head = at;
    pd.order = uint8_t(order);
    pd.addr = found->base + size_t(i) * 4096;
  }
  found->used += len;
  pages_in_use_.fetch_add(len, std::memory_order_relaxed);
  if (was_dirty) dirty_pages_.fetch_sub(was_dirty, std::memory_order_relaxed);
  platform::asan_unpoison(found->base + size_t(at) * 4096, size_t(len) * 4096);
  return &found->pages[at];
}

void PageAlloc::free(PageDesc* pd) {
  const unsigned len = 1u << pd->order;
  platform::MutexLock g(lock_);
  ChunkMeta* c = chunk_of(pd->addr);
  CGSLAB_CHECK(plat_.reporter, c != nullptr, "freeing a page descriptor %p not in any chunk",
               static_cast<void*>(pd));
  if (!c) return;
  unsigned at = unsigned(pd - c->pages);
  for (unsigned i = at; i < at + len; ++i) {
    c->bitmap[i / 64] &= ~(uint64_t(1) << (i % 64));
    c->pages[i].kind = PageKind::kFree;
  }
  c->used -= len;
  const size_t in_use = pages_in_use_.fetch_sub(len, std::memory_order_relaxed) - len;
  char* addr = c->base + size_t(at) * 4096;
  platform::asan_poison(addr, size_t(len) * 4096);
  const size_t dirty = dirty_pages_.load(std::memory_order_relaxed);
  if (dirty + len <= kDirtyMin + in_use / 2) {
    for (unsigned i = at; i < at + len; ++i) c->dirty[i / 64] |= uint64_t(1) << (i % 64);
    dirty_pages_.store(dirty + len, std::memory_order_relaxed);
  } else {
    plat_.mem.discard(addr, size_t(len) * 4096);
  }
  if (c->used == 0) {
    if (empty_chunk_ == nullptr) {
      empty_chunk_ = c;  // kept mapped: the next chunk-sized demand does not fault it in again
    } else {
      release_chunk(c);
    }
  }
}

void PageAlloc::discard_dirty(ChunkMeta* c) {
  size_t n = 0;
  for (unsigned i = 0; i < kPagesPerChunk;) {
    if (!(c->dirty[i / 64] & (uint64_t(1) << (i % 64)))) {
      ++i;
      continue;
    }
    unsigned j = i;
    while (j < kPagesPerChunk && (c->dirty[j / 64] & (uint64_t(1) << (j % 64)))) {
      c->dirty[j / 64] &= ~(uint64_t(1) << (j % 64));
      ++j;
    }
    plat_.mem.discard(c->base + size_t(i) * 4096, size_t(j - i) * 4096);
    n += j - i;
    i = j;
  }
  dirty_pages_.fetch_sub(n, std::memory_order_relaxed);
}

void PageAlloc::purge() {
  platform::MutexLock g(lock_);
  if (empty_chunk_) {
    ChunkMeta* c = empty_chunk_;
    empty_chunk_ = nullptr;
    release_chunk(c);
  }
  for (ChunkMeta* c = chunks_; c; c = c->next) discard_dirty(c);
}

}  // namespace cgslab
