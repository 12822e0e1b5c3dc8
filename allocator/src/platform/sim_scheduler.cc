#include "sim_scheduler.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "fiber.h"
#include "report.h"

namespace cgslab::platform {

namespace sim {
namespace {

struct SimTask {
  enum class State : uint8_t { kReady, kWaiting, kDone };
  int id = 0;
  std::string name;
  bool service = false;
  std::function<void()> fn;
  Fiber fiber;
  Task task;
  State state = State::kReady;
  uint64_t wait_epoch = 0;
  const char* wait_what = "";
  const void* wait_chan = nullptr;  // non-null: woken only by notify(chan) (or the re-poll)
  bool woken = false;
  bool idle = false;
  bool boundary = true;  // not started yet: outside the allocator (tasks and services clear it)
  uint64_t prio = 0;
  uint32_t site_hash = 0;  // where it last stopped (coverage)
  Site site = Site::kOp;
  const char* where = "start";
};

uint64_t splitmix(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint32_t str_hash(const char* s) {
  uint32_t h = 2166136261u;
  for (; *s; ++s) h = (h ^ uint8_t(*s)) * 16777619u;
  return h;
}

// __func__ strings have stable contents but not stable addresses (PIE), so the coverage and trace
// hashes use the contents; a small pointer-keyed cache keeps that off the hot path.
uint32_t where_hash(const char* where) {
  struct Entry {
    const char* p;
    uint32_t h;
  };
  static Entry cache[256];
  Entry& e = cache[(reinterpret_cast<uintptr_t>(where) >> 3) & 255];
  if (e.p != where) e = {where, str_hash(where)};
  return e.h;
}

uint64_t mix(uint64_t h, uint64_t v) { return (h ^ v) * 0x100000001b3ull + (h >> 29); }

struct Sched {
  Policy pol;
  Hooks hooks;
  std::vector<std::unique_ptr<SimTask>> tasks;
  std::vector<SimTask*> by_label;
  SimTask* cur = nullptr;
  Fiber os;
  uint64_t epoch = 1;
  RunResult res;
  size_t step_index = 0;
  unsigned step_used = 0;
  uint64_t rng = 0;
  std::vector<uint64_t> change_points;
  size_t next_cp = 0;
  size_t next_dev = 0;       // explore: the next deviation to apply
  uint32_t decisions = 0;    // decisions made since start_policy()
  int no_switch = 0;
  bool policy_started = false;
  bool repolled = false;  // waiters were re-polled and no progress event happened since
  int generic_waiters = 0;  // waiting tasks with no channel (woken by any progress event)
  int chan_waiters = 0;     // waiting tasks with a channel
  bool dirty = true;        // the runnable set may have changed since the last choose()
};

Sched* g = nullptr;
Task g_outside_task;  // current_task() outside a run (e.g. the OS thread before run())

bool runnable(const SimTask* t) {
  if (t->state == SimTask::State::kReady) return true;
  if (t->state != SimTask::State::kWaiting) return false;
  return t->wait_chan ? t->woken : t->wait_epoch < g->epoch;
}

std::string describe_tasks() {
  std::string s;
  for (auto& t : g->tasks) {
    s += "  task " + t->name + ": ";
    switch (t->state) {
      case SimTask::State::kDone: s += "finished"; break;
      case SimTask::State::kReady: s += "runnable"; break;
      case SimTask::State::kWaiting: s += std::string("waiting for ") + t->wait_what; break;
    }
    s += std::string(" (last point: ") + site_name(t->site) + " in " + t->where + ")\n";
  }
  return s;
}

// The policy has nothing to say at this decision: the running task may simply go on.
bool quiet_step(const Sched& s) {
  switch (s.pol.kind) {
    case Policy::Kind::kExplicit: return s.step_index >= s.pol.steps.size();
    case Policy::Kind::kPct:
      return s.next_cp >= s.change_points.size() || s.res.steps < s.change_points[s.next_cp];
    case Policy::Kind::kExplore: return true;  // its choice is the default; decide() applies deviations
  }
  return false;
}

SimTask* choose() {
  Sched& s = *g;
  SimTask* c = s.cur;
  // Fast path: nothing woke up, the running task can go on, and the policy has nothing to say
  // at this step (explicit schedule used up, or PCT with no change point now).
  if (!s.dirty && c->state == SimTask::State::kReady && s.policy_started && quiet_step(s)) return c;
  s.dirty = false;
  if (s.pol.kind != Policy::Kind::kPct || !s.policy_started) {
    // A choice that finds nobody to run consumes no step: the re-poll that follows chooses again,
    // and a replay of the recorded decisions must find the same steps left.
    const size_t step_index = s.step_index;
    const unsigned step_used = s.step_used;
    while (s.policy_started && s.step_index < s.pol.steps.size()) {
      const ScheduleStep& e = s.pol.steps[s.step_index];
      SimTask* t = s.by_label.empty() ? nullptr : s.by_label[e.task % s.by_label.size()];
      if (t && runnable(t)) {
        if (++s.step_used >= std::max<unsigned>(1, e.count)) {
          ++s.step_index;
          s.step_used = 0;
        }
        return t;
      }
      ++s.step_index;
      s.step_used = 0;
    }
    if (runnable(c)) return c;
    if (s.pol.kind == Policy::Kind::kExplore && s.policy_started)
      for (auto& t : s.tasks)
        if (t->service && runnable(t.get())) return t.get();
    size_t n = s.tasks.size();
    for (size_t k = 1; k <= n; ++k) {
      SimTask* t = s.tasks[(size_t(c->id) + k) % n].get();
      if (runnable(t)) return t;
    }
    s.step_index = step_index;
    s.step_used = step_used;
    return nullptr;
  }
  // Every change point reached (several may fall on one step) lowers the running task once more.
  while (s.next_cp < s.change_points.size() && s.res.steps >= s.change_points[s.next_cp]) {
    c->prio = s.change_points.size() - s.next_cp;  // below every initial priority
    ++s.next_cp;
  }
  SimTask* best = nullptr;
  for (auto& t : s.tasks)
    if (runnable(t.get()) && (!best || t->prio > best->prio)) best = t.get();
  return best;
}

// Completes the decision of task c (at a point, a wait or its end) that choose() made as n:
// applies explore's deviation due now, counts it, and reports it to Hooks::on_decide.
SimTask* decide(SimTask* c, SimTask* n) {
  Sched& s = *g;
  if (!s.policy_started || !n) return n;
  if (s.pol.kind == Policy::Kind::kExplore && s.next_dev < s.pol.deviations.size() &&
      s.pol.deviations[s.next_dev].decision == s.decisions) {
    const Deviation& d = s.pol.deviations[s.next_dev++];
    SimTask* t = d.label < s.by_label.size() ? s.by_label[d.label] : nullptr;
    if (!t || !runnable(t))
      fail(strprintf("explore: at decision %u the schedule runs label %u, which cannot run there (a schedule "
                     "derived from another run, or a run that is not deterministic); tasks:\n",
                     s.decisions, unsigned(d.label)) +
           describe_tasks());
    n = t;
  }
  ++s.decisions;
  if (!s.hooks.on_decide) return n;  // the hot path stops here
  Decision d;
  d.current_runnable = runnable(c);
  for (size_t i = 0; i < s.by_label.size() && i < 32; ++i) {
    if (s.by_label[i] == n) d.label = int(i);
    if (s.by_label[i] && runnable(s.by_label[i])) d.runnable |= 1u << i;
  }
  s.hooks.on_decide(d);
  return n;
}

void switch_to(SimTask* from, SimTask* to, bool exiting) {
  Sched& s = *g;
  ++s.res.switches;
  s.res.trace_hash = mix(s.res.trace_hash, 0x5000u + uint64_t(to->id));
  if (s.hooks.on_switch) s.hooks.on_switch(from->site_hash * 31u + to->site_hash);
  if (s.hooks.on_trace) {
    char line[256];
    std::snprintf(line, sizeof line, "  [step %" PRIu64 "] %s @%s(%s) -> %s @%s(%s)", s.res.steps,
                  from->name.c_str(), site_name(from->site), from->where, to->name.c_str(), site_name(to->site),
                  to->where);
    s.hooks.on_trace(line);
  }
  s.cur = to;
  fiber_switch(from->fiber, to->fiber, exiting);
  // Resumed: g->cur was set to us by whoever switched here.
}

// Count a step, pick the next task and switch to it (or fail when nobody can run).
void reschedule(SimTask* c) {
  Sched& s = *g;
  if (++s.res.steps > s.pol.max_steps)
    fail(strprintf("livelock: more than %" PRIu64 " schedule points; tasks:\n", s.pol.max_steps) + describe_tasks());
  s.res.trace_hash = mix(s.res.trace_hash, (uint64_t(c->id) << 32) ^ c->site_hash);
  SimTask* n = choose();
  if (!n && !s.repolled) {
    // Safety net for a wake-up event the platform did not signal: let every waiter re-check
    // once; only when that changes nothing is it a deadlock.
    s.repolled = true;
    ++s.epoch;
    s.dirty = true;
    for (auto& t : s.tasks) t->woken = true;
    n = choose();
  }
  if (!n) fail("deadlock: no task can run; tasks:\n" + describe_tasks());
  n = decide(c, n);
  if (n != c) switch_to(c, n, false);
}

void task_entry() {
  fiber_started();
  SimTask* t = g->cur;
  t->fn();
  t->fn = nullptr;
  t->state = SimTask::State::kDone;
  t->where = "end";
  g->dirty = true;
  progress();
  notify(t);
  if (t->id == 0) {
    for (auto& o : g->tasks)
      if (o->state != SimTask::State::kDone)
        fail("task " + o->name + " is still running after main returned; tasks:\n" + describe_tasks());
    ++g->res.switches;
    fiber_switch(t->fiber, g->os, true);
  }
  SimTask* n = choose();
  if (!n) {
    ++g->epoch;
    g->dirty = true;
    for (auto& o : g->tasks) o->woken = true;
    n = choose();
  }
  if (!n) fail("deadlock after task " + t->name + " ended; tasks:\n" + describe_tasks());
  n = decide(t, n);
  switch_to(t, n, true);
  std::abort();  // a finished task is never resumed
}

}  // namespace

RunResult run(const Policy& policy, const Hooks& hooks, std::function<void()> main_fn) {
  if (g) {
    std::fprintf(stderr, "cgslab sim: run() is not reentrant\n");
    std::abort();
  }
  Sched s;
  s.pol = policy;
  s.hooks = hooks;
  s.rng = policy.seed ^ 0x243f6a8885a308d3ull;
  if (policy.kind == Policy::Kind::kPct) {
    for (unsigned i = 1; i < std::max(1u, policy.depth); ++i)
      s.change_points.push_back(1 + splitmix(s.rng) % std::max<uint64_t>(1, policy.pct_horizon));
    std::sort(s.change_points.begin(), s.change_points.end());
  }
  s.by_label.assign(policy.labels.size(), nullptr);
  g = &s;
  fiber_init_thread(s.os);
  spawn("main", std::move(main_fn), false);
  s.cur = s.tasks[0].get();
  fiber_switch(s.os, s.cur->fiber, false);
  for (auto& t : s.tasks) fiber_release(t->fiber);
  RunResult r = s.res;
  g = nullptr;
  return r;  // tasks (and their Task records) are destroyed with s, on the OS thread
}

bool running() { return g != nullptr; }

void progress() {
  if (!g) return;
  ++g->epoch;
  g->repolled = false;
  if (g->generic_waiters) g->dirty = true;
}

void notify(const void* chan) {
  if (!g || !g->chan_waiters) return;
  g->repolled = false;
  for (auto& t : g->tasks)
    if (t->state == SimTask::State::kWaiting && t->wait_chan == chan && !t->woken) {
      t->woken = true;
      g->dirty = true;
    }
}

void start_policy() {
  if (!g) return;
  g->policy_started = true;
  // PCT's change points count from here, not from the start of the run: steps taken before the
  // policy starts (the caller's setup) would otherwise use them up unseen.
  for (uint64_t& cp : g->change_points) cp += g->res.steps;
  g->dirty = true;
}

int spawn(const char* name, std::function<void()> fn, bool service) {
  if (!g) {
    std::fprintf(stderr, "cgslab sim: spawn(%s) outside sim::run()\n", name);
    std::abort();
  }
  auto t = std::make_unique<SimTask>();
  t->id = int(g->tasks.size());
  t->name = name;
  t->service = service;
  t->fn = std::move(fn);
  t->task.home_slot = unsigned(t->id);
  t->site_hash = str_hash(name);
  t->prio = 1000 + splitmix(g->rng) % 1000000;
  fiber_init(t->fiber, &task_entry);
  for (size_t i = 0; i < g->pol.labels.size(); ++i)
    if (g->pol.labels[i] == t->name && !g->by_label[i]) g->by_label[i] = t.get();
  g->tasks.push_back(std::move(t));
  g->dirty = true;
  progress();
  return g->tasks.back()->id;
}

void join(int id) {
  SimTask* t = g->tasks.at(size_t(id)).get();
  for (bool first = true; t->state != SimTask::State::kDone; first = false)
    wait("a task to finish (join)", true, first, t);
}

void point(Site site, const char* where) {
  if (!g) return;  // outside a run: nothing to schedule
  SimTask* c = g->cur;
  if (site == Site::kUnlock || site == Site::kRefPut || site == Site::kRcuReadUnlock) progress();
  if (g->no_switch) return;  // the site is recorded by the point that may switch, not by this one
  c->site = site;
  c->where = where;
  c->site_hash = uint32_t(site) * 0x9e3779b1u ^ where_hash(where);
  reschedule(c);
}

void wait(const char* what, bool idle, bool first, const void* chan) {
  if (!g) {
    std::fprintf(stderr, "cgslab sim: waiting for %s outside sim::run(): nothing else can run\n", what);
    std::abort();
  }
  if (g->no_switch) fail(std::string("wait inside a no-switch section, for ") + what);
  SimTask* c = g->cur;
  c->state = SimTask::State::kWaiting;
  (void)first;
  c->wait_epoch = g->epoch;
  c->wait_what = what;
  c->wait_chan = chan;
  c->woken = false;
  c->idle = idle;
  ++(chan ? g->chan_waiters : g->generic_waiters);
  g->dirty = true;
  if (g->hooks.on_trace && !idle) g->hooks.on_trace("  " + c->name + " waits for " + what);
  reschedule(c);
  --(chan ? g->chan_waiters : g->generic_waiters);
  c->state = SimTask::State::kReady;
  c->idle = false;
}

void set_boundary(bool b) {
  if (g) g->cur->boundary = b;
}

bool others_quiescent() {
  if (!g) return true;
  for (auto& t : g->tasks) {
    if (t.get() == g->cur || t->state == SimTask::State::kDone || t->boundary) continue;
    if (t->state == SimTask::State::kWaiting && t->idle) continue;
    return false;
  }
  return true;
}

const char* current_name() { return g ? g->cur->name.c_str() : "os-thread"; }
int current_id() { return g ? g->cur->id : -1; }
uint64_t current_step() { return g ? g->res.steps : 0; }

NoSwitchScope::NoSwitchScope() {
  if (g) ++g->no_switch;
}
NoSwitchScope::~NoSwitchScope() {
  if (g) --g->no_switch;
}

void fail(const std::string& msg) {
  if (g && g->hooks.on_fail) g->hooks.on_fail(msg);
  std::fprintf(stderr, "cgslab sim: FAILURE: %s\n", msg.c_str());
  std::fflush(stderr);
  std::abort();
}

}  // namespace sim

Task& current_task() { return sim::g ? sim::g->cur->task : sim::g_outside_task; }

}  // namespace cgslab::platform
