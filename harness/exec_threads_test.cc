// exec_threads_test: exec_threads' pool (exec_threads.cc). Programs run on real threads one
// after another run their tasks on the same OS threads (the same kernel thread ids, no more
// threads in the process), and every run still executes every op of every task on allocators
// that each pooled thread meets fresh.
#include <gtest/gtest.h>

#include <sys/syscall.h>
#include <unistd.h>

#include <fstream>
#include <mutex>
#include <set>
#include <string>

#include "exec.h"
#include "program.h"

namespace cgslab::harness {
namespace {

int threads_in_process() {
  std::ifstream f("/proc/self/status");
  for (std::string line; std::getline(f, line);)
    if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
  return -1;
}

constexpr const char* kProgram = R"(dialect lifecycle
tasks 3
t0 cgroup_create parent=0
t0 attach cg=1
t0 alloc_many cache=0 n=7 gfp=account
t1 kmalloc size=201 gfp=account
t2 rcu_lock
t1 free_many n=3
t2 rcu_unlock
t0 cgroup_offline cg=1
t1 free_many n=15
)";

TEST(ExecThreadsTest, RunsReuseTheTaskThreads) {
  Program p;
  std::string err;
  ASSERT_TRUE(parse(kProgram, &p, &err)) << err;
  std::mutex mu;
  std::set<long> tids;  // kernel thread ids, which a new thread does not inherit from a joined one
  RunOptions opts;
  opts.trace = [&](const std::string&) {
    std::lock_guard<std::mutex> g(mu);
    tids.insert(long(syscall(SYS_gettid)));
  };
  RunStats first = exec_threads(p, opts);
  EXPECT_EQ(first.ops, p.ops.size());
  const int after_first = threads_in_process();
  ASSERT_GT(after_first, 0);
  for (int i = 0; i < 40; ++i) {
    RunStats s = exec_threads(p, opts);
    EXPECT_EQ(s.ops, p.ops.size());
  }
  EXPECT_EQ(threads_in_process(), after_first);
  EXPECT_EQ(tids.size(), size_t(p.ntasks)) << "41 runs of " << p.ntasks << " tasks ran on " << tids.size()
                                           << " OS threads";
}

}  // namespace
}  // namespace cgslab::harness
