// defects.h: historical bugs re-injected as switches, to prove that the harness catches what it
// exists to catch (README.md, "Fuzzing", Defects). Only fuzz builds
// (FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION) can turn one on, with CGSLAB_DEFECT=<name> in the
// environment; in every other build defect() is constexpr false and the code folds away.
//
//   no_tryget       alloc_accounted's slow path uses the child cache without percpu_ref_tryget,
//                   so a concurrent offline can free the cache while the allocation sleeps in
//                   reclaim (the race Shakeel Butt found in the 2019 review).
//   leak_slab_ref   freeing a slab page does not drop its cache reference, so a dead cache never
//                   destroys itself (the self-destruction of Davydov 2014 never happens).
#pragma once

namespace cgslab::platform {

enum class Defect { kNoTryget, kLeakSlabRef };

#if defined(FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION)
bool defect(Defect d);
#else
constexpr bool defect(Defect) { return false; }
#endif

}  // namespace cgslab::platform
