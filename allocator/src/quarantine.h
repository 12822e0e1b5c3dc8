// quarantine.h: type-stable handle memory. Released cgroups and freed caches are not returned to
// malloc at once: they stay in a bounded FIFO with their magic set to "dead", so a stale handle
// passed to the API is reported as kUseAfterDestroy instead of reading freed memory. The oldest
// entries are freed when the FIFO is full and at teardown. Guarded by the owner's lock.
#pragma once

#include <deque>

namespace cgslab {

template <typename T>
class Quarantine {
 public:
  explicit Quarantine(size_t cap) : cap_(cap) {}
  ~Quarantine() { clear(); }
  void add(T* t) {
    q_.push_back(t);
    while (q_.size() > cap_) {
      T::destroy(q_.front());
      q_.pop_front();
    }
  }
  void clear() {
    for (T* t : q_) T::destroy(t);
    q_.clear();
  }
  size_t size() const { return q_.size(); }

 private:
  size_t cap_;
  std::deque<T*> q_;
};

}  // namespace cgslab
