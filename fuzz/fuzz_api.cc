// fuzz_api: one task, API misuse and error paths. Every misuse op must be reported with exactly
// the expected error kind, any other error is a failure, and validate() must pass after each op.
#include "program.h"
#include "runner.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cgslab::fuzz;
  Program p = decode(data, size, Dialect::kApi);
  run_program(p, RunOptions{});
  return 0;
}
