// report.h: the one error-reporting path. Every user-caused error (misuse of the API) and every
// broken internal invariant goes through Reporter::report, which calls Options::on_error (default:
// print and abort). Callers report *before* changing state, so a handler that returns leaves the
// allocator consistent: the faulty operation is simply not carried out.
#pragma once

#include <cstdarg>
#include <string>

#include "cgslab/cgslab.h"

namespace cgslab::platform {

class Reporter {
 public:
  explicit Reporter(ErrorHandler h) : handler_(std::move(h)) {}
  void report(ErrorKind kind, const void* addr, const std::string& cache, const char* fmt, ...)
      __attribute__((format(printf, 5, 6)));
  uint64_t count() const { return count_; }

 private:
  ErrorHandler handler_;
  uint64_t count_ = 0;  // diagnostic only; races are benign (errors are already a failure state)
};

std::string strprintf(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

}  // namespace cgslab::platform

// Internal invariant: reported as kInternal (a bug in cgslab), never compiled out.
#define CGSLAB_CHECK(rep, cond, ...)                                                       \
  do {                                                                                     \
    if (__builtin_expect(!(cond), 0))                                                      \
      (rep).report(::cgslab::ErrorKind::kInternal, nullptr, "",                            \
                   "%s:%d: check '%s' failed: %s", __FILE__, __LINE__, #cond,              \
                   ::cgslab::platform::strprintf(__VA_ARGS__).c_str());                    \
  } while (0)
