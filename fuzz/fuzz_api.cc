// fuzz_api: one task, API misuse and error paths. Every misuse op must be reported with exactly
// the expected error kind, any other error is a failure, and validate() must pass after each op.
#include "exec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cgslab::harness;
  Program p = decode(data, size, Dialect::kApi);
  exec_sim(p, RunOptions{});
  return 0;
}
