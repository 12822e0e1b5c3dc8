// quiesce.h: bringing every thread of a stress run to a quiescent point.
//
// validate() and the quiescent stats need no thread inside the allocator. Each participating
// thread calls point() between two operations (one relaxed load when no pause is asked for);
// the checker calls pause(), which waits — bounded — until every joined thread has parked, and
// resume() afterwards. A thread that must wait for another (a consumer for a producer, a cache
// churner for the cache's users) waits with wait_until(), which parks while waiting, so a pause
// never deadlocks on a thread that is waiting for a parked one. When the bound is exceeded the
// failure names every thread that did not park, what it was doing and for how long.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace cgslab::stress {

class Quiescer {
 public:
  explicit Quiescer(unsigned max_threads);

  // A thread joins before its first operation and leaves after its last.
  unsigned join(const std::string& name);
  void leave(unsigned id);

  // Between operations.
  void point(unsigned id) {
    if (pause_.load(std::memory_order_acquire)) park(id);
  }
  // What the thread is doing now (a string literal), for hang reports.
  void doing(unsigned id, const char* what) { slots_[id].doing.store(what, std::memory_order_relaxed); }

  // Waits until pred() holds, parking when asked. false when `bound_s` passed first.
  template <typename Pred>
  bool wait_until(unsigned id, Pred pred, double bound_s) {
    auto start = std::chrono::steady_clock::now();
    for (unsigned spins = 0; !pred(); ++spins) {
      point(id);
      if (spins < 64)
        std::this_thread::yield();
      else
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      if ((spins & 63) == 0 &&
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() > bound_s)
        return false;
    }
    return true;
  }
  // Sleeps up to `seconds` in small steps, parking when asked; false when `stop` turned true.
  bool nap(unsigned id, double seconds, const std::atomic<bool>& stop);

  // Checker side. pause: true when all joined threads parked within bound_s, else false and
  // `why` names the laggards.
  bool pause(double bound_s, std::string* why);
  void resume();

 private:
  void park(unsigned id);
  struct alignas(64) Slot {
    std::atomic<bool> used{false};
    std::atomic<bool> parked{false};
    std::atomic<const char*> doing{"starting"};
    std::string name;
  };
  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<bool> pause_{false};
  uint64_t epoch_ = 0;  // bumped by resume (mu_)
  std::vector<Slot> slots_;
};

}  // namespace cgslab::stress
