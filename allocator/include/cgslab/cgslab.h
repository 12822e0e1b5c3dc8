// cgslab: a user-space, cgroup-aware slab allocator modelling the Linux memory-cgroup slab design
// (per-cgroup kmem caches created lazily, page -> cache -> cgroup references, hierarchical page
// counters, offline with reparenting, dead caches that destroy themselves, RCU and async work).
//
// Thread safety: every member of Allocator may be called from any thread, except the ones whose
// comment says "quiescent" (no other thread may be inside the allocator while they run).
// Handles (Cgroup*, Cache*) are owned by the allocator. A handle used after it was destroyed or
// released is reported through Options::on_error as kUseAfterDestroy when the allocator can still
// tell (handle memory is type-stable until the Allocator is destroyed).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace cgslab {

class Allocator;
struct Cgroup;  // kernel: struct mem_cgroup
struct Cache;   // kernel: struct kmem_cache

// Cache flags (kernel: SLAB_ACCOUNT, SLAB_TYPESAFE_BY_RCU, SLAB_NO_MERGE).
inline constexpr unsigned kCacheAccount = 1u << 0;
inline constexpr unsigned kCacheTypesafeByRcu = 1u << 1;
inline constexpr unsigned kCacheNoMerge = 1u << 2;

// Allocation flags (kernel: __GFP_ACCOUNT, GFP_NOWAIT, __GFP_NORETRY, __GFP_NOFAIL, __GFP_ZERO).
inline constexpr unsigned kGfpAccount = 1u << 0;
inline constexpr unsigned kGfpNoWait = 1u << 1;   // no reclaim: fail at once when over the limit
inline constexpr unsigned kGfpNoRetry = 1u << 2;  // one reclaim pass, then fail
inline constexpr unsigned kGfpNoFail = 1u << 3;   // force the charge when reclaim cannot make room
inline constexpr unsigned kGfpZero = 1u << 4;     // zero the object

inline constexpr size_t kPageSize = 4096;
inline constexpr size_t kMaxObjectSize = 32 * 1024;  // largest cache object / kmalloc size

enum class ErrorKind {
  kDoubleFree,
  kInvalidFree,      // pointer not owned by this allocator, or not the start of an object
  kWrongCache,       // object freed into a cache it does not belong to
  kUseAfterDestroy,  // destroyed cache / released cgroup handle used
  kOfflineCgroup,    // operation on a cgroup that is already offline
  kBadArgument,      // zero/huge size, bad alignment, null handle, offline of the root, ...
  kCacheBusy,        // cache_destroy: "still has objects"
  kLeak,             // Allocator destroyed with objects, cgroups or caches left
  kInternal,         // an allocator invariant broke (a bug in cgslab)
};
const char* error_kind_name(ErrorKind);

struct Error {
  ErrorKind kind;
  std::string message;    // one line, names the cache/cgroup, address and slab state
  const void* addr = nullptr;
  std::string cache;      // cache name, when one is involved
};

using ErrorHandler = std::function<void(const Error&)>;

// The default handler prints the error to stderr and aborts.
void default_error_handler(const Error&);

struct Options {
  ErrorHandler on_error;        // empty: default_error_handler
  unsigned nr_cpu_slots = 0;    // per-cpu slots ("CPUs"); 0: 2 x hardware threads, at least 4
  bool poison = true;           // poison freed objects / free slab memory for ASan (when built with it)
};

// Shrinker: called under limit pressure with the cgroup that hit its limit and the number of
// bytes the charge needs. Returns the bytes it freed. May call back into the allocator.
struct ShrinkControl {
  Cgroup* memcg;
  size_t nr_bytes;
};
using ShrinkFn = std::function<size_t(const ShrinkControl&)>;
using ShrinkerId = uint64_t;

enum class CacheState : uint8_t {
  kRoot,         // a root cache
  kQueued,       // child creation work queued (no child object yet)
  kActive,       // child published in root->memcg_caches[id]
  kDeactivated,  // cgroup went offline; entry cleared; empty slabs are discarded
  kKilled,       // percpu_ref killed (initial ref dropped) after an RCU grace period
  kReleased,     // refcount reached zero; shutdown work queued
  kFreed,        // shutdown work ran (only seen in history counters)
  kDestroyFailed,  // root cache whose destroy found objects ("still has objects"); kept
};
const char* cache_state_name(CacheState);

struct CgroupStats {
  std::string name;
  std::string path;         // "/a/b"
  bool online = false;
  int kmemcg_id = -1;
  size_t usage = 0;         // bytes (page counter, hierarchical)
  size_t max = 0;           // bytes; SIZE_MAX = unlimited
  size_t watermark = 0;     // bytes
  size_t failcnt = 0;       // charge attempts that hit this level's max
  size_t slab_bytes = 0;    // bytes of slab pages owned by caches whose current cgroup is this one
  size_t live_caches = 0;   // active child caches of this cgroup
  size_t dying_caches = 0;  // deactivated/killed/released caches reparented to this cgroup
  long css_refs = 0;        // css reference count
  size_t attached_tasks = 0;
};

struct CacheStats {
  std::string name;         // root: its name; child: "name(id:cgroup)"
  bool is_root = true;
  CacheState state = CacheState::kRoot;
  std::string cgroup;       // child: path of the current cgroup
  size_t object_size = 0;   // requested size
  size_t slot_size = 0;     // bytes one object takes in a slab
  unsigned slab_pages = 0;  // pages per slab
  size_t active_objects = 0;
  size_t total_objects = 0;
  size_t slabs = 0;
  long refcount = 0;        // root: alias count; child: percpu_ref count (-1 while in percpu mode
                            // and not summed: read it with quiescent stats)
  size_t charged_pages = 0; // child: pages charged for its slabs
  size_t children = 0;      // root: child caches (any state)
};

struct AllocatorStats {
  size_t mapped_bytes = 0;       // slab chunk memory mapped from the OS
  size_t metadata_bytes = 0;     // lookup table memory mapped from the OS
  size_t slab_pages = 0;         // pages in use by slabs
  size_t root_caches = 0;
  size_t child_caches = 0;       // any state
  size_t cgroups = 0;            // including the root and offline-not-released ones
  size_t pending_work = 0;       // queued work items + RCU callbacks
  uint64_t children_created = 0;
  uint64_t children_freed = 0;
};

class Allocator {
 public:
  explicit Allocator(const Options& = {});
  ~Allocator();
  Allocator(const Allocator&) = delete;
  Allocator& operator=(const Allocator&) = delete;

  // --- cgroups (kernel: mem_cgroup css online/offline/free) ---
  Cgroup* root_cgroup();
  Cgroup* cgroup_create(Cgroup* parent, std::string_view name);
  // rmdir. false for the root (reported as kBadArgument), while a thread is attached or the cgroup
  // has online children (kernel: EBUSY, not reported), or if it is already offline (reported).
  bool cgroup_offline(Cgroup*);
  void cgroup_set_max(Cgroup*, size_t bytes);  // SIZE_MAX: unlimited
  Cgroup* cgroup_parent(Cgroup*);

  // --- caches (kernel: kmem_cache_create/destroy/shrink) ---
  Cache* cache_create(std::string_view name, size_t size, size_t align, unsigned cache_flags,
                      void (*ctor)(void*) = nullptr);
  bool cache_destroy(Cache*);  // false + kCacheBusy error when objects remain (cache kept)
  void cache_shrink(Cache*);   // flush per-cpu objects, free empty slabs (also of its children);
                               // free pages kept for reuse go back to the OS

  // --- objects ---
  void* cache_alloc(Cache*, unsigned gfp = 0);
  void cache_free(Cache*, void*);
  void* kmalloc(size_t, unsigned gfp = 0);
  void kfree(void*);
  size_t ksize(const void*);  // usable size of an allocated object (0 + error if not ours)
  // The cgroup an allocated object is charged to now (kernel: mem_cgroup_from_obj): its cache's
  // current cgroup, an ancestor of the one it was charged to once that went offline; the root
  // for unaccounted objects. nullptr + kInvalidFree error if p is not an object of ours.
  Cgroup* object_cgroup(const void* p);

  // RCU read-side section for TYPESAFE_BY_RCU readers (kernel: rcu_read_lock/unlock). Nests.
  void rcu_read_lock();
  void rcu_read_unlock();
  void synchronize_rcu();

  // --- reclaim ---
  ShrinkerId register_shrinker(ShrinkFn);
  void unregister_shrinker(ShrinkerId);

  // Wait until every queued RCU callback and work item has run (quiescence), then give the free
  // slab pages kept backed for reuse back to the OS (mapped_bytes then counts live slabs only).
  void drain();

  // Check every invariant; false + a readable report. Quiescent.
  bool validate(std::string* report = nullptr);

  // --- stats ---
  // Callable from any thread while others allocate, free, create and destroy; every one takes
  // slab_mutex, so it may sleep and must not be called inside rcu_read_lock(). Counts are exact
  // at quiescence and estimates otherwise (never negative); a child cache shut down while
  // slabinfo() or child_cache_stats() runs is left out.
  CgroupStats cgroup_stats(Cgroup*);
  CacheStats cache_stats(Cache*);  // root cache
  std::vector<CacheStats> child_cache_stats(Cache* root);  // its children, any state
  // State of root's child for cg: kQueued when creation is pending, kActive/... for the child
  // currently in root->memcg_caches[cg's id]; kRoot when there is none.
  CacheState child_state_for_testing(Cache* root, Cgroup* cg);
  AllocatorStats stats();
  std::string slabinfo();                // /proc/slabinfo style
  std::string memory_stat(Cgroup*);      // memory.stat style

  // Shrink every cache (kernel: drop_caches for slab): flush per-cpu objects, free empty slabs,
  // give the free pages kept for reuse back to the OS.
  void shrink_all();

  // --- testing hooks ---
  // Hold back RCU callbacks and/or work items (queued ones stay queued) so that intermediate
  // lifecycle states can be observed. drain()/destroy while paused is reported as a hang.
  void pause_for_testing(bool rcu_callbacks, bool work_items);
  // Fail the nth (1-based) next page mapping / internal allocation; 0 disables.
  void fail_nth_mapping_for_testing(uint64_t n);
  void fail_nth_internal_alloc_for_testing(uint64_t n);

  struct Impl;
  Impl* impl_for_testing() { return impl_.get(); }

 private:
  friend class TaskCgroupScope;
  friend class RemoteChargeScope;
  std::unique_ptr<Impl> impl_;
};

// The current thread runs in `cg` for the scope's lifetime (kernel: task attached to the memcg).
// Holds a reference; cgroup_offline of an attached cgroup is refused. Scopes nest.
class TaskCgroupScope {
 public:
  explicit TaskCgroupScope(Cgroup* cg);
  ~TaskCgroupScope();
  TaskCgroupScope(const TaskCgroupScope&) = delete;
  TaskCgroupScope& operator=(const TaskCgroupScope&) = delete;
  Cgroup* cgroup() const { return cg_; }  // nullptr when the scope was refused (error reported)

 private:
  Cgroup* cg_;
  Cgroup* prev_;
};

// The current thread's accounted allocations charge `cg` (kernel: memalloc_use_memcg). Holds a
// css reference, so `cg` may go offline while the scope lives. Scopes nest.
class RemoteChargeScope {
 public:
  explicit RemoteChargeScope(Cgroup* cg);
  ~RemoteChargeScope();
  RemoteChargeScope(const RemoteChargeScope&) = delete;
  RemoteChargeScope& operator=(const RemoteChargeScope&) = delete;
  Cgroup* cgroup() const { return cg_; }  // nullptr when the scope was refused (error reported)

 private:
  Cgroup* cg_;
  Cgroup* prev_;
};

}  // namespace cgslab
