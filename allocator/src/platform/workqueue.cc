#include "workqueue.h"

#include "sched.h"

namespace cgslab::platform {

WorkQueue::WorkQueue() { thread_.start("wq", [this] { thread_main(); }); }

WorkQueue::~WorkQueue() {
  {
    Monitor::Lock g(mon_);
    stop_ = true;
  }
  mon_.notify_all();
  thread_.join();
}

bool WorkQueue::queue(Work* w, void (*func)(Work*)) {
  if (w->pending.exchange(true, std::memory_order_acq_rel)) return false;
  w->func = func;
  w->next = nullptr;
  {
    Monitor::Lock g(mon_);
    *tail_ = w;
    tail_ = &w->next;
    enqueued_.fetch_add(1, std::memory_order_acq_rel);
  }
  mon_.notify_all();
  return true;
}

void WorkQueue::pause_for_testing(bool p) {
  {
    Monitor::Lock g(mon_);
    paused_.store(p, std::memory_order_release);
  }
  mon_.notify_all();
}

void WorkQueue::flush() {
  if (paused()) report_hang("a paused work queue (flush while paused_for_testing)", 0);
  uint64_t target = enqueued_.load(std::memory_order_acquire);
  Monitor::Lock g(mon_);
  mon_.wait(g, [&] { return completed_.load(std::memory_order_acquire) >= target; },
            "queued work items to run (flush_workqueue)", WaitKind::kBounded);
}

void WorkQueue::thread_main() {
  // Between items no work is half done: the harness may validate then.
  CGSLAB_SIM_BOUNDARY(true);
  for (;;) {
    Work* w;
    {
      Monitor::Lock g(mon_);
      mon_.wait(g, [&] { return stop_ || (head_ != nullptr && !paused_.load()); },
                "work items to be queued", WaitKind::kIdle);
      if (!head_) return;
      w = head_;
      head_ = w->next;
      if (!head_) tail_ = &head_;
    }
    CGSLAB_SCHED(kWorkItem);
    CGSLAB_SIM_BOUNDARY(false);
    // Clear pending before running, so the item may requeue itself (kernel semantics).
    w->pending.store(false, std::memory_order_release);
    w->func(w);
    {
      Monitor::Lock g(mon_);
      completed_.fetch_add(1, std::memory_order_acq_rel);
    }
    mon_.notify_all();
    CGSLAB_SIM_BOUNDARY(true);
    CGSLAB_SCHED(kWorkItem);
  }
}

}  // namespace cgslab::platform
