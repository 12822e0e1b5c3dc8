// sim_scheduler.h: the sim backend's scheduler. Tasks are fibers (fiber.h) on the calling OS
// thread; exactly one runs at a time and control changes hands only at schedule points
// (CGSLAB_SCHED), waits (wait_spin, Monitor waits) and task ends. At each of them the policy picks
// the next task, so a run is a pure function of (program, policy): the same input gives the same
// interleaving, bit for bit, and the trace hash proves it.
//
// Policies: explicit (a list of "run task T for N schedule points" steps, from fuzz input bytes;
// when it runs out, the current task keeps running until it waits or ends, then the next task
// in id order), PCT (Burckhardt et al.: random task priorities from a seed, the highest-priority
// runnable task runs, and at d-1 random steps the running task drops below all others) and
// explore (a default schedule, except at a few numbered decisions where a given task runs
// instead: the unit of cgslab-prog explore's search). Explore's default is the explicit one's
// fallback with the services first: when the running task waits or ends, a runnable service
// (RCU, the work queue) runs before the next program task, the way the kernel's kthreads get the
// CPU as soon as a caller blocks, so that a deviation is spent on the programs' tasks only.
//
// Waits: a waiting task is resumed only after a progress event since it last checked its
// condition (an epoch counter), so a spinning wait costs one step, not a hang. Progress events are
// the ones that can end a wait: unlock, reference put, RCU read unlock, cpu slot release, Monitor
// notify, task start and end. When nobody can run, every waiter re-checks once more (a safety
// net for an unsignalled event) before the run is declared deadlocked. When
// no task can run, that is a deadlock: the run fails with every task's wait reason. More than
// Policy::max_steps schedule points is reported as a livelock. Failures go to Hooks::on_fail
// (default: print and abort), never a hang.
//
// Owns: the task table, the policy state, the trace hash. Single-threaded by construction.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "cgslab/sim.h"
#include "sched.h"
#include "task.h"

namespace cgslab::platform::sim {

// The schedule vocabulary is the public one (cgslab/sim.h), so that sim_api.cc passes it through.
using ScheduleStep = ::cgslab::sim::Step;
using Decision = ::cgslab::sim::Decision;
using Deviation = ::cgslab::sim::Deviation;

struct Policy {
  using Kind = ::cgslab::sim::PolicyKind;
  Kind kind = Kind::kExplicit;
  std::vector<ScheduleStep> steps;  // explicit
  uint64_t seed = 0;                // pct
  unsigned depth = 3;               // pct: d, so d-1 priority change points
  uint64_t pct_horizon = 2048;      // pct: change points are drawn from [1, horizon]
  std::vector<Deviation> deviations;  // explore: ascending by decision
  uint64_t max_steps = 1u << 21;    // more schedule points than this: livelock
  std::vector<std::string> labels;  // task names in schedule-index order ("t0", ..., "rcu", "wq", "main")
};

struct Hooks {
  void (*on_switch)(uint32_t edge) = nullptr;             // interleaving coverage
  std::function<void(const std::string&)> on_trace;        // one line per switch and wait
  std::function<void(const std::string&)> on_fail;         // must not return; default: abort
  std::function<void(const Decision&)> on_decide;          // each decision after start_policy()
};

struct RunResult {
  uint64_t trace_hash = 0;
  uint64_t steps = 0;
  uint64_t switches = 0;
};

// Run main_fn as task "main" until it returns; every task it (or the platform) spawned must have
// finished by then. Not reentrant.
RunResult run(const Policy& policy, const Hooks& hooks, std::function<void()> main_fn);
bool running();

// From now on the policy decides (until then the running task keeps running): the harness calls
// this once the program's tasks exist, so that no schedule step is spent on setup.
void start_policy();

// Start a task (service: a platform service thread such as "rcu" or "wq"). Returns its id.
int spawn(const char* name, std::function<void()> fn, bool service);
// Wait until task `id` has finished.
void join(int id);

// Schedule points and waits (sched.h routes CGSLAB_SCHED and wait_spin here).
void point(Site site, const char* where);
// A progress event without a schedule point (cpu slot release, Monitor notify).
void progress();
void notify(const void* chan);
// chan: wait for notify(chan) instead of any progress event (monitors, joins, locks).
void wait(const char* what, bool idle, bool first, const void* chan = nullptr);

// The running task is (not) between operations: used to find states where validate() may run.
void set_boundary(bool at_boundary);
// Every other task is finished, at an operation boundary, or an idle service.
bool others_quiescent();
const char* current_name();
int current_id();
uint64_t current_step();

// While one exists, schedule points do not switch (validate() and teardown checks run atomically).
class NoSwitchScope {
 public:
  NoSwitchScope();
  ~NoSwitchScope();
  NoSwitchScope(const NoSwitchScope&) = delete;
  NoSwitchScope& operator=(const NoSwitchScope&) = delete;
};

[[noreturn]] void fail(const std::string& msg);

}  // namespace cgslab::platform::sim
