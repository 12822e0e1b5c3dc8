// rcu_test: platform::Rcu's own contract (rcu.h) on real threads. synchronize() does not return
// while a reader that entered before it (explicit read_lock, nested or not, or an owned cpu slot)
// is still inside; it does not wait for readers that enter after it started. call() callbacks run
// after a grace period that covers every reader open at the call, in queue order; barrier()
// returns only after every callback queued before it has run. The classic use: a reader never
// sees an object that a writer unpublished and reclaimed after synchronize(). A task keeps
// reader records only for live domains.
//
// No duration is asserted: where a test must show that something does NOT happen while a reader
// is inside, the reader stays inside for a while and then checks; a correct RCU can never fail
// that check, a broken one fails it.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "platform/cpu_slots.h"
#include "platform/rcu.h"
#include "platform/task.h"

using cgslab::platform::Rcu;
using cgslab::platform::RcuHead;
using cgslab::platform::SlotTable;

namespace {

constexpr auto kHold = std::chrono::milliseconds(50);

class RcuTest : public ::testing::Test {
 protected:
  SlotTable slots{4};
  Rcu rcu{slots};
};

// A thread that runs synchronize() and records when it returned.
struct Syncer {
  explicit Syncer(Rcu& r) : t([this, &r] {
    started = true;
    r.synchronize();
    done = true;
  }) {}
  void join() { t.join(); }
  std::atomic<bool> started{false}, done{false};
  std::thread t;
};

// On another thread `enter` opens a read-side section; synchronize() starts, and for kHold the
// section stays open: synchronize() must not return before `leave` closes it.
void expect_synchronize_waits_for(Rcu& rcu, const std::function<void()>& enter, const std::function<void()>& leave,
                                  const char* inside) {
  std::atomic<int> phase{0};
  std::unique_ptr<Syncer> s;
  std::thread t([&] {
    enter();
    phase = 1;
    while (phase.load() < 2) std::this_thread::yield();
    std::this_thread::sleep_for(kHold);
    EXPECT_FALSE(s->done.load()) << "synchronize() returned " << inside;
    leave();
  });
  while (phase.load() < 1) std::this_thread::yield();
  s = std::make_unique<Syncer>(rcu);
  while (!s->started.load()) std::this_thread::yield();
  phase = 2;
  t.join();
  s->join();
  EXPECT_TRUE(s->done.load());
}

TEST_F(RcuTest, SynchronizeWaitsForAReaderOnAnotherThread) {
  expect_synchronize_waits_for(
      rcu,
      [&] {
        rcu.read_lock();
        EXPECT_TRUE(rcu.in_read_section());
      },
      [&] {
        rcu.read_unlock();
        EXPECT_FALSE(rcu.in_read_section());
      },
      "while a reader was inside");
}

TEST_F(RcuTest, SynchronizeWaitsForAnOwnedSlot) {
  unsigned slot = 0;
  expect_synchronize_waits_for(
      rcu, [&] { slot = slots.acquire(); },  // a first acquisition: a shared owner, no lease
      [&] { slots.release(slot); }, "while a slot was owned");
}

TEST_F(RcuTest, NestedReadLockEndsAtTheOutermostUnlock) {
  expect_synchronize_waits_for(
      rcu,
      [&] {
        rcu.read_lock();
        rcu.read_lock();
        rcu.read_lock();
        rcu.read_unlock();
        rcu.read_unlock();
        EXPECT_TRUE(rcu.in_read_section()) << "the outer section ended at an inner unlock";
      },
      [&] {
        rcu.read_unlock();
        EXPECT_FALSE(rcu.in_read_section());
      },
      "inside the outer read section");
}

// A reader that enters after synchronize() began is not waited for (no writer starvation): with
// an early reader holding the grace period, a late reader enters, the early one leaves, and
// synchronize() must return while the late one is still inside. Whether the late reader really
// entered after the grace period started cannot be observed from outside, so each round gives
// the syncer longer to get there, and one round where synchronize() returned under the late
// reader is enough; an RCU that waits for every reader never has one.
TEST_F(RcuTest, SynchronizeDoesNotWaitForLaterReaders) {
  int returned_under_late_reader = 0;
  for (int round = 0; round < 5 && !returned_under_late_reader; ++round) {
    std::atomic<bool> synced{false}, entered{false}, saw{false};
    std::atomic<int> phase{0};
    std::thread early([&] {
      rcu.read_lock();
      phase = 1;
      while (phase.load() < 2) std::this_thread::yield();
      rcu.read_unlock();
    });
    while (phase.load() < 1) std::this_thread::yield();
    std::thread syncer([&] {
      rcu.synchronize();
      synced = true;
    });
    std::this_thread::sleep_for(kHold * (1 << round));
    std::thread late([&] {
      rcu.read_lock();
      entered = true;
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
      while (!synced.load() && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
      saw = synced.load();
      rcu.read_unlock();
    });
    while (!entered.load()) std::this_thread::yield();
    phase = 2;
    early.join();
    syncer.join();
    late.join();
    returned_under_late_reader += saw.load();
  }
  EXPECT_GT(returned_under_late_reader, 0) << "synchronize() waited for a reader that entered after it";
}

struct Cb : RcuHead {
  int id = 0;
  std::vector<int>* log = nullptr;      // touched by the callback thread only, read after barrier
  std::atomic<int>* ran = nullptr;
};

void log_cb(RcuHead* h) {
  auto* c = static_cast<Cb*>(h);
  if (c->log) c->log->push_back(c->id);
  if (c->ran) c->ran->fetch_add(1);
}

TEST_F(RcuTest, CallbacksRunAfterTheGracePeriodOfAnOpenReader) {
  std::atomic<int> ran{0};
  Cb cb;
  cb.ran = &ran;
  std::atomic<int> phase{0};
  std::thread reader([&] {
    rcu.read_lock();
    phase = 1;
    while (phase.load() < 2) std::this_thread::yield();
    std::this_thread::sleep_for(kHold);
    EXPECT_EQ(ran.load(), 0) << "a callback ran while a reader open at call() was inside";
    rcu.read_unlock();
  });
  while (phase.load() < 1) std::this_thread::yield();
  rcu.call(&cb, &log_cb);
  EXPECT_EQ(rcu.pending(), 1u);
  phase = 2;
  reader.join();
  rcu.barrier();
  EXPECT_EQ(ran.load(), 1);
  EXPECT_EQ(rcu.pending(), 0u);
}

TEST_F(RcuTest, CallbacksRunInQueueOrder) {
  constexpr int kN = 500;
  std::vector<int> log;
  std::vector<Cb> cbs(kN);
  for (int i = 0; i < kN; ++i) {
    cbs[i].id = i;
    cbs[i].log = &log;
    rcu.call(&cbs[i], &log_cb);
    if (i % 50 == 0) std::this_thread::yield();  // let batches of different sizes form
  }
  rcu.barrier();
  ASSERT_EQ(log.size(), size_t(kN));
  for (int i = 0; i < kN; ++i) ASSERT_EQ(log[i], i);
}

TEST_F(RcuTest, BarrierWaitsForEveryCallbackQueuedBeforeIt) {
  constexpr int kThreads = 4, kPer = 300;
  std::atomic<int> ran{0};
  std::vector<std::vector<Cb>> cbs(kThreads, std::vector<Cb>(kPer));
  std::vector<std::thread> ts;
  for (int k = 0; k < kThreads; ++k)
    ts.emplace_back([&, k] {
      for (int i = 0; i < kPer; ++i) {
        cbs[k][i].ran = &ran;
        rcu.call(&cbs[k][i], &log_cb);
        if (i % 100 == 99) {
          // Every callback this thread queued so far has run once barrier() returns.
          rcu.barrier();
          EXPECT_GE(ran.load(), i + 1);
        }
      }
    });
  for (auto& t : ts) t.join();
  rcu.barrier();
  EXPECT_EQ(ran.load(), kThreads * kPer);
  EXPECT_EQ(rcu.pending(), 0u);
}

TEST_F(RcuTest, PausedCallbacksWaitAndRunWhenResumed) {
  std::atomic<int> ran{0};
  Cb cb;
  cb.ran = &ran;
  rcu.pause_for_testing(true);
  EXPECT_TRUE(rcu.paused());
  rcu.call(&cb, &log_cb);
  rcu.synchronize();  // a grace period alone does not run paused callbacks
  EXPECT_EQ(ran.load(), 0);
  EXPECT_EQ(rcu.pending(), 1u);
  rcu.pause_for_testing(false);
  rcu.barrier();
  EXPECT_EQ(ran.load(), 1);
}

// The pattern RCU exists for: readers dereference a published object inside a read section; the
// writer replaces it, waits for a grace period, and only then poisons and frees the old one.
// A reader must never see a poisoned object.
TEST_F(RcuTest, ReadersNeverSeeAnObjectReclaimedAfterSynchronize) {
  struct Obj {
    std::atomic<uint64_t> magic{0x600d};
    std::atomic<uint64_t> value{0};
  };
  std::atomic<Obj*> cur{new Obj};
  std::atomic<bool> stop{false};
  std::atomic<long> reads{0}, bad{0};
  std::vector<std::thread> readers;
  for (int k = 0; k < 3; ++k)
    readers.emplace_back([&, k] {
      while (!stop.load(std::memory_order_relaxed)) {
        if (k == 0) {
          // Readers through a slot (RCU-sched) as well as explicit ones.
          unsigned s = slots.acquire();
          Obj* o = cur.load(std::memory_order_acquire);
          if (o->magic.load(std::memory_order_relaxed) != 0x600d) bad.fetch_add(1);
          slots.release(s);
        } else {
          rcu.read_lock();
          if (k == 2) rcu.read_lock();
          Obj* o = cur.load(std::memory_order_acquire);
          uint64_t v = o->value.load(std::memory_order_relaxed);
          std::this_thread::yield();
          if (o->magic.load(std::memory_order_relaxed) != 0x600d || o->value.load() != v) bad.fetch_add(1);
          if (k == 2) rcu.read_unlock();
          rcu.read_unlock();
        }
        reads.fetch_add(1, std::memory_order_relaxed);
      }
    });
  while (reads.load() < 3) std::this_thread::yield();
  // At least 300 replacements, and more until the readers have done a fair number of reads.
  for (int i = 1; i <= 300 || (reads.load() < 20000 && i < 200000); ++i) {
    Obj* n = new Obj;
    n->value.store(uint64_t(i));
    Obj* old = cur.exchange(n, std::memory_order_acq_rel);
    rcu.synchronize();
    old->magic.store(0xdead);  // "reclaimed": a reader still holding it would see this
    old->value.store(~uint64_t(0));
    delete old;
  }
  stop = true;
  for (auto& t : readers) t.join();
  delete cur.load();
  EXPECT_EQ(bad.load(), 0) << "a reader saw a reclaimed object";
  EXPECT_GE(reads.load(), 3);
}

}  // namespace

// A thread that outlives many domains (a pooled worker meeting one allocator after another)
// keeps reader records only for the domains still alive.
TEST(RcuDomainsTest, ReaderRecordsOfDeadDomainsAreDropped) {
  for (int i = 0; i < 50; ++i) {
    SlotTable slots{4};
    Rcu rcu{slots};
    rcu.read_lock();
    rcu.read_unlock();
  }
  EXPECT_LE(cgslab::platform::current_task().rcu_readers.size(), 1u);
  SlotTable slots{4};
  Rcu a{slots}, b{slots};
  a.read_lock();
  b.read_lock();
  EXPECT_TRUE(a.in_read_section());
  EXPECT_TRUE(b.in_read_section());
  b.read_unlock();
  a.read_unlock();
  EXPECT_EQ(cgslab::platform::current_task().rcu_readers.size(), 2u);
}
