// oracles.h: the harness's checks, each in one place, used by the fuzz targets (exec), the stress
// binaries and the allocator's unit-test fixture:
//  - the object stamp: a 64-bit value (tag in the high half, a serial in the low half) written to
//    an object's head word (atomically: TYPESAFE_BY_RCU readers read it while another thread may
//    reuse the object) and its complement to the last whole word. A live object whose stamp
//    changed was handed out twice or written by the allocator; the tag lets an RCU reader tell
//    "still an object of this cache" from "something else".
//  - ErrorChecker: the allocator's Options::on_error. An error is a failure unless the current
//    task armed an Expectation of that kind; then it is counted. The handler runs inside the
//    allocator, possibly under its locks: it records and calls `fail`, never the allocator.
//  - settle + nothing_left: the teardown check ("nothing left": no child caches, one cgroup, no
//    slab pages, no mapped memory, no pending work, created == freed children, an empty root).
//  - check_quiescent: validate() and charge conservation through cgroup_stats at a quiescent
//    point (usage = slab bytes of the subtree's caches + a stock bounded by slots x 32 pages;
//    exact once the stock is drained), live + dying child caches = stats().child_caches.
//  - check_settled: right after drain() with no other thread inside the allocator, every child
//    cache has finished the step its last event started: none is left deactivated or released
//    (the RCU callback and work that move it on have run), and a killed one still holds objects
//    (with none, its last free must have released it: a dead cache destroys itself).
//  - check_*_stats / check_slabinfo / check_memory_stat: internal consistency of what a
//    read-only API call returned, callable at any time from any thread (counts never negative,
//    active <= total, at most one active child per cgroup, text dumps parse); `quiescent` adds
//    the equalities that only hold when no other thread is inside the allocator.
// Stateless except ErrorChecker's counters (atomics).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "cgslab/cgslab.h"

namespace cgslab::harness {

// ---- the object stamp ----
inline uint64_t stamp_make(uint32_t tag, uint32_t serial) { return (uint64_t(tag) << 32) | serial; }
inline uint32_t stamp_tag(uint64_t v) { return uint32_t(v >> 32); }
// A stamp whose serial is derived from the address, for holders that keep no per-object value:
// a whole word of the object can be recomputed from (pointer, tag) by whoever frees it. Never 0.
inline uint64_t stamp_at(const void* p, uint32_t tag) {
  uint64_t x = uint64_t(reinterpret_cast<uintptr_t>(p)) * 0x9e3779b97f4a7c15ull;
  return stamp_make(tag, uint32_t(x >> 32) | 1);
}
// `head`: byte offset of the head word (0, or 8 when word 0 belongs to the caller); size >= head + 8.
void stamp_write(void* p, size_t size, uint64_t v, size_t head = 0);
uint64_t stamp_head(const void* p, size_t head = 0);  // relaxed atomic read
// true when the stamp is intact; otherwise false and `why` says what was found.
bool stamp_check(const void* p, size_t size, uint64_t v, size_t head, std::string* why);
// true when n bytes at p are zero; else false and `why` names the first non-zero offset.
bool check_zeroed(const void* p, size_t n, std::string* why);

// ---- expected errors ----
struct Expectation {
  bool armed = false;
  ErrorKind kind = ErrorKind::kInternal;
  bool once = false;  // a second error of the kind is a failure too
  uint64_t hits = 0;
};

class ErrorChecker {
 public:
  // current(): the calling task's Expectation (nullptr: none); fail(): report, need not return.
  ErrorChecker(std::function<Expectation*()> current, std::function<void(const std::string&)> fail)
      : current_(std::move(current)), fail_(std::move(fail)) {}
  ErrorHandler handler();
  uint64_t expected() const { return expected_.load(std::memory_order_relaxed); }
  uint64_t unexpected() const { return unexpected_.load(std::memory_order_relaxed); }

 private:
  std::function<Expectation*()> current_;
  std::function<void(const std::string&)> fail_;
  std::atomic<uint64_t> expected_{0};
  std::atomic<uint64_t> unexpected_{0};
};

// Arms `e` for kind while alive (hits reset on entry).
class Expect {
 public:
  Expect(Expectation* e, ErrorKind kind, bool once = false) : e_(e) {
    e_->armed = true, e_->kind = kind, e_->once = once, e_->hits = 0;
  }
  ~Expect() { e_->armed = false; }
  uint64_t hits() const { return e_->hits; }
  Expect(const Expect&) = delete;
  Expect& operator=(const Expect&) = delete;

 private:
  Expectation* e_;
};

// A thread-local Expectation for callers on real threads (stress, tests).
Expectation* thread_expectation();

// ---- teardown ----
// Run every queued callback and work item, shrink everything, run what that queued.
void settle(Allocator& a);
// After settle(), with nothing alive: false + why (with slabinfo) when anything is left.
// validate: how to run validate() (sim callers run it without switches); default a.validate.
bool nothing_left(Allocator& a, std::string* why, const std::function<bool(std::string*)>& validate = nullptr);

// ---- quiescent state ----
// An online cgroup the caller knows; parent = index into the same vector, -1 for a root child.
struct CgNode {
  Cgroup* cg;
  int parent;
};
struct Census {
  size_t live_caches = 0, dying_caches = 0, child_caches = 0, cgroups = 0, slab_pages = 0, mapped_bytes = 0;
  uint64_t children_created = 0, children_freed = 0;
  size_t max_usage_bytes = 0, failcnt = 0;
};
// No thread may be inside the allocator. Drains first. false + why on the first violation.
bool check_quiescent(Allocator& a, const std::vector<CgNode>& online, unsigned nr_cpu_slots, Census* census,
                     std::string* why);
// children: child_cache_stats() of every root, read right after drain() with no thread inside.
bool check_settled(const std::vector<CacheStats>& children, std::string* why);
unsigned default_cpu_slots();  // what Options::nr_cpu_slots = 0 gives (2 x hardware threads, >= 4)

// ---- results of the read-only API ----
bool check_stats(const AllocatorStats& s, bool quiescent, std::string* why);
bool check_cgroup_stats(const CgroupStats& s, bool quiescent, std::string* why);
bool check_cache_stats(const CacheStats& s, std::string* why);
// children of one root; quiescent: also root.children == children.size()
bool check_child_cache_stats(const CacheStats& root, const std::vector<CacheStats>& children, bool quiescent,
                             std::string* why);
// quiescent_caches: when not SIZE_MAX, the number of cache lines slabinfo must have
bool check_slabinfo(const std::string& text, size_t quiescent_caches, std::string* why);
bool check_memory_stat(const std::string& text, const CgroupStats* quiescent, std::string* why);

}  // namespace cgslab::harness
