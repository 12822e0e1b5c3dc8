#include "os_memory.h"

#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace cgslab::platform {

void* OsMemory::map_aligned(size_t size, size_t align) {
  if (map_faults.should_fail()) {
    map_faults.note_injected();
    return nullptr;
  }
  size_t len = size + align;
  void* raw = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  uintptr_t base = reinterpret_cast<uintptr_t>(raw);
  uintptr_t aligned = (base + align - 1) & ~(uintptr_t(align) - 1);
  if (aligned > base) munmap(raw, aligned - base);
  uintptr_t end = base + len, aend = aligned + size;
  if (end > aend) munmap(reinterpret_cast<void*>(aend), end - aend);
  mapped_.fetch_add(size, std::memory_order_relaxed);
  return reinterpret_cast<void*>(aligned);
}

void OsMemory::unmap(void* p, size_t size) {
  munmap(p, size);
  mapped_.fetch_sub(size, std::memory_order_relaxed);
}

void OsMemory::discard(void* p, size_t size) { madvise(p, size, MADV_DONTNEED); }

void* OsMemory::map_metadata(size_t size) {
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  metadata_.fetch_add(size, std::memory_order_relaxed);
  return p;
}

void OsMemory::unmap_metadata(void* p, size_t size) {
  munmap(p, size);
  metadata_.fetch_sub(size, std::memory_order_relaxed);
}

void* OsMemory::internal_alloc(size_t size, size_t align) {
  if (internal_faults.should_fail()) {
    internal_faults.note_injected();
    return nullptr;
  }
  if (align < 16) align = 16;
  size = (size + align - 1) & ~(align - 1);
  void* p = std::aligned_alloc(align, size);
  if (p) std::memset(p, 0, size);
  if (p) internal_live_.fetch_add(1, std::memory_order_relaxed);
  return p;
}

void OsMemory::internal_free(void* p) {
  if (!p) return;
  internal_live_.fetch_sub(1, std::memory_order_relaxed);
  std::free(p);
}

}  // namespace cgslab::platform
