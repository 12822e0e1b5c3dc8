// monitor.h: what the platform's service threads (RCU callbacks, the work queue) are built from.
// Monitor is a lock with one condition; ServiceThread runs one service loop.
//
// Native: std::mutex + std::condition_variable + std::thread. A bounded wait reports a hang that
// names what it waited for after wait_bound_seconds(); an idle wait (a service with nothing to do)
// has no bound.
// Sim: all tasks are fibers on one OS thread that switch only at schedule points, and no schedule
// point lies inside a Monitor section, so the lock is a no-op and a wait is a scheduler wait: the
// scheduler decides when a service runs (RCU callbacks, work items are scheduled events) and
// reports a deadlock instead of hanging. An idle wait marks the task quiescent.
#pragma once

#include <functional>

#if defined(CGSLAB_PLATFORM_SIM)
#include "sim_scheduler.h"
#else
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#endif

#include "sched.h"

namespace cgslab::platform {

enum class WaitKind { kBounded, kIdle };

#if defined(CGSLAB_PLATFORM_SIM)

class Monitor {
 public:
  class Lock {
   public:
    explicit Lock(Monitor&) {}
  };
  template <class Pred>
  void wait(Lock&, Pred pred, const char* what, WaitKind kind) {
    for (bool first = true; !pred(); first = false) sim::wait(what, kind == WaitKind::kIdle, first, this);
  }
  void notify_all() { sim::notify(this); }
};

class ServiceThread {
 public:
  void start(const char* name, std::function<void()> fn) { id_ = sim::spawn(name, std::move(fn), true); }
  void join() {
    if (id_ >= 0) sim::join(id_);
    id_ = -1;
  }

 private:
  int id_ = -1;
};

#else

class Monitor {
 public:
  class Lock {
   public:
    explicit Lock(Monitor& m) : g_(m.mu_) {}

   private:
    friend class Monitor;
    std::unique_lock<std::mutex> g_;
  };
  template <class Pred>
  void wait(Lock& l, Pred pred, const char* what, WaitKind kind) {
    if (kind == WaitKind::kIdle) {
      cv_.wait(l.g_, pred);
      return;
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(wait_bound_seconds());
    while (!pred()) {
      if (cv_.wait_until(l.g_, deadline) == std::cv_status::timeout && !pred())
        report_hang(what, wait_bound_seconds());
    }
  }
  void notify_all() { cv_.notify_all(); }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
};

class ServiceThread {
 public:
  void start(const char*, std::function<void()> fn) { t_ = std::thread(std::move(fn)); }
  void join() {
    if (t_.joinable()) t_.join();
  }

 private:
  std::thread t_;
};

#endif

}  // namespace cgslab::platform
