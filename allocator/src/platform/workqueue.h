// workqueue.h: an ordered work queue with one real worker thread per Allocator (kernel: an
// ordered workqueue such as memcg_kmem_cache_wq). queue() of an item that is already pending is a
// no-op (kernel: queue_work returns false). flush() waits, bounded, until every item queued
// before it has run. Items may queue more items and may call Rcu::synchronize/barrier (the RCU
// callbacks run on a different service thread, so that cannot deadlock). Built on Monitor and
// ServiceThread (monitor.h): in the sim backend work items are events the scheduler runs.
#pragma once

#include <atomic>
#include <cstdint>

#include "monitor.h"

namespace cgslab::platform {

struct Work {
  Work* next = nullptr;
  void (*func)(Work*) = nullptr;
  std::atomic<bool> pending{false};
};

class WorkQueue {
 public:
  WorkQueue();
  ~WorkQueue();
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  bool queue(Work* w, void (*func)(Work*));
  void flush();
  uint64_t pending() const {
    return enqueued_.load(std::memory_order_acquire) - completed_.load(std::memory_order_acquire);
  }
  // Test hook: while paused, queued items stay queued (so intermediate states can be observed).
  void pause_for_testing(bool paused);
  bool paused() const { return paused_.load(std::memory_order_acquire); }

 private:
  void thread_main();
  Monitor mon_;               // guards the queue; signals "queued" and "done"
  Work* head_ = nullptr;      // guarded by mon_
  Work** tail_ = &head_;      // guarded by mon_
  bool stop_ = false;         // guarded by mon_
  std::atomic<bool> paused_{false};
  std::atomic<uint64_t> enqueued_{0};
  std::atomic<uint64_t> completed_{0};
  ServiceThread thread_;
};

}  // namespace cgslab::platform
