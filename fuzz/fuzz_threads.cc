// fuzz_threads: the lifecycle programs on real threads (one per task, released together by a
// start barrier) against the native backend, built with ThreadSanitizer (fuzz-tsan preset). The
// schedule in the input is ignored; the OS interleaves.
//
// The ThreadSanitizer configuration lives here, in the binary, so that no environment can lose
// it (a caller's TSAN_OPTIONS without the suppression once turned every run into a false alarm):
//  - libFuzzer's inline 8-bit coverage counters are incremented with plain stores from every
//    thread and clang 14's TSan instruments them; TSan names their section by its end marker,
//    __TMC_END__. That is the one suppression. It names a linker symbol, never our code.
//  - A report halts the process (libFuzzer must keep the input), and from the report on the
//    reporting thread stops being checked: TSan calls libFuzzer's death callback while it still
//    holds its report lock, and the callback's string formatting (instrumented inline code)
//    would otherwise raise a second report on that lock and deadlock instead of writing the
//    crash file.
#include <cstdlib>
#include <cstring>
#include <thread>

#include "exec.h"

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CGSLAB_FUZZ_TSAN 1
#endif
#endif
#if defined(CGSLAB_FUZZ_TSAN)
// The runtime calls these before it is initialized: they must not be instrumented themselves.
#define CGSLAB_TSAN_HOOK extern "C" __attribute__((no_sanitize("thread", "coverage"), used))
extern "C" void __tsan_ignore_thread_begin();
CGSLAB_TSAN_HOOK const char* __tsan_default_suppressions() { return "race:__TMC_END__\n"; }
CGSLAB_TSAN_HOOK const char* __tsan_default_options() {
  return "halt_on_error=1:second_deadlock_stack=1";
}
CGSLAB_TSAN_HOOK void __tsan_on_report(const void*) { __tsan_ignore_thread_begin(); }
#endif

namespace {
// CGSLAB_FUZZ_SELF_TEST=race: a data race of the harness's own, so the test of the crash path
// (a report must end the process and leave a crash file) has something real to find.
volatile int self_test_racy_word;
void self_test_race() {
  const char* t = std::getenv("CGSLAB_FUZZ_SELF_TEST");
  if (!t || std::strcmp(t, "race") != 0) return;
  // Two sibling threads write one word with no order between them: a race on every schedule.
  std::thread a([] { self_test_racy_word = 1; });
  std::thread b([] { self_test_racy_word = 2; });
  a.join();
  b.join();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cgslab::harness;
  self_test_race();
  Program p = decode(data, size, Dialect::kLifecycle);
  exec_threads(p, RunOptions{});
  return 0;
}
