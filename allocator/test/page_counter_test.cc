// page_counter_test: PageCounter's own contract (page_counter.h), without a cgroup around it.
// A charge is all-or-nothing over the chain up to the top: a refusal anywhere rolls back the
// levels below it, bumps failcnt on the refusing level only and names it. charge() ignores max.
// watermark is the highest usage a level ever reached by a successful charge. uncharge() below
// zero is reported (false) and clamped. cancel_local() touches one level. Under contention a
// successful charge never takes a level above its max, and every refusal is counted once.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "page_counter.h"

using cgslab::PageCounter;

namespace {

// root <- mid <- leaf, plus a sibling of leaf under mid.
struct Tree {
  PageCounter root{nullptr};
  PageCounter mid{&root};
  PageCounter leaf{&mid};
  PageCounter sibling{&mid};
};

void expect_usage(const Tree& t, long root, long mid, long leaf, long sibling) {
  EXPECT_EQ(t.root.usage(), root);
  EXPECT_EQ(t.mid.usage(), mid);
  EXPECT_EQ(t.leaf.usage(), leaf);
  EXPECT_EQ(t.sibling.usage(), sibling);
}

TEST(PageCounter, StartsEmptyAndUnlimited) {
  PageCounter c(nullptr);
  EXPECT_EQ(c.usage(), 0);
  EXPECT_EQ(c.watermark(), 0);
  EXPECT_EQ(c.failcnt(), 0);
  EXPECT_EQ(c.max(), PageCounter::kUnlimited);
  EXPECT_EQ(c.parent(), nullptr);
  PageCounter child(&c);
  EXPECT_EQ(child.parent(), &c);
}

TEST(PageCounter, TryChargeAddsAtEveryLevelAndUnchargeRemovesIt) {
  Tree t;
  PageCounter* failed = reinterpret_cast<PageCounter*>(0x1);
  ASSERT_TRUE(t.leaf.try_charge(5, &failed));
  EXPECT_EQ(failed, reinterpret_cast<PageCounter*>(0x1)) << "*failed is written only on failure";
  ASSERT_TRUE(t.sibling.try_charge(3, nullptr));
  expect_usage(t, 8, 8, 5, 3);
  EXPECT_TRUE(t.leaf.uncharge(5));
  expect_usage(t, 3, 3, 0, 3);
  EXPECT_TRUE(t.sibling.uncharge(3));
  expect_usage(t, 0, 0, 0, 0);
}

TEST(PageCounter, ChargeUpToExactlyMaxSucceedsOnePageMoreFails) {
  Tree t;
  t.leaf.set_max(10);
  EXPECT_EQ(t.leaf.max(), 10);
  ASSERT_TRUE(t.leaf.try_charge(10, nullptr));
  PageCounter* failed = nullptr;
  EXPECT_FALSE(t.leaf.try_charge(1, &failed));
  EXPECT_EQ(failed, &t.leaf);
  EXPECT_EQ(t.leaf.failcnt(), 1);
  expect_usage(t, 10, 10, 10, 0);
}

TEST(PageCounter, RefusalAtTheLeafChargesNoLevel) {
  Tree t;
  t.leaf.set_max(4);
  PageCounter* failed = nullptr;
  EXPECT_FALSE(t.leaf.try_charge(5, &failed));
  EXPECT_EQ(failed, &t.leaf);
  expect_usage(t, 0, 0, 0, 0);
  EXPECT_EQ(t.leaf.failcnt(), 1);
  EXPECT_EQ(t.mid.failcnt(), 0);
  EXPECT_EQ(t.root.failcnt(), 0);
  EXPECT_EQ(t.leaf.watermark(), 0) << "a refused charge must not raise the watermark";
}

TEST(PageCounter, RefusalAtTheTopRollsBackEveryLevelBelow) {
  Tree t;
  t.root.set_max(10);
  ASSERT_TRUE(t.sibling.try_charge(8, nullptr));
  PageCounter* failed = nullptr;
  EXPECT_FALSE(t.leaf.try_charge(5, &failed));
  EXPECT_EQ(failed, &t.root);
  expect_usage(t, 8, 8, 0, 8);
  EXPECT_EQ(t.root.failcnt(), 1);
  EXPECT_EQ(t.mid.failcnt(), 0);
  EXPECT_EQ(t.leaf.failcnt(), 0);
  EXPECT_EQ(t.leaf.watermark(), 5) << "the leaf was charged before the root refused";
  // What fits still fits after the rollback.
  ASSERT_TRUE(t.leaf.try_charge(2, &failed));
  expect_usage(t, 10, 10, 2, 8);
}

TEST(PageCounter, RefusalInTheMiddleOfADeepChainRollsBackOnlyBelowIt) {
  // A chain of 8 levels; level 3 (from the leaf) refuses.
  std::vector<std::unique_ptr<PageCounter>> chain;
  PageCounter* parent = nullptr;
  for (int i = 0; i < 8; ++i) {
    chain.push_back(std::make_unique<PageCounter>(parent));
    parent = chain.back().get();
  }
  // chain[7] is the leaf, chain[0] the top.
  PageCounter& leaf = *chain[7];
  PageCounter& refusing = *chain[4];
  refusing.set_max(6);
  ASSERT_TRUE(leaf.try_charge(4, nullptr));
  PageCounter* failed = nullptr;
  EXPECT_FALSE(leaf.try_charge(3, &failed));
  EXPECT_EQ(failed, &refusing);
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(chain[i]->usage(), 4) << "level " << i;
    EXPECT_EQ(chain[i]->failcnt(), i == 4 ? 1 : 0) << "level " << i;
  }
  // A charge into a child of a level above the refusing one does not see its max.
  PageCounter side(chain[2].get());
  ASSERT_TRUE(side.try_charge(100, nullptr));
  EXPECT_EQ(chain[0]->usage(), 104);
  EXPECT_EQ(refusing.usage(), 4);
  EXPECT_TRUE(side.uncharge(100));
  EXPECT_TRUE(leaf.uncharge(4));
  for (auto& c : chain) EXPECT_EQ(c->usage(), 0);
}

TEST(PageCounter, ChargeIgnoresMaxAndRaisesTheWatermark) {
  Tree t;
  t.mid.set_max(3);
  t.leaf.charge(5);  // NOFAIL
  expect_usage(t, 5, 5, 5, 0);
  EXPECT_EQ(t.mid.failcnt(), 0);
  EXPECT_EQ(t.mid.watermark(), 5);
  PageCounter* failed = nullptr;
  EXPECT_FALSE(t.sibling.try_charge(1, &failed)) << "over max after a forced charge";
  EXPECT_EQ(failed, &t.mid);
  EXPECT_TRUE(t.leaf.uncharge(5));
  EXPECT_TRUE(t.sibling.try_charge(3, nullptr));
}

TEST(PageCounter, WatermarkIsTheHighestUsageAndNeverDrops) {
  Tree t;
  ASSERT_TRUE(t.leaf.try_charge(7, nullptr));
  ASSERT_TRUE(t.sibling.try_charge(2, nullptr));
  EXPECT_TRUE(t.leaf.uncharge(7));
  EXPECT_EQ(t.leaf.watermark(), 7);
  EXPECT_EQ(t.sibling.watermark(), 2);
  EXPECT_EQ(t.mid.watermark(), 9);
  EXPECT_EQ(t.root.watermark(), 9);
  ASSERT_TRUE(t.leaf.try_charge(3, nullptr));
  EXPECT_EQ(t.leaf.watermark(), 7);
  EXPECT_EQ(t.mid.watermark(), 9);
  EXPECT_TRUE(t.leaf.uncharge(3));
  EXPECT_TRUE(t.sibling.uncharge(2));
}

TEST(PageCounter, UnchargeBelowZeroIsReportedAndClamped) {
  Tree t;
  ASSERT_TRUE(t.sibling.try_charge(5, nullptr));
  ASSERT_TRUE(t.leaf.try_charge(1, nullptr));
  // leaf has 1, mid and root have 6: uncharging 3 from leaf underflows the leaf only.
  EXPECT_FALSE(t.leaf.uncharge(3));
  EXPECT_EQ(t.leaf.usage(), 0) << "clamped at zero";
  EXPECT_EQ(t.mid.usage(), 3) << "the levels that had the pages still give them up";
  EXPECT_EQ(t.root.usage(), 3);
  EXPECT_FALSE(t.leaf.uncharge(1));
  EXPECT_EQ(t.leaf.usage(), 0);
  EXPECT_EQ(t.mid.usage(), 2);
  EXPECT_TRUE(t.sibling.uncharge(2));
  EXPECT_EQ(t.root.usage(), 0);
}

TEST(PageCounter, CancelLocalRemovesFromOneLevelOnly) {
  Tree t;
  ASSERT_TRUE(t.leaf.try_charge(6, nullptr));
  EXPECT_TRUE(t.leaf.cancel_local(4));
  expect_usage(t, 6, 6, 2, 0);
  EXPECT_FALSE(t.leaf.cancel_local(3)) << "below zero is reported";
  EXPECT_EQ(t.leaf.usage(), 0);
  EXPECT_EQ(t.mid.usage(), 6);
  // The parents keep the charge until someone uncharges it from there (reparenting).
  EXPECT_TRUE(t.mid.uncharge(6));
  expect_usage(t, 0, 0, 0, 0);
}

TEST(PageCounter, LoweringMaxBelowUsageRefusesNewChargesButNotUncharges) {
  Tree t;
  ASSERT_TRUE(t.leaf.try_charge(8, nullptr));
  t.mid.set_max(4);
  PageCounter* failed = nullptr;
  EXPECT_FALSE(t.leaf.try_charge(1, &failed));
  EXPECT_EQ(failed, &t.mid);
  EXPECT_TRUE(t.leaf.uncharge(5));
  EXPECT_TRUE(t.leaf.try_charge(1, nullptr));
  expect_usage(t, 4, 4, 4, 0);
  t.mid.set_max(PageCounter::kUnlimited);
  EXPECT_TRUE(t.leaf.uncharge(4));
}

// Real threads: charges of 1..3 pages into four leaves under one limited parent. A successful
// charge never takes a level above its max (so no watermark is above it), every false return is
// one failcnt at exactly one level, and everything uncharged leaves every level at zero.
TEST(PageCounter, ConcurrentChargesRespectEveryLimit) {
  PageCounter root(nullptr);
  PageCounter parent(&root);
  parent.set_max(50);
  std::vector<std::unique_ptr<PageCounter>> leaves;
  for (int i = 0; i < 4; ++i) {
    leaves.push_back(std::make_unique<PageCounter>(&parent));
    leaves.back()->set_max(20);
  }
  constexpr int kThreads = 4, kIters = 20000;
  std::atomic<long> refusals{0}, successes{0};
  std::atomic<bool> over{false};
  std::atomic<int> started{0}, finished{0};
  std::vector<std::thread> ts;
  for (int k = 0; k < kThreads; ++k)
    ts.emplace_back([&, k] {
      PageCounter& leaf = *leaves[k];
      // Start together, and keep the final charges until every thread is done, so the leaves
      // really compete for the parent.
      started.fetch_add(1);
      while (started.load() < kThreads) std::this_thread::yield();
      std::vector<long> held;
      uint32_t x = 0x9e3779b9u * uint32_t(k + 1);
      for (int i = 0; i < kIters; ++i) {
        x = x * 1664525u + 1013904223u;
        long n = 1 + long(x >> 30) % 3;
        if ((x >> 8) % 3 != 0 || held.empty()) {
          PageCounter* failed = nullptr;
          if (leaf.try_charge(n, &failed)) {
            held.push_back(n);
            successes.fetch_add(1, std::memory_order_relaxed);
          } else {
            if (failed != &leaf && failed != &parent) over = true;
            refusals.fetch_add(1, std::memory_order_relaxed);
          }
        } else {
          EXPECT_TRUE(leaf.uncharge(held.back()));
          held.pop_back();
        }
      }
      finished.fetch_add(1);
      while (finished.load() < kThreads) std::this_thread::yield();
      for (long n : held) EXPECT_TRUE(leaf.uncharge(n));
    });
  for (auto& t : ts) t.join();
  EXPECT_FALSE(over.load()) << "a refusal named a level that has no limit";
  EXPECT_GT(successes.load(), 0);
  EXPECT_GT(refusals.load(), 0) << "the limits were never reached: the test proves nothing";
  long fails = root.failcnt() + parent.failcnt();
  for (auto& l : leaves) fails += l->failcnt();
  EXPECT_EQ(fails, refusals.load()) << "every refusal bumps exactly one failcnt";
  EXPECT_EQ(root.failcnt(), 0);
  EXPECT_LE(parent.watermark(), 50);
  EXPECT_GT(parent.watermark(), 20) << "the leaves together should have got above one leaf's max";
  for (auto& l : leaves) {
    EXPECT_LE(l->watermark(), 20);
    EXPECT_EQ(l->usage(), 0);
  }
  EXPECT_EQ(parent.usage(), 0);
  EXPECT_EQ(root.usage(), 0);
}

}  // namespace
