// fuzz_lifecycle: the main target. Any input decodes to a program of 1-4 tasks over the whole
// lifecycle vocabulary, run on the deterministic sim scheduler (explicit or PCT schedule from
// the input) with validate() after every quiescent operation and a full teardown check.
#include "coverage.h"
#include "exec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cgslab::harness;
  Program p = decode(data, size, Dialect::kLifecycle);
  RunOptions o;
  o.on_switch = &count_interleaving;
  exec_sim(p, o);
  return 0;
}
