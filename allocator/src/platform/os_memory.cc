#include "os_memory.h"

#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace cgslab::platform {

namespace {

class MappingCache {
 public:
  // A cached mapping of `size` bytes aligned to `align`, made accessible again; nullptr if none.
  void* take(size_t size, size_t align) {
    void* p = nullptr;
    {
      std::lock_guard<std::mutex> g(mu_);
      for (size_t i = n_; i-- > 0;)
        if (e_[i].size == size && (reinterpret_cast<uintptr_t>(e_[i].p) & (align - 1)) == 0) {
          p = e_[i].p;
          e_[i] = e_[--n_];
          bytes_ -= size;
          break;
        }
    }
    if (p && mprotect(p, size, PROT_READ | PROT_WRITE) != 0) {
      munmap(p, size);
      return nullptr;
    }
    return p;
  }
  // true: kept (discarded and inaccessible); false: the caller unmaps it.
  bool put(void* p, size_t size) {
    {
      std::lock_guard<std::mutex> g(mu_);
      if (n_ == kMax || bytes_ + size > OsMemory::kCacheBytes) return false;
    }
    if (madvise(p, size, MADV_DONTNEED) != 0 || mprotect(p, size, PROT_NONE) != 0) return false;
    std::lock_guard<std::mutex> g(mu_);
    if (n_ == kMax || bytes_ + size > OsMemory::kCacheBytes) {
      munmap(p, size);
      return true;
    }
    e_[n_++] = {p, size};
    bytes_ += size;
    return true;
  }

 private:
  static constexpr size_t kMax = 256;
  struct Entry {
    void* p;
    size_t size;
  };
  std::mutex mu_;
  Entry e_[kMax];
  size_t n_ = 0, bytes_ = 0;
};

MappingCache& cache() {
  static MappingCache* c = new MappingCache;  // never destroyed: allocators may outlive statics
  return *c;
}

}  // namespace

void* OsMemory::map_aligned(size_t size, size_t align) {
  if (map_faults.should_fail()) {
    map_faults.note_injected();
    return nullptr;
  }
  if (void* p = cache().take(size, align)) {
    mapped_.fetch_add(size, std::memory_order_relaxed);
    return p;
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
  if (!cache().put(p, size)) munmap(p, size);
  mapped_.fetch_sub(size, std::memory_order_relaxed);
}

void OsMemory::discard(void* p, size_t size) { madvise(p, size, MADV_DONTNEED); }

void* OsMemory::map_metadata(size_t size) {
  if (void* p = cache().take(size, 4096)) {
    metadata_.fetch_add(size, std::memory_order_relaxed);
    return p;
  }
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  metadata_.fetch_add(size, std::memory_order_relaxed);
  return p;
}

void OsMemory::unmap_metadata(void* p, size_t size) {
  if (!cache().put(p, size)) munmap(p, size);
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
