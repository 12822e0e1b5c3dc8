// workqueue_test: platform::WorkQueue's own contract (workqueue.h) on real threads. Items run
// one at a time, in the order they were queued, on the worker thread (not the caller's). Queueing
// an item that is still pending is a no-op (false), but an item may requeue itself while it
// runs. flush() returns only after every item queued before it has run, including items that
// running work queued before flush() was called; chained work queued after it is drained by
// flushing until pending() is 0. While paused, queued items stay queued.
//
// flush() is kernel flush_workqueue: it does not wait for items queued after it started, so the
// chained-work test uses the "flush until nothing is pending" loop a user needs (and drain() uses).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "platform/workqueue.h"

using cgslab::platform::Work;
using cgslab::platform::WorkQueue;

namespace {

struct Item : Work {
  int id = 0;
  std::vector<int>* log = nullptr;  // written by the worker only; read after flush()
  std::atomic<int> runs{0};
  std::atomic<int>* running = nullptr;  // items running at once
  std::atomic<bool>* overlap = nullptr;
  std::thread::id* ran_on = nullptr;
};

void run_item(Work* w) {
  auto* it = static_cast<Item*>(w);
  if (it->running && it->running->fetch_add(1) != 0) *it->overlap = true;
  if (it->log) it->log->push_back(it->id);
  if (it->ran_on) *it->ran_on = std::this_thread::get_id();
  it->runs.fetch_add(1);
  if (it->running) it->running->fetch_sub(1);
}

TEST(WorkQueue, ItemsRunOnceEachInQueueOrderOneAtATime) {
  WorkQueue wq;
  constexpr int kN = 1000;
  std::vector<int> log;
  std::atomic<int> running{0};
  std::atomic<bool> overlap{false};
  std::vector<Item> items(kN);
  std::thread::id worker;
  for (int i = 0; i < kN; ++i) {
    items[i].id = i;
    items[i].log = &log;
    items[i].running = &running;
    items[i].overlap = &overlap;
    items[i].ran_on = i == 0 ? &worker : nullptr;
    ASSERT_TRUE(wq.queue(&items[i], &run_item));
  }
  wq.flush();
  EXPECT_EQ(wq.pending(), 0u);
  ASSERT_EQ(log.size(), size_t(kN));
  for (int i = 0; i < kN; ++i) {
    ASSERT_EQ(log[i], i) << "out of order";
    EXPECT_EQ(items[i].runs.load(), 1);
  }
  EXPECT_FALSE(overlap.load()) << "two items ran at once";
  EXPECT_NE(worker, std::this_thread::get_id()) << "an item ran on the queueing thread";
}

TEST(WorkQueue, OrderIsPerQueueingThreadUnderConcurrentQueues) {
  WorkQueue wq;
  constexpr int kThreads = 4, kPer = 400;
  std::mutex mu;  // the log is written by the worker; a mutex keeps TSan honest about it
  std::vector<std::pair<int, int>> log;
  struct Tagged : Work {
    int thread = 0, seq = 0;
    std::mutex* mu = nullptr;
    std::vector<std::pair<int, int>>* log = nullptr;
  };
  std::vector<std::vector<Tagged>> items;
  for (int k = 0; k < kThreads; ++k) items.emplace_back(kPer);
  std::vector<std::thread> ts;
  for (int k = 0; k < kThreads; ++k)
    ts.emplace_back([&, k] {
      for (int i = 0; i < kPer; ++i) {
        Tagged& t = items[k][i];
        t.thread = k;
        t.seq = i;
        t.mu = &mu;
        t.log = &log;
        ASSERT_TRUE(wq.queue(&t, [](Work* w) {
          auto* t = static_cast<Tagged*>(w);
          std::lock_guard<std::mutex> g(*t->mu);
          t->log->push_back({t->thread, t->seq});
        }));
      }
    });
  for (auto& t : ts) t.join();
  wq.flush();
  std::lock_guard<std::mutex> g(mu);
  ASSERT_EQ(log.size(), size_t(kThreads * kPer));
  std::vector<int> next(kThreads, 0);
  for (auto& [k, seq] : log) {
    ASSERT_EQ(seq, next[k]) << "items of thread " << k << " ran out of their queue order";
    ++next[k];
  }
}

TEST(WorkQueue, QueueingAPendingItemIsANoOp) {
  WorkQueue wq;
  Item it;
  wq.pause_for_testing(true);
  EXPECT_TRUE(wq.queue(&it, &run_item));
  EXPECT_FALSE(wq.queue(&it, &run_item)) << "queued twice while pending";
  EXPECT_FALSE(wq.queue(&it, &run_item));
  EXPECT_EQ(wq.pending(), 1u);
  EXPECT_EQ(it.runs.load(), 0) << "ran while paused";
  wq.pause_for_testing(false);
  wq.flush();
  EXPECT_EQ(it.runs.load(), 1);
  EXPECT_TRUE(wq.queue(&it, &run_item)) << "not pending any more after it ran";
  wq.flush();
  EXPECT_EQ(it.runs.load(), 2);
}

TEST(WorkQueue, FlushWaitsForWorkQueuedByRunningWorkBeforeTheFlush) {
  WorkQueue wq;
  struct Chain : Work {
    WorkQueue* wq = nullptr;
    Item* next = nullptr;
    std::atomic<bool> queued_next{false};
    std::atomic<bool> go{false};
  } a;
  Item b;
  a.wq = &wq;
  a.next = &b;
  ASSERT_TRUE(wq.queue(&a, [](Work* w) {
    auto* c = static_cast<Chain*>(w);
    EXPECT_TRUE(c->wq->queue(c->next, &run_item));
    c->queued_next = true;
    // Stay running until the test has called flush() (bounded: the flag comes right after).
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!c->go.load() && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  }));
  while (!a.queued_next.load()) std::this_thread::yield();
  std::thread releaser([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    a.go = true;
  });
  wq.flush();  // b was queued before this call: it must have run when flush() returns
  EXPECT_EQ(b.runs.load(), 1) << "flush() returned before work queued by work had run";
  EXPECT_EQ(wq.pending(), 0u);
  releaser.join();
}

TEST(WorkQueue, ChainedAndSelfRequeueingWorkDrainsWithFlushUntilIdle) {
  WorkQueue wq;
  // A chain of 50 items, each queueing the next, and one item requeueing itself 100 times.
  struct Link : Work {
    WorkQueue* wq = nullptr;
    Link* next = nullptr;
    std::atomic<int> runs{0};
  };
  std::vector<Link> chain(50);
  for (size_t i = 0; i < chain.size(); ++i) {
    chain[i].wq = &wq;
    chain[i].next = i + 1 < chain.size() ? &chain[i + 1] : nullptr;
  }
  auto link_fn = [](Work* w) {
    auto* l = static_cast<Link*>(w);
    l->runs.fetch_add(1);
    if (l->next) l->wq->queue(l->next, w->func);
  };
  struct Self : Work {
    WorkQueue* wq = nullptr;
    std::atomic<int> left{100};
    std::atomic<int> runs{0};
  } self;
  self.wq = &wq;
  auto self_fn = [](Work* w) {
    auto* s = static_cast<Self*>(w);
    s->runs.fetch_add(1);
    if (s->left.fetch_sub(1) > 1) EXPECT_TRUE(s->wq->queue(s, w->func)) << "an item could not requeue itself";
  };
  ASSERT_TRUE(wq.queue(&chain[0], link_fn));
  ASSERT_TRUE(wq.queue(&self, self_fn));
  int flushes = 0;
  do {
    wq.flush();
    ASSERT_LT(++flushes, 10000) << "work never drained";
  } while (wq.pending() != 0);
  for (auto& l : chain) EXPECT_EQ(l.runs.load(), 1);
  EXPECT_EQ(self.runs.load(), 100);
}

TEST(WorkQueue, PausedQueueKeepsItemsQueuedUntilResumed) {
  WorkQueue wq;
  Item it;
  wq.pause_for_testing(true);
  EXPECT_TRUE(wq.paused());
  EXPECT_TRUE(wq.queue(&it, &run_item));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(it.runs.load(), 0) << "an item ran while the queue was paused";
  EXPECT_EQ(wq.pending(), 1u);
  wq.pause_for_testing(false);
  EXPECT_FALSE(wq.paused());
  wq.flush();
  EXPECT_EQ(it.runs.load(), 1);
  EXPECT_EQ(wq.pending(), 0u);
}

}  // namespace
