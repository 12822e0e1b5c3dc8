// cgslab/sim.h: the public entry point of the sim backend (library cgslab_sim): run a function
// as a set of deterministic tasks (fibers on the calling OS thread), scheduled at every schedule
// point by an explicit step list, PCT or explore's deviations from the default schedule, with
// trace and coverage hooks. A run is a pure function
// of (program, policy); the trace hash proves it. Only code linked against cgslab_sim may call
// these. Single-threaded by construction; not reentrant.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace cgslab::sim {

struct Step {
  uint8_t task;   // index into Policy::labels (modulo its size)
  uint8_t count;  // schedule points to run it for (0 counts as 1)
};

// One scheduling decision: every schedule point, wait and task end after start_policy().
struct Decision {
  int label = -1;                 // the task chosen: its Policy::labels index; -1 for a task with no label
  bool current_runnable = false;  // the deciding task could have gone on: any other choice preempts it
  uint32_t runnable = 0;          // bit i: the task labelled i could have been chosen
};

// At decision number `decision` (counted from 0 at start_policy()) run the task labelled `label`.
struct Deviation {
  uint32_t decision;
  uint8_t label;
  bool operator==(const Deviation&) const = default;
};

// explicit: the steps; when they run out, the running task continues until it waits or ends,
// then the next task in id order. pct: priorities from seed, depth-1 change points. explore: the
// explicit fallback with the services first, except at the deviations.
enum class PolicyKind : uint8_t { kExplicit, kPct, kExplore };

struct Policy {
  PolicyKind kind = PolicyKind::kExplicit;
  std::vector<Step> steps;            // explicit
  std::vector<Deviation> deviations;  // explore, ascending by decision
  uint64_t seed = 0;                // pct
  unsigned depth = 3;               // pct: d, so d-1 priority change points
  uint64_t pct_horizon = 2048;      // pct: change points are drawn from the first horizon steps
  std::vector<std::string> labels;  // task names in schedule-index order ("t0", ..., "rcu", "wq", "main")
};

struct Hooks {
  void (*on_switch)(uint32_t edge) = nullptr;        // interleaving coverage: one edge per switch
  std::function<void(const std::string&)> on_trace;  // one line per switch and wait
  std::function<void(const std::string&)> on_fail;   // deadlock/livelock; must not return
  // Every scheduling decision after start_policy(), in order. Under an explicit schedule each
  // decision consumes one point of the current step, so the chosen labels, run-length encoded, are
  // the explicit schedule that replays the run (cgslab-prog minimize turns PCT schedules into it,
  // cgslab-prog explore its failing schedules).
  std::function<void(const Decision&)> on_decide;
};

struct Result {
  uint64_t trace_hash = 0;
  uint64_t steps = 0;
  uint64_t switches = 0;
};

// Runs main_fn as task "main" until it returns; every task it spawned must have finished.
Result run(const Policy& policy, const Hooks& hooks, std::function<void()> main_fn);
// From now on the policy decides (until then the running task keeps running).
void start_policy();
int spawn(const char* name, std::function<void()> fn);
void join(int id);
// A schedule point at a harness operation boundary / an explicit yield.
void op_point();
void yield();
// The running task is (not) between operations; others_quiescent(): every other task is
// finished, at a boundary, or an idle service (the states where validate() may run).
void set_boundary(bool at_boundary);
bool others_quiescent();
int current_id();  // -1 outside a run
// Runs fn with no task switch.
void atomically(const std::function<void()>& fn);

}  // namespace cgslab::sim
