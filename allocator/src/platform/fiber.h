// fiber.h: stackful coroutines for the sim backend. A Fiber is a stack and a saved stack pointer;
// fiber_switch() saves the callee-saved registers on the current stack and resumes another fiber
// (x86-64: a dozen instructions, no signal-mask syscall as swapcontext has). ASan is told about
// every switch (__sanitizer_start/finish_switch_fiber) so stack accesses on fiber stacks are
// checked like any other. Stacks are mmap'd with a guard page and pooled across runs, because a
// fuzzer creates a few fibers per input, thousands of times a second.
#pragma once

#include <cstddef>

namespace cgslab::platform::sim {

struct Fiber {
  void* sp = nullptr;          // saved stack pointer while not running
  void* stack_lo = nullptr;    // lowest usable address (above the guard page)
  size_t stack_size = 0;
  void* asan_fake_stack = nullptr;
  bool owns_stack = false;
};

// Give `f` a pooled stack and make its first fiber_switch() to it call entry() on it. entry never returns.
void fiber_init(Fiber& f, void (*entry)());
// `self` describes the OS thread's own stack (the context that called the scheduler).
void fiber_init_thread(Fiber& self);
// Switch from the running fiber `from` to `to`. exiting: `from` never runs again (its stack goes
// back to the pool once the switch is done; see fiber_release).
void fiber_switch(Fiber& from, Fiber& to, bool exiting);
// Called first thing on a new fiber's stack (completes the ASan switch).
void fiber_started();
// Return a finished fiber's stack to the pool.
void fiber_release(Fiber& f);

}  // namespace cgslab::platform::sim
