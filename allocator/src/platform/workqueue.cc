#include "workqueue.h"

#include <chrono>

#include "sched.h"

namespace cgslab::platform {

WorkQueue::WorkQueue() { thread_ = std::thread([this] { thread_main(); }); }

WorkQueue::~WorkQueue() {
  {
    std::lock_guard<std::mutex> g(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

bool WorkQueue::queue(Work* w, void (*func)(Work*)) {
  if (w->pending.exchange(true, std::memory_order_acq_rel)) return false;
  w->func = func;
  w->next = nullptr;
  {
    std::lock_guard<std::mutex> g(mu_);
    *tail_ = w;
    tail_ = &w->next;
    enqueued_.fetch_add(1, std::memory_order_acq_rel);
  }
  cv_.notify_one();
  return true;
}

void WorkQueue::pause_for_testing(bool p) {
  {
    std::lock_guard<std::mutex> g(mu_);
    paused_.store(p, std::memory_order_release);
  }
  cv_.notify_all();
}

void WorkQueue::flush() {
  if (paused()) report_hang("a paused work queue (flush while paused_for_testing)", 0);
  uint64_t target = enqueued_.load(std::memory_order_acquire);
  std::unique_lock<std::mutex> g(mu_);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(wait_bound_seconds());
  while (completed_.load(std::memory_order_acquire) < target) {
    if (done_cv_.wait_until(g, deadline) == std::cv_status::timeout &&
        completed_.load(std::memory_order_acquire) < target)
      report_hang("queued work items to run (flush_workqueue)", wait_bound_seconds());
  }
}

void WorkQueue::thread_main() {
  for (;;) {
    Work* w;
    {
      std::unique_lock<std::mutex> g(mu_);
      cv_.wait(g, [&] { return stop_ || (head_ != nullptr && !paused_.load()); });
      if (!head_) return;
      w = head_;
      head_ = w->next;
      if (!head_) tail_ = &head_;
    }
    // Clear pending before running, so the item may requeue itself (kernel semantics).
    w->pending.store(false, std::memory_order_release);
    w->func(w);
    {
      std::lock_guard<std::mutex> g(mu_);
      completed_.fetch_add(1, std::memory_order_acq_rel);
    }
    done_cv_.notify_all();
  }
}

}  // namespace cgslab::platform
