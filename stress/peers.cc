// peers.cc: see peers.h.
#include "peers.h"

#include <dlfcn.h>

#include <cstdlib>
#include <cstring>

namespace cgslab::stress {

namespace {
bool sanitizer_build() {
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
  return true;
#endif
#endif
  return false;
}

std::string object_of(const void* fn) {
  Dl_info info{};
  if (dladdr(fn, &info) == 0 || info.dli_fname == nullptr) return "<unknown>";
  return info.dli_fname;
}

void* glibc_malloc(size_t n) { return std::malloc(n); }
void glibc_free(void* p) { std::free(p); }
}  // namespace

Peer load_glibc() {
  Peer p;
  p.name = "glibc";
  p.ok = true;
  p.malloc_fn = glibc_malloc;
  p.free_fn = glibc_free;
  void* sym = dlsym(RTLD_DEFAULT, "malloc");
  p.detail = "malloc/free resolved to " + object_of(sym);
  if (sanitizer_build()) p.detail += " (the sanitizer's malloc: not comparable to glibc's speed)";
  return p;
}

Peer load_tcmalloc() {
  Peer p;
  p.name = "tcmalloc";
  if (sanitizer_build()) {
    p.detail = "skipped: sanitizer runtimes refuse dlopen(RTLD_DEEPBIND), and linking tcmalloc would "
               "replace malloc for the whole process";
    return p;
  }
  void* h = nullptr;
  std::string errors;
  for (const char* so : {"libtcmalloc_minimal.so.4", "libtcmalloc.so.4"}) {
    h = dlopen(so, RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (h) break;
    const char* e = dlerror();
    errors += std::string(errors.empty() ? "" : "; ") + (e ? e : so);
  }
  if (!h) {
    p.detail = "skipped: " + errors + " (apt-get install libgoogle-perftools-dev)";
    return p;
  }
  p.malloc_fn = reinterpret_cast<void* (*)(size_t)>(dlsym(h, "tc_malloc"));
  p.free_fn = reinterpret_cast<void (*)(void*)>(dlsym(h, "tc_free"));
  using OwnFn = int (*)(const void*);
  auto own = reinterpret_cast<OwnFn>(dlsym(h, "MallocExtension_GetOwnership"));
  if (!p.malloc_fn || !p.free_fn || !own) {
    p.detail = "skipped: tc_malloc, tc_free or MallocExtension_GetOwnership not found";
    return p;
  }
  void* q = p.malloc_fn(64);
  void* g = std::malloc(64);
  std::memset(q, 0xa5, 64);
  int own_q = own(q), own_g = own(g);  // 1 owned, 2 not owned
  p.free_fn(q);
  std::free(g);
  if (own_q != 1 || own_g != 2) {
    p.detail = "skipped: ownership check failed (tc_malloc pointer " + std::to_string(own_q) +
               ", glibc pointer " + std::to_string(own_g) + "; want 1 and 2)";
    return p;
  }
  p.ok = true;
  p.detail = "tc_malloc/tc_free from " + object_of(reinterpret_cast<void*>(p.malloc_fn)) +
             " (dlopen DEEPBIND; ownership checked)";
  return p;
}

}  // namespace cgslab::stress
