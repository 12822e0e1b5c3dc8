// percpu_ref_test: PercpuRef's own contract (percpu_ref.h) on a real platform::Platform (slots,
// RCU thread, reporter). Percpu mode: get/put on the caller's owned slot, the sum is the count.
// kill() makes the ref dead at once (tryget_live fails, tryget still succeeds while references
// are held), the switch to atomic mode completes only after a grace period (a slot owned at kill
// holds it back), release() runs exactly once, when the last reference goes, and never before.
// Killing twice is reported.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "percpu_ref.h"
#include "platform/platform.h"

using cgslab::PercpuRef;
using cgslab::platform::Platform;

namespace {

constexpr unsigned kSlots = 4;

// What a user of PercpuRef embeds: the ref, its per-slot counters (here with a stride, as inside
// per-slot structures) and what release() does.
struct Owner {
  struct alignas(64) PerSlot {
    std::atomic<long> counter;
    char other_fields[40];
  };
  PerSlot per_slot[kSlots];
  PercpuRef ref;
  std::atomic<int> releases{0};
  std::atomic<long> live_at_release{-1};
  std::atomic<long>* live = nullptr;  // references the test knows are held, if tracked

  void init() {
    ref.init(&per_slot[0].counter, sizeof(PerSlot), kSlots, &Owner::on_release, this);
  }
  static void on_release(PercpuRef* r) {
    auto* o = static_cast<Owner*>(r->owner());
    if (o->live) o->live_at_release = o->live->load();
    o->releases.fetch_add(1);
  }
};

class PercpuRefTest : public ::testing::Test {
 protected:
  PercpuRefTest()
      : plat(kSlots, [this](const cgslab::Error& e) {
          std::lock_guard<std::mutex> g(mu);
          errors.push_back(e);
        }) {}
  void TearDown() override {
    plat.rcu.barrier();
    std::lock_guard<std::mutex> g(mu);
    for (auto& e : errors) ADD_FAILURE() << "unexpected error: " << e.message;
  }
  // Run fn with a slot owned, as every percpu-mode operation must be.
  template <class F>
  void with_slot(F fn) {
    unsigned s = plat.slots.acquire();
    fn(s);
    plat.slots.release(s);
  }
  size_t take_errors() {
    std::lock_guard<std::mutex> g(mu);
    size_t n = errors.size();
    errors.clear();
    return n;
  }

  std::mutex mu;
  std::vector<cgslab::Error> errors;
  Platform plat;
};

TEST_F(PercpuRefTest, PercpuModeCountsOnSlotsAndNeverReleases) {
  Owner o;
  o.init();
  EXPECT_TRUE(o.ref.is_percpu());
  EXPECT_FALSE(o.ref.is_dead());
  EXPECT_EQ(o.ref.owner(), &o);
  EXPECT_EQ(o.ref.read(), 1) << "the initial reference";
  with_slot([&](unsigned s) {
    o.ref.get(s);
    o.ref.get(s);
    EXPECT_TRUE(o.ref.tryget(s));
    EXPECT_TRUE(o.ref.tryget_live(s));
  });
  EXPECT_EQ(o.ref.read(), 5);
  // Puts on another slot than the gets: only the sum matters. Nothing is released even though
  // this slot's counter goes negative.
  std::thread([&] {
    with_slot([&](unsigned s) {
      for (int i = 0; i < 4; ++i) o.ref.put(s, plat);
    });
  }).join();
  EXPECT_EQ(o.ref.read(), 1);
  EXPECT_TRUE(o.ref.is_percpu());
  EXPECT_FALSE(o.ref.released());
  EXPECT_EQ(o.releases.load(), 0);
  o.ref.kill(plat);
  plat.rcu.barrier();
  EXPECT_EQ(o.releases.load(), 1);
}

TEST_F(PercpuRefTest, KillWithoutOtherReferencesReleasesOnlyAfterTheGracePeriod) {
  Owner o;
  o.init();
  plat.rcu.pause_for_testing(true);  // the fold callback cannot run
  o.ref.kill(plat);
  EXPECT_TRUE(o.ref.is_dead());
  EXPECT_FALSE(o.ref.is_percpu());
  EXPECT_FALSE(o.ref.released()) << "released before the switch to atomic mode completed";
  EXPECT_EQ(o.releases.load(), 0);
  plat.rcu.pause_for_testing(false);
  plat.rcu.barrier();
  EXPECT_TRUE(o.ref.released());
  EXPECT_EQ(o.releases.load(), 1);
  EXPECT_EQ(o.ref.read(), 0);
}

TEST_F(PercpuRefTest, KillThenAtomicModeFoldsSlotCountsAndReleasesOnTheLastPut) {
  Owner o;
  std::atomic<long> live{0};
  o.live = &live;
  o.init();
  // Three references taken in percpu mode, on two slots (two threads).
  with_slot([&](unsigned s) {
    o.ref.get(s);
    o.ref.get(s);
    live += 2;
  });
  std::thread([&] {
    with_slot([&](unsigned s) {
      o.ref.get(s);
      live += 1;
    });
  }).join();
  o.ref.kill(plat);
  plat.rcu.barrier();  // the fold has run
  EXPECT_TRUE(o.ref.is_dead());
  EXPECT_EQ(o.ref.read(), 3) << "slot counters folded into the shared count, bias and initial ref gone";
  EXPECT_EQ(o.releases.load(), 0);
  // Atomic mode: get/put on the shared count, any slot.
  with_slot([&](unsigned s) {
    o.ref.get(s);
    EXPECT_EQ(o.ref.read(), 4);
    o.ref.put(s, plat);
  });
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(o.releases.load(), 0) << "released with references left";
    live -= 1;
    with_slot([&](unsigned s) { o.ref.put(s, plat); });
  }
  EXPECT_EQ(o.releases.load(), 1);
  EXPECT_EQ(o.live_at_release.load(), 0);
  EXPECT_TRUE(o.ref.released());
  plat.rcu.barrier();
  EXPECT_EQ(o.releases.load(), 1) << "released twice";
}

TEST_F(PercpuRefTest, TrygetLiveFailsOnceKilledTrygetOnlyOnceReleased) {
  Owner o;
  o.init();
  with_slot([&](unsigned s) {
    EXPECT_TRUE(o.ref.tryget_live(s));
    EXPECT_TRUE(o.ref.tryget(s));
  });
  o.ref.kill(plat);
  with_slot([&](unsigned s) {
    EXPECT_FALSE(o.ref.tryget_live(s)) << "tryget_live after kill (before the grace period)";
    EXPECT_TRUE(o.ref.tryget(s)) << "tryget with references held (before the grace period)";
  });
  plat.rcu.barrier();
  EXPECT_EQ(o.ref.read(), 3);
  with_slot([&](unsigned s) {
    EXPECT_FALSE(o.ref.tryget_live(s));
    EXPECT_TRUE(o.ref.tryget(s));
    for (int i = 0; i < 4; ++i) o.ref.put(s, plat);
  });
  EXPECT_EQ(o.releases.load(), 1);
  with_slot([&](unsigned s) {
    EXPECT_FALSE(o.ref.tryget(s)) << "tryget resurrected a released ref";
    EXPECT_FALSE(o.ref.tryget_live(s));
  });
  EXPECT_EQ(o.releases.load(), 1);
}

// A slot owner that entered its section in percpu mode holds the switch back: its percpu get,
// done before kill, must be counted by the fold, which runs only after it leaves the slot.
TEST_F(PercpuRefTest, SlotOwnedAcrossKillHoldsTheFoldBack) {
  Owner o;
  std::atomic<long> live{0};
  o.live = &live;
  o.init();
  std::atomic<int> phase{0};
  std::thread t([&] {
    unsigned s = plat.slots.acquire();
    o.ref.get(s);  // percpu mode
    live += 1;
    phase = 1;
    while (phase.load() < 2) std::this_thread::yield();
    // Killed meanwhile: give the grace period a chance to (wrongly) end while the slot is owned.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_EQ(o.releases.load(), 0) << "released while a percpu reference was held";
    EXPECT_FALSE(o.ref.released());
    live -= 1;
    o.ref.put(s, plat);  // atomic mode now: the count holds the fold's reference
    plat.slots.release(s);
  });
  while (phase.load() < 1) std::this_thread::yield();
  o.ref.kill(plat);
  phase = 2;
  t.join();
  plat.rcu.barrier();
  EXPECT_EQ(o.releases.load(), 1);
  EXPECT_EQ(o.live_at_release.load(), 0);
}

// Many threads take and drop references (percpu, then atomic mode) while the ref is killed; each
// also holds one long-lived reference. release() runs exactly once, after the last put.
TEST_F(PercpuRefTest, ConcurrentGetPutAcrossKillReleasesExactlyOnce) {
  for (int round = 0; round < 20; ++round) {
    Owner o;
    std::atomic<long> live{0};
    o.live = &live;
    o.init();
    constexpr int kThreads = 4;
    std::atomic<int> started{0};
    std::atomic<bool> killed{false};
    std::vector<std::thread> ts;
    for (int k = 0; k < kThreads; ++k)
      ts.emplace_back([&] {
        with_slot([&](unsigned s) {
          o.ref.get(s);
          live += 1;
        });
        started.fetch_add(1);
        for (int i = 0; i < 2000 || !killed.load(); ++i) {
          with_slot([&](unsigned s) {
            bool live_ok = o.ref.tryget_live(s);
            if (live_ok) {
              EXPECT_FALSE(killed.load() && o.ref.is_percpu());
              o.ref.put(s, plat);
            }
            ASSERT_TRUE(o.ref.tryget(s)) << "tryget failed while this thread holds a reference";
            o.ref.put(s, plat);
          });
          if (i % 64 == 0) std::this_thread::yield();
        }
        live -= 1;
        with_slot([&](unsigned s) { o.ref.put(s, plat); });
      });
    while (started.load() < kThreads) std::this_thread::yield();
    o.ref.kill(plat);
    killed = true;
    for (auto& t : ts) t.join();
    plat.rcu.barrier();
    ASSERT_EQ(o.releases.load(), 1) << "round " << round;
    EXPECT_EQ(o.live_at_release.load(), 0) << "released while references were held, round " << round;
    EXPECT_TRUE(o.ref.released());
  }
}

TEST_F(PercpuRefTest, KillingTwiceIsReported) {
  Owner o;
  o.init();
  with_slot([&](unsigned s) { o.ref.get(s); });
  o.ref.kill(plat);
  o.ref.kill(plat);
  EXPECT_EQ(take_errors(), 1u);
  plat.rcu.barrier();
  EXPECT_EQ(o.releases.load(), 0) << "the second kill dropped a reference it does not own";
  with_slot([&](unsigned s) { o.ref.put(s, plat); });
  EXPECT_EQ(o.releases.load(), 1);
}

}  // namespace
