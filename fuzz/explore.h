// explore.h: `cgslab-prog explore`, bounded-exhaustive schedule exploration of one program.
//
// Design. A sim-mode run is a pure function of (program, schedule). The default schedule lets
// the running task go on until it waits or ends, then runs a runnable service (RCU, work queue),
// else the next program task in id order; any other schedule is the default with deviations at
// numbered decisions (sim.h Deviation). The search bounds a cost: with --delays K (the default;
// Emmi, Qadeer and Rakamaric, "Delay-bounded scheduling", POPL 2011) every deviation costs 1;
// with --preemptions K (CHESS's iterative context bounding) only a deviation where the running
// task could have gone on does, and the others are free. Free choices at every wait make
// preemption bounding exponential in the number of waits (a 7-op program has 14,193 schedules
// with no preemption at all), while the number of schedules with K delays grows as
// decisions^K. For b = 0..K, a depth-first walk of the schedule tree re-executes the program once
// per node (stateless: no state is saved), each node's children being its run's later decisions
// times the other tasks that could have run there; a node is counted at the bound equal to its
// cost, so schedules come in order of cost and each is counted once. Every oracle of exec_sim
// runs on every schedule.
//
// The walk runs in a forked child: a failure (oracle or sanitizer) aborts it, and the parent reads
// the failing run's decisions from a shared mapping and writes them, run-length encoded, as the
// program's explicit schedule (PREFIX.txt), which `cgslab-prog replay` runs to the same failure;
// the parent checks that by replaying it in another child. Every child has a time bound.
#pragma once

#include <cstdint>
#include <string>

#include "program.h"

namespace cgslab::harness {

struct ExploreOptions {
  unsigned bound = 2;                 // K
  bool delays = true;                 // K bounds every deviation (else only preemptions)
  uint64_t max_schedules = 10000000;  // stop (incomplete) after this many runs
  double time_limit_s = 600;          // stop (incomplete) after this long
  bool validate_each_op = true;
  std::string out_prefix;             // failing schedule: PREFIX.txt (default: NAME.explore)
};

// Explores p (its own schedule is ignored); `name` is the file it came from. Returns the exit
// status: 0 no failure (complete or stopped by a limit: the output says which), 1 a failing
// schedule was found (or an error).
int explore(const Program& p, const std::string& name, const ExploreOptions& o);

}  // namespace cgslab::harness
