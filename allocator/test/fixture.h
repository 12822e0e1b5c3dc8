// fixture.h: every test owns an Allocator whose errors are recorded (not aborted on), and ends
// with finish(): the harness's teardown oracle (harness/oracles.h: settle, then nothing_left: no
// child caches, no cgroups but the root, no slab pages, no mapped memory, no pending work) and no
// unexpected error.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "cgslab/cgslab.h"
#include "oracles.h"

namespace cgslab::test {

class AllocatorTest : public ::testing::Test {
 protected:
  void SetUp() override { make(); }
  void make(unsigned slots = 4) {
    Options o;
    o.nr_cpu_slots = slots;
    o.on_error = [this](const Error& e) { errors.push_back(e); };
    a = std::make_unique<Allocator>(o);
    root = a->root_cgroup();
  }
  void TearDown() override {
    if (a && !finished_) finish();
  }
  // Make cg's child of cache c exist and be active: one accounted allocation from inside cg
  // queues its creation (served from the root), and drain() runs the creation work.
  void activate_child(Cache* c, Cgroup* cg) {
    {
      TaskCgroupScope t(cg);
      a->cache_free(c, a->cache_alloc(c));
    }
    a->drain();
    ASSERT_EQ(a->child_state_for_testing(c, cg), CacheState::kActive);
  }
  // Full teardown check. Call after freeing/destroying everything the test made.
  void finish() {
    finished_ = true;
    harness::settle(*a);
    std::string why;
    EXPECT_TRUE(harness::nothing_left(*a, &why)) << why;
    EXPECT_TRUE(errors.empty()) << "unexpected error: " << (errors.empty() ? "" : errors[0].message);
    a.reset();
  }
  bool valid() {
    std::string rep;
    bool ok = a->validate(&rep);
    if (!ok) ADD_FAILURE() << rep;
    return ok;
  }
  ErrorKind last_error() { return errors.empty() ? ErrorKind::kInternal : errors.back().kind; }
  size_t take_errors(ErrorKind k) {
    size_t n = 0;
    for (auto& e : errors) n += e.kind == k;
    std::vector<Error> rest;
    for (auto& e : errors)
      if (e.kind != k) rest.push_back(e);
    errors = rest;
    return n;
  }
  // The child of `root` for cgroup path `cg` (any state), or a default CacheStats.
  CacheStats child_of(Cache* c, const std::string& cgpath) {
    for (auto& s : a->child_cache_stats(c))
      if (s.cgroup == cgpath) return s;
    return {};
  }

  std::unique_ptr<Allocator> a;
  Cgroup* root = nullptr;
  std::vector<Error> errors;

 private:
  bool finished_ = false;
};

inline constexpr size_t kPage = kPageSize;

}  // namespace cgslab::test
