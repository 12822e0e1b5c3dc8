// minimize.h: `cgslab-prog minimize`, the structural minimizer for failing harness programs.
//
// Design. A sim-mode run is a pure function of the program (the scheduler is deterministic and
// the trace hash proves it), so a failure is a property of the program alone and can be shrunk
// the way syzkaller's prog/minimization.go shrinks its programs: propose a smaller program, run
// it, keep it only if it fails with the same signature. Every run is a child process
// (posix_spawn of this binary's `replay`): an oracle failure and a sanitizer report both abort
// the process, and a child also contains a hang (each has a time bound, then SIGKILL). The child's
// output is classified into a signature: the oracle's message with numbers masked for a harness
// failure, the report kind and the top allocator frames for a sanitizer report. The passes, in
// order: a PCT schedule becomes the explicit schedule it executed (the child records each
// scheduling decision, sim.h Hooks::on_decide, into a shared file mapping that survives the
// abort); then, until a round changes nothing or the time limit is reached: remove whole tasks,
// remove operations and schedule steps (halving chunks down to single ones), merge and shorten
// schedule steps, and lower argument values (handles towards 0, flags bit by bit, sizes and
// counts towards the smallest). Every candidate's result is cached by its encoding.
#pragma once

namespace cgslab::harness {

// argv[0] is the program, argv[1] "minimize"; returns the exit status (0: minimized or, with
// --signature-only, reproduced; 1: does not fail or an error; 2: usage).
int minimize_main(int argc, char** argv);

}  // namespace cgslab::harness
