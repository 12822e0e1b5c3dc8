// rcu.h: the project's own RCU, one domain per Allocator (kernel: rcu_read_lock, synchronize_rcu,
// call_rcu, rcu_barrier). Built from seq_cst atomics only, so ThreadSanitizer sees every edge.
//
// Two kinds of readers, one grace period:
//  - cpu-slot owners (SlotTable): the allocation fast path runs with a slot owned, which is an
//    RCU-sched section (kernel: preemption disabled). synchronize() waits for each slot owned at
//    its start to be released.
//  - explicit readers (read_lock/unlock, for TYPESAFE_BY_RCU users and the cgroup lookups):
//    each thread has a reader record per domain holding the grace-period number it entered at
//    (0 = outside). synchronize() bumps gp_seq and waits for every record entered before it.
// Callbacks (call) run on the domain's own service thread (monitor.h) after a grace period, in
// queue order; barrier() waits until every callback queued before it has run. Every wait is
// bounded (sched.h). Reader records hang off the current Task, so sim fibers have their own; the
// same code runs in both backends.
#pragma once

#include <atomic>
#include <cstdint>

#include "cpu_slots.h"
#include "monitor.h"
#include "mutex.h"

namespace cgslab::platform {

struct RcuHead {
  RcuHead* next = nullptr;
  void (*func)(RcuHead*) = nullptr;
};

class Rcu {
 public:
#if defined(CGSLAB_PLATFORM_SIM)
  static constexpr unsigned kMaxReaders = 64;    // a sim run has a handful of tasks
#else
  static constexpr unsigned kMaxReaders = 1024;
#endif

  explicit Rcu(SlotTable& slots);
  ~Rcu();
  Rcu(const Rcu&) = delete;
  Rcu& operator=(const Rcu&) = delete;

  void read_lock();
  void read_unlock();
  bool in_read_section();
  void synchronize();  // must not be called with a slot owned or inside a read section
  void call(RcuHead* head, void (*func)(RcuHead*));
  void barrier();
  uint64_t pending() const {
    return enqueued_.load(std::memory_order_acquire) - completed_.load(std::memory_order_acquire);
  }
  // Test hook: while paused, queued callbacks do not run.
  void pause_for_testing(bool paused);
  bool paused() const { return paused_.load(std::memory_order_acquire); }

 private:
  struct alignas(64) Reader {
    std::atomic<uint64_t> ctr{0};   // gp number at outermost read_lock, 0 when outside
    std::atomic<bool> used{false};
    unsigned nesting = 0;           // touched by the owning thread only
  };
  Reader* my_reader();
  Reader* register_reader();
  void thread_main();
  friend struct Task;

  SlotTable& slots_;
  const uint64_t uid_;
  std::atomic<uint64_t> gp_seq_{1};
  Mutex gp_mu_{"rcu_gp"};          // one grace period at a time
  Reader readers_[kMaxReaders];
  std::atomic<unsigned> nr_readers_{0};

  Monitor cb_;                      // guards the callback queue; signals "queued" and "done"
  RcuHead* cb_head_ = nullptr;      // guarded by cb_
  RcuHead** cb_tail_ = &cb_head_;   // guarded by cb_
  bool stop_ = false;               // guarded by cb_
  std::atomic<bool> paused_{false};
  std::atomic<uint64_t> enqueued_{0};
  std::atomic<uint64_t> completed_{0};
  ServiceThread thread_;
};

}  // namespace cgslab::platform
