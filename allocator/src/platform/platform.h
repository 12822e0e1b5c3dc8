// platform.h: layer 1, the only layer that touches the OS or concurrency. Everything above uses
// these types: Mutex/RwMutex, SlotTable (per-cpu slots), Rcu, WorkQueue, OsMemory, Reporter,
// sched points. The backend is chosen at build time: native (real threads) or sim (fibers on
// one OS thread, CGSLAB_PLATFORM_SIM), behind the same interface.
#pragma once

#include "compiler.h"
#include "cpu_slots.h"
#include "mutex.h"
#include "os_memory.h"
#include "rcu.h"
#include "report.h"
#include "sched.h"
#include "workqueue.h"

namespace cgslab::platform {

// Everything one Allocator instance needs from the platform. Members are declared in the order
// they must be torn down in reverse: the work queue and RCU threads stop before memory goes.
struct Platform {
  explicit Platform(unsigned nr_slots, ErrorHandler h)
      : reporter(std::move(h)), slots(nr_slots), rcu(slots) {}
  Reporter reporter;
  OsMemory mem;
  SlotTable slots;
  Rcu rcu;
  WorkQueue wq;

  // "May sleep" (reclaim, waiting on creation): a schedule point; must not own a slot.
  void might_sleep() { CGSLAB_SCHED(kMaySleep); }
};

}  // namespace cgslab::platform
