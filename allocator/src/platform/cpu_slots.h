// cpu_slots.h: per-cpu slots, the user-space stand-in for CPUs with preemption disabled.
//
// A thread owns a slot while it runs the non-sleeping part of an operation; per-cpu data of
// the upper layers (magazines, percpu_ref counters, charge stock) is indexed by slot and touched
// only by the slot's current owner, so the fast path needs no shared lock. Owning a slot is also
// an RCU-sched read-side section: Rcu::synchronize waits until every slot owned at its start has
// been released (kernel: preempt_disable() + synchronize_rcu()).
//
// Two ways to own a slot, each a word of the slot that is odd while owned:
//  - leased (the fast path): a task may lease one slot of a table for as long as it lives
//    (liburcu's membarrier flavour). The lessee enters with a plain store to `lessee_word` and a
//    compiler-only fence, then checks that no one holds `word`; it leaves with a release store.
//    No atomic read-modify-write and no hardware fence: the rare other side pays instead.
//  - shared: anyone else (tasks without a lease, remote flush, drain_all_stock, a lessee on a
//    slot of someone else) takes `word` with a CAS even->odd. If the slot is leased, it then runs
//    heavy_fence() (membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED): a full barrier on every CPU
//    running this process) and waits for `lessee_word` to be even. The lessee's store, the
//    membarrier and the remote's store of `word` form Dekker's pattern: either the lessee sees
//    `word` odd and backs off, or the remote sees `lessee_word` odd and waits.
// Rcu::synchronize runs heavy_fence() before it snapshots the slots, so a lessee's reads inside
// its section cannot be ordered before its entry store as seen by the grace period.
//
// Backends: native release builds use membarrier when the kernel offers it (no lease is ever
// granted otherwise). Under TSan both sides use seq_cst fences instead (TSan does not know
// membarrier; the acquire/release edges on the two words are what it sees). The sim backend runs
// on one OS thread, so fences are not needed; a schedule point sits between the lessee's entry
// store and its check of `word`, so a remote taking the slot can land exactly there.
//
// Leases: at most half of the slots, so tasks without one still find shared slots. A lease is
// granted only while its slot's `word` is held (so a shared owner sees `lease` stable), and given
// back when its task ends (Task::~Task) or when the task leases in another table. Only a thread
// that owns no slot may wait for one, so two waiters can never wait on each other.
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
  std::atomic<uint64_t> word{0};         // shared ownership: (generation << 1) | owned
  std::atomic<uint64_t> lessee_word{0};  // the lessee's section counter; written by it alone
  std::atomic<uint64_t> lease{0};        // 0: not leased; else the lessee's token
};

class SlotTable {
 public:
  explicit SlotTable(unsigned n);
  ~SlotTable();
  SlotTable(const SlotTable&) = delete;
  SlotTable& operator=(const SlotTable&) = delete;
  unsigned size() const { return n_; }

  // Acquire a slot for the current task (which must own none of this table).
  CGSLAB_FAST_PATH unsigned acquire() {
    CGSLAB_SCHED(kSlotAcquire);
    Task& t = current_task();
    if (CGSLAB_LIKELY(t.lease_uid == uid_) && CGSLAB_LIKELY(enter_leased(t.lease_slot))) return t.lease_slot;
    return acquire_slow(t);
  }
  CGSLAB_FAST_PATH void release(unsigned i) {
    Task& t = current_task();
    CpuSlot& s = slots_[i];
    if (CGSLAB_LIKELY(t.lease_uid == uid_ && t.lease_slot == i)) {
      s.lessee_word.store(s.lessee_word.load(std::memory_order_relaxed) + 1, std::memory_order_release);
    } else {
      s.word.store(s.word.load(std::memory_order_relaxed) + 1, std::memory_order_release);
    }
    CGSLAB_SIM_PROGRESS();
  }

  // Take slot i (remote flush). Waits, bounded, while its owner finishes its non-sleeping section.
  void acquire_remote(unsigned i);

  // For Rcu: a full barrier on every thread of the process, then per-slot snapshots; wait until
  // slot i has left the owned sections seen in the snapshot.
  void heavy_fence();
  struct Snapshot {
    uint64_t word, lessee;
  };
  Snapshot snapshot(unsigned i) const {
    return {slots_[i].word.load(std::memory_order_seq_cst), slots_[i].lessee_word.load(std::memory_order_seq_cst)};
  }
  void wait_changed(unsigned i, Snapshot s) const;
  bool owned(unsigned i) const {
    return (slots_[i].word.load(std::memory_order_relaxed) | slots_[i].lessee_word.load(std::memory_order_relaxed)) & 1;
  }
  // Slots leased right now (stats and tests).
  unsigned leased() const { return nr_leased_.load(std::memory_order_relaxed); }
  // Whether this table grants leases at all (native: membarrier available; sim and TSan: yes).
  static bool leases_supported();

  static void backoff(uint64_t spins, const char* what) { wait_spin(spins, what); }
  // Task end: give back the task's lease if its table still exists.
  static void task_exit(Task& t);

 private:
  // The lessee's entry: false (section not entered) when a shared owner holds the slot.
  CGSLAB_FAST_PATH bool enter_leased(unsigned i) {
    CpuSlot& s = slots_[i];
    uint64_t lw = s.lessee_word.load(std::memory_order_relaxed);
    s.lessee_word.store(lw + 1, std::memory_order_relaxed);
    light_fence();
    CGSLAB_SCHED(kSlotLease);
    if (CGSLAB_LIKELY(!(s.word.load(std::memory_order_acquire) & 1))) return true;
    s.lessee_word.store(lw + 2, std::memory_order_release);
    CGSLAB_SIM_PROGRESS();
    return false;
  }
  static CGSLAB_FAST_PATH void light_fence() {
#if defined(CGSLAB_TSAN)
    std::atomic_thread_fence(std::memory_order_seq_cst);
#else
    std::atomic_signal_fence(std::memory_order_seq_cst);
#endif
  }
  bool try_take_shared(unsigned i);  // CAS word even->odd; then exclude the lessee, if any
  void take_shared(unsigned i, const char* what);
  void exclude_lessee(unsigned i, const char* what);
  CGSLAB_SLOW_PATH unsigned acquire_slow(Task& t);
  bool try_lease(Task& t, unsigned i);

  unsigned n_;
  uint64_t uid_;
  std::unique_ptr<CpuSlot[]> slots_;
  std::atomic<unsigned> nr_leased_{0};
};

}  // namespace cgslab::platform
