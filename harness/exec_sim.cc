// exec_sim.cc: exec_sim, the deterministic way to run a program (library cgslab_harness_sim).
// Tasks are sim fibers (cgslab/sim.h); a Task is found by the fiber's id. Single OS thread.
#include <vector>

#include "cgslab/sim.h"
#include "ops.h"

namespace cgslab::harness {

namespace {

std::vector<Task*> g_task_by_sim_id;  // one run at a time (the scheduler is not reentrant)

Task* current() {
  int id = sim::current_id();
  return id >= 0 && size_t(id) < g_task_by_sim_id.size() ? g_task_by_sim_id[size_t(id)] : nullptr;
}
void bind(Task* t) {
  size_t id = size_t(sim::current_id());
  if (g_task_by_sim_id.size() <= id) g_task_by_sim_id.resize(id + 1, nullptr);
  g_task_by_sim_id[id] = t;
}

const Backend kSim{
    "sim", false, &current, &bind, &sim::op_point, &sim::set_boundary, &sim::others_quiescent, &sim::yield,
    &sim::atomically,
};

}  // namespace

RunStats exec_sim(const Program& p, const RunOptions& opts) {
  g_task_by_sim_id.clear();
  World w(p, opts, kSim);
  sim::Policy pol;
  if (opts.explore) {
    pol.kind = sim::PolicyKind::kExplore;
    pol.deviations = *opts.explore;
  } else {
    pol.kind = p.pct ? sim::PolicyKind::kPct : sim::PolicyKind::kExplicit;
    for (const SchedStep& s : p.steps) pol.steps.push_back({s.task, s.count});
  }
  pol.seed = p.seed;
  pol.depth = p.depth;
  pol.pct_horizon = pct_horizon(p);
  pol.labels = schedule_labels(p);
  sim::Hooks hooks;
  hooks.on_switch = opts.on_switch;
  if (opts.trace) hooks.on_trace = opts.trace;
  hooks.on_decide = opts.on_decide;
  hooks.on_fail = [&w](const std::string& m) { w.fail(m); };
  sim::Result r = sim::run(pol, hooks, [&] {
    w.setup(2);
    std::vector<int> ids;
    for (int i = 0; i < p.ntasks; ++i)
      ids.push_back(sim::spawn(("t" + std::to_string(i)).c_str(), [&w, i] { w.run_task(i); }));
    sim::start_policy();
    for (int id : ids) sim::join(id);
    w.teardown();
  });
  RunStats s = w.stats();
  s.trace_hash = r.trace_hash;
  s.steps = r.steps;
  s.switches = r.switches;
  return s;
}

void warm_up_sim(Dialect d) {
  uint8_t bytes[600];
  uint32_t x = 0x9e3779b9u;
  for (int i = 0; i < 32; ++i) {
    for (uint8_t& b : bytes) {
      x = x * 1664525u + 1013904223u;
      b = uint8_t(x >> 24);
    }
    exec_sim(decode(bytes, sizeof bytes, d), RunOptions{});
  }
}

}  // namespace cgslab::harness
