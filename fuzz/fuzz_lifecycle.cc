// fuzz_lifecycle: the main target. Any input decodes to a program of 1-4 tasks over the whole
// lifecycle vocabulary, run on the deterministic sim scheduler (explicit or PCT schedule from
// the input) with validate() after every quiescent operation and a full teardown check.
#include "coverage.h"
#include "exec.h"

// Runs 32 fixed programs before fuzzing starts, so that the process-wide first-use work (lazy
// statics, the membarrier registration, the fiber stack pool, the scheduler's cache of schedule
// point names) is done before the first input: otherwise it shows up as coverage of whichever
// input reaches it first, and one input covers different edges on its first and later runs
// (AFL++ counts that against stability).
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  using namespace cgslab::harness;
  uint8_t bytes[600];
  uint32_t x = 0x9e3779b9u;
  for (int i = 0; i < 32; ++i) {
    for (uint8_t& b : bytes) {
      x = x * 1664525u + 1013904223u;
      b = uint8_t(x >> 24);
    }
    exec_sim(decode(bytes, sizeof bytes, Dialect::kLifecycle), RunOptions{});
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cgslab::harness;
  Program p = decode(data, size, Dialect::kLifecycle);
  RunOptions o;
  o.on_switch = &count_interleaving;
  exec_sim(p, o);
  return 0;
}
