// peers.h: the allocators stress_patterns measures cgslab against, in the same process and run.
//
// glibc malloc is the process's own malloc (in a sanitizer build that is the sanitizer's
// interceptor, and the report says so). tcmalloc is NOT linked — linking it would replace malloc
// for the whole binary, cgslab's metadata and the harness included — but loaded with
// dlopen(RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND) and called through dlsym'd tc_malloc/tc_free,
// as bench/fastpath_bench.cc does; before use it is checked to own what it returns
// (MallocExtension_GetOwnership). Sanitizer runtimes refuse RTLD_DEEPBIND, so sanitizer builds
// skip tcmalloc and say why.
#pragma once

#include <cstddef>
#include <string>

namespace cgslab::stress {

struct Peer {
  std::string name;
  bool ok = false;
  void* (*malloc_fn)(size_t) = nullptr;
  void (*free_fn)(void*) = nullptr;
  std::string detail;  // where it came from, how it was checked, or why it is skipped
};

Peer load_glibc();
Peer load_tcmalloc();

}  // namespace cgslab::stress
