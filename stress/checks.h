// checks.h: the oracles a stress run applies at quiescent points and at the end.
//
//  - ErrorSink: the allocator's Options::on_error. Every error is a failure unless the calling
//    thread declared it expected (Expect, e.g. kCacheBusy around a deliberate destroy of a busy
//    cache); expected ones are counted. The handler runs inside the allocator, possibly under its
//    locks, so it only records: it never calls back into the allocator.
//  - check_quiescent: drain (RCU callbacks and work items may still be settling what the
//    threads did), validate(), then charge conservation through the public cgroup_stats: for
//    every online cgroup, usage = slab bytes of the caches charged below it + per-cpu stock,
//    where stock is bounded (nr_cpu_slots x 32 pages); then the stock is drained (set_max with
//    the unchanged limit drains it, as memory.max writes do in the kernel) and the equation must
//    hold exactly. The live/dying child caches counted per cgroup must add up to stats().
//  - check_empty: after the run freed, offlined and destroyed everything: nothing may be left
//    (no child caches, one cgroup, no slab pages, no mapped bytes, no pending work).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cgslab/cgslab.h"
#include "run.h"

namespace cgslab::stress {

class ErrorSink {
 public:
  explicit ErrorSink(Run& run) : run_(run) {}
  ErrorHandler handler();

  // While alive, errors of `kind` raised on this thread are expected (counted, not failures).
  class Expect {
   public:
    explicit Expect(ErrorKind kind);
    ~Expect();
    uint64_t hits() const;
  };

  uint64_t expected() const { return expected_.load(std::memory_order_relaxed); }
  uint64_t unexpected() const { return unexpected_.load(std::memory_order_relaxed); }

 private:
  Run& run_;
  std::atomic<uint64_t> expected_{0};
  std::atomic<uint64_t> unexpected_{0};
};

// An online cgroup the stress run knows; parent = index into the same vector, or -1 for a child
// of the root cgroup.
struct CgNode {
  Cgroup* cg;
  int parent;
};

struct Census {
  size_t live_caches = 0;   // active child caches
  size_t dying_caches = 0;  // deactivated/killed/released child caches
  size_t child_caches = 0;  // stats().child_caches
  size_t cgroups = 0;       // stats().cgroups (offline-not-released included)
  size_t slab_pages = 0;
  size_t mapped_bytes = 0;
  uint64_t children_created = 0;
  uint64_t children_freed = 0;
  size_t max_usage_bytes = 0;  // largest usage of a cgroup the run knows
  size_t failcnt = 0;          // sum of failcnt over the known cgroups
};

// Quiescent: no thread may be inside the allocator. false + why on the first violation.
bool check_quiescent(Allocator& a, const std::vector<CgNode>& online, unsigned nr_cpu_slots, Census* census,
                     std::string* why);

// Quiescent, at the very end. false + why (with slabinfo) if anything is left.
bool check_empty(Allocator& a, std::string* why);

// The slot count the allocator uses for Options::nr_cpu_slots = 0 (2 x hardware threads, >= 4).
unsigned default_cpu_slots();

}  // namespace cgslab::stress
