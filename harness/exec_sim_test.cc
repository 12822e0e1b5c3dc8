// exec_sim_test: exec_sim's PCT schedules (exec_sim.cc, program.cc's pct_horizon). A PCT change
// point lowers the running task; drawn from far more steps than a program runs, most of them fall
// after its end and the schedule never preempts. Here a short program's PCT runs, without an
// explicit horizon, preempt a task that could have gone on in most seeds, and in more seeds than
// with the horizon that every PCT schedule once had (2048 steps).
#include <gtest/gtest.h>

#include <string>

#include "exec.h"
#include "program.h"

namespace cgslab::harness {
namespace {

constexpr const char* kOps = R"(t0 cgroup_create parent=0
t1 attach cg=1
t1 alloc_many cache=0 n=3 gfp=account
t0 kmalloc size=201 gfp=account
t1 free obj=0 kfree=0
t0 cgroup_offline cg=1
t1 free_many n=3
t0 slabinfo
)";

// The trace hash of kOps under `sched pct seed=S depth=3 <extra>`.
uint64_t run_hash(uint64_t seed, const std::string& extra) {
  Program p;
  std::string err;
  std::string text = "dialect lifecycle\ntasks 2\nsched pct seed=" + std::to_string(seed) + " depth=3 " + extra +
                     "\n" + kOps;
  EXPECT_TRUE(parse(text, &p, &err)) << err;
  return exec_sim(p, RunOptions{}).trace_hash;
}

// Same seed, same initial priorities: a run differs from the one with the widest horizon (whose
// change points, drawn from 4080 steps, nearly always fall past the end of this ~100-step
// program) exactly when one of its change points lowered a task inside the run.
TEST(ExecSimPct, TheDerivedHorizonPreemptsShortPrograms) {
  Program p;
  std::string err;
  ASSERT_TRUE(parse(std::string("tasks 2\nsched pct seed=1 depth=3\n") + kOps, &p, &err)) << err;
  EXPECT_EQ(p.horizon, 0);
  EXPECT_EQ(pct_horizon(p), kPctHorizonBase + kPctHorizonPerOp * 8);
  int derived = 0, old = 0;
  constexpr int kSeeds = 64;
  for (uint64_t seed = 1; seed <= kSeeds; ++seed) {
    uint64_t none = run_hash(seed, "horizon=4080");
    derived += run_hash(seed, "") != none;
    old += run_hash(seed, "horizon=2048") != none;
  }
  EXPECT_GE(derived, kSeeds / 2) << derived << " of " << kSeeds << " seeds changed the schedule";
  EXPECT_GT(derived, 2 * old) << "derived horizon: " << derived << " seeds changed the schedule, 2048 steps: " << old;
}

TEST(ExecSimPct, AnExplicitHorizonRoundTripsAndOldInputsDeriveIt) {
  // Bytes: one task, PCT; no ops; seed; depth byte. An input that ends there (every PCT input saved
  // before the horizon byte existed) derives its horizon; one more byte sets it in steps of 16.
  uint8_t bytes[] = {4, 0, 1, 2, 3, 4, 5, 6, 7, 8, 2, 9};
  Program old = decode(bytes, sizeof bytes - 1, Dialect::kLifecycle);
  ASSERT_TRUE(old.pct);
  EXPECT_EQ(old.horizon, 0);
  EXPECT_EQ(pct_horizon(old), kPctHorizonBase);
  Program with = decode(bytes, sizeof bytes, Dialect::kLifecycle);
  EXPECT_EQ(with.horizon, 9 * 16);
  EXPECT_EQ(pct_horizon(with), 9u * 16);
  EXPECT_NE(print(with).find("horizon=144"), std::string::npos) << print(with);
  std::vector<uint8_t> enc = encode(with);
  EXPECT_EQ(decode(enc.data(), enc.size(), Dialect::kLifecycle), with);
}

}  // namespace
}  // namespace cgslab::harness
