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
//    reporting thread stops being checked: a second report raised while the first one's locks
//    are held would deadlock instead of ending the run.
//  - A report ends the process from TSan's report hook: the hook writes the crash file itself
//    (crash_dump.h) and exits. TSan's own halt runs libFuzzer's death callback with TSan's locks
//    held, and that callback's allocations now and then blocked on them for good.
//  - A harness oracle's failure ends in abort(), and libFuzzer writes the crash file from its
//    SIGABRT handler with fopen and malloc. TSan's report of that "signal-unsafe call" would run
//    inside the handler and never return (the run then hung until killed, with no crash file), so
//    that one report is off: the process is about to exit and its output is libFuzzer's own.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "crash_dump.h"
#include "exec.h"
#include "tool_support.h"

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
  return "halt_on_error=1:second_deadlock_stack=1:report_signal_unsafe=0";
}
// TSan's exit code for a report.
constexpr int kTsanExitCode = 66;
CGSLAB_TSAN_HOOK void __tsan_on_report(const void*) {
  __tsan_ignore_thread_begin();
  // A report outside any input (none is running) halts the usual way.
  if (cgslab::fuzz::crash_dump()) cgslab::fuzz::crash_exit(kTsanExitCode);
}
#endif

namespace {
// CGSLAB_FUZZ_SELF_TEST selects a fault of the test's own, so that the tests of the crash paths
// have something real to find:
//   race          a data race in the harness (a TSan report must end the run with a crash file);
//   program:FILE  the text program FILE runs before every input (with a CGSLAB_DEFECT it fails,
//                 and a harness oracle's abort must end the run with a crash file).
volatile int self_test_racy_word;
void self_test() {
  static const char* t = std::getenv("CGSLAB_FUZZ_SELF_TEST");
  if (!t) return;
  if (std::strcmp(t, "race") == 0) {
    // Two sibling threads write one word with no order between them: a race on every schedule.
    std::thread a([] { self_test_racy_word = 1; });
    std::thread b([] { self_test_racy_word = 2; });
    a.join();
    b.join();
    return;
  }
  if (std::strncmp(t, "program:", 8) == 0) {
    cgslab::harness::Program p;
    if (!cgslab::harness::load_program(t + 8, cgslab::harness::Dialect::kLifecycle, /*text=*/true, &p,
                                       "CGSLAB_FUZZ_SELF_TEST"))
      std::exit(2);
    cgslab::harness::exec_threads(p, cgslab::harness::RunOptions{});
    return;
  }
  std::fprintf(stderr, "CGSLAB_FUZZ_SELF_TEST=%s: expected race or program:FILE\n", t);
  std::exit(2);
}
}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  cgslab::fuzz::crash_dump_init(*argc, *argv);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cgslab::harness;
  cgslab::fuzz::crash_dump_set_input(data, size);
  self_test();
  Program p = decode(data, size, Dialect::kLifecycle);
  exec_threads(p, RunOptions{});
  cgslab::fuzz::crash_dump_set_input(nullptr, 0);
  return 0;
}
