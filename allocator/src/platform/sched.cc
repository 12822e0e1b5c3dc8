#include "sched.h"

#include <cstdio>
#include <cstdlib>

namespace cgslab::platform {

double wait_bound_seconds() {
  static const double bound = [] {
    const char* s = std::getenv("CGSLAB_WAIT_BOUND_SEC");
    double v = s ? std::atof(s) : 0;
    return v > 0 ? v : 60.0;
  }();
  return bound;
}

void report_hang(const char* what, double seconds) {
  std::fprintf(stderr, "cgslab: hang: waited %.1f s for %s (bound: CGSLAB_WAIT_BOUND_SEC)\n",
               seconds, what);
  std::fflush(stderr);
  std::abort();
}

}  // namespace cgslab::platform
