// fuzz_threads: the lifecycle programs on real threads (one per task, released together by a
// start barrier) against the native backend, built with ThreadSanitizer (fuzz-tsan preset). The
// schedule in the input is ignored; the OS interleaves.
#include "program.h"
#include "runner.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cgslab::fuzz;
  Program p = decode(data, size, Dialect::kLifecycle);
  run_program(p, RunOptions{});
  return 0;
}
