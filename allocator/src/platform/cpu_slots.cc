#include "cpu_slots.h"

#include <functional>

namespace cgslab::platform {

unsigned SlotTable::acquire_slow() {
  // Start at the task's home slot (native: derived from the thread id, so threads spread out;
  // sim: set by the scheduler, so the choice is deterministic), then scan.
  Task& t = current_task();
  if (t.home_slot == ~0u) t.home_slot = unsigned(std::hash<std::thread::id>{}(std::this_thread::get_id()));
  unsigned start = t.slot_hint < n_ ? t.slot_hint : t.home_slot % n_;
  for (uint64_t spins = 0;; ++spins) {
    for (unsigned k = 0; k < n_; ++k) {
      unsigned i = (start + k) % n_;
      uint64_t w = slots_[i].word.load(std::memory_order_relaxed);
      if (!(w & 1) && slots_[i].word.compare_exchange_strong(w, w | 1, std::memory_order_seq_cst)) {
        t.slot_hint = i;
        return i;
      }
    }
    backoff(spins, "any free cpu slot (all slots owned)");
  }
}

}  // namespace cgslab::platform
