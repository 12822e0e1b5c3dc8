// tool_support.cc: see tool_support.h.
#include "tool_support.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <thread>

#include <sys/wait.h>

namespace cgslab::harness {

ChildExit wait_bounded(pid_t pid, double bound_s) {
  using Clock = std::chrono::steady_clock;
  ChildExit e;
  auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(bound_s));
  auto nap = std::chrono::microseconds(200);
  for (;;) {
    pid_t w = waitpid(pid, &e.status, WNOHANG);
    if (w == pid) return e;
    if (w < 0 && errno != EINTR) {
      e.error = true;
      return e;
    }
    if (Clock::now() >= deadline) {
      kill(pid, SIGKILL);  // ours and unreaped: the pid cannot have been reused
      while (waitpid(pid, &e.status, 0) < 0 && errno == EINTR) {
      }
      e.timed_out = true;
      return e;
    }
    std::this_thread::sleep_for(nap);
    nap = std::min(nap * 2, std::chrono::microseconds(20000));
  }
}

std::string describe_exit(const ChildExit& e) {
  if (e.error) return std::string("lost (waitpid: ") + std::strerror(errno) + ")";
  if (e.timed_out) return "killed after its time bound";
  if (WIFSIGNALED(e.status)) return std::string("killed by signal ") + strsignal(WTERMSIG(e.status));
  return "exit status " + std::to_string(WEXITSTATUS(e.status));
}

bool parse_number(const char* s, double lo, double hi, double* out) {
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(s, &end);
  if (!*s || *end || errno || !(v >= lo && v <= hi)) return false;
  *out = v;
  return true;
}

}  // namespace cgslab::harness
