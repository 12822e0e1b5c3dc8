// fuzz_api: one task, API misuse and error paths. Every misuse op must be reported with exactly
// the expected error kind, any other error is a failure, and validate() must pass after each op.
#include "exec.h"

// First-use work done before the first input (see warm_up_sim).
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  cgslab::harness::warm_up_sim(cgslab::harness::Dialect::kApi);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cgslab::harness;
  Program p = decode(data, size, Dialect::kApi);
  exec_sim(p, RunOptions{});
  return 0;
}
