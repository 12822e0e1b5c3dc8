// validate.h: the consistency check of one allocator (defined in validate.cc).
#pragma once

#include <string>

namespace cgslab {

class Memcg;
class MemcgCaches;
class Slab;
class PageAlloc;

// Takes cgroup_mutex, slab_mutex and charge_lock; the caller is quiescent otherwise (no cpu slot
// owned). Appends one line per broken invariant to *out (if given); false if any broke.
bool validate_allocator(Memcg& memcg, MemcgCaches& caches, Slab& slab, PageAlloc& pages, std::string* out);

}  // namespace cgslab
