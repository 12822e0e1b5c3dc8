// fuzz_api: one task, API misuse and error paths. Every misuse op must be reported with exactly
// the expected error kind, any other error is a failure, and validate() must pass after each op.
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
    exec_sim(decode(bytes, sizeof bytes, Dialect::kApi), RunOptions{});
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cgslab::harness;
  Program p = decode(data, size, Dialect::kApi);
  exec_sim(p, RunOptions{});
  return 0;
}
