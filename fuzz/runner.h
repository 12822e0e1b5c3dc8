// runner.h: runs a Program against a fresh Allocator and checks the oracles.
//
// Two modes over the same interpreter:
//  - sim (built against cgslab_sim): the program's tasks are sim fibers scheduled by the
//    program's schedule (explicit steps or PCT seed); the run is deterministic and returns the
//    trace hash. validate() runs after every operation that ends in a quiescent state.
//  - threads (built against the native cgslab): one OS thread per task, released together by a
//    start barrier; for ThreadSanitizer. The schedule is ignored.
//
// Oracles: every allocator error is a failure unless the op is a misuse op of the API dialect
// that expects exactly that error (and then a missing report is a failure too); object contents
// are stamped on allocation and checked on free and under RCU; __GFP_ZERO objects must be zero;
// the teardown frees everything, destroys every cache, offlines every cgroup, drains, and
// requires that nothing is left (no child caches, only the root cgroup, no slab pages, no mapped
// memory, no pending work). A failure prints the invariant, the operation and the program, then
// aborts (so libFuzzer saves the input).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "program.h"

namespace cgslab::fuzz {

struct RunOptions {
  bool validate_each_op = true;                       // sim: validate() at quiescent op ends
  std::function<void(const std::string&)> trace;      // replay --trace: executed interleaving
  void (*on_switch)(uint32_t edge) = nullptr;         // sim: interleaving coverage
};

struct RunStats {
  uint64_t trace_hash = 0;
  uint64_t steps = 0;
  uint64_t switches = 0;
  uint64_t ops = 0;
  uint64_t validations = 0;
  uint64_t errors_expected = 0;
};

// Runs p in the mode this library was built for (sim or threads).
RunStats run_program(const Program& p, const RunOptions& opts);
const char* runner_mode();  // "sim" or "threads"

}  // namespace cgslab::fuzz
