// ops.h: what a perform function sees. World is one run of one program: the allocator, the model,
// the error checker and the backend (sim or threads); Task is one program task's private state
// (its cgroup scopes, its RCU read section, its error expectation). Perform functions
// op_<name>(Task&, const Op&) are declared here from ops.def and defined in ops_<group>.cc; they
// return kSkipped (with a note saying why) when the model has nothing they can act on, which
// also tells the executor not to expect the op's error. The attributes of ops.def (RCU skips,
// nowait, quiescent-only, expected errors) are applied by World::exec before the call, never by
// a perform function.
//
// Locking: see model.h (Model::mu never held across an allocator call). Task is touched only by
// its own task. World's counters are atomics.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cgslab/cgslab.h"
#include "exec.h"
#include "model.h"
#include "oracles.h"
#include "program.h"

namespace cgslab::harness {

struct Task;

// The seams between the two ways of running a program (exec_sim.cc, exec_threads.cc).
struct Backend {
  const char* mode;                   // "sim" or "threads"
  bool real_threads;
  Task* (*current)();                 // the calling task's Task, or nullptr (service, setup)
  void (*bind)(Task*);
  void (*op_point)();                 // sim: the schedule point at an operation boundary
  void (*set_boundary)(bool at);      // sim: the task is (not) between operations
  bool (*others_quiescent)();         // every other task at a boundary (threads: never known)
  void (*yield)();
  // Runs fn with no task switch (sim); validate() and quiescent reads need that.
  void (*atomically)(const std::function<void()>& fn);
};

enum class Outcome { kDone, kSkipped };

struct Scope {
  std::unique_ptr<TaskCgroupScope> attach;
  std::unique_ptr<RemoteChargeScope> remote;
};
struct RcuRef {
  void* p;
  int cobj;
  uint32_t tag;
};

class World;

struct Task {
  World* w = nullptr;
  int idx = -1;
  const Op* op = nullptr;
  std::vector<Scope> scopes;
  int rcu_depth = 0;
  std::vector<RcuRef> rcu_refs;
  bool nowait = false;  // inside an RCU read section: allocations must not sleep
  bool quiescent = false;  // the other tasks are at operation boundaries (sim)
  Expectation expect;

  Outcome skip(const std::string& why);
  void note(const std::string& s);
};

class World {
 public:
  World(const Program& p, const RunOptions& o, const Backend& b);
  ~World();

  void setup(unsigned slots);
  void run_task(int idx);
  void teardown();
  RunStats stats() const;

  [[noreturn]] void fail(const std::string& what);
  void validate(const char* when, const Op& op);  // the label "<when> <op>" is built on failure only
  // check_settled on the children of every cache the program created; call right after
  // drain() with no other task inside an operation.
  void check_settled(const std::string& when);
  // An object just allocated by t is charged to t's charge target or one of its ancestors.
  void check_charged_to(Task& t, const void* p);

  // Shared helpers of the perform functions.
  Cache* pin_cache(uint64_t raw, int* cobj);  // a live cache handle, pinned until unpin_cache
  void unpin_cache(int cobj);
  bool alloc_one(Task& t, int cobj, Cache* c, unsigned gfp);
  void free_obj(const ObjRec& o, bool use_kfree);
  size_t free_some(int owner, size_t n, bool reclaimable_only);
  void rcu_check(const RcuRef& r);
  void rcu_unlock(Task& t);

  const Program& prog;
  const RunOptions& opts;
  const Backend& backend;
  std::unique_ptr<ErrorChecker> errors;  // outlives a: a's on_error calls it
  std::unique_ptr<Allocator> a;
  Model m;
  std::vector<Task> tasks;
  std::atomic<int> shrinkers{0};
  std::atomic<uint64_t> ops{0};
  std::atomic<uint64_t> validations{0};
  std::atomic<uint64_t> introspections{0};

 private:
  void exec(Task& t, const Op& op);
};

// The ctor of caches created with the ctor flag: a pattern RCU readers accept as "this type".
inline constexpr uint64_t kCtorPattern = 0xC7057C7057C7057Cull;

#define OP(name, group, dialect, attrs, err, a0, a1, a2) Outcome op_##name(Task& t, const Op& op);
#include "ops.def"
#undef OP

}  // namespace cgslab::harness
