// Real threads: allocation and free on several threads (including cross-thread frees and frees
// of objects whose cgroup went offline) while cgroups go offline and caches are destroyed.
// Run under the tsan preset in CI.
#include <atomic>
#include <cstring>
#include <random>
#include <thread>

#include "fixture.h"

namespace cgslab::test {
namespace {

using ThreadsTest = AllocatorTest;

struct Obj {
  Cache* c;
  void* p;
  uint32_t stamp;
};

void stamp(void* p, uint32_t v) { std::memcpy(p, &v, sizeof v); }
uint32_t read_stamp(void* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

TEST_F(ThreadsTest, ChurnCgroupsWhileThreadsAllocateAndFree) {
  const int kThreads = 4, kRounds = 6, kOps = 3000;
  Cache* caches[3] = {a->cache_create("t64", 64, 8, kCacheAccount),
                      a->cache_create("t256", 256, 8, kCacheAccount),
                      a->cache_create("trcu", 192, 8, kCacheAccount | kCacheTypesafeByRcu)};
  Cgroup* parent = a->cgroup_create(root, "parent");
  a->cgroup_set_max(parent, 256 * kPage);
  std::atomic<bool> bad{false};
  // A mailbox per thread for cross-thread frees.
  std::vector<std::vector<Obj>> handoff(kThreads);
  std::vector<std::mutex> hmu(kThreads);
  for (int round = 0; round < kRounds; ++round) {
    std::vector<Cgroup*> cgs;
    for (int t = 0; t < kThreads; ++t) cgs.push_back(a->cgroup_create(parent, "r" + std::to_string(round) + "t" + std::to_string(t)));
    std::atomic<int> running{kThreads};
    std::atomic<int> attached{0};
    std::vector<std::thread> th;
    for (int t = 0; t < kThreads; ++t)
      th.emplace_back([&, t] {
        std::mt19937 rng(round * 100 + t);
        std::vector<Obj> mine;
        {
          TaskCgroupScope scope(cgs[t]);
          attached++;
          for (int i = 0; i < kOps; ++i) {
            unsigned r = rng() % 100;
            if (r < 55 || mine.empty()) {
              Cache* c = caches[rng() % 3];
              void* p = a->cache_alloc(c, kGfpNoRetry);
              if (!p) continue;  // over the limit: allowed to fail
              uint32_t s = uint32_t(rng());
              stamp(p, s);
              mine.push_back({c, p, s});
            } else if (r < 90) {
              size_t k = rng() % mine.size();
              Obj o = mine[k];
              mine[k] = mine.back();
              mine.pop_back();
              if (read_stamp(o.p) != o.stamp) bad = true;
              if (r < 70) {
                a->cache_free(o.c, o.p);
              } else {  // hand it to another thread
                int to = int(rng() % kThreads);
                std::lock_guard<std::mutex> g(hmu[to]);
                handoff[to].push_back(o);
              }
            } else {
              std::vector<Obj> in;
              {
                std::lock_guard<std::mutex> g(hmu[t]);
                in.swap(handoff[t]);
              }
              for (Obj& o : in) {
                if (read_stamp(o.p) != o.stamp) bad = true;
                a->cache_free(o.c, o.p);
              }
            }
          }
        }
        // Keep half of the objects alive past the offline of their cgroup.
        for (size_t i = 0; i < mine.size(); ++i) {
          if (i % 2) {
            a->cache_free(mine[i].c, mine[i].p);
          } else {
            std::lock_guard<std::mutex> g(hmu[(t + 1) % kThreads]);
            handoff[(t + 1) % kThreads].push_back(mine[i]);
          }
        }
        running--;
      });
    // Offline the round's cgroups while the threads run (refused while attached: retry).
    std::thread offliner([&] {
      while (attached.load() < kThreads) std::this_thread::yield();  // start barrier
      std::vector<bool> done(kThreads, false);
      int left = kThreads;
      while (left) {
        for (int t = 0; t < kThreads; ++t)
          if (!done[t] && a->cgroup_offline(cgs[t])) done[t] = true, --left;
        std::this_thread::yield();
      }
    });
    for (auto& x : th) x.join();
    offliner.join();
  }
  for (auto& box : handoff)
    for (Obj& o : box) {
      if (read_stamp(o.p) != o.stamp) bad = true;
      a->cache_free(o.c, o.p);
    }
  EXPECT_FALSE(bad.load()) << "object contents changed while allocated";
  a->drain();
  EXPECT_TRUE(valid());
  for (Cache* c : caches) EXPECT_TRUE(a->cache_destroy(c));
  EXPECT_TRUE(a->cgroup_offline(parent));
  finish();
}

TEST_F(ThreadsTest, CachesCreatedAndDestroyedWhileOthersAllocate) {
  Cgroup* g = a->cgroup_create(root, "g");
  std::atomic<bool> stop{false};
  std::thread churn([&] {
    for (int i = 0; i < 60; ++i) {
      Cache* c = a->cache_create("churn", 96, 8, kCacheAccount | kCacheNoMerge);
      std::vector<void*> v;
      {
        TaskCgroupScope t(g);
        for (int k = 0; k < 50; ++k) v.push_back(a->cache_alloc(c));
      }
      for (void* p : v) a->cache_free(c, p);
      EXPECT_TRUE(a->cache_destroy(c));
    }
    stop = true;
  });
  std::vector<std::thread> workers;
  for (int w = 0; w < 2; ++w)
    workers.emplace_back([&] {
      TaskCgroupScope t(g);
      std::vector<void*> v;
      while (!stop) {
        for (int k = 0; k < 64; ++k) v.push_back(a->kmalloc(48, kGfpAccount));
        for (void* p : v) a->kfree(p);
        v.clear();
      }
    });
  churn.join();
  for (auto& w : workers) w.join();
  EXPECT_TRUE(a->cgroup_offline(g));
  finish();
}

TEST_F(ThreadsTest, RcuReadersSeeTypeStableObjects) {
  Cache* c = a->cache_create("rcuobj", 64, 8, kCacheTypesafeByRcu, [](void* p) { std::memset(p, 0, 64); });
  std::atomic<void*> shared{nullptr};
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; i < 20000; ++i) {
      void* p = a->cache_alloc(c);
      static_cast<std::atomic<uint32_t>*>(p)->store(0xfeed, std::memory_order_release);
      void* old = shared.exchange(p);
      if (old) {
        static_cast<std::atomic<uint32_t>*>(old)->store(0, std::memory_order_release);
        a->cache_free(c, old);
      }
    }
    stop = true;
  });
  std::thread reader([&] {
    while (!stop) {
      a->rcu_read_lock();
      void* p = shared.load();
      // The object may be freed and reused meanwhile, but it is still memory of this cache.
      if (p) {
        uint32_t v = static_cast<std::atomic<uint32_t>*>(p)->load(std::memory_order_acquire);
        EXPECT_TRUE(v == 0xfeed || v == 0);
      }
      a->rcu_read_unlock();
    }
  });
  writer.join();
  reader.join();
  a->cache_free(c, shared.load());
  EXPECT_TRUE(a->cache_destroy(c));
  finish();
}

}  // namespace
}  // namespace cgslab::test
