#include <string>
#include "report.h"

#include "defects.h"

#include <cstdio>
#include <cstdlib>

namespace cgslab {

const char* error_kind_name(ErrorKind k) {
  switch (k) {
    case ErrorKind::kDoubleFree: return "double-free";
    case ErrorKind::kInvalidFree: return "invalid-free";
    case ErrorKind::kWrongCache: return "wrong-cache";
    case ErrorKind::kUseAfterDestroy: return "use-after-destroy";
    case ErrorKind::kOfflineCgroup: return "offline-cgroup";
    case ErrorKind::kBadArgument: return "bad-argument";
    case ErrorKind::kCacheBusy: return "cache-busy";
    case ErrorKind::kLeak: return "leak";
    case ErrorKind::kInternal: return "internal";
  }
  return "unknown";
}

void default_error_handler(const Error& e) {
  std::fprintf(stderr, "cgslab: %s: %s\n", error_kind_name(e.kind), e.message.c_str());
  std::fflush(stderr);
  std::abort();
}

namespace platform {

#if defined(FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION)
bool defect(Defect d) {
  static const int on = [] {
    const char* s = std::getenv("CGSLAB_DEFECT");
    if (!s || !*s) return -1;
    static const char* const names[] = {
#define CGSLAB_DEFECT_NAME(e, name) name,
        CGSLAB_DEFECTS(CGSLAB_DEFECT_NAME)
#undef CGSLAB_DEFECT_NAME
    };
    std::string all;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; ++i) {
      if (std::string(s) == names[i]) return int(i);
      all += (i ? ", " : "") + std::string(names[i]);
    }
    std::fprintf(stderr, "cgslab: unknown CGSLAB_DEFECT '%s' (%s)\n", s, all.c_str());
    std::exit(2);
  }();
  return on == int(d);
}
#endif

static std::string vformat(const char* fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int n = std::vsnprintf(nullptr, 0, fmt, ap2);
  va_end(ap2);
  std::string s(n > 0 ? size_t(n) : 0, '\0');
  if (n > 0) std::vsnprintf(s.data(), size_t(n) + 1, fmt, ap);
  return s;
}

std::string strprintf(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::string s = vformat(fmt, ap);
  va_end(ap);
  return s;
}

void Reporter::report(ErrorKind kind, const void* addr, const std::string& cache, const char* fmt,
                      ...) {
  va_list ap;
  va_start(ap, fmt);
  Error e{kind, vformat(fmt, ap), addr, cache};
  va_end(ap);
  ++count_;
  if (handler_)
    handler_(e);
  else
    default_error_handler(e);
}

}  // namespace platform
}  // namespace cgslab
