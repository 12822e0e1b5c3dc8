// task.h: the current task (kernel: current). Holds the cgroup the task runs in, the
// remote-charge cgroup (kernel: current->active_memcg), its cpu-slot preference and its RCU reader
// records. Native backend: one per OS thread (thread_local). Sim backend: one per fiber, owned by
// the scheduler (sim_scheduler.h), so that fibers sharing an OS thread never share task state.
#pragma once

#include <cstdint>
#include <vector>

namespace cgslab {
struct Cgroup;
}

namespace cgslab::platform {

// One RCU reader record of this task in one Rcu domain (rcu.cc owns the meaning).
struct RcuReaderRef {
  uint64_t uid;
  const void* domain;
  void* reader;
};

struct Task {
  Task() = default;
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  ~Task();  // gives the RCU reader records and the slot lease back (rcu.cc)

  Cgroup* memcg = nullptr;         // TaskCgroupScope
  Cgroup* active_memcg = nullptr;  // RemoteChargeScope
  unsigned slot_hint = ~0u;        // the cpu slot this task used last (SlotTable)
  unsigned home_slot = ~0u;        // where a slot search starts; ~0u: derive from the thread id
  uint64_t lease_uid = 0;          // the SlotTable in which this task leases a slot (0: none)
  unsigned lease_slot = ~0u;       // that slot
  std::vector<RcuReaderRef> rcu_readers;
};

#if defined(CGSLAB_PLATFORM_SIM)
Task& current_task();  // sim_scheduler.cc: the running fiber's task
#else
inline thread_local Task t_native_task;
inline Task& current_task() { return t_native_task; }
#endif

}  // namespace cgslab::platform
