// os_memory.h: the only code that maps memory from the OS, and the internal allocator for the
// allocator's own metadata (cache/cgroup structs, memcg_caches arrays, per-cpu arrays). Both have
// fault injection: fail the nth next mapping / internal allocation (the harness's "fault" ops).
// Counters of mapped bytes are kept so teardown can prove nothing is left mapped.
//
// Mappings given back are kept in a process-wide cache (at most kCacheBytes, shared by every
// allocator in the process; its own lock) and handed out again instead of a fresh mmap: a
// program that builds and tears down allocators, as the fuzz targets do per input, otherwise
// pays an mmap and a munmap (a TLB shootdown on every cpu the process runs on) per chunk, and
// under ThreadSanitizer fresh shadow pages that fault twice (read, then copy on write) for every
// page it touches. A cached mapping is discarded (MADV_DONTNEED: zero on reuse, no memory held)
// and made inaccessible (PROT_NONE), so a stale pointer into it faults as it would after munmap.
// The counters count cached mappings as unmapped.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace cgslab::platform {

class FaultInjector {
 public:
  void fail_nth(uint64_t n) { countdown_.store(n, std::memory_order_relaxed); }
  // true: this call must fail. Countdown 0 = disabled; reaching 1 fails once and disables.
  bool should_fail() {
    uint64_t c = countdown_.load(std::memory_order_relaxed);
    while (c != 0) {
      if (countdown_.compare_exchange_weak(c, c - 1, std::memory_order_relaxed)) return c == 1;
    }
    return false;
  }
  uint64_t injected() const { return injected_.load(std::memory_order_relaxed); }
  void note_injected() { injected_.fetch_add(1, std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> countdown_{0};
  std::atomic<uint64_t> injected_{0};
};

class OsMemory {
 public:
  static constexpr size_t kCacheBytes = size_t(64) << 20;

  // Map `size` bytes aligned to `align` (power of two). nullptr on failure or injected fault.
  void* map_aligned(size_t size, size_t align);
  void unmap(void* p, size_t size);
  // Give the physical pages back but keep the range mapped (kernel: freeing pages to buddy).
  void discard(void* p, size_t size);
  // Lookup-table memory, not subject to fault injection (it is infrastructure, not a page).
  void* map_metadata(size_t size);
  void unmap_metadata(void* p, size_t size);

  void* internal_alloc(size_t size, size_t align = 16);  // zeroed; nullptr on injected fault
  void internal_free(void* p);

  size_t mapped_bytes() const { return mapped_.load(std::memory_order_relaxed); }
  size_t metadata_bytes() const { return metadata_.load(std::memory_order_relaxed); }
  size_t internal_allocs() const { return internal_live_.load(std::memory_order_relaxed); }

  FaultInjector map_faults;
  FaultInjector internal_faults;

 private:
  std::atomic<size_t> mapped_{0};
  std::atomic<size_t> metadata_{0};
  std::atomic<size_t> internal_live_{0};
};

}  // namespace cgslab::platform
