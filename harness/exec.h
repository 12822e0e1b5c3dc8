// exec.h: the two ways to run a Program against a fresh Allocator, with every oracle on.
//  - exec_sim (library cgslab_harness_sim, allocator backend cgslab_sim): the tasks are sim fibers
//    scheduled by the program's schedule (explicit steps or PCT seed); the run is deterministic
//    and returns its trace hash. validate() runs after every operation that ends with all other
//    tasks at an operation boundary.
//  - exec_threads (library cgslab_harness_native, backend cgslab): one OS thread per task,
//    released together by a start barrier; for ThreadSanitizer. The schedule is ignored.
// A failure prints the invariant, the operation and the program as text, then aborts (so
// libFuzzer keeps the input). Each library defines only its own function.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "cgslab/sim.h"
#include "program.h"

namespace cgslab::harness {

struct RunOptions {
  bool validate_each_op = true;                       // sim: validate() at quiescent op ends
  std::function<void(const std::string&)> trace;      // the executed interleaving and op notes
  void (*on_switch)(uint32_t edge) = nullptr;         // sim: interleaving coverage
  std::function<void(const sim::Decision&)> on_decide;  // sim: each scheduling decision
  // sim: when set, run the default schedule with these deviations (cgslab-prog explore) instead
  // of the program's own schedule.
  const std::vector<sim::Deviation>* explore = nullptr;
};

struct RunStats {
  uint64_t trace_hash = 0;
  uint64_t steps = 0;
  uint64_t switches = 0;
  uint64_t ops = 0;
  uint64_t validations = 0;
  uint64_t errors_expected = 0;
  uint64_t introspections = 0;
};

RunStats exec_sim(const Program& p, const RunOptions& opts);
RunStats exec_threads(const Program& p, const RunOptions& opts);

// Runs 32 fixed programs of the dialect in sim mode. A fuzz target calls it from
// LLVMFuzzerInitialize so that the process-wide first-use work (lazy statics, the membarrier
// registration, the fiber stack pool, the scheduler's cache of schedule point names) is done
// before the first input: otherwise it shows up as coverage of whichever input reaches it first,
// and one input covers different edges on its first and later runs (AFL++ counts that against
// stability).
void warm_up_sim(Dialect d);

}  // namespace cgslab::harness
