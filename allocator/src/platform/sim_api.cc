// sim_api.cc: the public sim entry point (include/cgslab/sim.h) over the scheduler
// (sim_scheduler.h), so that the harness never includes the allocator's private headers.
#include "cgslab/sim.h"

#include "platform/sim_scheduler.h"

namespace cgslab::sim {

namespace ps = platform::sim;

Result run(const Policy& policy, const Hooks& hooks, std::function<void()> main_fn) {
  ps::Policy p;
  p.kind = policy.kind;
  p.steps = policy.steps;
  p.deviations = policy.deviations;
  p.seed = policy.seed;
  p.depth = policy.depth;
  p.pct_horizon = policy.pct_horizon;
  p.labels = policy.labels;
  ps::Hooks h;
  h.on_switch = hooks.on_switch;
  h.on_trace = hooks.on_trace;
  h.on_fail = hooks.on_fail;
  h.on_decide = hooks.on_decide;
  ps::RunResult r = ps::run(p, h, std::move(main_fn));
  return Result{r.trace_hash, r.steps, r.switches};
}

void start_policy() { ps::start_policy(); }
int spawn(const char* name, std::function<void()> fn) { return ps::spawn(name, std::move(fn), false); }
void join(int id) { ps::join(id); }
void op_point() { ps::point(platform::Site::kOp, "op"); }
void yield() { ps::point(platform::Site::kYield, "yield"); }
void set_boundary(bool at_boundary) { ps::set_boundary(at_boundary); }
bool others_quiescent() { return ps::others_quiescent(); }
int current_id() { return ps::current_id(); }
void atomically(const std::function<void()>& fn) {
  ps::NoSwitchScope ns;
  fn();
}

}  // namespace cgslab::sim
