#include "cpu_slots.h"

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <functional>
#include <map>
#include <mutex>

namespace cgslab::platform {

namespace {
// Tables that still exist, so a task that outlives a table does not touch it at its end.
std::mutex g_tables_mu;
std::map<uint64_t, SlotTable*>& live_tables() {
  static auto* m = new std::map<uint64_t, SlotTable*>;
  return *m;
}
std::atomic<uint64_t> g_next_uid{1};

#if !defined(CGSLAB_PLATFORM_SIM) && !defined(CGSLAB_TSAN)
// Registers this process for private expedited membarrier once; false if the kernel (or a
// seccomp filter) does not offer it, and then no lease is ever granted.
bool membarrier_ready() {
  static const bool ready = [] {
    long cmds = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    if (cmds < 0 || !(cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED)) return false;
    return syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
  }();
  return ready;
}
#endif
}  // namespace

bool SlotTable::leases_supported() {
#if defined(CGSLAB_PLATFORM_SIM) || defined(CGSLAB_TSAN)
  return true;
#else
  return membarrier_ready();
#endif
}

SlotTable::SlotTable(unsigned n) : n_(n), uid_(g_next_uid.fetch_add(1)), slots_(new CpuSlot[n]) {
  leases_supported();  // register early, not inside the first remote flush
#if defined(CGSLAB_PLATFORM_SIM)
  // A new table is a new sim world: the task outside any run (it sets the world up and tears it
  // down) must not carry its slot hint or lease over from the previous one, or the same input
  // would take other slots in the second run of a process than in the first.
  Task& t = current_task();
  task_exit(t);
  t.slot_hint = ~0u;
  t.home_slot = 0;
#endif
  std::lock_guard<std::mutex> g(g_tables_mu);
  live_tables()[uid_] = this;
}

SlotTable::~SlotTable() {
  std::lock_guard<std::mutex> g(g_tables_mu);
  live_tables().erase(uid_);
}

void SlotTable::heavy_fence() {
#if defined(CGSLAB_PLATFORM_SIM)
  // One OS thread: every store is already visible. A schedule point stands for the IPIs.
  CGSLAB_SCHED(kSlotLease);
#elif defined(CGSLAB_TSAN)
  std::atomic_thread_fence(std::memory_order_seq_cst);
#else
  if (!membarrier_ready()) {  // then no lease was ever granted: a fence orders the CAS owners
    std::atomic_thread_fence(std::memory_order_seq_cst);
    return;
  }
  if (syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0)
    report_hang("membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) failed after registration", 0);
#endif
}

void SlotTable::exclude_lessee(unsigned i, const char* what) {
  // `word` is held: the lessee cannot enter from now on. Wait for a section that began before.
  heavy_fence();
  for (uint64_t spins = 0; slots_[i].lessee_word.load(std::memory_order_acquire) & 1; ++spins)
    backoff(spins, what);
}

bool SlotTable::try_take_shared(unsigned i) {
  CpuSlot& s = slots_[i];
  uint64_t w = s.word.load(std::memory_order_relaxed);
  if ((w & 1) || !s.word.compare_exchange_strong(w, w | 1, std::memory_order_seq_cst)) return false;
  if (s.lease.load(std::memory_order_acquire) != 0)
    exclude_lessee(i, "the lessee of a cpu slot to leave its section");
  return true;
}

void SlotTable::take_shared(unsigned i, const char* what) {
  for (uint64_t spins = 0; !try_take_shared(i); ++spins) backoff(spins, what);
}

void SlotTable::acquire_remote(unsigned i) {
  Task& t = current_task();
  if (t.lease_uid == uid_ && t.lease_slot == i) {
    // Our own leased slot: enter it the lessee's way, so release() matches.
    for (uint64_t spins = 0; !enter_leased(i); ++spins)
      backoff(spins, "the cpu slot this task leases, held by a remote flush");
    return;
  }
  take_shared(i, "a cpu slot held by another thread (remote flush)");
}

void SlotTable::wait_changed(unsigned i, Snapshot s) const {
  for (uint64_t spins = 0; (s.word & 1) && slots_[i].word.load(std::memory_order_acquire) == s.word; ++spins)
    backoff(spins, "a cpu slot to leave its RCU-sched section (synchronize_rcu)");
  for (uint64_t spins = 0; (s.lessee & 1) && slots_[i].lessee_word.load(std::memory_order_acquire) == s.lessee;
       ++spins)
    backoff(spins, "a leased cpu slot to leave its RCU-sched section (synchronize_rcu)");
}

bool SlotTable::try_lease(Task& t, unsigned i) {
  if (!leases_supported()) return false;
  unsigned nl = nr_leased_.load(std::memory_order_relaxed);
  if (nl >= n_ / 2) return false;
  CpuSlot& s = slots_[i];
  if (s.lease.load(std::memory_order_relaxed) != 0) return false;
  if (t.lease_uid != 0) task_exit(t);  // one lease per task: the newest table's
  // Hold `word` while the lease changes, so shared owners see it stable.
  uint64_t w = s.word.load(std::memory_order_relaxed);
  if ((w & 1) || !s.word.compare_exchange_strong(w, w | 1, std::memory_order_seq_cst)) return false;
  bool ok = s.lease.load(std::memory_order_relaxed) == 0 &&
            nr_leased_.compare_exchange_strong(nl, nl + 1, std::memory_order_relaxed);
  if (ok) {
    s.lease.store(1, std::memory_order_release);
    t.lease_uid = uid_;
    t.lease_slot = i;
  }
  s.word.store(w + 2, std::memory_order_release);
  return ok;
}

unsigned SlotTable::acquire_slow(Task& t) {
  // Start at the task's home slot (native: derived from the thread id, so threads spread out;
  // sim: set by the scheduler, so the choice is deterministic), then scan.
  if (t.home_slot == ~0u) t.home_slot = unsigned(std::hash<std::thread::id>{}(std::this_thread::get_id()));
  unsigned start = t.slot_hint < n_ ? t.slot_hint : t.home_slot % n_;
  // A task that has come back to this table takes a lease when one is free.
  if (t.lease_uid != uid_ && t.slot_hint < n_) try_lease(t, start);
  if (t.lease_uid == uid_) {
    // From now on this task owns its leased slot only the lessee's way: release() goes by the
    // lease, so taking that slot through `word` would leave `word` held forever. A remote flush
    // may hold it for a moment.
    for (uint64_t spins = 0;; ++spins) {
      if (enter_leased(t.lease_slot)) return t.lease_slot;
      backoff(spins, "the cpu slot this task leases, held by a remote flush");
    }
  }
  for (uint64_t spins = 0;; ++spins) {
    // Unleased slots first: taking a leased one costs a membarrier.
    for (int pass = 0; pass < 2; ++pass) {
      for (unsigned k = 0; k < n_; ++k) {
        unsigned i = (start + k) % n_;
        if ((slots_[i].lease.load(std::memory_order_relaxed) != 0) != (pass == 1)) continue;
        if (try_take_shared(i)) {
          t.slot_hint = i;
          return i;
        }
      }
    }
    backoff(spins, "any free cpu slot (all slots owned)");
  }
}

void SlotTable::task_exit(Task& t) {
  if (t.lease_uid == 0) return;
  uint64_t uid = t.lease_uid;
  unsigned i = t.lease_slot;
  t.lease_uid = 0;
  t.lease_slot = ~0u;
  // Our lessee section is closed; hold `word` (no lessee to exclude: it is us) to drop the lease.
  // The table lock is never held across a wait (a sim task would yield holding it).
  for (uint64_t spins = 0;; ++spins) {
    {
      std::lock_guard<std::mutex> g(g_tables_mu);
      auto it = live_tables().find(uid);
      if (it == live_tables().end()) return;
      SlotTable* tab = it->second;
      CpuSlot& s = tab->slots_[i];
      uint64_t w = s.word.load(std::memory_order_relaxed);
      if (!(w & 1) && s.word.compare_exchange_strong(w, w | 1, std::memory_order_seq_cst)) {
        s.lease.store(0, std::memory_order_release);
        tab->nr_leased_.fetch_sub(1, std::memory_order_relaxed);
        s.word.store(w + 2, std::memory_order_release);
        return;
      }
    }
    backoff(spins, "a remote flush to release the slot this task leased (task exit)");
  }
}

}  // namespace cgslab::platform
