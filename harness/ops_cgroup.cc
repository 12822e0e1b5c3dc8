// ops_cgroup.cc: the cgroup operations: create, offline, limits, attaching the task (a
// TaskCgroupScope) and remote charging (a RemoteChargeScope). A cgroup an op holds is pinned
// (CgEntry::busy) so no other task takes it offline meanwhile; scopes nest at most 3 deep.
#include "ops.h"

namespace cgslab::harness {

Outcome op_cgroup_create(Task& t, const Op& op) {
  World& w = *t.w;
  int p;
  std::string name;
  Cgroup* parent;
  {
    std::lock_guard<std::mutex> g(w.m.mu);
    p = w.m.pick_cg(arg(op, 0), true);
    if (p < 0 || w.m.cgs[size_t(p)].depth >= kMaxCgroupDepth || w.m.cgs.size() >= kMaxCgroups)
      return t.skip("no parent");
    ++w.m.cgs[size_t(p)].busy;
    name = "cg" + std::to_string(w.m.next_cg_name++);
    parent = w.m.cgs[size_t(p)].cg;
  }
  Cgroup* cg = w.a->cgroup_create(parent, name);
  std::lock_guard<std::mutex> g(w.m.mu);
  --w.m.cgs[size_t(p)].busy;
  if (cg) w.m.cgs.push_back(CgEntry{cg, w.m.cgs[size_t(p)].depth + 1});
  t.note(cg ? "-> " + name : "-> failed (injected fault)");
  return Outcome::kDone;
}

Outcome op_cgroup_offline(Task& t, const Op& op) {
  World& w = *t.w;
  int c;
  Cgroup* cg;
  {
    std::lock_guard<std::mutex> g(w.m.mu);
    c = Model::pick(w.m.cgs, 1, arg(op, 0), [](const CgEntry& e) { return e.online && !e.offlining && e.busy == 0; });
    if (c < 0) return t.skip("no idle online cgroup");
    w.m.cgs[size_t(c)].offlining = true;
    cg = w.m.cgs[size_t(c)].cg;
  }
  bool ok = w.a->cgroup_offline(cg);
  std::lock_guard<std::mutex> g(w.m.mu);
  w.m.cgs[size_t(c)].offlining = false;
  if (ok) w.m.cgs[size_t(c)].online = false;
  t.note("cg" + std::to_string(c) + (ok ? " offline" : " busy (attached or has children)"));
  return Outcome::kDone;
}

namespace {
// Pins an online cgroup for fn(cg); false when there is none.
template <class F>
Outcome with_cgroup(Task& t, uint64_t raw, bool allow_root, F fn) {
  World& w = *t.w;
  int c;
  Cgroup* cg;
  {
    std::lock_guard<std::mutex> g(w.m.mu);
    c = w.m.pick_cg(raw, allow_root);
    if (c < 0) return t.skip("no cgroup");
    ++w.m.cgs[size_t(c)].busy;
    cg = w.m.cgs[size_t(c)].cg;
  }
  fn(cg);
  std::lock_guard<std::mutex> g(w.m.mu);
  --w.m.cgs[size_t(c)].busy;
  t.note("cg" + std::to_string(c));
  return Outcome::kDone;
}
constexpr size_t kMaxScopes = 3;
}  // namespace

Outcome op_cgroup_set_max(Task& t, const Op& op) {
  uint64_t pages = arg(op, 1);
  return with_cgroup(t, arg(op, 0), false, [&](Cgroup* cg) {
    t.w->a->cgroup_set_max(cg, pages == UINT64_MAX ? SIZE_MAX : size_t(pages) * kPageSize);
  });
}

Outcome op_attach(Task& t, const Op& op) {
  if (t.scopes.size() >= kMaxScopes) return t.skip("scope depth");
  return with_cgroup(t, arg(op, 0), true, [&](Cgroup* cg) {
    Scope s;
    s.attach = std::make_unique<TaskCgroupScope>(cg);
    t.scopes.push_back(std::move(s));
  });
}

Outcome op_remote_begin(Task& t, const Op& op) {
  if (t.scopes.size() >= kMaxScopes) return t.skip("scope depth");
  return with_cgroup(t, arg(op, 0), true, [&](Cgroup* cg) {
    Scope s;
    s.remote = std::make_unique<RemoteChargeScope>(cg);
    t.scopes.push_back(std::move(s));
  });
}

Outcome op_scope_end(Task& t, const Op&) {
  if (t.scopes.empty()) return t.skip("no scope");
  t.scopes.pop_back();
  return Outcome::kDone;
}

}  // namespace cgslab::harness
