// stress_lifecycle: the lifecycle soak. Real threads (native backend) drive every transition of
// the memcg slab design at once, for hours if asked, while a checker stops the world every
// --check-every seconds to validate it.
//
// Threads (all long-lived, all joined to the Quiescer):
//  - N workers. Each runs bursts of operations in one context — attached to a cgroup
//    (TaskCgroupScope), remote-charging a cgroup that may be going offline meanwhile
//    (RemoteChargeScope), or in the root — and keeps up to --live objects. Operations: alloc and
//    free on persistent caches (accounted, unaccounted, NO_MERGE, TYPESAFE_BY_RCU, multi-page),
//    kmalloc/kfree, hand objects to another worker (who frees them later, often after the cgroup
//    they were charged to went offline), park objects in a shrinkable pool, RCU read sections
//    that read published TYPESAFE_BY_RCU objects another thread may free at any moment, and
//    borrowing the cache churner's current cache.
//  - a cgroup churner: creates cgroups at depths 2..4 under three persistent top-level cgroups
//    (/lo with a limit low enough that reclaim and the shrinker run all the time, /mid, /unl),
//    changes limits, and takes leaves offline (refused while a worker is attached: the cgroup is
//    "doomed" so no new worker attaches, and retried until it goes).
//  - a cache churner: creates caches with random geometry and flags — including aliases of the
//    persistent caches and TYPESAFE_BY_RCU caches whose objects it publishes to RCU readers —
//    uses them, lends them to workers, retires and destroys them; now and then it destroys one
//    that still has an object and expects kCacheBusy, then frees the object and destroys again.
//
// Handle lifetimes follow the API contract: a cgroup handle is used only while it is in the
// registry (so not yet offline: the churner is the only thread that takes cgroups offline, and it
// removes a cgroup from the registry in the same step) or while a scope holds a reference on it;
// a cache is destroyed only by its creator, after every borrower returned it.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cgslab/cgslab.h"
#include "checks.h"
#include "cli.h"
#include "quiesce.h"
#include "run.h"
#include "oracles.h"
#include "rng.h"

namespace cgslab::stress {
namespace {

enum Op : int {
  kAlloc, kFree, kKmalloc, kKfree, kAllocFailed, kHandoff, kRemoteFree, kPoolPut, kPoolFree,
  kRcuRead, kRcuPublish, kAttach, kRemoteCharge, kBorrow, kChurnAlloc, kChurnFree,
  kCgCreate, kCgOffline, kCgOfflineBusy, kSetMax, kCacheCreate, kCacheAlias, kCacheDestroy,
  kCacheBusy, kShrink, kShrinkerCall, kShrinkerFreed, kIntrospect, kNrOps
};
const std::vector<std::string> kOpNames = {
    "alloc", "free", "kmalloc", "kfree", "alloc_failed", "handoff", "remote_free", "pool_put", "pool_free",
    "rcu_read", "rcu_publish", "attach", "remote_charge", "borrow", "churn_alloc", "churn_free",
    "cg_create", "cg_offline", "cg_offline_busy", "set_max", "cache_create", "cache_alias", "cache_destroy",
    "cache_busy", "shrink", "shrinker_call", "shrinker_freed", "introspect"};

struct Config {
  unsigned live = 512;        // objects a worker keeps at most (more: /lo reclaims on nearly every allocation)
  // --self-test: a deliberate defect, to prove the oracles catch it (CTest runs each and expects
  // exit 1 with the matching message): corrupt-object (a live object's stamp changes), hang (a
  // worker stops reaching quiescent points), leak-object (teardown forgets one object).
  std::string self_test;
  unsigned max_cgroups = 24;  // churned cgroups alive at most
  size_t lo_limit = 3 << 20;  // /lo's limit (bytes)
};

// One allocated object and how to check and free it. c == nullptr: kmalloc'd.
struct Obj {
  void* p;
  Cache* c;
  uint32_t size;
  uint32_t tag;
  bool rcu;  // TYPESAFE_BY_RCU object: word 0 is the type tag, the stamp starts at 8
};

void rcu_ctor(void* p) { type_word(p).store(kRcuTypeTag, std::memory_order_relaxed); }

struct PersistentCache {
  const char* name;
  size_t size, align;
  unsigned flags;
  bool ctor;
  Cache* c = nullptr;
};

constexpr int kRcuSlots = 16;
constexpr int kChurnRcuSlots = 4;
constexpr int kPoolShards = 4;
constexpr size_t kPoolShardCap = 2048;
constexpr size_t kInboxCap = 8192;

struct alignas(64) Mailbox {
  std::mutex mu;
  std::vector<Obj> objs;
};

struct alignas(64) PoolShard {
  std::mutex mu;
  std::vector<Obj> objs;
};

struct CgEntry {
  Cgroup* cg = nullptr;
  int parent = -1;  // registry index, -1: child of the root cgroup
  int depth = 1;
  bool alive = false;
  bool doomed = false;      // no new attaches; the churner is taking it offline
  bool persistent = false;  // top-level, offline only at teardown
};

// The cache churner's current cache, lent to workers.
struct ChurnSlot {
  std::mutex mu;
  Cache* c = nullptr;
  uint32_t size = 0;
  bool rcu = false;
  std::atomic<int> users{0};
};

struct WorkerState {
  std::vector<Obj> mine;
  std::vector<Obj> old;    // long-lived objects: they outlive their cgroup by seconds, so dying
                           // caches pile up and die when these are freed much later
  std::vector<Obj> churn;  // objects of a borrowed churn cache (freed before returning it)
  std::vector<Obj> spare;  // swap buffer for the inbox
};

class World {
 public:
  World(const CommonOptions& o, const Config& cfg)
      : opt(o), cfg(cfg), run("stress_lifecycle", o, kOpNames, o.threads + 4), sink(&harness::thread_expectation, [this](const std::string& m) { run.fail(m); }), q(o.threads + 3),
        nr_slots(default_cpu_slots()) {
    Options ao;
    ao.on_error = sink.handler();
    ao.nr_cpu_slots = nr_slots;
    // Readers only read TYPESAFE_BY_RCU objects after a free, and cgslab does not poison those
    // (their memory stays valid for readers), so poisoning stays on for everything else.
    ao.poison = true;
    a = std::make_unique<Allocator>(ao);
  }

  const CommonOptions& opt;
  Config cfg;
  Run run;
  harness::ErrorChecker sink;
  Quiescer q;
  unsigned nr_slots;
  std::unique_ptr<Allocator> a;
  std::atomic<bool> stop{false};

  PersistentCache pc[6] = {
      {"obj64", 64, 8, kCacheAccount, false},
      {"obj192", 192, 16, kCacheAccount, false},
      {"obj700", 700, 8, kCacheAccount | kCacheNoMerge, false},
      {"rcu128", 128, 8, kCacheAccount | kCacheTypesafeByRcu, true},
      {"plain96", 96, 8, 0, false},
      {"obj3000", 3000, 8, kCacheAccount, false},
  };
  static constexpr int kRcuCache = 3;

  std::mutex cg_mu;
  std::vector<CgEntry> cgs;  // index-stable; dead slots reused

  std::vector<std::unique_ptr<Mailbox>> inbox;
  PoolShard pool[kPoolShards];
  std::atomic<void*> rcu_slot[kRcuSlots] = {};
  std::atomic<void*> churn_rcu_slot[kChurnRcuSlots] = {};
  ChurnSlot churn;
  std::vector<std::unique_ptr<WorkerState>> workers;
  std::vector<Obj> churner_objs;  // the cache churner's own objects
  ShrinkerId shrinker = 0;
  std::atomic<uint64_t> shrinker_calls{0};
  std::atomic<uint64_t> shrinker_freed{0};
  bool self_test_done = false;  // worker 0 only

  // --- objects ---
  void* alloc_obj(Cache* c, size_t size, bool rcu, unsigned gfp, uint32_t tag, OpCounters& k, Obj* out) {
    void* p = c ? a->cache_alloc(c, gfp) : a->kmalloc(size, gfp);
    k.add(c ? kAlloc : kKmalloc);
    if (!p) {
      k.add(kAllocFailed);
      if (gfp & kGfpNoFail) run.fail("a kGfpNoFail allocation returned null");
      return nullptr;
    }
    if ((gfp & kGfpZero) && !rcu) {
      for (size_t i = 0; i < size; ++i)
        if (static_cast<unsigned char*>(p)[i] != 0) {
          run.fail("kGfpZero object " + ptr(p) + " has a non-zero byte at offset " + std::to_string(i));
          break;
        }
    }
    if (rcu) type_word(p).store(kRcuTypeTag, std::memory_order_relaxed);
    harness::stamp_write(p, size, harness::stamp_at(p, tag), rcu ? 8 : 0);
    *out = Obj{p, c, uint32_t(size), tag, rcu};
    return p;
  }
  bool check(const Obj& o, const char* where) {
    if (harness::stamp_check(o.p, o.size, harness::stamp_at(o.p, o.tag), o.rcu ? 8 : 0, nullptr) &&
        (!o.rcu || type_word(o.p).load(std::memory_order_relaxed) == kRcuTypeTag))
      return true;
    run.fail(std::string("object contents changed while allocated (") + where + "): " + ptr(o.p) + " size " +
             std::to_string(o.size) + (o.c ? " cache_alloc" : " kmalloc") +
             " — the allocator handed it out twice or wrote into a live object");
    return false;
  }
  void free_obj(const Obj& o, OpCounters& k, Rng* rng, const char* where) {
    check(o, where);
    if (!o.c) {
      a->kfree(o.p);
      k.add(kKfree);
    } else if (rng && rng->below(10) == 0) {
      a->kfree(o.p);  // kfree of a cache object is legal (kernel: kfree on any slab object)
      k.add(kKfree);
    } else {
      a->cache_free(o.c, o.p);
      k.add(kFree);
    }
  }
  static std::string ptr(const void* p) {
    char b[32];
    std::snprintf(b, sizeof b, "%p", p);
    return b;
  }

  // --- cgroups ---
  int pick_cgroup(Rng& rng, bool allow_doomed) {  // cg_mu held
    if (cgs.empty()) return -1;
    for (int tries = 0; tries < 16; ++tries) {
      int i = int(rng.below(uint32_t(cgs.size())));
      if (cgs[size_t(i)].alive && (allow_doomed || !cgs[size_t(i)].doomed)) return i;
    }
    for (size_t i = 0; i < cgs.size(); ++i)
      if (cgs[i].alive && (allow_doomed || !cgs[i].doomed)) return int(i);
    return -1;
  }
  std::vector<CgNode> online_nodes() {
    std::lock_guard<std::mutex> g(cg_mu);
    std::vector<CgNode> out;
    std::vector<int> map(cgs.size(), -1);
    // Parents come before children in index order only when created so; map in two passes.
    for (size_t i = 0; i < cgs.size(); ++i)
      if (cgs[i].alive) {
        map[i] = int(out.size());
        out.push_back({cgs[i].cg, -1});
      }
    for (size_t i = 0; i < cgs.size(); ++i)
      if (cgs[i].alive && cgs[i].parent >= 0) out[size_t(map[i])].parent = map[size_t(cgs[i].parent)];
    return out;
  }

  // --- shrinker: frees pooled objects, as a dentry cache shrinker frees unused dentries ---
  size_t shrink_pool(const ShrinkControl& sc) {
    shrinker_calls.fetch_add(1, std::memory_order_relaxed);
    size_t freed = 0;
    Obj batch[128];
    for (int s = 0; s < kPoolShards && freed < sc.nr_bytes; ++s) {
      size_t n = 0;
      {
        std::lock_guard<std::mutex> g(pool[s].mu);
        auto& v = pool[s].objs;
        // Any cgroup's objects: the pool does not know where an object was charged (a child
        // cache's cgroup changes when it is reparented), like a global LRU of unused objects.
        while (n < 128 && !v.empty()) {
          batch[n++] = v.back();
          v.pop_back();
        }
      }
      for (size_t i = 0; i < n; ++i) {
        check(batch[i], "shrinker");
        if (batch[i].c)
          a->cache_free(batch[i].c, batch[i].p);
        else
          a->kfree(batch[i].p);
        freed += batch[i].size;
      }
      shrinker_freed.fetch_add(n, std::memory_order_relaxed);
    }
    return freed;
  }

  void worker(unsigned w);
  void cgroup_churner();
  void cache_churner();
  void monitor();
  bool verify_all(std::string* why);
  void teardown();
};

// ------------------------------------------------------------------------------------------------
// workers

void World::worker(unsigned w) {
  const unsigned qid = q.join("worker" + std::to_string(w));
  OpCounters& k = run.counters(w);
  Rng rng(opt.seed * 1000003 + w + 1);
  WorkerState& st = *workers[w];
  st.mine.reserve(cfg.live + 16);
  st.old.reserve(cfg.live / 4 + 1);
  st.churn.reserve(256);
  st.spare.reserve(kInboxCap);
  uint32_t tag = w << 24;
  const unsigned nworkers = opt.threads;
  static constexpr int kAccounted[] = {0, 1, 2, 3, 5};

  while (!stop.load(std::memory_order_relaxed) && !run.failed()) {
    q.point(qid);
    // --- the burst's context ---
    std::optional<TaskCgroupScope> attached;
    std::optional<RemoteChargeScope> remote;
    uint32_t ctx = rng.below(100);
    if (ctx < 75) {
      q.doing(qid, "attach");
      std::lock_guard<std::mutex> g(cg_mu);
      if (ctx < 60) {
        int i = pick_cgroup(rng, false);
        if (i >= 0) {
          attached.emplace(cgs[size_t(i)].cg);
          k.add(kAttach);
        }
      } else {
        int i = pick_cgroup(rng, true);  // may be doomed: it can go offline under the scope
        if (i >= 0) {
          remote.emplace(cgs[size_t(i)].cg);
          k.add(kRemoteCharge);
        }
      }
    }
    Cache* borrowed = nullptr;
    uint32_t borrowed_size = 0;
    bool borrowed_rcu = false;
    if (rng.below(100) < 15) {
      std::lock_guard<std::mutex> g(churn.mu);
      if (churn.c) {
        borrowed = churn.c;
        borrowed_size = churn.size;
        borrowed_rcu = churn.rcu;
        churn.users.fetch_add(1);
        k.add(kBorrow);
      }
    }

    const unsigned burst = 256 + rng.below(4096);
    if (w == 0 && !cfg.self_test.empty() && run.elapsed() > 1.0 && !st.mine.empty()) {
      if (cfg.self_test == "corrupt-object" && !self_test_done) {
        char* b = static_cast<char*>(st.mine[0].p) + (st.mine[0].rcu ? 8 : 0);
        *b = char(*b ^ 1);
        self_test_done = true;
      } else if (cfg.self_test == "leak-memory") {
        // 8 MiB per second of the run, touched, kept reachable (a leak LeakSanitizer cannot
        // see, the kind only the memory verdict catches).
        static std::vector<std::unique_ptr<char[]>> leaked;
        static size_t leaked_bytes = 0;
        while (leaked_bytes < size_t(run.elapsed() * 8) << 20) {
          leaked.emplace_back(new char[1 << 20]);
          std::memset(leaked.back().get(), 1, 1 << 20);
          leaked_bytes += 1 << 20;
        }
      } else if (cfg.self_test == "hang") {
        q.doing(qid, "self-test hang (never reaches a quiescent point)");
        while (!stop.load()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
    for (unsigned i = 0; i < burst && !stop.load(std::memory_order_relaxed); ++i) {
      q.point(qid);
      uint32_t r = rng.below(1000);
      // Allocation (48%) outweighs the ways an object leaves the list (free 24%, handoff 7%,
      // pool 4%), so a worker's live set sits at --live and objects live for thousands of
      // operations: long enough to outlive the burst's cgroup.
      if (r < 480) {  // allocate
        if (st.mine.size() >= cfg.live) r = 600;  // full: free instead
        else {
          q.doing(qid, "alloc");
          uint32_t g = rng.below(100);
          unsigned gfp = g < 80 ? 0 : g < 88 ? kGfpNoRetry : g < 93 ? kGfpNoWait : g < 97 ? kGfpNoFail : kGfpZero;
          Obj o;
          if (borrowed && rng.below(4) == 0) {
            if (borrowed_rcu) gfp &= ~kGfpZero;
            if (alloc_obj(borrowed, borrowed_size, borrowed_rcu, gfp, ++tag, k, &o)) {
              st.churn.push_back(o);
              k.add(kChurnAlloc);
              if (st.churn.size() > 200) {
                size_t j = rng.below(uint32_t(st.churn.size()));
                free_obj(st.churn[j], k, &rng, "borrowed cache");
                st.churn[j] = st.churn.back();
                st.churn.pop_back();
                k.add(kChurnFree);
              }
            }
            continue;
          }
          if (r < 390) {
            PersistentCache& p = pc[r < 360 ? kAccounted[r % 5] : 4];
            bool rcu = p.flags & kCacheTypesafeByRcu;
            if (rcu) gfp &= ~kGfpZero;
            if (alloc_obj(p.c, p.size, rcu, gfp, ++tag, k, &o)) {
              if (rng.below(64) != 0) {
                st.mine.push_back(o);
              } else if (st.old.size() < cfg.live / 4) {
                st.old.push_back(o);
              } else {  // replace a random old object
                size_t j = rng.below(uint32_t(st.old.size()));
                free_obj(st.old[j], k, &rng, "old");
                st.old[j] = o;
              }
            }
          } else {
            size_t size = rng.below(50) == 0 ? 4096 + rng.below(28 * 1024 + 1) : 16 + rng.below(2048);
            if (rng.below(4) == 0) gfp |= 0;  // unaccounted kmalloc
            else gfp |= kGfpAccount;
            if (alloc_obj(nullptr, size, false, gfp, ++tag, k, &o)) st.mine.push_back(o);
          }
          continue;
        }
      }
      if (r < 720) {  // free one of mine
        if (st.mine.empty()) continue;
        q.doing(qid, "free");
        size_t j = rng.below(uint32_t(st.mine.size()));
        free_obj(st.mine[j], k, &rng, "free");
        st.mine[j] = st.mine.back();
        st.mine.pop_back();
      } else if (r < 790) {  // hand one to another worker
        if (st.mine.empty() || nworkers < 2) continue;
        q.doing(qid, "handoff");
        size_t j = rng.below(uint32_t(st.mine.size()));
        Obj o = st.mine[j];
        st.mine[j] = st.mine.back();
        st.mine.pop_back();
        check(o, "handoff");
        unsigned to = (w + 1 + rng.below(nworkers - 1)) % nworkers;
        bool sent = false;
        {
          std::lock_guard<std::mutex> g(inbox[to]->mu);
          if (inbox[to]->objs.size() < kInboxCap) {
            inbox[to]->objs.push_back(o);
            sent = true;
          }
        }
        if (sent) k.add(kHandoff);
        else free_obj(o, k, &rng, "handoff overflow");
      } else if (r < 820) {  // free what others handed me
        q.doing(qid, "inbox");
        {
          std::lock_guard<std::mutex> g(inbox[w]->mu);
          st.spare.swap(inbox[w]->objs);
        }
        for (const Obj& o : st.spare) {
          free_obj(o, k, &rng, "inbox");
          k.add(kRemoteFree);
        }
        st.spare.clear();
      } else if (r < 860) {  // pool an object (the shrinker may free it)
        if (st.mine.empty()) continue;
        q.doing(qid, "pool_put");
        size_t j = rng.below(uint32_t(st.mine.size()));
        Obj o = st.mine[j];
        st.mine[j] = st.mine.back();
        st.mine.pop_back();
        check(o, "pool_put");
        PoolShard& s = pool[w % kPoolShards];
        bool put = false;
        {
          std::lock_guard<std::mutex> g(s.mu);
          if (s.objs.size() < kPoolShardCap) {
            s.objs.push_back(o);
            put = true;
          }
        }
        if (put) k.add(kPoolPut);
        else free_obj(o, k, &rng, "pool overflow");
      } else if (r < 880) {  // take from the pool and free
        q.doing(qid, "pool_free");
        PoolShard& s = pool[rng.below(kPoolShards)];
        Obj o;
        bool got = false;
        {
          std::lock_guard<std::mutex> g(s.mu);
          if (!s.objs.empty()) {
            size_t j = rng.below(uint32_t(s.objs.size()));
            o = s.objs[j];
            s.objs[j] = s.objs.back();
            s.objs.pop_back();
            got = true;
          }
        }
        if (got) {
          free_obj(o, k, &rng, "pool");
          k.add(kPoolFree);
        }
      } else if (r < 960) {  // RCU read section over published TYPESAFE_BY_RCU objects
        q.doing(qid, "rcu_read");
        a->rcu_read_lock();
        for (int n = 0; n < 4; ++n) {
          bool churned = n == 3;
          void* p = churned ? churn_rcu_slot[rng.below(kChurnRcuSlots)].load(std::memory_order_acquire)
                            : rcu_slot[rng.below(kRcuSlots)].load(std::memory_order_acquire);
          if (!p) continue;
          // The object may have been freed (and even reallocated) since it was loaded, but
          // until the read section ends its memory stays an object of that cache.
          uint64_t t = type_word(p).load(std::memory_order_relaxed);
          if (t != kRcuTypeTag) {
            a->rcu_read_unlock();
            run.fail("RCU reader: TYPESAFE_BY_RCU object " + ptr(p) + (churned ? " (churned cache)" : "") +
                     " has type word " + std::to_string(t) + " inside an RCU read section: its memory was reused "
                     "for something else before a grace period");
            goto out;
          }
        }
        a->rcu_read_unlock();
        k.add(kRcuRead);
      } else if (r < 985) {  // publish a fresh RCU object, free the one it replaces
        q.doing(qid, "rcu_publish");
        PersistentCache& p = pc[kRcuCache];
        Obj o;
        if (!alloc_obj(p.c, p.size, true, 0, 0x5eed, k, &o)) continue;
        void* old = rcu_slot[rng.below(kRcuSlots)].exchange(o.p, std::memory_order_acq_rel);
        k.add(kRcuPublish);
        if (old) free_obj(Obj{old, p.c, uint32_t(p.size), 0x5eed, true}, k, nullptr, "rcu unpublish");
      } else if (r < 986 && rng.below(200) == 0) {
        q.doing(qid, "cache_shrink");
        a->cache_shrink(pc[rng.below(6)].c);
        k.add(kShrink);
      }
    }
  out:
    if (borrowed) {
      q.doing(qid, "return borrowed cache");
      for (const Obj& o : st.churn) {
        free_obj(o, k, &rng, "borrowed cache");
        k.add(kChurnFree);
      }
      st.churn.clear();
      churn.users.fetch_sub(1);
    }
    q.doing(qid, "leave scope");
    // scopes end here
  }
  q.doing(qid, "exit");
  q.leave(qid);
}

// ------------------------------------------------------------------------------------------------
// monitor: the read-only API on a real thread while everything else churns (stats, cgroup_stats
// and memory_stat of the persistent cgroups and the root, cache_stats and child_cache_stats of
// the persistent caches, slabinfo), each result checked for internal consistency by the
// harness's oracles. Only handles that live until teardown are read.

void World::monitor() {
  const unsigned qid = q.join("monitor");
  OpCounters& k = run.counters(opt.threads + 2);
  Rng rng(opt.seed * 15485863 + 31);
  std::vector<Cgroup*> cgroups = {a->root_cgroup()};
  {
    std::lock_guard<std::mutex> g(cg_mu);
    for (auto& e : cgs)
      if (e.persistent) cgroups.push_back(e.cg);
  }
  std::string why;
  auto check = [&](bool ok) {
    k.add(kIntrospect);
    if (!ok) run.fail("monitor: " + why);
  };
  while (!stop.load(std::memory_order_relaxed) && !run.failed()) {
    q.point(qid);
    Cgroup* cg = cgroups[rng.below(uint32_t(cgroups.size()))];
    Cache* c = pc[rng.below(6)].c;
    // child_cache_stats and slabinfo read child caches that are being shut down meanwhile (they
    // once read a freed one: found by this monitor, fixed by pinning each child).
    switch (rng.below(6)) {
      case 0: q.doing(qid, "stats"); check(harness::check_stats(a->stats(), false, &why)); break;
      case 1: q.doing(qid, "cgroup_stats"); check(harness::check_cgroup_stats(a->cgroup_stats(cg), false, &why)); break;
      case 2: q.doing(qid, "memory_stat"); check(harness::check_memory_stat(a->memory_stat(cg), nullptr, &why)); break;
      case 3: q.doing(qid, "cache_stats"); check(harness::check_cache_stats(a->cache_stats(c), &why)); break;
      case 4:
        q.doing(qid, "child_cache_stats");
        check(harness::check_child_cache_stats(a->cache_stats(c), a->child_cache_stats(c), false, &why));
        break;
      default: q.doing(qid, "slabinfo"); check(harness::check_slabinfo(a->slabinfo(), SIZE_MAX, &why)); break;
    }
    if (rng.below(8) == 0) {
      q.doing(qid, "nap");
      q.nap(qid, 0.0002, stop);
    }
  }
  q.leave(qid);
}

// ------------------------------------------------------------------------------------------------
// cgroup churner

void World::cgroup_churner() {
  const unsigned qid = q.join("cgroup-churner");
  OpCounters& k = run.counters(opt.threads);
  Rng rng(opt.seed * 7919 + 17);
  uint64_t serial = 0;
  while (!stop.load(std::memory_order_relaxed) && !run.failed()) {
    q.point(qid);
    uint32_t r = rng.below(100);
    if (r < 35) {  // create
      q.doing(qid, "cgroup_create");
      std::lock_guard<std::mutex> g(cg_mu);
      size_t churned = 0;
      for (auto& e : cgs) churned += e.alive && !e.persistent;
      if (churned < cfg.max_cgroups) {
        int p = pick_cgroup(rng, false);
        if (p >= 0 && cgs[size_t(p)].depth < 4) {
          Cgroup* cg = a->cgroup_create(cgs[size_t(p)].cg, "c" + std::to_string(++serial));
          k.add(kCgCreate);
          if (!cg) {
            run.fail("cgroup_create under an online cgroup returned null");
          } else {
            CgEntry e;
            e.cg = cg;
            e.parent = p;
            e.depth = cgs[size_t(p)].depth + 1;
            e.alive = true;
            size_t slot = 0;
            while (slot < cgs.size() && cgs[slot].alive) ++slot;
            if (slot == cgs.size()) cgs.push_back(e);
            else cgs[slot] = e;
            if (rng.below(3) == 0) {
              a->cgroup_set_max(cg, size_t(1024 + rng.below(16 * 1024)) << 10);
              k.add(kSetMax);
            }
          }
        }
      }
    } else if (r < 55) {  // doom a leaf
      q.doing(qid, "doom");
      std::lock_guard<std::mutex> g(cg_mu);
      int i = pick_cgroup(rng, false);
      if (i >= 0 && !cgs[size_t(i)].persistent) {
        bool leaf = true;
        for (auto& e : cgs)
          if (e.alive && e.parent == i) leaf = false;
        if (leaf) cgs[size_t(i)].doomed = true;
      }
    } else if (r < 60) {  // offline of a cgroup with online children: refused, not an error
      q.doing(qid, "offline non-leaf");
      std::lock_guard<std::mutex> g(cg_mu);
      for (size_t i = 0; i < cgs.size(); ++i) {
        if (!cgs[i].alive || cgs[i].persistent) continue;
        bool has_kids = false;
        for (auto& e : cgs)
          if (e.alive && e.parent == int(i)) has_kids = true;
        if (!has_kids) continue;
        if (a->cgroup_offline(cgs[i].cg)) {
          run.fail("cgroup_offline of a cgroup with online children succeeded");
          cgs[i].alive = false;
        }
        k.add(kCgOfflineBusy);
        break;
      }
    } else if (r < 85) {  // take doomed cgroups offline (refused while a worker is attached)
      q.doing(qid, "cgroup_offline");
      std::lock_guard<std::mutex> g(cg_mu);
      for (auto& e : cgs) {
        if (!e.alive || !e.doomed) continue;
        if (a->cgroup_offline(e.cg)) {
          e.alive = false;  // the handle may be released from now on: never touched again
          e.cg = nullptr;
          k.add(kCgOffline);
        } else {
          k.add(kCgOfflineBusy);
        }
      }
    } else {  // change a limit
      q.doing(qid, "set_max");
      Cgroup* cg = nullptr;
      bool lo = false;
      {
        std::lock_guard<std::mutex> g(cg_mu);
        int i = pick_cgroup(rng, true);
        if (i >= 0) {
          cg = cgs[size_t(i)].cg;
          lo = i == 0;
        }
      }
      // Only this thread takes cgroups offline, so cg stays online without the lock.
      if (cg) {
        size_t max = lo ? cfg.lo_limit / 2 + rng.below(uint32_t(cfg.lo_limit))
                        : rng.below(4) == 0 ? SIZE_MAX : size_t(1024 + rng.below(32 * 1024)) << 10;
        a->cgroup_set_max(cg, max);
        k.add(kSetMax);
      }
    }
    q.doing(qid, "nap");
    q.nap(qid, 0.0005 + rng.below(2000) * 1e-6, stop);
  }
  q.leave(qid);
}

// ------------------------------------------------------------------------------------------------
// cache churner

void World::cache_churner() {
  const unsigned qid = q.join("cache-churner");
  OpCounters& k = run.counters(opt.threads + 1);
  Rng rng(opt.seed * 104729 + 29);
  uint32_t tag = 0xcc000000u;
  uint64_t gen = 0;
  static constexpr int kMergeable[] = {0, 1, 5};
  auto is_persistent = [&](Cache* c) {
    for (auto& p : pc)
      if (p.c == c) return true;
    return false;
  };
  auto free_mine = [&](Cache* c) {
    for (const Obj& o : churner_objs) {
      check(o, "cache churner");
      a->cache_free(c, o.p);
      k.add(kFree);
    }
    churner_objs.clear();
  };

  while (!stop.load(std::memory_order_relaxed) && !run.failed()) {
    q.point(qid);
    q.doing(qid, "cache_create");
    ++gen;
    Cache* c;
    size_t size;
    bool rcu = false, alias;
    unsigned flags;
    if (rng.below(5) == 0) {  // alias of a persistent mergeable cache
      PersistentCache& p = pc[kMergeable[rng.below(3)]];
      size = p.size;
      flags = p.flags;
      c = a->cache_create("alias" + std::to_string(gen), p.size, p.align, p.flags);
      if (c != p.c) run.fail(std::string("cache_create with the geometry of ") + p.name + " did not return an alias");
      k.add(kCacheAlias);
    } else {
      size = rng.below(20) == 0 ? 2048 + rng.below(30 * 1024) : 16 + rng.below(2048);
      size_t align = size_t(8) << rng.below(4);
      flags = 0;
      if (rng.below(5) != 0) flags |= kCacheAccount;
      if (rng.below(4) == 0) flags |= kCacheTypesafeByRcu;
      if (rng.below(3) == 0) flags |= kCacheNoMerge;
      rcu = flags & kCacheTypesafeByRcu;
      bool ctor = rcu && rng.below(2) == 0;
      c = a->cache_create("churn" + std::to_string(gen), size, align, flags, ctor ? rcu_ctor : nullptr);
      k.add(kCacheCreate);
    }
    if (!c) {
      run.fail("cache_create returned null for a valid geometry");
      break;
    }
    alias = is_persistent(c);
    {
      std::lock_guard<std::mutex> g(churn.mu);
      churn.c = c;
      churn.size = uint32_t(size);
      churn.rcu = rcu;
    }
    // Use it for a while, in a random cgroup, publishing to RCU readers if it is typesafe.
    double life = 0.02 + rng.below(300) * 1e-3;
    auto until = run.elapsed() + life;
    while (run.elapsed() < until && !stop.load(std::memory_order_relaxed) && !run.failed()) {
      q.point(qid);
      q.doing(qid, "use churn cache");
      std::optional<TaskCgroupScope> attached;
      {
        std::lock_guard<std::mutex> g(cg_mu);
        int i = rng.below(4) ? pick_cgroup(rng, false) : -1;
        if (i >= 0) attached.emplace(cgs[size_t(i)].cg);
      }
      for (int n = 0; n < 64; ++n) {
        q.point(qid);
        if (churner_objs.size() < 512 && rng.below(2) == 0) {
          Obj o;
          if (alloc_obj(c, size, rcu, rng.below(20) == 0 ? kGfpNoFail : 0, ++tag, k, &o)) {
            if (rcu && rng.below(4) == 0) {
              // Published objects carry tag 0 so that whoever unpublishes one can check it.
              harness::stamp_write(o.p, size, harness::stamp_at(o.p, 0), 8);
              void* old = churn_rcu_slot[rng.below(kChurnRcuSlots)].exchange(o.p, std::memory_order_acq_rel);
              k.add(kRcuPublish);
              if (old) free_obj(Obj{old, c, uint32_t(size), 0, true}, k, nullptr, "churn rcu unpublish");
            } else {
              churner_objs.push_back(o);
            }
          }
        } else if (!churner_objs.empty()) {
          size_t j = rng.below(uint32_t(churner_objs.size()));
          free_obj(churner_objs[j], k, &rng, "cache churner");
          churner_objs[j] = churner_objs.back();
          churner_objs.pop_back();
        }
      }
      attached.reset();
      if (rng.below(50) == 0) {
        q.doing(qid, "cache_shrink");
        a->cache_shrink(c);
        k.add(kShrink);
      }
      if (rng.below(400) == 0) {
        q.doing(qid, "shrink_all");
        a->shrink_all();  // only this thread destroys caches, so no root vanishes under it
        k.add(kShrink);
      }
      q.nap(qid, 0.001, stop);
    }

    // Retire: take it back from the workers, unpublish its RCU objects, destroy it.
    q.doing(qid, "retire: wait for borrowers");
    {
      std::lock_guard<std::mutex> g(churn.mu);
      churn.c = nullptr;
    }
    if (!q.wait_until(qid, [&] { return churn.users.load() == 0; }, opt.barrier_timeout_s)) {
      run.fail("cache churner: workers did not return the churn cache within the barrier timeout");
      break;
    }
    for (auto& s : churn_rcu_slot)
      if (void* old = s.exchange(nullptr, std::memory_order_acq_rel))
        free_obj(Obj{old, c, uint32_t(size), 0, true}, k, nullptr, "churn rcu retire");
    if (!alias && rng.below(4) == 0) {
      // Destroy with an object still allocated: kCacheBusy, the cache is kept.
      q.doing(qid, "destroy busy cache");
      Obj keep;
      if (!churner_objs.empty()) {
        keep = churner_objs.back();
        churner_objs.pop_back();
      } else if (!alloc_obj(c, size, rcu, kGfpNoFail, ++tag, k, &keep)) {
        break;
      }
      free_mine(c);
      {
        harness::Expect busy(harness::thread_expectation(), ErrorKind::kCacheBusy);
        bool ok = a->cache_destroy(c);
        if (ok || busy.hits() != 1)
          run.fail("cache_destroy of a cache with a live object returned " + std::string(ok ? "true" : "false") +
                   " and reported " + std::to_string(busy.hits()) + " kCacheBusy errors (want false, 1)");
      }
      {
        harness::Expect uad(harness::thread_expectation(), ErrorKind::kUseAfterDestroy);
        void* p = a->cache_alloc(c);
        if (p || uad.hits() != 1) run.fail("cache_alloc on a cache whose destroy failed was not refused");
      }
      k.add(kCacheBusy);
      check(keep, "busy cache");
      a->cache_free(c, keep.p);
      k.add(kFree);
    }
    q.doing(qid, "cache_destroy");
    free_mine(c);
    if (!a->cache_destroy(c)) run.fail("cache_destroy of an empty cache (" + std::string(alias ? "alias" : "own") +
                                       ") returned false");
    k.add(kCacheDestroy);
    // Now and then a temporary shrinker comes and goes while reclaim may be calling it.
    if (rng.below(10) == 0) {
      ShrinkerId id = a->register_shrinker([](const ShrinkControl&) -> size_t { return 0; });
      a->unregister_shrinker(id);
    }
  }
  q.leave(qid);
}

// ------------------------------------------------------------------------------------------------
// checks and teardown

bool World::verify_all(std::string* why) {
  // Called with every thread parked (or joined): their lists are stable.
  size_t n = 0;
  auto chk = [&](const Obj& o) {
    ++n;
    return check(o, "quiescent check");
  };
  for (auto& ws : workers) {
    for (auto& o : ws->mine)
      if (!chk(o)) return *why = run.failure(), false;
    for (auto& o : ws->churn)
      if (!chk(o)) return *why = run.failure(), false;
    for (auto& o : ws->old)
      if (!chk(o)) return *why = run.failure(), false;
  }
  for (auto& ib : inbox)
    for (auto& o : ib->objs)
      if (!chk(o)) return *why = run.failure(), false;
  for (auto& s : pool)
    for (auto& o : s.objs)
      if (!chk(o)) return *why = run.failure(), false;
  for (auto& o : churner_objs)
    if (!chk(o)) return *why = run.failure(), false;
  for (auto& s : rcu_slot)
    if (void* p = s.load())
      if (!chk(Obj{p, pc[kRcuCache].c, uint32_t(pc[kRcuCache].size), 0x5eed, true})) return *why = run.failure(), false;
  run.set_total("objects_checked_last", double(n));
  return true;
}

void World::teardown() {
  OpCounters& k = run.counters(opt.threads + 2);
  // Forget one cache object that a worker holds (not a kmalloc one: those have no cache to
  // refuse its destroy); if the workers hold none at this moment, allocate one and forget it, so
  // the injected leak exists on every run.
  if (cfg.self_test == "leak-object") {
    bool leaked = false;
    for (auto& ws : workers)
      for (size_t i = 0; !leaked && i < ws->mine.size(); ++i)
        if (ws->mine[i].c) {
          ws->mine.erase(ws->mine.begin() + long(i));
          leaked = true;
        }
    if (!leaked && !a->cache_alloc(pc[0].c)) std::fprintf(stderr, "self-test leak-object: allocation failed\n");
  }
  for (auto& ws : workers) {
    for (auto& o : ws->mine) free_obj(o, k, nullptr, "teardown");
    ws->mine.clear();
    for (auto& o : ws->old) free_obj(o, k, nullptr, "teardown");
    ws->old.clear();
  }
  for (auto& ib : inbox) {
    for (auto& o : ib->objs) free_obj(o, k, nullptr, "teardown");
    ib->objs.clear();
  }
  for (auto& s : pool) {
    for (auto& o : s.objs) free_obj(o, k, nullptr, "teardown");
    s.objs.clear();
  }
  for (auto& s : rcu_slot)
    if (void* p = s.exchange(nullptr))
      free_obj(Obj{p, pc[kRcuCache].c, uint32_t(pc[kRcuCache].size), 0x5eed, true}, k, nullptr, "teardown");
  // Leaves first: a cgroup with online children refuses to go offline.
  for (bool progress = true; progress;) {
    progress = false;
    for (size_t i = 0; i < cgs.size(); ++i) {
      if (!cgs[i].alive) continue;
      bool kids = false;
      for (auto& e : cgs)
        if (e.alive && e.parent == int(i)) kids = true;
      if (kids) continue;
      if (!a->cgroup_offline(cgs[i].cg)) run.fail("teardown: cgroup_offline refused with no thread attached");
      cgs[i].alive = false;
      k.add(kCgOffline);
      progress = true;
    }
  }
  a->unregister_shrinker(shrinker);
  for (auto& p : pc)
    if (!a->cache_destroy(p.c)) run.fail(std::string("teardown: cache_destroy(") + p.name + ") returned false");
}

int main_impl(int argc, char** argv) {
  CommonOptions o;
  Config cfg;
  ArgParser ap("stress_lifecycle",
               "Cgroup churn, cache churn, cross-thread frees, remote charging, RCU readers and reclaim on\n"
               "real threads, with validate() and charge conservation at quiescent points.",
               "  --live N             objects each worker keeps at most (default 512)\n"
               "  --cgroups N          churned cgroups alive at most (default 24)\n"
               "  --lo-limit-kb K      limit of /lo, the cgroup under constant reclaim (default 3072)\n"
               "  --self-test D        inject defect D (corrupt-object, hang, leak-object, leak-memory):\n"
               "                       must FAIL (leak-memory with --max-rss-growth)\n"
               "  (threads: --threads workers + a cgroup churner + a cache churner)\n");
  ap.add("--self-test", [&](const std::string& v) {
    cfg.self_test = v;
    return v == "corrupt-object" || v == "hang" || v == "leak-object" || v == "leak-memory"
               ? std::string()
               : "'" + v + "' is not one of corrupt-object, hang, leak-object, leak-memory";
  });
  ap.add("--live", [&](const std::string& v) { return parse_uint(v, 16, 1 << 20, &cfg.live); });
  ap.add("--cgroups", [&](const std::string& v) { return parse_uint(v, 0, 4096, &cfg.max_cgroups); });
  ap.add("--lo-limit-kb", [&](const std::string& v) {
    unsigned kb = 0;
    std::string e = parse_uint(v, 64, 1 << 22, &kb);
    cfg.lo_limit = size_t(kb) << 10;
    return e;
  });
  ap.parse(argc, argv, &o);

  World w(o, cfg);
  std::printf("stress_lifecycle: %s build, seed %" PRIu64 ", %u workers + 2 churners, %.0f s, check every %.1f s, "
              "%u cpu slots\n",
              build_flavour(), o.seed, o.threads, o.duration_s, o.check_every_s, w.nr_slots);
  std::fflush(stdout);

  // Persistent caches and cgroups.
  for (auto& p : w.pc) {
    p.c = w.a->cache_create(p.name, p.size, p.align, p.flags, p.ctor ? rcu_ctor : nullptr);
    if (!p.c) {
      std::fprintf(stderr, "stress_lifecycle: cache_create(%s) failed\n", p.name);
      return 1;
    }
  }
  const char* tops[] = {"lo", "mid", "unl"};
  for (const char* t : tops) {
    CgEntry e;
    e.cg = w.a->cgroup_create(w.a->root_cgroup(), t);
    e.alive = e.persistent = true;
    w.cgs.push_back(e);
  }
  w.a->cgroup_set_max(w.cgs[0].cg, cfg.lo_limit);
  w.a->cgroup_set_max(w.cgs[1].cg, size_t(64) << 20);
  w.shrinker = w.a->register_shrinker([&w](const ShrinkControl& sc) { return w.shrink_pool(sc); });
  for (unsigned i = 0; i < o.threads; ++i) {
    w.inbox.push_back(std::make_unique<Mailbox>());
    w.inbox.back()->objs.reserve(kInboxCap);
    w.workers.push_back(std::make_unique<WorkerState>());
  }
  for (auto& s : w.pool) s.objs.reserve(kPoolShardCap);

  std::vector<std::thread> threads;
  for (unsigned i = 0; i < o.threads; ++i) threads.emplace_back([&w, i] { w.worker(i); });
  threads.emplace_back([&w] { w.cgroup_churner(); });
  threads.emplace_back([&w] { w.cache_churner(); });
  threads.emplace_back([&w] { w.monitor(); });

  uint64_t checks = 0;
  double next_check = o.check_every_s, next_status = o.status_every_s;
  Census census;
  uint64_t last_ops = 0;
  double last_t = 0;
  auto sample = [&](double check_ms) {
    double t = w.run.elapsed();
    uint64_t ops = w.run.op_total();
    double rate = t > last_t ? double(ops - last_ops) / (t - last_t) : 0;
    last_ops = ops;
    last_t = t;
    double rss = double(rss_bytes()) / (1 << 20);
    w.run.add_sample({{"t_s", t},
                      {"ops_per_s", rate},
                      {"rss_mb", rss},
                      {"live_mb", double(heap_live_bytes() + census.mapped_bytes) / (1 << 20)},
                      {"live_caches", double(census.live_caches)},
                      {"dying_caches", double(census.dying_caches)},
                      {"child_caches", double(census.child_caches)},
                      {"cgroups", double(census.cgroups)},
                      {"slab_mb", double(census.slab_pages) * kPageSize / (1 << 20)},
                      {"mapped_mb", double(census.mapped_bytes) / (1 << 20)},
                      {"children_created", double(census.children_created)},
                      {"children_freed", double(census.children_freed)},
                      {"shrinker_calls", double(w.shrinker_calls.load())},
                      {"failcnt", double(census.failcnt)},
                      {"check_ms", check_ms}});
  };
  auto status = [&](const char* what) {
    char b[512];
    std::snprintf(b, sizeof b,
                  "rss %.1fMB  caches live %zu dying %zu  cgroups %zu  slab %.1fMB  shrinker %" PRIu64
                  "  checks %" PRIu64 " %s",
                  double(rss_bytes()) / (1 << 20), census.live_caches, census.dying_caches, census.cgroups,
                  double(census.slab_pages) * kPageSize / (1 << 20), w.shrinker_calls.load(), checks, what);
    w.run.status(b);
  };
  auto quiescent_check = [&](bool final) -> bool {
    auto t0 = std::chrono::steady_clock::now();
    std::string why;
    if (!final && !w.q.pause(o.barrier_timeout_s, &why)) {
      w.run.fail(why);
      return false;
    }
    bool ok = w.run.failed() ? false : check_quiescent(*w.a, w.online_nodes(), w.nr_slots, &census, &why);
    if (ok) ok = w.verify_all(&why);
    if (!ok && !w.run.failed()) w.run.fail("quiescent check " + std::to_string(checks + 1) + ": " + why);
    ++checks;
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    sample(ms);
    if (!final) w.q.resume();
    return ok;
  };

  while (!w.run.failed()) {
    double t = w.run.elapsed();
    if (t >= o.duration_s) break;
    if (t >= next_check) {
      if (!quiescent_check(false)) break;
      next_check = w.run.elapsed() + o.check_every_s;
      if (w.run.elapsed() >= next_status - 0.5 * o.check_every_s || o.check_every_s >= o.status_every_s) {
        status("ok");
        next_status = w.run.elapsed() + o.status_every_s;
      }
    } else if (t >= next_status) {
      status("(caches/cgroups as of the last check)");
      next_status = t + o.status_every_s;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (w.run.failed()) w.run.die();  // threads may be stuck: no join

  w.stop.store(true);
  // Threads finish their burst and leave; a stuck one is a hang.
  auto deadline = w.run.elapsed() + o.barrier_timeout_s;
  std::atomic<bool> joined{false};
  std::thread watchdog([&] {
    while (!joined.load() && w.run.elapsed() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (!joined.load()) {
      w.run.fail("threads did not exit within --barrier-timeout after the run ended (a hang)");
      w.run.die();
    }
  });
  for (auto& t : threads) t.join();
  joined.store(true);
  watchdog.join();
  if (w.run.failed()) w.run.die();

  quiescent_check(true);
  if (w.run.failed()) w.run.die();
  status("final check ok");
  w.teardown();
  std::string why;
  if (!w.run.failed()) {
    harness::settle(*w.a);
    if (!harness::nothing_left(*w.a, &why)) w.run.fail(why);
  }
  if (w.run.failed()) w.run.die();
  w.a.reset();  // its destructor reports kLeak through the sink if anything was left
  if (w.run.failed()) w.run.die();

  std::string rss_why;
  bool rss_ok = w.run.rss_verdict(&rss_why);
  double secs = w.run.elapsed();
  uint64_t ops = w.run.op_total();
  w.run.set_total("ops", double(ops));
  w.run.set_total("ops_per_s", double(ops) / secs);
  w.run.set_total("checks", double(checks));
  w.run.set_total("expected_errors", double(w.sink.expected()));
  w.run.set_total("shrinker_calls", double(w.shrinker_calls.load()));
  w.run.set_total("shrinker_freed_objects", double(w.shrinker_freed.load()));
  w.run.set_total("children_created", double(census.children_created));
  if (!rss_ok) {
    w.run.fail(rss_why);
    w.run.die();
  }
  w.run.write_report(true);
  std::printf("stress_lifecycle: PASS  %.1f s, %" PRIu64 " ops (%.2fM ops/s), %" PRIu64
              " quiescent checks, %" PRIu64 " child caches created, %" PRIu64 " shrinker calls, %" PRIu64
              " expected errors; teardown left nothing\n  ops: %s\n",
              secs, ops, double(ops) / secs / 1e6, checks, census.children_created, w.shrinker_calls.load(),
              w.sink.expected(), w.run.op_summary().c_str());
  return 0;
}

}  // namespace
}  // namespace cgslab::stress

int main(int argc, char** argv) { return cgslab::stress::main_impl(argc, argv); }
