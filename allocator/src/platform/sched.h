// sched.h: schedule points and waits, the two places where the backends differ in behaviour.
//
// Every lock acquisition, shared lifecycle refcount operation, RCU edge and "may sleep" point in
// the allocator calls CGSLAB_SCHED(site). In the native backend they compile to nothing; the sim
// backend (CGSLAB_PLATFORM_SIM, sim_scheduler.h) lets its scheduler pick which task runs next at
// each of them, so the same allocator code is explored deterministically.
//
// Every busy wait of the platform (a lock, a cpu slot, a grace period) is a loop that re-checks
// its condition and calls wait_spin() when it is false. Native: spin, yield, sleep, and report a
// hang naming what it waited for after wait_bound_seconds(). Sim: the task yields to the
// scheduler, which resumes it only after some other task made progress and reports a deadlock
// (with every task's wait reason) when no task can run.
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
  kSlotLease,  // between a lessee's entry store and its check; where a heavy fence lands
  kOp,        // an operation boundary of the harness
  kYield,     // an explicit yield of the harness
  kCount,
};
const char* site_name(Site);

// Upper bound on any internal wait (lock, grace period, work flush) before it is reported as a
// hang with what it waited for. CGSLAB_WAIT_BOUND_SEC overrides (default 60).
double wait_bound_seconds();
[[noreturn]] void report_hang(const char* what, double seconds);

#if defined(CGSLAB_PLATFORM_SIM)
namespace sim {
void point(Site site, const char* where);
// first: the first check of this wait loop (the task may have changed state since its last wait).
void wait(const char* what, bool idle, bool first, const void* chan);
void progress();
void notify(const void* chan);
void set_boundary(bool at_boundary);
}  // namespace sim
#define CGSLAB_SCHED(site) ::cgslab::platform::sim::point(::cgslab::platform::Site::site, __func__)
#define CGSLAB_SIM_PROGRESS() ::cgslab::platform::sim::progress()
// A service task (RCU, work queue) between two of its items: the allocator's state is whole, so
// the harness may validate while it waits there.
#define CGSLAB_SIM_BOUNDARY(b) ::cgslab::platform::sim::set_boundary(b)
#define CGSLAB_SIM_NOTIFY(chan) ::cgslab::platform::sim::notify(chan)
// chan: the object whose release ends the wait (nullptr: any progress event).
inline void wait_spin(uint64_t spins, const char* what, const void* chan = nullptr) {
  sim::wait(what, false, spins == 0, chan);
}
#else
#define CGSLAB_SCHED(site) ((void)0)
#define CGSLAB_SIM_PROGRESS() ((void)0)
#define CGSLAB_SIM_BOUNDARY(b) ((void)0)
#define CGSLAB_SIM_NOTIFY(chan) ((void)0)
// Spin briefly, then yield, then sleep up to 1 ms; report a hang after wait_bound_seconds().
void lock_backoff(uint64_t spins, const char* what);
inline void wait_spin(uint64_t spins, const char* what, const void* = nullptr) { lock_backoff(spins, what); }
#endif

}  // namespace cgslab::platform
