// tool_support.cc: see tool_support.h.
#include "tool_support.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
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

bool read_file(const std::string& path, std::string* out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  out->assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  return !f.bad();
}

bool is_text_name(const std::string& path) {
  return path.size() >= 4 && path.compare(path.size() - 4, 4, ".txt") == 0;
}

bool load_program(const std::string& path, Dialect d, bool text, Program* p, const char* who) {
  std::string data;
  if (!read_file(path, &data)) {
    std::fprintf(stderr, "%s: cannot read %s: %s\n", who, path.c_str(), std::strerror(errno));
    return false;
  }
  if (text || is_text_name(path)) {
    std::string err;
    if (!parse(data, p, &err)) {
      std::fprintf(stderr, "%s: %s: %s\n", who, path.c_str(), err.c_str());
      return false;
    }
    return true;
  }
  *p = decode(reinterpret_cast<const uint8_t*>(data.data()), data.size(), d);
  return true;
}

}  // namespace cgslab::harness
