#include "fiber.h"

#include <pthread.h>
#include <sys/mman.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "compiler.h"

#if CGSLAB_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

#if !defined(__x86_64__)
#error "the sim backend's fiber switch is written for x86-64"
#endif

extern "C" void cgslab_fiber_switch(void** save_sp, void* new_sp);
asm(R"(
  .text
  .globl cgslab_fiber_switch
  .type cgslab_fiber_switch,@function
cgslab_fiber_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size cgslab_fiber_switch, .-cgslab_fiber_switch
)");

namespace cgslab::platform::sim {

namespace {
constexpr size_t kStackSize = 1 << 20;  // ASan frames are large; validate() and printing run here
constexpr size_t kGuard = 4096;
std::vector<void*>& pool() {
  static std::vector<void*>* p = new std::vector<void*>;
  return *p;
}
}  // namespace

void fiber_init(Fiber& f, void (*entry)()) {
  void* base;
  if (!pool().empty()) {
    base = pool().back();
    pool().pop_back();
  } else {
    base = mmap(nullptr, kStackSize + kGuard, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                -1, 0);
    if (base == MAP_FAILED) {
      std::fprintf(stderr, "cgslab sim: cannot map a fiber stack\n");
      std::abort();
    }
    mprotect(base, kGuard, PROT_NONE);
  }
  f.stack_lo = static_cast<char*>(base) + kGuard;
  f.stack_size = kStackSize;
  f.owns_stack = true;
  f.asan_fake_stack = nullptr;
#if CGSLAB_ASAN
  // A reused stack may still carry redzones of frames that never returned: the entry frame and
  // the final switch, all at the top of the stack (a failed run aborts instead of reusing).
  constexpr size_t kTop = 64 << 10;
  __asan_unpoison_memory_region(static_cast<char*>(f.stack_lo) + f.stack_size - kTop, kTop);
#endif
  // Initial frame: six zeroed callee-saved registers, then entry as the return address, then a
  // dummy return address for entry so that the stack is ABI-aligned when entry starts.
  auto* top = reinterpret_cast<uintptr_t*>(static_cast<char*>(f.stack_lo) + f.stack_size);
  top[-1] = 0;
  top[-2] = reinterpret_cast<uintptr_t>(entry);
  for (int i = 3; i <= 8; ++i) top[-i] = 0;
  f.sp = top - 8;
}

void fiber_init_thread(Fiber& self) {
  // pthread_getattr_np reads /proc/self/maps for the main thread: once per thread, not per run.
  static thread_local void* addr = nullptr;
  static thread_local size_t size = 0;
  if (!size) {
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
      pthread_attr_getstack(&attr, &addr, &size);
      pthread_attr_destroy(&attr);
    }
  }
  self.stack_lo = addr;
  self.stack_size = size;
  self.owns_stack = false;
}

void fiber_switch(Fiber& from, Fiber& to, bool exiting) {
#if CGSLAB_ASAN
  __sanitizer_start_switch_fiber(exiting ? nullptr : &from.asan_fake_stack, to.stack_lo, to.stack_size);
#else
  (void)exiting;
#endif
  cgslab_fiber_switch(&from.sp, to.sp);
#if CGSLAB_ASAN
  __sanitizer_finish_switch_fiber(from.asan_fake_stack, nullptr, nullptr);
#endif
}

void fiber_started() {
#if CGSLAB_ASAN
  __sanitizer_finish_switch_fiber(nullptr, nullptr, nullptr);
#endif
}

void fiber_release(Fiber& f) {
  if (!f.owns_stack) return;
  pool().push_back(static_cast<char*>(f.stack_lo) - kGuard);
  f.owns_stack = false;
}

}  // namespace cgslab::platform::sim
