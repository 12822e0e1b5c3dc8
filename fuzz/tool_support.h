// tool_support.h: what cgslab-prog's commands share (minimize.cc, explore.cc, cgslab_prog.cc):
// waiting for a child process with a time bound, and number arguments checked against a range.
// No state; safe from any thread.
#pragma once

#include <string>

#include <sys/types.h>

namespace cgslab::harness {

struct ChildExit {
  bool error = false;      // waitpid failed: `status` means nothing
  bool timed_out = false;  // the bound expired and the child was killed (SIGKILL)
  int status = 0;          // waitpid's status
};

// Waits for child `pid` at most bound_s seconds, then kills and reaps it.
ChildExit wait_bounded(pid_t pid, double bound_s);
// "exit status N", "killed by signal S", "killed after its time bound", "lost (waitpid: ...)".
std::string describe_exit(const ChildExit& e);

// A whole string that is a number in [lo, hi].
bool parse_number(const char* s, double lo, double hi, double* out);

}  // namespace cgslab::harness
