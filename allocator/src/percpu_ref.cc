#include "percpu_ref.h"

namespace cgslab {

void PercpuRef::init(std::atomic<long>* counters, size_t stride, unsigned nr_slots, ReleaseFn fn,
                     void* owner) {
  owner_ = owner;
  counters_ = counters;
  stride_ = stride;
  nr_slots_ = nr_slots;
  release_ = fn;
  for (unsigned i = 0; i < nr_slots; ++i) counter(i).store(0, std::memory_order_relaxed);
  count_.store(kBias + 1, std::memory_order_relaxed);
  state_.store(kPercpu, std::memory_order_release);
}

void PercpuRef::get(unsigned slot) {
  CGSLAB_SCHED(kRefGet);
  if (is_percpu()) {
    auto& c = counter(slot);
    c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  } else {
    count_.fetch_add(1, std::memory_order_relaxed);
  }
}

bool PercpuRef::tryget(unsigned slot) {
  CGSLAB_SCHED(kRefGet);
  if (is_percpu()) {
    auto& c = counter(slot);
    c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    return true;
  }
  long v = count_.load(std::memory_order_relaxed);
  while (v != 0)
    if (count_.compare_exchange_weak(v, v + 1, std::memory_order_acq_rel)) return true;
  return false;
}

bool PercpuRef::tryget_live(unsigned slot) {
  CGSLAB_SCHED(kRefGet);
  if (!is_percpu()) return false;
  auto& c = counter(slot);
  c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  return true;
}

void PercpuRef::put(unsigned slot, platform::Platform& p) {
  CGSLAB_SCHED(kRefPut);
  if (is_percpu()) {
    auto& c = counter(slot);
    c.store(c.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
    return;
  }
  put_atomic(p);
}

void PercpuRef::put_atomic(platform::Platform& p) {
  long v = count_.fetch_sub(1, std::memory_order_acq_rel) - 1;
  if (v == 0) {
    released_.store(true, std::memory_order_release);
    release_(this);
  } else if (v < 0) {
    p.reporter.report(ErrorKind::kInternal, this, "", "percpu_ref %p: count below zero (%ld)",
                      static_cast<void*>(this), v);
  }
}

void PercpuRef::kill(platform::Platform& p) {
  int expected = kPercpu;
  if (!state_.compare_exchange_strong(expected, kAtomicDead, std::memory_order_seq_cst)) {
    // Touch nothing: the first kill's fold may be running on the RCU thread (writing plat_ here
    // raced with it: TSan, percpu_ref_test).
    p.reporter.report(ErrorKind::kInternal, this, "", "percpu_ref %p killed twice",
                      static_cast<void*>(this));
    return;
  }
  plat_ = &p;
  count_.fetch_add(1, std::memory_order_relaxed);  // held by the mode switch until the fold
  rcu_.ref = this;
  p.rcu.call(&rcu_, &PercpuRef::fold_rcu);
  put_atomic(p);  // the initial reference
}

void PercpuRef::fold_rcu(platform::RcuHead* h) {
  PercpuRef* r = static_cast<FoldHead*>(h)->ref;
  long sum = 0;
  for (unsigned i = 0; i < r->nr_slots_; ++i) sum += r->counter(i).load(std::memory_order_relaxed);
  r->count_.fetch_add(sum - kBias, std::memory_order_acq_rel);
  r->folded_.store(true, std::memory_order_release);
  r->put_atomic(*r->plat_);
}

long PercpuRef::read() const {
  long v = count_.load(std::memory_order_acquire);
  if (folded_.load(std::memory_order_acquire)) return v;
  for (unsigned i = 0; i < nr_slots_; ++i) v += counter(i).load(std::memory_order_relaxed);
  return v - kBias;
}

}  // namespace cgslab
