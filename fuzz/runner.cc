#include "runner.h"

#include <algorithm>
#include <atomic>
#include <cstdarg>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>

#include "cgslab/cgslab.h"

#if defined(CGSLAB_PLATFORM_SIM)
#include "platform/sim_scheduler.h"
#endif

namespace cgslab::fuzz {

namespace {

constexpr uint64_t kCtorPattern = 0xC7057C7057C7057Cull;
void harness_ctor(void* p) { std::memcpy(p, &kCtorPattern, sizeof kCtorPattern); }

struct CacheObj {
  Cache* c = nullptr;
  unsigned flags = 0;
  size_t size = 0;
  uint32_t tag = 0;
  int handles = 0;    // alias handles naming it
  long live = 0;      // objects allocated and not yet freed (by the harness's book)
  int busy = 0;       // ops in flight on it, RCU readers holding its objects
  bool destroying = false;
  bool destroyed = false;
};
struct CacheH {
  int obj;
  bool alive;
};
struct CgH {
  Cgroup* cg;
  int depth;
  bool online = true;
  bool offlining = false;
  int busy = 0;
};
struct ObjRec {
  void* p;
  int cobj;  // -1: kmalloc
  size_t size;
  uint64_t stamp;
  bool reclaimable;
  int owner;
};
struct Scope {
  std::unique_ptr<TaskCgroupScope> attach;
  std::unique_ptr<RemoteChargeScope> remote;
};
struct RcuRef {
  void* p;
  int cobj;
  uint32_t tag;
};
struct TaskCtx {
  int idx = -1;
  const Op* op = nullptr;
  std::vector<Scope> scopes;
  int rcu_depth = 0;
  std::vector<RcuRef> rcu_refs;
  bool expect_error = false;
  ErrorKind expected = ErrorKind::kInternal;
  bool got_error = false;
};

const Program* g_program = nullptr;  // for failure reports
#if defined(CGSLAB_PLATFORM_SIM)
std::vector<TaskCtx*> g_ctx_by_sim_id;
#else
thread_local TaskCtx* t_ctx = nullptr;
#endif

TaskCtx* ctx() {
#if defined(CGSLAB_PLATFORM_SIM)
  int id = platform::sim::current_id();
  return id >= 0 && size_t(id) < g_ctx_by_sim_id.size() ? g_ctx_by_sim_id[size_t(id)] : nullptr;
#else
  return t_ctx;
#endif
}
void bind_ctx(TaskCtx* c) {
#if defined(CGSLAB_PLATFORM_SIM)
  size_t id = size_t(platform::sim::current_id());
  if (g_ctx_by_sim_id.size() <= id) g_ctx_by_sim_id.resize(id + 1, nullptr);
  g_ctx_by_sim_id[id] = c;
#else
  t_ctx = c;
#endif
}

std::mutex g_fail_mu;
[[noreturn]] void harness_fail(const std::string& what) {
  std::lock_guard<std::mutex> g(g_fail_mu);
  TaskCtx* c = ctx();
  std::fprintf(stderr, "\ncgslab harness FAILURE (%s mode): %s\n", runner_mode(), what.c_str());
  if (c && c->op) std::fprintf(stderr, "  while running: %s\n", print_op(*c->op).c_str());
  else std::fprintf(stderr, "  while running: %s\n", c ? "task start/end" : "setup/teardown or a service task");
  if (g_program) std::fprintf(stderr, "  program:\n%s", print(*g_program).c_str());
  std::fflush(stderr);
  std::abort();
}

// The head word is written and read with relaxed atomics: RCU readers of a TYPESAFE_BY_RCU cache
// read it while another thread may be reusing the object (the kernel's READ_ONCE/WRITE_ONCE);
// plain accesses would be a data race that is the harness's, not the allocator's.
void stamp_obj(void* p, size_t size, uint64_t v) {
  __atomic_store_n(static_cast<uint64_t*>(p), v, __ATOMIC_RELAXED);
  if (size >= 16) std::memcpy(static_cast<char*>(p) + size - 8, &v, 8);
}
uint64_t head_word(const void* p) { return __atomic_load_n(static_cast<const uint64_t*>(p), __ATOMIC_RELAXED); }

class World {
 public:
  World(const Program& p, const RunOptions& o) : prog_(p), opts_(o), tasks_(p.ntasks) {
    for (int i = 0; i < p.ntasks; ++i) tasks_[size_t(i)].idx = i;
  }

  void setup(unsigned slots) {
    Options o;
    o.on_error = [this](const Error& e) { on_error(e); };
    o.nr_cpu_slots = slots;
    a_ = std::make_unique<Allocator>(o);
    cgs_.push_back(CgH{a_->root_cgroup(), 0});
    // One accounted cache from the start, so that short programs allocate accounted objects.
    Cache* c = a_->cache_create("c0", 64, 8, kCacheAccount);
    if (!c) harness_fail("setup: cache_create(c0) failed");
    caches_.push_back(CacheObj{c, kCacheAccount, 64, 0xCA000000u, 1});
    handles_.push_back(CacheH{0, true});
  }

  void run_task(int idx) {
    TaskCtx& t = tasks_[size_t(idx)];
    bind_ctx(&t);
    for (const Op& op : prog_.ops) {
      if (op.task != idx) continue;
#if defined(CGSLAB_PLATFORM_SIM)
      platform::sim::point(platform::Site::kOp, "op");
      platform::sim::set_boundary(false);
#endif
      t.op = &op;
      if (opts_.trace) opts_.trace(print_op(op));
      exec(t, op);
      ++ops_;
#if defined(CGSLAB_PLATFORM_SIM)
      platform::sim::set_boundary(true);
      if (opts_.validate_each_op && platform::sim::others_quiescent()) validate("after " + print_op(op));
#endif
      t.op = nullptr;
    }
#if defined(CGSLAB_PLATFORM_SIM)
    platform::sim::set_boundary(false);
#endif
    // Task end: leave RCU sections and scopes, like a thread that returns.
    while (t.rcu_depth > 0) rcu_unlock(t);
    while (!t.scopes.empty()) t.scopes.pop_back();
    bind_ctx(nullptr);
  }

  void validate(const std::string& when) {
#if defined(CGSLAB_PLATFORM_SIM)
    platform::sim::NoSwitchScope ns;
#endif
    std::string report;
    ++validations_;
    if (!a_->validate(&report)) harness_fail("validate() failed " + when + ":\n" + report);
  }

  void teardown() {
    TaskCtx td;
    bind_ctx(&td);
    a_->fail_nth_mapping_for_testing(0);
    a_->fail_nth_internal_alloc_for_testing(0);
    for (ObjRec& o : objs_) free_obj(o, false);
    objs_.clear();
    for (size_t h = 0; h < handles_.size(); ++h) {
      if (!handles_[h].alive) continue;
      CacheObj& co = caches_[size_t(handles_[h].obj)];
      if (!a_->cache_destroy(co.c)) harness_fail("teardown: cache_destroy(" + std::to_string(h) + ") refused");
      handles_[h].alive = false;
      if (--co.handles == 0) co.destroyed = true;
    }
    std::vector<size_t> order;
    for (size_t i = 1; i < cgs_.size(); ++i)
      if (cgs_[i].online) order.push_back(i);
    std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) { return cgs_[x].depth > cgs_[y].depth; });
    for (size_t i : order) {
      if (!a_->cgroup_offline(cgs_[i].cg)) harness_fail("teardown: cgroup_offline(cg" + std::to_string(i) + ") refused");
      cgs_[i].online = false;
    }
    a_->drain();
    a_->shrink_all();
    a_->drain();
    validate("at teardown");
    AllocatorStats s = a_->stats();
    std::string left;
    if (s.child_caches) left += " child_caches=" + std::to_string(s.child_caches);
    if (s.cgroups != 1) left += " cgroups=" + std::to_string(s.cgroups);
    if (s.slab_pages) left += " slab_pages=" + std::to_string(s.slab_pages);
    if (s.mapped_bytes) left += " mapped_bytes=" + std::to_string(s.mapped_bytes);
    if (s.pending_work) left += " pending_work=" + std::to_string(s.pending_work);
    CgroupStats rs = a_->cgroup_stats(a_->root_cgroup());
    if (rs.usage) left += " root_usage=" + std::to_string(rs.usage);
    if (!left.empty()) harness_fail("teardown to quiescence left:" + left + "\n" + a_->slabinfo());
    a_.reset();
    bind_ctx(nullptr);
  }

  uint64_t ops() const { return ops_; }
  uint64_t validations() const { return validations_; }
  uint64_t errors_expected() const { return errors_expected_; }

 private:
  void on_error(const Error& e) {
    TaskCtx* t = ctx();
    if (t && t->expect_error && !t->got_error && e.kind == t->expected) {
      t->got_error = true;
      ++errors_expected_;
      return;
    }
    harness_fail(std::string("unexpected allocator error ") + error_kind_name(e.kind) + ": " + e.message);
  }

  void note(const std::string& s) {
    if (opts_.trace) opts_.trace("      " + s);
  }

  // --- handle selection (under mu_): the (raw % n)-th of the n eligible handles, or -1 ---
  template <class V, class Pred>
  static int pick(const V& v, size_t from, uint8_t raw, Pred ok) {
    size_t n = 0;
    for (size_t i = from; i < v.size(); ++i) n += ok(v[i]);
    if (!n) return -1;
    size_t k = raw % n;
    for (size_t i = from; i < v.size(); ++i)
      if (ok(v[i]) && k-- == 0) return int(i);
    return -1;
  }
  int pick_cg(uint8_t raw, bool allow_root) {
    return pick(cgs_, allow_root ? 0 : 1, raw, [](const CgH& c) { return c.online && !c.offlining; });
  }
  int pick_cache(uint8_t raw) {
    return pick(handles_, 0, raw, [&](const CacheH& h) { return h.alive && !caches_[size_t(h.obj)].destroying; });
  }
  int pick_obj(uint8_t raw, bool typesafe_only) {
    return pick(objs_, 0, raw, [&](const ObjRec& o) {
      return !typesafe_only || (o.cobj >= 0 && (caches_[size_t(o.cobj)].flags & kCacheTypesafeByRcu));
    });
  }
  ObjRec take_obj(int i) {
    ObjRec o = objs_[size_t(i)];
    objs_[size_t(i)] = objs_.back();
    objs_.pop_back();
    return o;
  }

  // --- objects ---
  // Pins a live cache handle (its CacheObj cannot be destroyed until unpin_cache); nullptr if none.
  Cache* pin_cache(uint8_t raw, int* cobj) {
    std::lock_guard<std::mutex> g(mu_);
    int h = pick_cache(raw);
    if (h < 0) return nullptr;
    *cobj = handles_[size_t(h)].obj;
    ++caches_[size_t(*cobj)].busy;
    return caches_[size_t(*cobj)].c;
  }
  void unpin_cache(int cobj) {
    std::lock_guard<std::mutex> g(mu_);
    --caches_[size_t(cobj)].busy;
  }

  // One object from the pinned cache `cobj`.
  bool alloc_one(TaskCtx& t, int cobj, Cache* c, unsigned gfp) {
    unsigned real_gfp = gfp & ~kHarnessReclaimable;
#if !defined(CGSLAB_PLATFORM_SIM)
    // On real threads, zeroing a TYPESAFE_BY_RCU object races with its RCU readers by design
    // (plain memset vs. their atomic loads); keep that benign kernel pattern out of TSan's view.
    if (caches_flags_locked(cobj) & kCacheTypesafeByRcu) real_gfp &= ~kGfpZero;
#endif
    if (t.rcu_depth) real_gfp |= kGfpNoWait;  // no sleeping inside an RCU read section
    void* p = a_->cache_alloc(c, real_gfp);
    std::lock_guard<std::mutex> g(mu_);
    CacheObj& co = caches_[size_t(cobj)];
    if (!p) return false;
    if ((real_gfp & kGfpZero) && !(co.flags & kCacheCtor)) check_zero(p, co.size);
    uint64_t st = (uint64_t(co.tag) << 32) | ++serial_;
    stamp_obj(p, co.size, st);
    ++co.live;
    objs_.push_back(ObjRec{p, cobj, co.size, st, (gfp & kHarnessReclaimable) != 0, t.idx});
    return true;
  }
  unsigned caches_flags_locked(int cobj) {
    std::lock_guard<std::mutex> g(mu_);
    return caches_[size_t(cobj)].flags;
  }
  void check_zero(void* p, size_t n) {
    const auto* b = static_cast<const unsigned char*>(p);
    for (size_t i = 0; i < n; ++i)
      if (b[i]) harness_fail(strfmt("__GFP_ZERO object %zu bytes has a non-zero byte at offset %zu", n, i));
  }
  static std::string strfmt(const char* fmt, ...) __attribute__((format(printf, 1, 2))) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return buf;
  }
  void check_stamp(const ObjRec& o) {
    uint64_t head = head_word(o.p), tail = o.stamp;
    if (o.size >= 16) std::memcpy(&tail, static_cast<char*>(o.p) + o.size - 8, 8);
    if (head != o.stamp || tail != o.stamp)
      harness_fail(strfmt("object contents changed while allocated: stamp %#" PRIx64 ", found head %#" PRIx64
                          " tail %#" PRIx64 " (size %zu)",
                          o.stamp, head, tail, o.size));
  }
  // Frees o (already taken out of objs_). use_kfree: kfree instead of cache_free.
  void free_obj(const ObjRec& o, bool use_kfree) {
    check_stamp(o);
    if (o.cobj < 0 || use_kfree) {
      a_->kfree(o.p);
    } else {
      Cache* c;
      {
        std::lock_guard<std::mutex> g(mu_);
        c = caches_[size_t(o.cobj)].c;
      }
      a_->cache_free(c, o.p);
    }
    if (o.cobj >= 0) {
      std::lock_guard<std::mutex> g(mu_);
      --caches_[size_t(o.cobj)].live;
    }
  }
  size_t free_some(int owner, size_t n, bool reclaimable_only) {
    size_t bytes = 0;
    for (size_t k = 0; k < n; ++k) {
      ObjRec o;
      {
        std::lock_guard<std::mutex> g(mu_);
        int pick = -1;
        for (size_t i = objs_.size(); i-- > 0;)
          if ((owner < 0 || objs_[i].owner == owner) && (!reclaimable_only || objs_[i].reclaimable)) {
            pick = int(i);
            break;
          }
        if (pick < 0) break;
        o = take_obj(pick);
      }
      free_obj(o, false);
      bytes += o.size;
    }
    return bytes;
  }

  void rcu_check(const RcuRef& r) {
    uint64_t w = head_word(r.p);
    if ((w >> 32) != r.tag && w != 0 && w != kCtorPattern)
      harness_fail(strfmt("TYPESAFE_BY_RCU object changed type inside an RCU read section: word %#" PRIx64
                          ", cache tag %#x",
                          w, r.tag));
  }
  void rcu_unlock(TaskCtx& t) {
    if (t.rcu_depth == 1) {
      for (const RcuRef& r : t.rcu_refs) rcu_check(r);
      std::lock_guard<std::mutex> g(mu_);
      for (const RcuRef& r : t.rcu_refs) --caches_[size_t(r.cobj)].busy;
      t.rcu_refs.clear();
    }
    a_->rcu_read_unlock();
    --t.rcu_depth;
  }

  // Expect exactly one error of `kind` from fn().
  template <class F>
  void expect(TaskCtx& t, ErrorKind kind, const char* what, F fn) {
    t.expect_error = true;
    t.expected = kind;
    t.got_error = false;
    fn();
    t.expect_error = false;
    if (!t.got_error) harness_fail(std::string("misuse not reported: ") + what + " should report " + error_kind_name(kind));
  }

  void exec(TaskCtx& t, const Op& op);

  const Program& prog_;
  const RunOptions& opts_;
  std::unique_ptr<Allocator> a_;
  std::mutex mu_;  // guards the tables below; never held across an allocator call
  std::vector<CacheObj> caches_;
  std::vector<CacheH> handles_;
  std::vector<CgH> cgs_;
  std::vector<ObjRec> objs_;
  std::vector<TaskCtx> tasks_;
  uint64_t serial_ = 0;
  std::atomic<int> shrinkers_{0};
  std::atomic<uint64_t> ops_{0};
  uint64_t validations_ = 0;
  std::atomic<uint64_t> errors_expected_{0};
};

void World::exec(TaskCtx& t, const Op& op) {
  const bool in_rcu = t.rcu_depth > 0;
  // Misuse ops that destroy or offline may wait for a grace period: never inside a read section
  // (that would be the harness deadlocking itself, not an allocator bug).
  if (in_rcu && (op.kind == OpKind::kUseDestroyedCache || op.kind == OpKind::kOfflineTwice ||
                 op.kind == OpKind::kDestroyBusy))
    return note("skipped: may sleep inside an RCU read section");
  switch (op.kind) {
    case OpKind::kYield:
#if defined(CGSLAB_PLATFORM_SIM)
      platform::sim::point(platform::Site::kYield, "yield");
#else
      std::this_thread::yield();
#endif
      return;
    case OpKind::kCgroupCreate: {
      if (in_rcu) return note("skipped: may sleep inside an RCU read section");
      int p;
      std::string name;
      Cgroup* parent;
      {
        std::lock_guard<std::mutex> g(mu_);
        p = pick_cg(op.a, true);
        if (p < 0 || cgs_[size_t(p)].depth >= 4 || cgs_.size() >= 24) return note("skipped: no parent");
        ++cgs_[size_t(p)].busy;
        name = "cg" + std::to_string(cgs_.size());
        parent = cgs_[size_t(p)].cg;
      }
      Cgroup* cg = a_->cgroup_create(parent, name);
      std::lock_guard<std::mutex> g(mu_);
      --cgs_[size_t(p)].busy;
      if (cg) cgs_.push_back(CgH{cg, cgs_[size_t(p)].depth + 1});
      return note(cg ? "-> " + name : "-> failed (injected fault)");
    }
    case OpKind::kCgroupOffline: {
      if (in_rcu) return note("skipped: may sleep inside an RCU read section");
      int c;
      Cgroup* cg;
      {
        std::lock_guard<std::mutex> g(mu_);
        c = pick(cgs_, 1, op.a, [](const CgH& g) { return g.online && !g.offlining && g.busy == 0; });
        if (c < 0) return note("skipped: no idle online cgroup");
        cgs_[size_t(c)].offlining = true;
        cg = cgs_[size_t(c)].cg;
      }
      bool ok = a_->cgroup_offline(cg);
      std::lock_guard<std::mutex> g(mu_);
      cgs_[size_t(c)].offlining = false;
      if (ok) cgs_[size_t(c)].online = false;
      return note(std::string("cg") + std::to_string(c) + (ok ? " offline" : " busy (attached or has children)"));
    }
    case OpKind::kCgroupSetMax:
    case OpKind::kAttach:
    case OpKind::kRemoteBegin: {
      if (in_rcu) return note("skipped: may sleep inside an RCU read section");
      if (op.kind != OpKind::kCgroupSetMax && t.scopes.size() >= 3) return note("skipped: scope depth");
      int c;
      Cgroup* cg;
      {
        std::lock_guard<std::mutex> g(mu_);
        c = pick_cg(op.a, op.kind == OpKind::kCgroupSetMax ? false : true);
        if (c < 0) return note("skipped: no cgroup");
        ++cgs_[size_t(c)].busy;
        cg = cgs_[size_t(c)].cg;
      }
      if (op.kind == OpKind::kCgroupSetMax) {
        a_->cgroup_set_max(cg, op.b == 255 ? SIZE_MAX : size_t(op.b) * kPageSize);
      } else if (op.kind == OpKind::kAttach) {
        Scope s;
        s.attach = std::make_unique<TaskCgroupScope>(cg);
        t.scopes.push_back(std::move(s));
      } else {
        Scope s;
        s.remote = std::make_unique<RemoteChargeScope>(cg);
        t.scopes.push_back(std::move(s));
      }
      std::lock_guard<std::mutex> g(mu_);
      --cgs_[size_t(c)].busy;
      return note("cg" + std::to_string(c));
    }
    case OpKind::kScopeEnd:
      if (!t.scopes.empty()) t.scopes.pop_back();
      return;
    case OpKind::kCacheCreate: {
      if (in_rcu) return note("skipped: may sleep inside an RCU read section");
      unsigned flags = op.b & 7;
      bool ctor = op.b & kCacheCtor;
      size_t size = kCacheSizes[op.a];
      std::string name;
      {
        std::lock_guard<std::mutex> g(mu_);
        if (handles_.size() >= 32) return note("skipped: handle limit");
        name = "c" + std::to_string(handles_.size());
      }
      Cache* c = a_->cache_create(name, size, kCacheAligns[op.c], flags, ctor ? &harness_ctor : nullptr);
      if (!c) return note("-> failed (injected fault)");
      std::lock_guard<std::mutex> g(mu_);
      int found = -1;
      for (size_t i = 0; i < caches_.size(); ++i)
        if (caches_[i].c == c && !caches_[i].destroyed) found = int(i);
      if (found < 0) {
        caches_.push_back(CacheObj{c, flags | (ctor ? kCacheCtor : 0), size, 0xCA000000u + uint32_t(caches_.size())});
        found = int(caches_.size() - 1);
      }
      ++caches_[size_t(found)].handles;
      handles_.push_back(CacheH{found, true});
      return note("-> cache" + std::to_string(handles_.size() - 1) + " (object " + std::to_string(found) + ")");
    }
    case OpKind::kCacheShrink: {
      if (in_rcu) return note("skipped: may sleep inside an RCU read section");
      int cobj;
      Cache* cache = pin_cache(op.a, &cobj);
      if (!cache) return note("skipped: no cache");
      a_->cache_shrink(cache);
      unpin_cache(cobj);
      return;
    }
    case OpKind::kCacheDestroy: {
      if (in_rcu) return note("skipped: may sleep inside an RCU read section");
      int h, cobj;
      Cache* cache;
      {
        std::lock_guard<std::mutex> g(mu_);
        h = pick_cache(op.a);
        if (h < 0) return note("skipped: no cache");
        cobj = handles_[size_t(h)].obj;
        CacheObj& co = caches_[size_t(cobj)];
        // Destroying a cache that has objects or users is the caller's bug; fuzz_api covers it.
        if (co.live || co.busy || (co.handles == 1 && co.destroying)) return note("skipped: cache in use");
        handles_[size_t(h)].alive = false;
        if (co.handles == 1) co.destroying = true;
        cache = co.c;
      }
      bool ok = a_->cache_destroy(cache);
      if (!ok) harness_fail("cache_destroy refused a cache with no objects");
      std::lock_guard<std::mutex> g(mu_);
      CacheObj& co = caches_[size_t(cobj)];
      if (--co.handles == 0) co.destroyed = true;
      co.destroying = false;
      return note("cache" + std::to_string(h) + " destroyed");
    }
    case OpKind::kAlloc:
    case OpKind::kAllocMany: {
      size_t n = op.kind == OpKind::kAlloc ? 1 : std::max(1, op.b % 17);
      unsigned gfp = op.kind == OpKind::kAlloc ? op.b : op.c;
      size_t got = 0;
      for (size_t i = 0; i < n; ++i) {
        {
          std::lock_guard<std::mutex> g(mu_);
          if (objs_.size() >= 4096) break;
        }
        int cobj;
        Cache* cache = pin_cache(op.a, &cobj);
        if (!cache) break;
        got += alloc_one(t, cobj, cache, gfp);
        unpin_cache(cobj);
      }
      return note("allocated " + std::to_string(got) + "/" + std::to_string(n));
    }
    case OpKind::kKmalloc: {
      size_t size = op.a < 128 ? size_t(op.a) * 2 + 1 : size_t(op.a - 127) * 256;
      unsigned gfp = op.b & ~kHarnessReclaimable;
      if (in_rcu) gfp |= kGfpNoWait;
      void* p = a_->kmalloc(size, gfp);
      if (!p) return note("-> failed");
      if (gfp & kGfpZero) check_zero(p, size);
      std::lock_guard<std::mutex> g(mu_);
      uint64_t st = (uint64_t(0x4B4D0000u) << 32) | ++serial_;
      stamp_obj(p, size, st);
      objs_.push_back(ObjRec{p, -1, size, st, (op.b & kHarnessReclaimable) != 0, t.idx});
      return;
    }
    case OpKind::kFree: {
      ObjRec o;
      {
        std::lock_guard<std::mutex> g(mu_);
        int i = pick_obj(op.a, false);
        if (i < 0) return note("skipped: no object");
        o = take_obj(i);
      }
      free_obj(o, op.b & 1);
      return;
    }
    case OpKind::kFreeMany:
      free_some(t.idx, size_t(std::max(1, op.a % 17)), false);
      return;
    case OpKind::kRcuLock:
      if (t.rcu_depth >= 3) return note("skipped: nesting limit");
      a_->rcu_read_lock();
      ++t.rcu_depth;
      return;
    case OpKind::kRcuRead: {
      bool own_section = t.rcu_depth == 0;
      if (own_section) {
        a_->rcu_read_lock();
        ++t.rcu_depth;
      }
      RcuRef r{};
      {
        std::lock_guard<std::mutex> g(mu_);
        int i = pick_obj(op.a, true);
        if (i >= 0) {
          r = RcuRef{objs_[size_t(i)].p, objs_[size_t(i)].cobj, caches_[size_t(objs_[size_t(i)].cobj)].tag};
          ++caches_[size_t(r.cobj)].busy;
          t.rcu_refs.push_back(r);
        }
      }
      if (r.p) rcu_check(r);
      if (own_section) rcu_unlock(t);
      return note(r.p ? "read a TYPESAFE_BY_RCU object" : "skipped: no TYPESAFE_BY_RCU object");
    }
    case OpKind::kRcuUnlock:
      if (t.rcu_depth == 0) return note("skipped: not in a read section");
      rcu_unlock(t);
      return;
    case OpKind::kRegisterShrinker: {
      if (shrinkers_.fetch_add(1) >= 2) return note("skipped: shrinker limit");
      size_t batch = 1 + op.a % 8;
      a_->register_shrinker([this, batch](const ShrinkControl&) { return free_some(-1, batch, true); });
      return;
    }
    case OpKind::kFailMapping:
      a_->fail_nth_mapping_for_testing(op.a);
      return;
    case OpKind::kFailInternal:
      a_->fail_nth_internal_alloc_for_testing(op.a);
      return;
    case OpKind::kSynchronizeRcu:
      if (in_rcu) return note("skipped: inside an RCU read section");
      a_->synchronize_rcu();
      return;
    case OpKind::kShrinkAll:
      if (in_rcu) return note("skipped: may sleep inside an RCU read section");
      a_->shrink_all();
      return;
    case OpKind::kDrain:
      if (in_rcu) return note("skipped: may sleep inside an RCU read section");
      a_->drain();
      return;

    // ---- API dialect: misuse that must be reported exactly once, leaving the state valid ----
    case OpKind::kDoubleFree: {
      int i = pick_obj(op.a, false);
      if (i < 0) return note("skipped: no object");
      ObjRec o = take_obj(i);
      free_obj(o, false);
      expect(t, ErrorKind::kDoubleFree, "double free", [&] { a_->kfree(o.p); });
      return;
    }
    case OpKind::kFreeInterior: {
      int i = pick_obj(op.a, false);
      if (i < 0) return note("skipped: no object");
      const ObjRec& o = objs_[size_t(i)];
      size_t off = 1 + op.b % std::max<size_t>(1, o.size - 1);
      if (off >= o.size) return note("skipped: object too small");
      expect(t, ErrorKind::kInvalidFree, "kfree of an interior pointer",
             [&] { a_->kfree(static_cast<char*>(o.p) + off); });
      return;
    }
    case OpKind::kFreeForeign: {
      static char static_buf[64];
      std::unique_ptr<char[]> heap(new char[64]);
      char* p = op.a % 2 ? heap.get() : static_buf;
      expect(t, ErrorKind::kInvalidFree, "kfree of a pointer the allocator does not own", [&] { a_->kfree(p); });
      return;
    }
    case OpKind::kFreeWrongCache: {
      int i = pick_obj(op.a, false), h = pick_cache(op.b);
      if (i < 0 || h < 0) return note("skipped: no object or cache");
      const ObjRec& o = objs_[size_t(i)];
      int cobj = handles_[size_t(h)].obj;
      if (cobj == o.cobj) return note("skipped: same cache");
      expect(t, ErrorKind::kWrongCache, "cache_free into the wrong cache",
             [&] { a_->cache_free(caches_[size_t(cobj)].c, o.p); });
      return;
    }
    case OpKind::kUseDestroyedCache: {
      int h = pick_cache(op.a);
      if (h < 0) return note("skipped: no cache");
      int cobj = handles_[size_t(h)].obj;
      CacheObj& co = caches_[size_t(cobj)];
      if (co.live || co.handles != 1) return note("skipped: cache has objects or aliases");
      if (!a_->cache_destroy(co.c)) harness_fail("cache_destroy refused a cache with no objects");
      handles_[size_t(h)].alive = false;
      co.handles = 0;
      co.destroyed = true;
      expect(t, ErrorKind::kUseAfterDestroy, "cache_alloc from a destroyed cache", [&] {
        if (a_->cache_alloc(co.c)) harness_fail("cache_alloc from a destroyed cache returned an object");
      });
      return;
    }
    case OpKind::kOfflineTwice: {
      int c = pick_cg(op.a, false);
      if (c < 0) return note("skipped: no cgroup");
      Cgroup* cg = cgs_[size_t(c)].cg;
      RemoteChargeScope pin(cg);  // a css reference keeps the handle valid after offline
      if (!a_->cgroup_offline(cg)) return note("busy (attached or has children)");
      cgs_[size_t(c)].online = false;
      expect(t, ErrorKind::kOfflineCgroup, "second offline of a cgroup", [&] {
        if (a_->cgroup_offline(cg)) harness_fail("the second cgroup_offline succeeded");
      });
      return;
    }
    case OpKind::kOfflineRoot:
      expect(t, ErrorKind::kBadArgument, "offline of the root cgroup", [&] {
        if (a_->cgroup_offline(a_->root_cgroup())) harness_fail("cgroup_offline(root) succeeded");
      });
      return;
    case OpKind::kBadCacheArgs:
      expect(t, ErrorKind::kBadArgument, "cache_create with bad arguments", [&] {
        Cache* c = nullptr;
        switch (op.a % 4) {
          case 0: c = a_->cache_create("bad", 0, 8, 0); break;
          case 1: c = a_->cache_create("bad", kMaxObjectSize + 1 + op.a, 8, 0); break;
          case 2: c = a_->cache_create("bad", 64, 24, 0); break;
          default: c = a_->cache_create("bad", 64, 8, 1u << 12); break;
        }
        if (c) harness_fail("cache_create with bad arguments returned a cache");
      });
      return;
    case OpKind::kBadGfp:
      expect(t, ErrorKind::kBadArgument, "kmalloc with unknown gfp bits", [&] {
        if (void* p = a_->kmalloc(64, 1u << (8 + op.a % 20))) {
          a_->kfree(p);
          harness_fail("kmalloc with unknown gfp bits returned an object");
        }
      });
      return;
    case OpKind::kUnbalancedRcuUnlock:
      if (t.rcu_depth) return note("skipped: inside a read section");
      expect(t, ErrorKind::kBadArgument, "rcu_read_unlock without rcu_read_lock", [&] { a_->rcu_read_unlock(); });
      return;
    case OpKind::kSyncInRcu:
      if (!t.rcu_depth) return note("skipped: not inside a read section");
      expect(t, ErrorKind::kBadArgument, "synchronize_rcu inside a read section", [&] { a_->synchronize_rcu(); });
      return;
    case OpKind::kDestroyBusy: {
      int h = pick_cache(op.a);
      if (h < 0) return note("skipped: no cache");
      int cobj = handles_[size_t(h)].obj;
      if (caches_[size_t(cobj)].live == 0 || caches_[size_t(cobj)].handles != 1 || h == 0)
        return note("skipped: no objects, or aliases");
      expect(t, ErrorKind::kCacheBusy, "cache_destroy with objects", [&] {
        if (a_->cache_destroy(caches_[size_t(cobj)].c)) harness_fail("cache_destroy with objects succeeded");
      });
      // The cache is kept but dead: free its objects with kfree, never allocate from it again.
      handles_[size_t(h)].alive = false;
      for (size_t i = objs_.size(); i-- > 0;)
        if (objs_[i].cobj == cobj) {
          ObjRec o = take_obj(int(i));
          free_obj(o, true);
        }
      return;
    }
    case OpKind::kApiCount:
      return;
  }
}

}  // namespace

#if defined(CGSLAB_PLATFORM_SIM)
const char* runner_mode() { return "sim"; }

RunStats run_program(const Program& p, const RunOptions& opts) {
  g_program = &p;
  g_ctx_by_sim_id.clear();
  World w(p, opts);
  platform::sim::Policy pol;
  pol.kind = p.pct ? platform::sim::Policy::Kind::kPct : platform::sim::Policy::Kind::kExplicit;
  for (const SchedStep& s : p.steps) pol.steps.push_back({s.task, s.count});
  pol.seed = p.seed;
  pol.depth = p.depth;
  pol.labels = schedule_labels(p);
  platform::sim::Hooks hooks;
  hooks.on_switch = opts.on_switch;
  if (opts.trace) hooks.on_trace = opts.trace;
  hooks.on_fail = [](const std::string& m) { harness_fail(m); };
  auto r = platform::sim::run(pol, hooks, [&] {
    w.setup(2);
    std::vector<int> ids;
    for (int i = 0; i < p.ntasks; ++i)
      ids.push_back(platform::sim::spawn(("t" + std::to_string(i)).c_str(), [&w, i] { w.run_task(i); }, false));
    platform::sim::start_policy();
    for (int id : ids) platform::sim::join(id);
    w.teardown();
  });
  g_program = nullptr;
  RunStats s;
  s.trace_hash = r.trace_hash;
  s.steps = r.steps;
  s.switches = r.switches;
  s.ops = w.ops();
  s.validations = w.validations();
  s.errors_expected = w.errors_expected();
  return s;
}
#else
const char* runner_mode() { return "threads"; }

RunStats run_program(const Program& p, const RunOptions& opts) {
  g_program = &p;
  World w(p, opts);
  w.setup(4);
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int i = 0; i < p.ntasks; ++i)
    threads.emplace_back([&, i] {
      ready.fetch_add(1);
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();  // start barrier
      w.run_task(i);
    });
  while (ready.load() < p.ntasks) std::this_thread::yield();
  go.store(true, std::memory_order_release);
  for (auto& t : threads) t.join();
  w.teardown();
  g_program = nullptr;
  RunStats s;
  s.ops = w.ops();
  return s;
}
#endif

}  // namespace cgslab::fuzz
