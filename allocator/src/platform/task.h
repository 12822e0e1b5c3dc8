// task.h: the current task (kernel: current). Holds the cgroup the task runs in and the
// remote-charge cgroup (kernel: current->active_memcg). Native backend: one per OS thread; the
// sim backend gives each fiber its own.
#pragma once

namespace cgslab {
struct Cgroup;
}

namespace cgslab::platform {

struct Task {
  Cgroup* memcg = nullptr;         // TaskCgroupScope
  Cgroup* active_memcg = nullptr;  // RemoteChargeScope
};

#if defined(CGSLAB_PLATFORM_SIM)
Task& current_task();
#else
inline thread_local Task t_native_task;
inline Task& current_task() { return t_native_task; }
#endif

}  // namespace cgslab::platform
