// ops_fault.cc: pressure and fault injection: a shrinker that frees the program's reclaimable
// objects (at most 2 per run; the allocator calls it from reclaim, on any task), and failing the
// nth next page mapping or internal allocation.
#include "ops.h"

namespace cgslab::harness {

Outcome op_register_shrinker(Task& t, const Op& op) {
  World& w = *t.w;
  if (w.shrinkers.fetch_add(1) >= 2) return t.skip("shrinker limit");
  size_t batch = arg(op, 0);
  w.a->register_shrinker([&w, batch](const ShrinkControl&) { return w.free_some(-1, batch, true); });
  return Outcome::kDone;
}

Outcome op_fail_mapping(Task& t, const Op& op) {
  t.w->a->fail_nth_mapping_for_testing(unsigned(arg(op, 0)));
  return Outcome::kDone;
}

Outcome op_fail_internal(Task& t, const Op& op) {
  t.w->a->fail_nth_internal_alloc_for_testing(unsigned(arg(op, 0)));
  return Outcome::kDone;
}

}  // namespace cgslab::harness
