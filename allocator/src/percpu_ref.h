// percpu_ref.h: a per-cpu reference count (kernel: lib/percpu-refcount.c).
//
// Percpu mode: get/put change the counter of the caller's cpu slot with a plain load+store (only
// the slot owner writes it), so the fast path has no shared atomic RMW. The shared count holds a
// bias plus the initial reference while in percpu mode, so it cannot reach zero. kill() marks the
// ref dead and atomic at once (get/put go to the shared count from then on), drops the initial
// reference, and queues an RCU callback; after the grace period every percpu-mode get/put has
// finished (they run with a slot owned, i.e. inside RCU-sched), the slot counters are folded into
// the shared count and the bias removed. When the count reaches zero, release() is called once.
//
// Callers must own `slot` for every percpu-mode operation. The counters live inside the owner's
// per-slot structures (stride), so a child cache needs no extra allocation for them.
#pragma once

#include <atomic>
#include <cstddef>

#include "platform/platform.h"

namespace cgslab {

class PercpuRef {
 public:
  static constexpr long kBias = 1L << 40;
  using ReleaseFn = void (*)(PercpuRef*);

  void init(std::atomic<long>* counters, size_t stride_bytes, unsigned nr_slots, ReleaseFn fn,
            void* owner);
  void* owner() const { return owner_; }

  CGSLAB_FAST_PATH bool is_percpu() const { return state_.load(std::memory_order_acquire) == kPercpu; }
  bool is_dead() const { return state_.load(std::memory_order_acquire) != kPercpu; }

  void get(unsigned slot);
  bool tryget(unsigned slot);       // fails only once the count reached zero
  bool tryget_live(unsigned slot);  // fails once killed
  void put(unsigned slot, platform::Platform& p);
  // Drop the initial reference and switch to atomic mode after a grace period.
  void kill(platform::Platform& p);

  // Current value; exact only when no percpu-mode operation is in flight (quiescent).
  long read() const;
  bool released() const { return released_.load(std::memory_order_acquire); }

 private:
  enum : int { kPercpu = 0, kAtomicDead = 1 };
  std::atomic<long>& counter(unsigned slot) const {
    return *reinterpret_cast<std::atomic<long>*>(reinterpret_cast<char*>(counters_) + slot * stride_);
  }
  void put_atomic(platform::Platform& p);
  static void fold_rcu(platform::RcuHead* h);

  std::atomic<int> state_{kPercpu};
  std::atomic<long> count_{0};
  std::atomic<bool> folded_{false};
  std::atomic<bool> released_{false};
  std::atomic<long>* counters_ = nullptr;
  size_t stride_ = 0;
  unsigned nr_slots_ = 0;
  ReleaseFn release_ = nullptr;
  void* owner_ = nullptr;
  platform::Platform* plat_ = nullptr;
  struct FoldHead : platform::RcuHead {
    PercpuRef* ref;
  } rcu_;
};

}  // namespace cgslab
