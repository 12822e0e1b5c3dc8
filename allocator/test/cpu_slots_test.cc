// cpu_slots_test: the slot table's two ways of owning a slot (lease and shared) on real threads:
// a task leases a slot on its second acquisition, at most half the slots are leased, a remote
// owner excludes the lessee and the lessee excludes the remote, a grace period waits for a
// leased section, and a task's end gives its lease back.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "platform/cpu_slots.h"
#include "platform/rcu.h"

using cgslab::platform::SlotTable;

namespace {

TEST(CpuSlots, SecondAcquireLeasesAndReleaseKeepsTheLease) {
  if (!SlotTable::leases_supported()) GTEST_SKIP() << "membarrier(PRIVATE_EXPEDITED) unavailable";
  SlotTable t(4);
  std::thread([&] {
    unsigned a = t.acquire();
    t.release(a);
    EXPECT_EQ(t.leased(), 0u);  // the first visit only sets the hint
    unsigned b = t.acquire();
    EXPECT_EQ(t.leased(), 1u);
    EXPECT_TRUE(t.owned(b));
    t.release(b);
    EXPECT_FALSE(t.owned(b));
    unsigned c = t.acquire();
    EXPECT_EQ(c, b);  // the lease is kept between operations
    t.release(c);
  }).join();
  EXPECT_EQ(t.leased(), 0u) << "a thread's end gives its lease back";
}

TEST(CpuSlots, AtMostHalfTheSlotsAreLeased) {
  if (!SlotTable::leases_supported()) GTEST_SKIP();
  SlotTable t(4);
  std::atomic<int> parked{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> ts;
  for (int k = 0; k < 4; ++k)
    ts.emplace_back([&] {
      for (int i = 0; i < 3; ++i) t.release(t.acquire());
      parked.fetch_add(1);
      while (!go.load()) std::this_thread::yield();
    });
  while (parked.load() < 4) std::this_thread::yield();
  EXPECT_EQ(t.leased(), 2u);
  go = true;
  for (auto& th : ts) th.join();
  EXPECT_EQ(t.leased(), 0u);
}

TEST(CpuSlots, RemoteOwnerAndLesseeExcludeEachOther) {
  if (!SlotTable::leases_supported()) GTEST_SKIP();
  SlotTable t(4);
  std::atomic<unsigned> leased_slot{~0u};
  std::atomic<bool> stop{false};
  long in_section = 0;  // plain: touched only by the slot's owner, as a magazine is
  std::atomic<long> lessee_ops{0}, remote_ops{0};
  std::thread lessee([&] {
    t.release(t.acquire());
    unsigned s = t.acquire();
    leased_slot = s;
    t.release(s);
    while (!stop.load(std::memory_order_relaxed)) {
      unsigned x = t.acquire();
      EXPECT_EQ(x, s);
      EXPECT_EQ(in_section++, 0);
      in_section--;
      t.release(x);
      lessee_ops.fetch_add(1, std::memory_order_relaxed);
    }
  });
  while (leased_slot.load() == ~0u) std::this_thread::yield();
  std::thread remote([&] {
    for (int i = 0; i < 2000; ++i) {
      t.acquire_remote(leased_slot);
      EXPECT_EQ(in_section++, 0);
      in_section--;
      t.release(leased_slot);
      remote_ops.fetch_add(1, std::memory_order_relaxed);
    }
  });
  remote.join();
  stop = true;
  lessee.join();
  EXPECT_EQ(remote_ops.load(), 2000);
  EXPECT_GT(lessee_ops.load(), 0);
  EXPECT_EQ(in_section, 0);
}

TEST(CpuSlots, GracePeriodWaitsForALeasedSection) {
  if (!SlotTable::leases_supported()) GTEST_SKIP();
  SlotTable t(4);
  cgslab::platform::Rcu rcu(t);
  std::atomic<int> phase{0};
  std::atomic<bool> synced{false};
  std::thread lessee([&] {
    t.release(t.acquire());
    unsigned s = t.acquire();  // leased, and now inside the RCU-sched section
    phase = 1;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    EXPECT_FALSE(synced.load()) << "synchronize() returned while a leased section was open";
    t.release(s);
  });
  while (phase.load() < 1) std::this_thread::yield();
  rcu.synchronize();
  synced = true;
  lessee.join();
}

}  // namespace
