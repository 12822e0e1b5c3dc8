// explore.cc: cgslab-prog explore (design: explore.h).
#include "explore.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exec.h"
#include "tool_support.h"

namespace cgslab::harness {

namespace {

using Clock = std::chrono::steady_clock;

constexpr unsigned kMaxBound = 8;
constexpr size_t kMaxShownDeviations = 64;
// The scheduler's livelock bound (a livelocked run's decisions are cut short here; they would not
// fit an explicit schedule anyway).
constexpr size_t kDecisionCap = size_t(1) << 21;

// What the walking child leaves for the parent, in a MAP_SHARED mapping made before the fork: it
// outlives the child's abort. The child writes, the parent reads only after the child is gone.
struct Shared {
  uint64_t runs;                   // schedules executed, all bounds (a schedule under b is re-run at b)
  uint64_t fresh[kMaxBound + 1];   // schedules whose preemption count is b
  double seconds[kMaxBound + 1];   // time when bound b was complete
  uint32_t bounds_done;            // bounds 0..bounds_done-1 complete
  uint32_t ndev;                   // the run in progress: its deviations...
  uint32_t cost;                   // ...what they cost (preemptions, or delays)...
  sim::Deviation dev[kMaxShownDeviations];
  uint64_t ndecisions;             // ...and its decisions so far (the chosen labels)
  int8_t label[kDecisionCap];
};

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// The depth-first walk of one bound, in the child.
class Walker {
 public:
  Walker(const Program& p, const ExploreOptions& o, Shared* sh) : p_(p), o_(o), sh_(sh) {
    t0_ = Clock::now();
    deadline_ = t0_ + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.time_limit_s));
  }

  // 0: every bound done; 3: a limit stopped the walk; 4: the program is not deterministic.
  int walk_all() {
    for (unsigned b = 0; b <= o_.bound; ++b) {
      walk(0, 0, b, nullptr);
      if (status_) return status_;
      sh_->seconds[b] = seconds_since(t0_);
      sh_->bounds_done = b + 1;
      std::printf("  bound %u: %" PRIu64 " schedules with %u %s%s (%" PRIu64 " runs so far, %.1f s)\n", b,
                  sh_->fresh[b], b, o_.delays ? "delay" : "preemption", b == 1 ? "" : "s", sh_->runs,
                  sh_->seconds[b]);
    }
    return 0;
  }

 private:
  std::vector<sim::Decision> run_once(unsigned cost) {
    std::vector<sim::Decision> d;
    sh_->ndev = uint32_t(devs_.size());
    sh_->cost = cost;
    std::copy_n(devs_.begin(), std::min(devs_.size(), kMaxShownDeviations), sh_->dev);
    sh_->ndecisions = 0;
    RunOptions ro;
    ro.validate_each_op = o_.validate_each_op;
    ro.explore = &devs_;
    ro.on_decide = [&](const sim::Decision& x) {
      d.push_back(x);
      if (sh_->ndecisions < kDecisionCap) sh_->label[sh_->ndecisions] = int8_t(x.label);
      ++sh_->ndecisions;
    };
    exec_sim(p_, ro);
    ++sh_->runs;
    return d;
  }

  // Runs the schedule devs_ (at cost `cost` so far) and walks its children whose cost is <= bound.
  // parent: the decisions of the run this schedule was derived from (it deviates at from-1).
  void walk(size_t from_decision, unsigned cost, unsigned bound, const std::vector<sim::Decision>* parent) {
    if (sh_->runs >= o_.max_schedules || Clock::now() >= deadline_) {
      status_ = 3;
      return;
    }
    std::vector<sim::Decision> d = run_once(cost);
    if (cost == bound) ++sh_->fresh[bound];
    // A deterministic run repeats its parent's decisions up to the deviation, runnable sets and all.
    bool same = d.size() >= from_decision;
    for (size_t j = 0; same && parent && j + 1 < from_decision; ++j)
      same = d[j].label == (*parent)[j].label && d[j].runnable == (*parent)[j].runnable;
    if (!same || (from_decision > 0 && d[from_decision - 1].label != int(devs_.back().label))) {
      std::fprintf(stderr, "cgslab-prog explore: a re-run did not repeat the decisions of the run it came from: "
                           "the program's runs are not deterministic\n");
      status_ = 4;
      return;
    }
    for (size_t j = from_decision; j < d.size(); ++j) {
      const unsigned c = cost + (d[j].current_runnable || o_.delays ? 1 : 0);
      if (c > bound) continue;
      for (uint32_t m = d[j].runnable; m; m &= m - 1) {
        const int a = __builtin_ctz(m);
        if (a == d[j].label) continue;
        devs_.push_back({uint32_t(j), uint8_t(a)});
        walk(j + 1, c, bound, &d);
        devs_.pop_back();
        if (status_) return;
      }
    }
  }

  const Program& p_;
  const ExploreOptions& o_;
  Shared* sh_;
  Clock::time_point t0_, deadline_;
  std::vector<sim::Deviation> devs_;
  int status_ = 0;
};

// The failing run's decisions as the program's explicit schedule.
bool failing_program(const Program& p, const Shared& sh, Program* out, std::string* why) {
  if (sh.ndecisions > kDecisionCap) return *why = "more decisions than were recorded", false;
  Program q = p;
  q.pct = false;
  if (!schedule_of_decisions(p, sh.label, size_t(sh.ndecisions), &q.steps, why)) return false;
  *out = q;
  return true;
}

}  // namespace

int explore(const Program& p, const std::string& name, const ExploreOptions& o) {
  if (o.bound > kMaxBound) {
    std::fprintf(stderr, "cgslab-prog explore: at most %u preemptions\n", kMaxBound);
    return 1;
  }
  const char* unit = o.delays ? "delay" : "preemption";
  const char* units = o.bound == 1 ? "" : "s";
  std::printf("explore %s: %zu ops, %u tasks, every schedule with at most %u %s%s (limits: %" PRIu64
              " runs, %.0f s)\n",
              name.c_str(), p.ops.size(), unsigned(p.ntasks), o.bound, unit, units, o.max_schedules,
              o.time_limit_s);
  void* m = mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) {
    std::fprintf(stderr, "cgslab-prog explore: cannot map %zu bytes: %s\n", sizeof(Shared), std::strerror(errno));
    return 1;
  }
  Shared* sh = static_cast<Shared*>(m);
  struct Unmap {
    void* m;
    ~Unmap() { munmap(m, sizeof(Shared)); }
  } unmap{m};
  const Clock::time_point t0 = Clock::now();
  std::fflush(stdout);
  std::fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) {
    std::fprintf(stderr, "cgslab-prog explore: fork: %s\n", std::strerror(errno));
    return 1;
  }
  if (pid == 0) {
    Walker w(p, o, sh);
    int rc = w.walk_all();
    std::fflush(stdout);
    _exit(rc);
  }
  // One run is bounded by the scheduler's livelock detection; a minute more than the budget is
  // room for the longest, and past that the child is stuck somewhere no oracle sees.
  ChildExit e = wait_bounded(pid, o.time_limit_s + 60);
  const bool clean_exit = !e.error && !e.timed_out && WIFEXITED(e.status);
  const int rc = clean_exit ? WEXITSTATUS(e.status) : -1;
  // Only our bound sends SIGKILL: another sender (the OOM killer) is no finding of the program's.
  const bool killed_outside = !e.error && !e.timed_out && WIFSIGNALED(e.status) && WTERMSIG(e.status) == SIGKILL;
  const char* no_validate = o.validate_each_op ? "" : " --no-validate";
  int status = 0;
  if (e.error || killed_outside) {
    std::printf("explore %s: ERROR: the walk was %s after %" PRIu64 " runs\n", name.c_str(),
                killed_outside ? "killed by SIGKILL from outside (the OOM killer?)" : describe_exit(e).c_str(),
                sh->runs);
    status = 1;
  } else if (rc == 0) {
    std::printf("explore %s: PASS: all %" PRIu64 " schedules with at most %u %s%s, no failure (%.1f s)\n",
                name.c_str(), [&] {
                  uint64_t n = 0;
                  for (unsigned b = 0; b <= o.bound; ++b) n += sh->fresh[b];
                  return n;
                }(),
                o.bound, unit, units, sh->seconds[o.bound]);
  } else if (rc == 3) {
    std::string done = sh->bounds_done == 0 ? std::string("no bound complete")
                                            : "bounds 0.." + std::to_string(sh->bounds_done - 1) + " complete";
    std::printf("explore %s: INCOMPLETE: stopped by a limit after %" PRIu64 " runs; %s, bound %u has %" PRIu64
                " schedules so far; no failure\n",
                name.c_str(), sh->runs, done.c_str(), sh->bounds_done, sh->fresh[sh->bounds_done]);
  } else if (rc == 4 || (clean_exit && rc != 1)) {
    std::printf("explore %s: ERROR: the walk ended with %s\n", name.c_str(), describe_exit(e).c_str());
    status = 1;
  } else if (e.timed_out) {
    std::printf("explore %s: ERROR: the walk did not end within %.0f s (killed); %" PRIu64 " runs\n", name.c_str(),
                o.time_limit_s + 60, sh->runs);
    status = 1;
  } else {
    status = 1;
    std::printf("explore %s: FAIL: run %" PRIu64 " (cost %u: %u deviation%s from the default schedule) %s "
                "after %.1f s\n",
                name.c_str(), sh->runs + 1, sh->cost, sh->ndev, sh->ndev == 1 ? "" : "s",
                describe_exit(e).c_str(), seconds_since(t0));
    std::string devs;
    auto labels = schedule_labels(p);
    for (uint32_t i = 0; i < std::min<uint32_t>(sh->ndev, kMaxShownDeviations); ++i)
      devs += " " + std::to_string(sh->dev[i].decision) + ":" + labels.at(sh->dev[i].label % labels.size());
    std::printf("  deviations (decision:task):%s\n", devs.c_str());
    Program q;
    std::string why;
    if (!failing_program(p, *sh, &q, &why)) {
      std::printf("  the failing schedule cannot be written as an explicit one: %s\n", why.c_str());
      return status;
    }
    std::string out = (o.out_prefix.empty() ? name + ".explore" : o.out_prefix) + ".txt";
    std::string text = std::string("# Found by cgslab-prog explore --") + unit + "s " + std::to_string(o.bound) + " in " +
                       name + ": the failing schedule, as an explicit one.\n" + print(q);
    std::ofstream f(out);
    f << text;
    f.close();
    if (!f) {
      std::fprintf(stderr, "cgslab-prog explore: cannot write %s: %s\n", out.c_str(), std::strerror(errno));
      return status;
    }
    std::printf("  written to %s:\n%s", out.c_str(), text.c_str());
    // The written schedule must fail by itself (replay's semantics, a fresh process).
    std::fflush(stdout);
    pid_t r = fork();
    if (r == 0) {
      int devnull = open("/dev/null", O_WRONLY);
      if (devnull >= 0) {
        dup2(devnull, 1);
        dup2(devnull, 2);
      }
      RunOptions ro;
      ro.validate_each_op = o.validate_each_op;  // validate() takes locks: part of the schedule
      exec_sim(q, ro);
      _exit(0);
    }
    ChildExit re = r > 0 ? wait_bounded(r, 120) : ChildExit{};
    const bool fails = r > 0 && !re.error && !re.timed_out && !(WIFEXITED(re.status) && WEXITSTATUS(re.status) == 0);
    std::printf("  replayed from %s: %s (%s); reproduce with: cgslab-prog replay%s %s\n", out.c_str(),
                fails ? "fails" : "DOES NOT FAIL", r > 0 ? describe_exit(re).c_str() : "fork failed", no_validate,
                out.c_str());
  }
  return status;
}

}  // namespace cgslab::harness
