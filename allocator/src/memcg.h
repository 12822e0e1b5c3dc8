// memcg.h: layer 3, memory cgroups (kernel: mm/memcontrol.c, the css and charging parts).
//
// Owns the cgroup tree, css reference counts, cgroup states (online -> offline -> released),
// kmemcg ids, the per-cpu charge stock, try_charge with reclaim (shrinkers) and retries.
//
// css word: low bits = reference count, kOnlineBit = online. tryget_online fails once the bit is
// cleared (offline began), tryget once the count is zero. The base reference is dropped at
// offline; the last put queues release work (never inline: a put may come from a context that
// owns a cpu slot, and release takes sleeping locks).
//
// Locks (order): cgroup_mutex -> ids_sem -> [layer 5: slab_mutex] -> charge_lock -> ids_lock.
//  - cgroup_mutex: tree shape, state transitions, attached-task checks.
//  - ids_sem (kernel: memcg_cache_ids_sem): write while the memcg_caches arrays are resized,
//    read by cache creation so ids cannot outgrow a new array.
//  - charge_lock: shared while a slab page's charge/uncharge is committed together with its
//    cache's page count; exclusive while caches are reparented, so charges are moved exactly.
//    Never taken with a cpu slot owned.
// Stock: per slot, touched only by the slot owner (or a remote drainer that took the slot).
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "list.h"
#include "page_counter.h"
#include "platform/platform.h"
#include "platform/task.h"
#include "quarantine.h"

namespace cgslab {

enum class CgState : int { kOnline, kOffline, kReleased };

inline constexpr long kChargeBatch = 32;  // kernel: MEMCG_CHARGE_BATCH
inline constexpr int kMaxReclaimRetries = 5;  // kernel: MEM_CGROUP_RECLAIM_RETRIES
inline constexpr int kMemcgCachesMinSize = 4;
inline constexpr int kMemcgCachesMaxSize = 65535;

class Memcg;

struct Cgroup {
  static constexpr uint64_t kLiveMagic = 0x43475355504f5247ull;  // "GROUPSGC"
  static constexpr uint64_t kDeadMagic = 0xdeadc9d0deadc9d0ull;
  static constexpr uint64_t kOnlineBit = uint64_t(1) << 48;
  static constexpr uint64_t kCountMask = kOnlineBit - 1;

  Cgroup(Memcg* o, Cgroup* p, std::string_view n, PageCounter* parent_counter)
      : owner(o), parent(p), name(n), memory(parent_counter) {}
  static void destroy(Cgroup* cg);

  std::atomic<uint64_t> magic{kLiveMagic};
  Memcg* const owner;
  Cgroup* const parent;
  const std::string name;
  std::string path;
  std::atomic<uint64_t> css{kOnlineBit | 1};
  std::atomic<CgState> state{CgState::kOnline};
  std::atomic<int> kmemcg_id{-1};  // indexes root caches' memcg_caches[]; parent's after offline
  int own_id = -1;                 // the id this cgroup allocated (freed at offline)
  PageCounter memory;
  std::atomic<long> attached{0};   // TaskCgroupScopes running in it
  std::atomic<long> remote_scopes{0};  // RemoteChargeScopes charging it
  std::atomic<long> pending_creates{0};  // queued child-cache creation works pinning it
  ListNode sibling;                // in parent->children (cgroup_mutex)
  ListNode children;               // (cgroup_mutex)
  ListNode kmem_caches;            // child caches whose current memcg is this (layer 5 slab_mutex)
  struct ReleaseWork : platform::Work {
    Cgroup* cg;
  } release_work;
  uint64_t serial = 0;
};

struct ShrinkerEntry {
  ShrinkerId id;
  std::shared_ptr<ShrinkFn> fn;
};

class Memcg {
 public:
  // grow_arrays(new_size): layer 5 resizes every root cache's memcg_caches[] (under ids_sem
  // write). on_release(cg): layer 5 checks the cgroup owns no caches.
  // reclaim_slabs(cg): layer 5 shrinks the caches charged to cg's subtree (returns bytes).
  Memcg(platform::Platform& p, std::function<bool(int)> grow_arrays,
        std::function<void(Cgroup*)> on_release, std::function<size_t(Cgroup*)> reclaim_slabs);
  ~Memcg();

  Cgroup* root() const { return root_; }
  bool is_root(const Cgroup* cg) const { return cg == root_; }
  // nullptr when the id or the arrays could not be allocated (resource failure, not misuse).
  Cgroup* create(Cgroup* parent, std::string_view name) EXCLUDES(cgroup_mutex);

  // Handle checks for the API: reported, false when unusable.
  bool check_handle(const Cgroup* cg, const char* op);

  // --- css refs ---
  void css_get(Cgroup* cg);
  bool css_tryget(Cgroup* cg);
  bool css_tryget_online(Cgroup* cg);
  void css_put(Cgroup* cg);
  long css_refs(const Cgroup* cg) const { return long(cg->css.load() & Cgroup::kCountMask); }
  bool is_online(const Cgroup* cg) const { return cg->css.load(std::memory_order_acquire) & Cgroup::kOnlineBit; }

  // --- offline, in two halves around layer 5's cache deactivation/reparenting ---
  // Refuses (false) for attached tasks or online children; clears the online bit.
  bool begin_offline(Cgroup* cg) REQUIRES(cgroup_mutex);
  // Recycles the id (descendants take the parent's), drains stock, drops the base reference.
  void finish_offline(Cgroup* cg) REQUIRES(cgroup_mutex);

  // --- charging ---
  // try_charge: pick() names the cgroup to charge (called under charge_lock shared, so the
  // answer cannot be reparented before commit(cg) runs under the same lock). Stock first, then
  // counters in batches, then reclaim (shrinkers, "may sleep") and retries per the gfp flags.
  template <typename Pick, typename Commit>
  bool try_charge(long nr_pages, unsigned gfp, Pick pick, Commit commit);
  void uncharge(Cgroup* cg, long nr_pages);  // hierarchical; requires charge_lock shared
  void drain_all_stock(Cgroup* subtree_root);  // no slot owned
  void set_max(Cgroup* cg, long nr_pages);
  size_t reclaim(Cgroup* over, long nr_pages);  // may sleep; no lock, no slot

  // --- shrinkers ---
  ShrinkerId register_shrinker(ShrinkFn fn);
  void unregister_shrinker(ShrinkerId id);

  // --- walking (cgroup_mutex) ---
  template <typename F>
  void for_each_descendant_pre(Cgroup* cg, F f) REQUIRES(cgroup_mutex);
  bool is_descendant(const Cgroup* cg, const Cgroup* ancestor) const;
  size_t nr_cgroups() const { return nr_cgroups_.load(std::memory_order_relaxed); }
  // The cgroup slot i's stock is cached for (it holds a css reference on it) and its pages in
  // *nr_pages; the caller owns slot i (SlotTable::acquire_remote).
  const Cgroup* stock_of_slot(unsigned i, long* nr_pages) const {
    *nr_pages = stock_[i].nr_pages;
    return stock_[i].cached;
  }
  int nr_cache_ids() const { return nr_cache_ids_.load(std::memory_order_acquire); }

  platform::Platform& plat;
  platform::Mutex cgroup_mutex{"cgroup_mutex"};
  platform::RwMutex ids_sem{"memcg_cache_ids_sem"};
  platform::RwMutex charge_lock{"memcg_charge_lock"};

 private:
  struct alignas(64) Stock {
    Cgroup* cached = nullptr;
    long nr_pages = 0;
  };
  int alloc_cache_id() EXCLUDES(ids_lock_);
  void free_cache_id(int id) EXCLUDES(ids_lock_);
  bool consume_stock(Cgroup* cg, long nr_pages);
  void refill_stock(Cgroup* cg, long nr_pages);
  void drain_stock(Stock& s);
  bool charge_counters(Cgroup* cg, long nr_pages, PageCounter** failed);
  static void release_workfn(platform::Work* w);
  void release(Cgroup* cg) EXCLUDES(cgroup_mutex);

  Cgroup* root_;
  std::unique_ptr<Stock[]> stock_;
  std::function<bool(int)> grow_arrays_;
  std::function<void(Cgroup*)> on_release_;
  std::function<size_t(Cgroup*)> reclaim_slabs_;
  platform::Mutex ids_lock_{"memcg_ids_lock"};
  std::vector<bool> ids_ GUARDED_BY(ids_lock_);
  std::atomic<int> nr_cache_ids_{0};
  platform::Mutex shrinker_lock_{"shrinker_lock"};
  std::vector<ShrinkerEntry> shrinkers_ GUARDED_BY(shrinker_lock_);
  ShrinkerId next_shrinker_ GUARDED_BY(shrinker_lock_) = 1;
  std::atomic<size_t> nr_cgroups_{0};
  uint64_t next_serial_ GUARDED_BY(cgroup_mutex) = 1;
  Quarantine<Cgroup> quarantine_ GUARDED_BY(cgroup_mutex){1024};
};

template <typename F>
void Memcg::for_each_descendant_pre(Cgroup* cg, F f) {
  f(cg);
  for (ListNode* n = cg->children.next; n != &cg->children; n = n->next)
    for_each_descendant_pre(container<Cgroup, &Cgroup::sibling>(n), f);
}

template <typename Pick, typename Commit>
bool Memcg::try_charge(long nr_pages, unsigned gfp, Pick pick, Commit commit) {
  int retries = (gfp & kGfpNoRetry) ? 1 : kMaxReclaimRetries;
  for (;;) {
    Cgroup* over = nullptr;
    {
      platform::ReadLock g(charge_lock);
      Cgroup* cg = pick();
      if (!cg || is_root(cg)) {
        commit(cg);
        return true;
      }
      PageCounter* failed = nullptr;
      if (consume_stock(cg, nr_pages) || charge_counters(cg, nr_pages, &failed)) {
        commit(cg);
        return true;
      }
      over = cg;
      if ((gfp & kGfpNoWait) || retries == 0) {
        if (!(gfp & kGfpNoFail)) return false;
        cg->memory.charge(nr_pages);  // kernel: force: NOFAIL may exceed max
        commit(cg);
        return true;
      }
      css_get(over);  // the cgroup must outlive the reclaim below
    }
    --retries;
    reclaim(over, nr_pages);
    css_put(over);
  }
}

}  // namespace cgslab
