// exec_threads.cc: exec_threads, a program on real threads (library cgslab_harness_native): one
// OS thread per task, released together by a start barrier; the OS interleaves (the schedule in
// the program is ignored) and ThreadSanitizer watches. No quiescent point is known while tasks
// run, so validate() and quiescent-only ops run only at teardown.
#include <atomic>
#include <thread>
#include <vector>

#include "ops.h"

namespace cgslab::harness {

namespace {

thread_local Task* t_task = nullptr;

const Backend kThreads{
    "threads",
    true,
    [] { return t_task; },
    [](Task* t) { t_task = t; },
    [] {},
    [](bool) {},
    [] { return false; },
    [] { std::this_thread::yield(); },
    [](const std::function<void()>& fn) { fn(); },
};

}  // namespace

RunStats exec_threads(const Program& p, const RunOptions& opts) {
  World w(p, opts, kThreads);
  w.setup(4);
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int i = 0; i < p.ntasks; ++i)
    threads.emplace_back([&, i] {
      ready.fetch_add(1);
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();  // start barrier
      w.run_task(i);
    });
  while (ready.load() < p.ntasks) std::this_thread::yield();
  go.store(true, std::memory_order_release);
  for (auto& t : threads) t.join();
  w.teardown();
  return w.stats();
}

}  // namespace cgslab::harness
