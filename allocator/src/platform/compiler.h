// compiler.h: attributes shared by every layer. Fast/slow path markers (snmalloc style), branch
// hints, Clang thread-safety annotations, and the ASan poisoning interface (no-ops without ASan).
#pragma once

#include <cstddef>

#define CGSLAB_FAST_PATH inline __attribute__((always_inline))
#define CGSLAB_SLOW_PATH __attribute__((noinline))
#define CGSLAB_LIKELY(x) __builtin_expect(!!(x), 1)
#define CGSLAB_UNLIKELY(x) __builtin_expect(!!(x), 0)

#if defined(__clang__)
#define CGSLAB_TSA(x) __attribute__((x))
#else
#define CGSLAB_TSA(x)
#endif
#define CAPABILITY(x) CGSLAB_TSA(capability(x))
#define SCOPED_CAPABILITY CGSLAB_TSA(scoped_lockable)
#define GUARDED_BY(x) CGSLAB_TSA(guarded_by(x))
#define PT_GUARDED_BY(x) CGSLAB_TSA(pt_guarded_by(x))
#define REQUIRES(...) CGSLAB_TSA(requires_capability(__VA_ARGS__))
#define REQUIRES_SHARED(...) CGSLAB_TSA(requires_shared_capability(__VA_ARGS__))
#define ACQUIRE(...) CGSLAB_TSA(acquire_capability(__VA_ARGS__))
#define ACQUIRE_SHARED(...) CGSLAB_TSA(acquire_shared_capability(__VA_ARGS__))
#define RELEASE(...) CGSLAB_TSA(release_capability(__VA_ARGS__))
#define RELEASE_SHARED(...) CGSLAB_TSA(release_shared_capability(__VA_ARGS__))
#define RELEASE_GENERIC(...) CGSLAB_TSA(release_generic_capability(__VA_ARGS__))
#define TRY_ACQUIRE(...) CGSLAB_TSA(try_acquire_capability(__VA_ARGS__))
#define EXCLUDES(...) CGSLAB_TSA(locks_excluded(__VA_ARGS__))
#define NO_THREAD_SAFETY_ANALYSIS CGSLAB_TSA(no_thread_safety_analysis)

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CGSLAB_ASAN 1
#endif
#if __has_feature(thread_sanitizer)
#define CGSLAB_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(CGSLAB_ASAN)
#define CGSLAB_ASAN 1
#endif

#if CGSLAB_ASAN
#include <sanitizer/asan_interface.h>
#define CGSLAB_NO_ASAN __attribute__((no_sanitize("address")))
#else
#define CGSLAB_NO_ASAN
#endif

namespace cgslab::platform {

// Poisoned memory makes ASan report any access, exactly like a freed malloc block.
inline void asan_poison(const void* p, size_t n) {
#if CGSLAB_ASAN
  ASAN_POISON_MEMORY_REGION(p, n);
#else
  (void)p, (void)n;
#endif
}
inline void asan_unpoison(const void* p, size_t n) {
#if CGSLAB_ASAN
  ASAN_UNPOISON_MEMORY_REGION(p, n);
#else
  (void)p, (void)n;
#endif
}

}  // namespace cgslab::platform
