// tool_support.h: what cgslab-prog's commands share (minimize.cc, explore.cc, cgslab_prog.cc),
// and fuzz_threads' self-test its program loader:
// waiting for a child process with a time bound, number arguments checked against a range, and
// reading a program file. No state; safe from any thread.
#pragma once

#include <string>

#include <sys/types.h>

#include "program.h"

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

// A program file named as text (".txt"); other files are fuzz bytes.
bool is_text_name(const std::string& path);
// The whole file; false (errno set) when it cannot be read.
bool read_file(const std::string& path, std::string* out);
// FILE as a program: text when `text` or the name ends in .txt (malformed text is an error),
// else fuzz bytes in dialect d (any bytes decode). On failure prints "<who>: <why>" to stderr.
bool load_program(const std::string& path, Dialect d, bool text, Program* p, const char* who);

}  // namespace cgslab::harness
