// page_alloc.h: slab page memory (kernel: the page allocator plus struct page).
//
// Memory comes from the OS in 1 MiB chunks (aligned to their size). Every 4 KiB page of a chunk
// has a PageDesc in a metadata array mapped beside the chunk; a two-level radix table maps a
// chunk number to its metadata, so object -> page descriptor is two loads and needs no malloc,
// and a pointer the allocator does not own is recognised (no entry) without touching it.
// Runs of 2^order pages (order <= kMaxOrder) are allocated aligned to their size from a
// per-chunk bitmap, first fit. Freed runs are poisoned for ASan at
// once, but given back to the OS with hysteresis (as jemalloc's dirty pages and tcmalloc's
// release rate do it): a freed run stays backed ("dirty", marked in the chunk's dirty bitmap)
// while the dirty pages fit a budget of kDirtyMin pages plus half the pages in use; beyond it a
// run is discarded (MADV_DONTNEED) at once. The budget follows the swing of a program that frees
// and reallocates its working set in waves (producer/consumer: with an eighth, every wave was
// faulted in again; with all of them, first fit spread the waves over more chunks). Peak RSS is
// hardly raised by it: first fit reuses the freed runs while they are still dirty. A chunk
// whose last run is freed is kept mapped while no other empty chunk is; any further one is
// unmapped.
// purge() discards every dirty page and unmaps the kept chunk: the allocator calls it on
// drain(), shrink_all() and cache_shrink(), so quiescence still means nothing mapped.
// Invariant: dirty_pages_ = dirty bits set over all chunks; a dirty bit is set only on a free
// page.
//
// Locking: alloc/free take `lock_`. lookup() is lock-free (radix entries are atomics) and is only
// meaningful for pointers into live slabs, which keep their chunk mapped.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "list.h"
#include "platform/platform.h"

namespace cgslab {

inline constexpr size_t kChunkShift = 20;
inline constexpr size_t kChunkSize = size_t(1) << kChunkShift;
inline constexpr size_t kPagesPerChunk = kChunkSize / 4096;
inline constexpr unsigned kMaxOrder = 4;  // 64 KiB: a 32 KiB object with trailing free metadata

enum class PageKind : uint8_t { kFree = 0, kSlab, kTail };

// kernel: struct page, the slab part of its union.
struct PageDesc {
  PageKind kind;
  uint8_t order;
  uint8_t list;         // which list of its cache the slab is on (slab layer)
  uint8_t pad;
  uint16_t inuse;       // objects handed out (including ones cached in cpu magazines)
  uint16_t objects;     // objects in the slab
  uint32_t head;        // kTail: index of the head page in the chunk
  char* addr;           // the page's memory
  void* freelist;       // free objects (slab layer)
  void* slab_cache;     // owning cache (slab layer); the page knows its cache
  ListNode lru;         // on its cache's partial or full list (slab layer)
  platform::RcuHead rcu;  // delayed free of TYPESAFE_BY_RCU slabs
};

class PageAlloc {
 public:
  explicit PageAlloc(platform::Platform& p);
  ~PageAlloc();

  PageDesc* alloc(unsigned order) EXCLUDES(lock_);  // nullptr: OS or injected failure
  void free(PageDesc* pd) EXCLUDES(lock_);
  // Head descriptor of the slab holding p, or nullptr when p is not in a slab of ours. On every
  // free: inline, three dependent loads (leaf, chunk, descriptor).
  CGSLAB_FAST_PATH PageDesc* lookup(const void* p) const {
    ChunkMeta* c = chunk_of(p);
    if (CGSLAB_UNLIKELY(!c)) return nullptr;
    size_t idx = size_t(static_cast<const char*>(p) - c->base) >> 12;
    PageDesc* pd = &c->pages[idx];
    if (pd->kind == PageKind::kTail) pd = &c->pages[pd->head];
    return CGSLAB_LIKELY(pd->kind == PageKind::kSlab) ? pd : nullptr;
  }

  // Give every dirty page back to the OS and unmap the kept empty chunk.
  void purge() EXCLUDES(lock_);
  size_t dirty_pages() const { return dirty_pages_.load(std::memory_order_relaxed); }
  static constexpr size_t kDirtyMin = 256;  // 1 MiB of free pages kept backed at least

  size_t pages_in_use() const { return pages_in_use_.load(std::memory_order_relaxed); }
  size_t chunks() const { return nr_chunks_.load(std::memory_order_relaxed); }

 private:
  struct ChunkMeta {
    char* base;
    ChunkMeta* next;
    unsigned used;
    uint64_t bitmap[kPagesPerChunk / 64];  // 1 = page in use
    uint64_t dirty[kPagesPerChunk / 64];   // 1 = free page still backed by the OS
    PageDesc pages[kPagesPerChunk];
  };

 private:
  static constexpr size_t kL1Bits = 14, kL2Bits = 14;
  static constexpr size_t kL1Size = size_t(1) << kL1Bits, kL2Size = size_t(1) << kL2Bits;
  CGSLAB_FAST_PATH ChunkMeta* chunk_of(const void* p) const {
    uintptr_t n = reinterpret_cast<uintptr_t>(p) >> kChunkShift;
    size_t i1 = (n >> kL2Bits) & (kL1Size - 1), i2 = n & (kL2Size - 1);
    if (CGSLAB_UNLIKELY((n >> (kL1Bits + kL2Bits)) != 0)) return nullptr;
    auto* leaf = l1_[i1].load(std::memory_order_acquire);
    return CGSLAB_LIKELY(leaf != nullptr) ? leaf[i2].load(std::memory_order_acquire) : nullptr;
  }
  ChunkMeta* new_chunk() REQUIRES(lock_);
  void release_chunk(ChunkMeta* c) REQUIRES(lock_);
  void discard_dirty(ChunkMeta* c) REQUIRES(lock_);  // every dirty run of c back to the OS

  platform::Platform& plat_;
  platform::Mutex lock_{"page_alloc.lock"};
  ChunkMeta* chunks_ GUARDED_BY(lock_) = nullptr;
  std::atomic<std::atomic<ChunkMeta*>*>* l1_;  // [1 << kL1Bits] leaves of [1 << kL2Bits]
  // L1 slots that have a leaf, so teardown frees them without scanning (and faulting in) all
  // of l1_; once more than kMaxLeaves are used, teardown scans. Guarded by lock_.
  static constexpr unsigned kMaxLeaves = 32;
  uint16_t leaves_[kMaxLeaves] = {};
  unsigned nr_leaves_ = 0;
  std::atomic<size_t> pages_in_use_{0};
  std::atomic<size_t> nr_chunks_{0};
  std::atomic<size_t> dirty_pages_{0};      // written under lock_
  ChunkMeta* empty_chunk_ GUARDED_BY(lock_) = nullptr;  // the one empty chunk kept mapped
};

}  // namespace cgslab
