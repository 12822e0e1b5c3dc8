// fuzz_lifecycle: the main target. Any input decodes to a program of 1-4 tasks over the whole
// lifecycle vocabulary, run on the deterministic sim scheduler (explicit or PCT schedule from
// the input) with validate() after every quiescent operation and a full teardown check.
#include "coverage.h"
#include "exec.h"

// First-use work done before the first input (see warm_up_sim).
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  cgslab::harness::warm_up_sim(cgslab::harness::Dialect::kLifecycle);
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
