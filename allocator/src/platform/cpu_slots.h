// cpu_slots.h: per-cpu slots, the user-space stand-in for CPUs with preemption disabled.
//
// A thread owns a slot while it runs the non-sleeping part of an operation; per-cpu data of
// the upper layers (magazines, percpu_ref counters, charge stock) is indexed by slot and touched
// only by the slot's current owner, so the fast path needs no shared lock. Owning a slot is also
// an RCU-sched read-side section: Rcu::synchronize waits until every slot owned at its start has
// been released (kernel: preempt_disable() + synchronize_rcu()).
//
// Slot word: (generation << 1) | owned. acquire = CAS even->odd (seq_cst: orders the owner's
// reads after it for RCU), release = store of the next even generation (release). Another thread
// (remote flush, drain_all_stock) may take a free slot the same way; only a thread that owns no
// slot may wait for one, so two waiters can never wait on each other. Slots are not bound to
// threads: a thread prefers the slot it used last (thread-local hint), so exiting threads leave
// nothing behind and slots are recycled by construction. The hint lives in the current Task, so
// sim fibers sharing one OS thread keep their own.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>

#include "compiler.h"
#include "sched.h"
#include "task.h"

namespace cgslab::platform {

struct alignas(64) CpuSlot {
  std::atomic<uint64_t> word{0};
};

class SlotTable {
 public:
  explicit SlotTable(unsigned n) : n_(n), slots_(new CpuSlot[n]) {}
  unsigned size() const { return n_; }

  // Acquire any free slot for the current thread (which must own none of this table).
  CGSLAB_FAST_PATH unsigned acquire() {
    CGSLAB_SCHED(kSlotAcquire);
    unsigned i = current_task().slot_hint;
    if (i < n_) {
      uint64_t w = slots_[i].word.load(std::memory_order_relaxed);
      if (CGSLAB_LIKELY(!(w & 1)) &&
          CGSLAB_LIKELY(slots_[i].word.compare_exchange_strong(w, w | 1, std::memory_order_seq_cst)))
        return i;
    }
    return acquire_slow();
  }
  CGSLAB_FAST_PATH void release(unsigned i) {
    uint64_t w = slots_[i].word.load(std::memory_order_relaxed);
    slots_[i].word.store(w + 1, std::memory_order_release);
    CGSLAB_SIM_PROGRESS();
  }

  // Take slot i (remote flush). Waits, bounded, while its owner finishes its non-sleeping section.
  void acquire_remote(unsigned i) {
    for (uint64_t spins = 0;; ++spins) {
      uint64_t w = slots_[i].word.load(std::memory_order_relaxed);
      if (!(w & 1) && slots_[i].word.compare_exchange_weak(w, w | 1, std::memory_order_seq_cst))
        return;
      backoff(spins, "a cpu slot held by another thread (remote flush)");
    }
  }

  uint64_t snapshot(unsigned i) const { return slots_[i].word.load(std::memory_order_seq_cst); }
  // For Rcu: wait until slot i is no longer in the owned section seen as `w`.
  void wait_changed(unsigned i, uint64_t w) const {
    if (!(w & 1)) return;
    for (uint64_t spins = 0; slots_[i].word.load(std::memory_order_acquire) == w; ++spins)
      backoff(spins, "a cpu slot to leave its RCU-sched section (synchronize_rcu)");
  }
  bool owned(unsigned i) const { return slots_[i].word.load(std::memory_order_relaxed) & 1; }

  static void backoff(uint64_t spins, const char* what) { wait_spin(spins, what); }

 private:
  CGSLAB_SLOW_PATH unsigned acquire_slow();
  unsigned n_;
  std::unique_ptr<CpuSlot[]> slots_;
};

}  // namespace cgslab::platform
