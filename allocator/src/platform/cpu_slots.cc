#include "cpu_slots.h"

#include <chrono>

namespace cgslab::platform {

thread_local unsigned SlotTable::hint_ = ~0u;

unsigned SlotTable::acquire_slow() {
  // Prefer a slot derived from the thread id so threads spread out, then scan.
  unsigned start = hint_ < n_ ? hint_ : unsigned(std::hash<std::thread::id>{}(std::this_thread::get_id()) % n_);
  for (uint64_t spins = 0;; ++spins) {
    for (unsigned k = 0; k < n_; ++k) {
      unsigned i = (start + k) % n_;
      uint64_t w = slots_[i].word.load(std::memory_order_relaxed);
      if (!(w & 1) && slots_[i].word.compare_exchange_strong(w, w | 1, std::memory_order_seq_cst)) {
        hint_ = i;
        return i;
      }
    }
    backoff(spins, "any free cpu slot (all slots owned)");
  }
}

void SlotTable::backoff(uint64_t spins, const char* what) {
  if (spins < 64) {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#endif
    return;
  }
  static thread_local std::chrono::steady_clock::time_point start;
  if (spins == 64) start = std::chrono::steady_clock::now();
  std::this_thread::yield();
  if ((spins & 1023) == 0) {
    double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (waited > wait_bound_seconds()) report_hang(what, waited);
  }
}

}  // namespace cgslab::platform
