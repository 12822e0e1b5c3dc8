// sched.h: schedule points. Every lock acquisition, shared lifecycle refcount operation, RCU edge
// and "may sleep" point in the allocator calls sched_point(site). In the native backend they
// compile to nothing; the sim backend (CGSLAB_PLATFORM_SIM) lets its scheduler pick which task
// runs next at each of them, so the same allocator code is explored deterministically.
#pragma once

#include <cstdint>

namespace cgslab::platform {

enum class Site : uint8_t {
  kLock,
  kUnlock,
  kRefGet,
  kRefPut,
  kRcuReadLock,
  kRcuReadUnlock,
  kRcuSync,
  kMaySleep,  // reclaim, cache creation, waiting for work
  kWorkItem,
  kSlotAcquire,
  kCount,
};

#if defined(CGSLAB_PLATFORM_SIM)
void sim_sched_point(Site site, const char* where);
#define CGSLAB_SCHED(site) ::cgslab::platform::sim_sched_point(::cgslab::platform::Site::site, __func__)
#else
#define CGSLAB_SCHED(site) ((void)0)
#endif

// Upper bound on any internal wait (lock, grace period, work flush) before it is reported as a
// hang with what it waited for. CGSLAB_WAIT_BOUND_SEC overrides (default 60).
double wait_bound_seconds();
[[noreturn]] void report_hang(const char* what, double seconds);

}  // namespace cgslab::platform
