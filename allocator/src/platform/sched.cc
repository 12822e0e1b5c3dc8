#include "sched.h"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <thread>

namespace cgslab::platform {

const char* site_name(Site s) {
  switch (s) {
    case Site::kLock: return "lock";
    case Site::kUnlock: return "unlock";
    case Site::kRefGet: return "ref_get";
    case Site::kRefPut: return "ref_put";
    case Site::kRcuReadLock: return "rcu_read_lock";
    case Site::kRcuReadUnlock: return "rcu_read_unlock";
    case Site::kRcuSync: return "synchronize_rcu";
    case Site::kMaySleep: return "may_sleep";
    case Site::kWorkItem: return "work_item";
    case Site::kSlotAcquire: return "slot_acquire";
    case Site::kSlotLease: return "slot_lease";
    case Site::kOp: return "op";
    case Site::kYield: return "yield";
    case Site::kCount: break;
  }
  return "?";
}

double wait_bound_seconds() {
  static const double bound = [] {
    const char* s = std::getenv("CGSLAB_WAIT_BOUND_SEC");
    double v = s ? std::atof(s) : 0;
    return v > 0 ? v : 60.0;
  }();
  return bound;
}

#if !defined(CGSLAB_PLATFORM_SIM)
void lock_backoff(uint64_t spins, const char* what) {
  static thread_local std::chrono::steady_clock::time_point start;
  if (spins == 0) start = std::chrono::steady_clock::now();
  if (spins < 32) {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#endif
    return;
  }
  if (spins < 256) {
    std::this_thread::yield();
    return;
  }
  std::this_thread::sleep_for(std::chrono::microseconds(spins < 1024 ? 50 : 1000));
  if ((spins & 63) == 0) {
    double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (waited > wait_bound_seconds()) report_hang(what, waited);
  }
}

#endif

void report_hang(const char* what, double seconds) {
  std::fprintf(stderr, "cgslab: hang: waited %.1f s for %s (bound: CGSLAB_WAIT_BOUND_SEC)\n",
               seconds, what);
  std::fflush(stderr);
  std::abort();
}

}  // namespace cgslab::platform
