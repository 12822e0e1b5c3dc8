// exec_threads.cc: exec_threads, a program on real threads (library cgslab_harness_native): one
// OS thread per task, released together by a start barrier; the OS interleaves (the schedule in
// the program is ignored) and ThreadSanitizer watches. No quiescent point is known while tasks
// run, so validate() and quiescent-only ops run only at teardown.
//
// The task threads are a pool kept for the life of the process (grown to the largest task
// count seen): starting and joining four OS threads per input cost fuzz_threads about a tenth
// of an execution. A pooled thread keeps its thread-local allocator task state between runs;
// that state refers to allocators by unique id (slot leases, RCU reader records), so a dead
// allocator's entries are dropped, not used. The pool belongs to the process that made it: a
// forked child makes its own.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <mutex>
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

class TaskPool {
 public:
  // Runs fn(0) .. fn(n-1) on n pooled threads and returns when all have returned.
  void run(int n, const std::function<void(int)>& fn) {
    std::lock_guard<std::mutex> one_run_at_a_time(run_mu_);
    std::unique_lock<std::mutex> g(mu_);
    while (int(threads_.size()) < n) {
      int i = int(threads_.size());
      threads_.emplace_back([this, i] { worker(i); });
      threads_.back().detach();  // lives as long as the process; never joined at exit
    }
    job_ = &fn;
    njobs_ = n;
    remaining_ = n;
    ++generation_;
    start_.notify_all();
    // The tasks of a program end on their own; a stuck one is the allocator's hang, reported by
    // its own bounded waits long before this bound.
    if (!done_.wait_for(g, std::chrono::seconds(600), [&] { return remaining_ == 0; })) {
      std::fprintf(stderr, "exec_threads: %d of %d task threads still running after 600 s\n", remaining_, n);
      std::abort();
    }
    job_ = nullptr;
  }

 private:
  void worker(int i) {
    uint64_t seen = 0;
    for (;;) {
      const std::function<void(int)>* job;
      {
        std::unique_lock<std::mutex> g(mu_);
        start_.wait(g, [&] { return generation_ != seen; });
        seen = generation_;
        if (i >= njobs_) continue;
        job = job_;
      }
      (*job)(i);
      std::lock_guard<std::mutex> g(mu_);
      if (--remaining_ == 0) done_.notify_one();
    }
  }

  std::mutex run_mu_, mu_;
  std::condition_variable start_, done_;
  std::vector<std::thread> threads_;
  const std::function<void(int)>* job_ = nullptr;
  int njobs_ = 0, remaining_ = 0;
  uint64_t generation_ = 0;
};

TaskPool& pool() {
  static std::mutex mu;
  static pid_t owner = 0;
  static TaskPool* p = nullptr;
  std::lock_guard<std::mutex> g(mu);
  if (!p || owner != getpid()) {  // never destroyed: its threads outlive static destruction
    p = new TaskPool;
    owner = getpid();
  }
  return *p;
}

}  // namespace

RunStats exec_threads(const Program& p, const RunOptions& opts) {
  World w(p, opts, kThreads);
  w.setup(4);
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  pool().run(p.ntasks, [&](int i) {
    // Start barrier: the last task to arrive releases them all.
    if (ready.fetch_add(1) + 1 == p.ntasks) go.store(true, std::memory_order_release);
    while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
    w.run_task(i);
  });
  w.teardown();
  return w.stats();
}

}  // namespace cgslab::harness
