#include "rcu.h"

#include <algorithm>
#include <set>

#include "report.h"

namespace cgslab::platform {

namespace {
// Domains that still exist, so a task that outlives a domain does not touch its records.
std::mutex g_domains_mu;
std::set<uint64_t>& live_domains() {
  static std::set<uint64_t>* s = new std::set<uint64_t>;
  return *s;
}
std::atomic<uint64_t> g_next_uid{1};
}  // namespace

// Reader records are given back when their task ends (thread exit / sim task end), so records
// are recycled.
Task::~Task() {
  SlotTable::task_exit(*this);
  if (rcu_readers.empty()) return;
  std::lock_guard<std::mutex> g(g_domains_mu);
  for (auto& e : rcu_readers)
    if (live_domains().count(e.uid))
      static_cast<Rcu::Reader*>(e.reader)->used.store(false, std::memory_order_release);
}

Rcu::Rcu(SlotTable& slots) : slots_(slots), uid_(g_next_uid.fetch_add(1)) {
  {
    std::lock_guard<std::mutex> g(g_domains_mu);
    live_domains().insert(uid_);
  }
  thread_.start("rcu", [this] { thread_main(); });
}

Rcu::~Rcu() {
  {
    Monitor::Lock g(cb_);
    stop_ = true;
  }
  cb_.notify_all();
  thread_.join();
  std::lock_guard<std::mutex> g(g_domains_mu);
  live_domains().erase(uid_);
}

Rcu::Reader* Rcu::register_reader() {
  unsigned n = nr_readers_.load(std::memory_order_acquire);
  for (unsigned i = 0; i < n; ++i) {
    bool expected = false;
    if (!readers_[i].used.load(std::memory_order_relaxed) &&
        readers_[i].used.compare_exchange_strong(expected, true))
      return &readers_[i];
  }
  for (;;) {
    n = nr_readers_.load(std::memory_order_acquire);
    if (n >= kMaxReaders) report_hang("a free RCU reader record (more than kMaxReaders reader threads)", 0);
    bool expected = false;
    if (readers_[n].used.compare_exchange_strong(expected, true)) {
      unsigned want = n;
      nr_readers_.compare_exchange_strong(want, n + 1);
      return &readers_[n];
    }
    unsigned want = n;
    nr_readers_.compare_exchange_strong(want, n + 1);
  }
}

Rcu::Reader* Rcu::my_reader() {
  auto& entries = current_task().rcu_readers;
  for (auto& e : entries)
    if (e.domain == this && e.uid == uid_) return static_cast<Reader*>(e.reader);
  // First use of this domain by this task: entries of dead domains go (a thread that outlives
  // many allocators, such as a pooled worker, would otherwise collect one per allocator).
  {
    std::lock_guard<std::mutex> g(g_domains_mu);
    entries.erase(std::remove_if(entries.begin(), entries.end(),
                                 [&](const RcuReaderRef& e) { return e.domain == this || !live_domains().count(e.uid); }),
                  entries.end());
  }
  Reader* r = register_reader();
  r->nesting = 0;
  entries.push_back({uid_, this, r});
  return r;
}

void Rcu::read_lock() {
  CGSLAB_SCHED(kRcuReadLock);
  Reader* r = my_reader();
  if (r->nesting++ == 0) r->ctr.store(gp_seq_.load(std::memory_order_seq_cst), std::memory_order_seq_cst);
}

void Rcu::read_unlock() {
  Reader* r = my_reader();
  if (r->nesting == 0) return;  // unbalanced unlock is reported by the caller
  if (--r->nesting == 0) r->ctr.store(0, std::memory_order_seq_cst);
  CGSLAB_SCHED(kRcuReadUnlock);
}

bool Rcu::in_read_section() { return my_reader()->nesting > 0; }

void Rcu::synchronize() {
  CGSLAB_SCHED(kRcuSync);
  MutexLock g(gp_mu_);
  uint64_t gp = gp_seq_.fetch_add(1, std::memory_order_seq_cst) + 1;
  // Leased slots are entered without a hardware fence: order every lessee's entry store before
  // the snapshots (and its section's reads after them).
  slots_.heavy_fence();
  for (unsigned i = 0; i < slots_.size(); ++i) slots_.wait_changed(i, slots_.snapshot(i));
  unsigned n = nr_readers_.load(std::memory_order_acquire);
  for (unsigned i = 0; i < n; ++i) {
    for (uint64_t spins = 0;; ++spins) {
      uint64_t c = readers_[i].ctr.load(std::memory_order_seq_cst);
      if (c == 0 || c >= gp) break;
      wait_spin(spins, "an RCU reader to leave its read-side section (synchronize_rcu)");
    }
  }
}

void Rcu::call(RcuHead* head, void (*func)(RcuHead*)) {
  head->func = func;
  head->next = nullptr;
  {
    Monitor::Lock g(cb_);
    *cb_tail_ = head;
    cb_tail_ = &head->next;
    enqueued_.fetch_add(1, std::memory_order_acq_rel);
  }
  cb_.notify_all();
}

void Rcu::pause_for_testing(bool p) {
  {
    Monitor::Lock g(cb_);
    paused_.store(p, std::memory_order_release);
  }
  cb_.notify_all();
}

void Rcu::barrier() {
  if (paused()) report_hang("paused RCU callbacks (rcu_barrier while paused_for_testing)", 0);
  uint64_t target = enqueued_.load(std::memory_order_acquire);
  Monitor::Lock g(cb_);
  cb_.wait(g, [&] { return completed_.load(std::memory_order_acquire) >= target; },
           "queued RCU callbacks to run (rcu_barrier)", WaitKind::kBounded);
}

void Rcu::thread_main() {
  // Between batches (waiting for one, or for its grace period) no callback is half done: the
  // harness may validate then.
  CGSLAB_SIM_BOUNDARY(true);
  for (;;) {
    RcuHead* batch;
    {
      Monitor::Lock g(cb_);
      cb_.wait(g, [&] { return stop_ || (cb_head_ != nullptr && !paused_.load()); },
               "RCU callbacks to be queued", WaitKind::kIdle);
      if (!cb_head_ && stop_) return;
      batch = cb_head_;
      cb_head_ = nullptr;
      cb_tail_ = &cb_head_;
    }
    synchronize();
    CGSLAB_SIM_BOUNDARY(false);
    uint64_t n = 0;
    while (batch) {
      RcuHead* next = batch->next;
      batch->func(batch);
      batch = next;
      ++n;
    }
    {
      Monitor::Lock g(cb_);
      completed_.fetch_add(n, std::memory_order_acq_rel);
    }
    cb_.notify_all();
    CGSLAB_SIM_BOUNDARY(true);
  }
}

}  // namespace cgslab::platform
