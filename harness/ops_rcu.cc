// ops_rcu.cc: RCU read sections (nesting at most 3), TYPESAFE_BY_RCU readers, grace periods,
// draining deferred work, and the explicit yield. A reader records the objects it read
// (RcuRef, pinning their cache) and checks them again at its outermost unlock: another task may
// free and reuse them meanwhile, but only as objects of the same cache.
#include <thread>

#include "ops.h"

namespace cgslab::harness {

Outcome op_yield(Task& t, const Op&) {
  t.w->backend.yield();
  return Outcome::kDone;
}

Outcome op_rcu_lock(Task& t, const Op&) {
  if (t.rcu_depth >= 3) return t.skip("nesting limit");
  t.w->a->rcu_read_lock();
  ++t.rcu_depth;
  return Outcome::kDone;
}

Outcome op_rcu_read(Task& t, const Op& op) {
  World& w = *t.w;
  bool own_section = t.rcu_depth == 0;
  if (own_section) {
    w.a->rcu_read_lock();
    ++t.rcu_depth;
  }
  RcuRef r{};
  {
    std::lock_guard<std::mutex> g(w.m.mu);
    int i = w.m.pick_obj(arg(op, 0), true);
    if (i >= 0) {
      const ObjRec& o = w.m.objs[size_t(i)];
      r = RcuRef{o.p, o.cobj, w.m.caches[size_t(o.cobj)].tag};
      ++w.m.caches[size_t(r.cobj)].busy;
      t.rcu_refs.push_back(r);
    }
  }
  if (r.p) w.rcu_check(r);
  if (own_section) w.rcu_unlock(t);
  if (!r.p) return t.skip("no TYPESAFE_BY_RCU object");
  t.note("read a TYPESAFE_BY_RCU object");
  return Outcome::kDone;
}

Outcome op_rcu_unlock(Task& t, const Op&) {
  if (t.rcu_depth == 0) return t.skip("not in a read section");
  t.w->rcu_unlock(t);
  return Outcome::kDone;
}

Outcome op_synchronize_rcu(Task& t, const Op&) {
  t.w->a->synchronize_rcu();
  return Outcome::kDone;
}

Outcome op_drain(Task& t, const Op& op) {
  // Settled only if no other task ran an operation since the drain began (one that ran during it
  // may have queued work the drain did not wait for).
  const uint64_t ops_before = t.w->ops;
  t.w->a->drain();
  if (t.quiescent && t.w->backend.others_quiescent() && t.w->ops == ops_before)
    t.w->check_settled("after " + print_op(op));
  return Outcome::kDone;
}

}  // namespace cgslab::harness
