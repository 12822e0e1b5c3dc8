// cgslab fast-path benchmark (Google Benchmark).
//
// For every allocator variant, with 64-byte objects:
//   pair/<variant>   one alloc + one free per iteration
//   batch/<variant>  1000 allocs, then the 1000 frees, per iteration (items = 1000 alloc+free)
//   mt/<variant>     the batch loop on 1 and on 2 threads at once (wall time, total Mops/s):
//                    how each allocator scales from one thread to two
//
// Variants:
//   root_cache   cgslab::Allocator::cache_alloc/cache_free on a root cache (flags 0)
//   child_cache  same on a kCacheAccount cache, from a thread attached to cgroup /bench, so the
//                objects come from the per-cgroup child cache (verified kActive before timing)
//   kmalloc      cgslab::Allocator::kmalloc(64)/kfree
//   glibc        malloc/free
//   tcmalloc     tc_malloc/tc_free        from libtcmalloc_minimal.so.4 (or libtcmalloc.so.4)
//   jemalloc     malloc/free              from libjemalloc.so.2 (Debian's build has no je_ prefix)
//   mimalloc     mi_malloc/mi_free        from libmimalloc.so.2
//
// The peers are loaded with dlopen(RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND) instead of being linked
// (linking one would replace malloc for the whole process). Before a peer is benchmarked the
// bench checks that the dlsym'd functions live in that library (dladdr) and that a pointer they
// return is owned by that allocator (tcmalloc: MallocExtension_GetOwnership, jemalloc: the
// thread.allocated counter, mimalloc: mi_is_in_heap_region). A peer that is missing or fails the
// check is skipped with a message saying why.
//
// Debian's jemalloc uses initial-exec TLS (2.6 KB), more than glibc's default 512-byte surplus
// for dlopen'd libraries ("cannot allocate memory in static TLS block"). When that happens the
// bench re-executes itself once with GLIBC_TUNABLES=glibc.rtld.optional_static_tls=16384.
//
// After the run a "Ratios (same run)" table is printed from the medians of the repetitions
// (default --benchmark_repetitions=5 unless given), CPU time throughout.

#include <dlfcn.h>
#include <link.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <benchmark/benchmark.h>

#include "cgslab/cgslab.h"

namespace {

constexpr size_t kObjSize = 64;
constexpr int kBatch = 1000;
constexpr int kDefaultRepetitions = 5;
constexpr const char* kStaticTlsTunable = "glibc.rtld.optional_static_tls=16384";
constexpr const char* kReexecEnv = "CGSLAB_BENCH_TLS_REEXEC";

[[noreturn]] void Die(const std::string& msg) {
  std::fflush(stdout);
  std::fprintf(stderr, "cgslab_bench: FATAL: %s\n", msg.c_str());
  std::abort();
}

// ------------------------------------------------------------------------------------------------
// Peer allocators, loaded at run time.

using MallocFn = void* (*)(size_t);
using FreeFn = void (*)(void*);

enum class PeerKind { kTcmalloc, kJemalloc, kMimalloc };

struct Peer {
  const char* name = nullptr;
  PeerKind kind = PeerKind::kTcmalloc;
  std::vector<const char*> sonames;  // tried in order
  const char* malloc_sym = nullptr;
  const char* free_sym = nullptr;
  const char* apt_package = nullptr;

  // Filled in by LoadPeer.
  bool ok = false;
  MallocFn malloc_fn = nullptr;
  FreeFn free_fn = nullptr;
  std::string path;         // the library actually loaded
  std::string version;
  std::string check;        // how ownership was verified
  std::string skip_reason;  // why it is skipped
};

std::string LibraryPath(void* handle) {
  struct link_map* lm = nullptr;
  if (dlinfo(handle, RTLD_DI_LINKMAP, &lm) != 0 || lm == nullptr || lm->l_name == nullptr) return {};
  return lm->l_name;
}

std::string ObjectOf(const void* fn) {
  Dl_info info{};
  if (dladdr(fn, &info) == 0 || info.dli_fname == nullptr) return "<unknown>";
  return info.dli_fname;
}

bool ReexecWithStaticTls(char** argv) {
  if (std::getenv(kReexecEnv) != nullptr) return false;  // already did it once
  std::string tunables = kStaticTlsTunable;
  if (const char* old = std::getenv("GLIBC_TUNABLES"); old != nullptr && *old != '\0') {
    tunables = std::string(old) + ":" + kStaticTlsTunable;
  }
  setenv("GLIBC_TUNABLES", tunables.c_str(), 1);
  setenv(kReexecEnv, "1", 1);
  std::fflush(stdout);
  std::fflush(stderr);
  execv("/proc/self/exe", argv);
  std::fprintf(stderr, "cgslab_bench: re-exec with GLIBC_TUNABLES=%s failed: %s\n",
               tunables.c_str(), std::strerror(errno));
  return false;
}

// Checks that p (returned by the peer) is owned by the peer, and that a glibc pointer is not.
bool VerifyOwnership(Peer& peer, void* handle, std::string* why) {
  void* glibc_ptr = std::malloc(kObjSize);
  benchmark::DoNotOptimize(glibc_ptr);
  bool ok = false;
  switch (peer.kind) {
    case PeerKind::kTcmalloc: {
      // MallocExtension::Ownership: 0 unknown, 1 owned, 2 not owned.
      using OwnFn = int (*)(const void*);
      auto own = reinterpret_cast<OwnFn>(dlsym(handle, "MallocExtension_GetOwnership"));
      using VerFn = const char* (*)(int*, int*, const char**);
      if (auto ver = reinterpret_cast<VerFn>(dlsym(handle, "tc_version"))) {
        int major = 0, minor = 0;
        const char* patch = nullptr;
        peer.version = ver(&major, &minor, &patch);
      }
      if (own == nullptr) {
        *why = "MallocExtension_GetOwnership not found";
        break;
      }
      void* p = peer.malloc_fn(kObjSize);
      if (p == nullptr) {
        *why = "tc_malloc(64) returned null";
        break;
      }
      std::memset(p, 0xa5, kObjSize);
      int own_p = own(p), own_glibc = own(glibc_ptr);
      peer.free_fn(p);
      ok = own_p == 1 && own_glibc == 2;
      peer.check = "MallocExtension_GetOwnership: tc_malloc ptr owned, glibc ptr not owned";
      if (!ok) {
        *why = "MallocExtension_GetOwnership(tc_malloc ptr)=" + std::to_string(own_p) +
               ", (glibc ptr)=" + std::to_string(own_glibc) + " (want 1 and 2)";
      }
      break;
    }
    case PeerKind::kJemalloc: {
      using CtlFn = int (*)(const char*, void*, size_t*, void*, size_t);
      auto ctl = reinterpret_cast<CtlFn>(dlsym(handle, "mallctl"));
      if (ctl == nullptr) {
        *why = "mallctl not found";
        break;
      }
      const char* ver = nullptr;
      size_t sz = sizeof(ver);
      if (ctl("version", &ver, &sz, nullptr, 0) == 0 && ver != nullptr) peer.version = ver;
      auto allocated = [&]() -> std::optional<uint64_t> {
        uint64_t v = 0;
        size_t len = sizeof(v);
        if (ctl("thread.allocated", &v, &len, nullptr, 0) != 0) return std::nullopt;
        return v;
      };
      auto a0 = allocated();
      void* p = peer.malloc_fn(kObjSize);
      auto a1 = allocated();
      void* g = std::malloc(kObjSize);
      benchmark::DoNotOptimize(g);
      auto a2 = allocated();
      std::free(g);
      if (p == nullptr) {
        *why = "malloc(64) from libjemalloc returned null";
        break;
      }
      std::memset(p, 0xa5, kObjSize);
      peer.free_fn(p);
      if (!a0 || !a1 || !a2) {
        *why = "mallctl(\"thread.allocated\") failed (jemalloc built without stats?)";
        break;
      }
      ok = *a1 - *a0 >= kObjSize && *a2 == *a1;
      peer.check = "mallctl thread.allocated grows by 64 on its malloc, not on glibc's";
      if (!ok) {
        *why = "thread.allocated " + std::to_string(*a0) + " -> " + std::to_string(*a1) +
               " after its malloc(64), -> " + std::to_string(*a2) + " after glibc malloc(64)";
      }
      break;
    }
    case PeerKind::kMimalloc: {
      using InHeapFn = bool (*)(const void*);
      auto in_heap = reinterpret_cast<InHeapFn>(dlsym(handle, "mi_is_in_heap_region"));
      using VerFn = int (*)();
      if (auto ver = reinterpret_cast<VerFn>(dlsym(handle, "mi_version"))) {
        int v = ver();
        peer.version = std::to_string(v / 100) + "." + std::to_string((v / 10) % 10) + "." +
                       std::to_string(v % 10);
      }
      if (in_heap == nullptr) {
        *why = "mi_is_in_heap_region not found";
        break;
      }
      void* p = peer.malloc_fn(kObjSize);
      if (p == nullptr) {
        *why = "mi_malloc(64) returned null";
        break;
      }
      std::memset(p, 0xa5, kObjSize);
      bool in_p = in_heap(p), in_glibc = in_heap(glibc_ptr);
      peer.free_fn(p);
      ok = in_p && !in_glibc;
      peer.check = "mi_is_in_heap_region: mi_malloc ptr in heap, glibc ptr not";
      if (!ok) {
        *why = std::string("mi_is_in_heap_region(mi_malloc ptr)=") + (in_p ? "true" : "false") +
               ", (glibc ptr)=" + (in_glibc ? "true" : "false");
      }
      break;
    }
  }
  std::free(glibc_ptr);
  if (ok) {
    // A short burst: alloc/free must be stable before it is timed.
    std::vector<void*> ptrs(4 * kBatch);
    for (int round = 0; round < 4; ++round) {
      for (auto& p : ptrs) {
        p = peer.malloc_fn(kObjSize);
        if (p == nullptr) {
          *why = "allocation returned null during the self-check burst";
          return false;
        }
        std::memset(p, round, kObjSize);
      }
      for (auto* p : ptrs) peer.free_fn(p);
    }
  }
  return ok;
}

// Loads a peer. Returns false only when the process should be re-executed with more static TLS.
bool LoadPeer(Peer& peer, bool* wants_static_tls) {
  std::string errors;
  void* handle = nullptr;
  for (const char* soname : peer.sonames) {
    dlerror();
    handle = dlopen(soname, RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (handle != nullptr) break;
    const char* err = dlerror();
    std::string e = err != nullptr ? err : "unknown dlopen error";
    if (e.find("static TLS") != std::string::npos) *wants_static_tls = true;
    if (!errors.empty()) errors += "; ";
    errors += e;
  }
  std::string names;
  for (const char* s : peer.sonames) names += (names.empty() ? "" : " or ") + std::string(s);
  if (handle == nullptr) {
    if (errors.find("cannot open shared object file") != std::string::npos &&
        errors.find("static TLS") == std::string::npos) {
      peer.skip_reason = names + " not found; apt-get install " + peer.apt_package;
    } else {
      peer.skip_reason = "dlopen failed: " + errors;
    }
    return false;
  }
  peer.path = LibraryPath(handle);
  // The handle is intentionally never closed: the allocator must outlive every pointer it served.
  dlerror();
  peer.malloc_fn = reinterpret_cast<MallocFn>(dlsym(handle, peer.malloc_sym));
  peer.free_fn = reinterpret_cast<FreeFn>(dlsym(handle, peer.free_sym));
  if (peer.malloc_fn == nullptr || peer.free_fn == nullptr) {
    peer.skip_reason = peer.path + " has no " + peer.malloc_sym + "/" + peer.free_sym;
    return false;
  }
  // dlsym on a handle searches the library first, but make sure the symbols did not resolve to
  // glibc (or anything else) behind its back.
  std::string m_obj = ObjectOf(reinterpret_cast<const void*>(peer.malloc_fn));
  std::string f_obj = ObjectOf(reinterpret_cast<const void*>(peer.free_fn));
  if (reinterpret_cast<void*>(peer.malloc_fn) == reinterpret_cast<void*>(&std::malloc) ||
      m_obj != peer.path || f_obj != peer.path) {
    peer.skip_reason = "loaded " + peer.path + " but " + peer.malloc_sym + " resolved to " + m_obj +
                       " and " + peer.free_sym + " to " + f_obj + ": not measuring";
    return false;
  }
  std::string why;
  if (!VerifyOwnership(peer, handle, &why)) {
    peer.skip_reason = "loaded " + peer.path + " but the ownership check failed: " + why;
    return false;
  }
  peer.ok = true;
  return true;
}

std::vector<Peer> LoadPeers(char** argv) {
  std::vector<Peer> peers;
  auto add = [&](const char* name, PeerKind kind, std::vector<const char*> sonames,
                 const char* malloc_sym, const char* free_sym, const char* apt_package) {
    Peer& p = peers.emplace_back();
    p.name = name;
    p.kind = kind;
    p.sonames = std::move(sonames);
    p.malloc_sym = malloc_sym;
    p.free_sym = free_sym;
    p.apt_package = apt_package;
  };
  add("tcmalloc", PeerKind::kTcmalloc, {"libtcmalloc_minimal.so.4", "libtcmalloc.so.4"},
      "tc_malloc", "tc_free", "libgoogle-perftools-dev");
  // Debian's libjemalloc.so.2 exports the unprefixed malloc/free (no je_malloc): dlsym on the
  // handle finds the library's own definitions, which LoadPeer double-checks with dladdr.
  add("jemalloc", PeerKind::kJemalloc, {"libjemalloc.so.2"}, "malloc", "free", "libjemalloc-dev");
  add("mimalloc", PeerKind::kMimalloc, {"libmimalloc.so.2"}, "mi_malloc", "mi_free",
      "libmimalloc-dev");
  bool wants_static_tls = false;
  for (Peer& p : peers) LoadPeer(p, &wants_static_tls);
  if (wants_static_tls && ReexecWithStaticTls(argv)) {
    // not reached: execv does not return on success
  }
  if (wants_static_tls) {
    for (Peer& p : peers) {
      if (!p.ok && p.skip_reason.find("static TLS") != std::string::npos) {
        p.skip_reason += " (even with GLIBC_TUNABLES=" +
                         std::string(std::getenv("GLIBC_TUNABLES") ? std::getenv("GLIBC_TUNABLES")
                                                                   : "") +
                         ")";
      }
    }
  }
  return peers;
}

// ------------------------------------------------------------------------------------------------
// cgslab setup.

std::atomic<bool> g_teardown{false};
std::atomic<int> g_teardown_errors{0};

void OnCgslabError(const cgslab::Error& e) {
  std::fflush(stdout);
  std::fprintf(stderr, "cgslab_bench: cgslab error %s: %s\n", cgslab::error_kind_name(e.kind),
               e.message.c_str());
  if (!g_teardown.load()) std::abort();
  g_teardown_errors.fetch_add(1);
}

struct CgslabEnv {
  cgslab::Allocator alloc;
  cgslab::Cache* root = nullptr;  // "bench64", flags 0
  cgslab::Cache* acct = nullptr;  // "bench64_acct", kCacheAccount
  cgslab::Cgroup* cg = nullptr;   // /bench
  std::string child_note;

  explicit CgslabEnv(const cgslab::Options& o) : alloc(o) {}
};

CgslabEnv* SetUpCgslab() {
  cgslab::Options opts;
  opts.on_error = OnCgslabError;
  auto* env = new CgslabEnv(opts);
  cgslab::Allocator& a = env->alloc;
  env->root = a.cache_create("bench64", kObjSize, 8, 0);
  env->acct = a.cache_create("bench64_acct", kObjSize, 8, cgslab::kCacheAccount);
  env->cg = a.cgroup_create(a.root_cgroup(), "bench");
  if (env->root == nullptr || env->acct == nullptr || env->cg == nullptr) {
    Die("cgslab setup failed (cache_create/cgroup_create returned null)");
  }

  // Warm the child cache up: the first accounted allocation only queues the creation of the
  // per-cgroup child cache (and is served by the root cache); drain() runs that work.
  {
    cgslab::TaskCgroupScope scope(env->cg);
    void* p = a.cache_alloc(env->acct);
    if (p == nullptr) Die("child_cache warm-up: first cache_alloc returned null");
    a.cache_free(env->acct, p);
    a.drain();
    cgslab::CacheState st = a.child_state_for_testing(env->acct, env->cg);
    if (st != cgslab::CacheState::kActive) {
      Die(std::string("child_cache warm-up: child cache of bench64_acct for /bench is ") +
          cgslab::cache_state_name(st) + " after alloc/free + drain(), expected active");
    }
    // One more object while attached must now come from the child's slabs.
    p = a.cache_alloc(env->acct);
    if (p == nullptr) Die("child_cache warm-up: second cache_alloc returned null");
    size_t child_slabs = 0;
    std::string child_name;
    for (const cgslab::CacheStats& cs : a.child_cache_stats(env->acct)) {
      if (cs.state == cgslab::CacheState::kActive && cs.cgroup == "/bench") {
        child_slabs += cs.slabs;
        child_name = cs.name;
      }
    }
    cgslab::CgroupStats cgs = a.cgroup_stats(env->cg);
    a.cache_free(env->acct, p);
    env->child_note = "child cache " + (child_name.empty() ? std::string("<not listed>")
                                                            : child_name) +
                      " active; slabs=" + std::to_string(child_slabs) +
                      ", /bench usage=" + std::to_string(cgs.usage) + " B";
    if (child_slabs == 0 || cgs.usage == 0) {
      env->child_note += "  WARNING: expected the child to own slabs and /bench to be charged";
    }
  }
  return env;
}

// Returns false if anything went wrong.
bool TearDownCgslab(CgslabEnv* env) {
  g_teardown = true;
  cgslab::Allocator& a = env->alloc;
  bool ok = true;
  if (!a.cgroup_offline(env->cg)) {
    std::fprintf(stderr, "cgslab_bench: teardown: cgroup_offline(/bench) refused\n");
    ok = false;
  }
  a.drain();
  if (!a.cache_destroy(env->acct)) ok = false;
  if (!a.cache_destroy(env->root)) ok = false;
  a.drain();
  std::string report;
  if (!a.validate(&report)) {
    std::fprintf(stderr, "cgslab_bench: teardown: validate() failed:\n%s\n", report.c_str());
    ok = false;
  }
  delete env;
  return ok && g_teardown_errors.load() == 0;
}

// ------------------------------------------------------------------------------------------------
// Benchmark bodies. Each Ops type is a small value with allocate()/release(); the loops are the
// same for every variant.

struct CacheOps {
  cgslab::Allocator* a;
  cgslab::Cache* c;
  void* allocate() const { return a->cache_alloc(c); }
  void release(void* p) const { a->cache_free(c, p); }
};

struct KmallocOps {
  cgslab::Allocator* a;
  void* allocate() const { return a->kmalloc(kObjSize); }
  void release(void* p) const { a->kfree(p); }
};

struct GlibcOps {
  void* allocate() const { return std::malloc(kObjSize); }
  void release(void* p) const { std::free(p); }
};

struct PeerOps {
  MallocFn m;
  FreeFn f;
  void* allocate() const { return m(kObjSize); }
  void release(void* p) const { f(p); }
};

// One untimed batch: every allocation must succeed.
template <class Ops>
bool Preflight(benchmark::State& state, const Ops& ops) {
  std::array<void*, kBatch> ptrs{};
  bool ok = true;
  for (auto& p : ptrs) {
    p = ops.allocate();
    if (p == nullptr) ok = false;
  }
  for (void* p : ptrs) {
    if (p != nullptr) ops.release(p);
  }
  if (!ok) state.SkipWithError("allocation returned null in the untimed preflight batch");
  return ok;
}

template <class Ops>
void RunPair(benchmark::State& state, const Ops& ops) {
  if (!Preflight(state, ops)) return;
  for (auto _ : state) {
    void* p = ops.allocate();
    benchmark::DoNotOptimize(p);
    ops.release(p);
  }
  state.SetItemsProcessed(state.iterations());
}

template <class Ops>
void RunBatch(benchmark::State& state, const Ops& ops) {
  if (!Preflight(state, ops)) return;
  std::array<void*, kBatch> ptrs;
  for (auto _ : state) {
    for (int i = 0; i < kBatch; ++i) ptrs[i] = ops.allocate();
    benchmark::DoNotOptimize(ptrs.data());
    benchmark::ClobberMemory();
    for (int i = 0; i < kBatch; ++i) ops.release(ptrs[i]);
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}

// ------------------------------------------------------------------------------------------------
// Result collection and the ratio table.

struct Sample {
  double ns_per_iter = 0;  // CPU time
};

class CollectingReporter : public benchmark::ConsoleReporter {
 public:
  using benchmark::ConsoleReporter::ConsoleReporter;

  void ReportRuns(const std::vector<Run>& runs) override {
    benchmark::ConsoleReporter::ReportRuns(runs);
    for (const Run& r : runs) {
      const std::string& name = r.run_name.function_name;
      if (r.threads > 1 || name.rfind("mt/", 0) == 0) {
        // mt/<variant>: total throughput over the threads, kept per thread count.
        if (r.error_occurred) {
          errors_[name] = r.error_message;
          continue;
        }
        repetitions_ = std::max<int64_t>(repetitions_, r.repetitions);
        auto it = r.counters.find("items_per_second");
        if (it == r.counters.end()) continue;
        const std::string key = name + "/threads:" + std::to_string(r.threads);
        if (r.run_type == Run::RT_Aggregate) {
          if (r.aggregate_name == "median") mt_median_[key] = it->second.value / 1e6;
        } else {
          mt_runs_[key].push_back(it->second.value / 1e6);
        }
        continue;
      }
      if (r.error_occurred) {
        errors_[name] = r.error_message;
        continue;
      }
      repetitions_ = std::max<int64_t>(repetitions_, r.repetitions);
      double ns = r.GetAdjustedCPUTime() / benchmark::GetTimeUnitMultiplier(r.time_unit) * 1e9;
      if (r.run_type == Run::RT_Aggregate) {
        if (r.aggregate_name == "median") medians_[name] = ns;
      } else {
        iterations_[name].push_back(ns);
      }
    }
  }

  // Median CPU ns per iteration; the library's median aggregate when it computed one.
  std::optional<double> MedianNs(const std::string& name) const {
    return Median(medians_, iterations_, name);
  }

  // Median total Mops/s of mt/<variant> on `threads` threads.
  std::optional<double> MtMops(const std::string& variant, int threads) const {
    const std::string key = "mt/" + variant + "/threads:" + std::to_string(threads);
    return Median(mt_median_, mt_runs_, key);
  }

  // Repetitions per benchmark (the library reports it on every run, aggregates included).
  int64_t repetitions() const { return repetitions_; }

  const std::map<std::string, std::string>& errors() const { return errors_; }

 private:
  // The library's median aggregate when it computed one, else the median of the runs.
  static std::optional<double> Median(const std::map<std::string, double>& aggregate,
                                      const std::map<std::string, std::vector<double>>& runs,
                                      const std::string& key) {
    if (auto it = aggregate.find(key); it != aggregate.end()) return it->second;
    auto it = runs.find(key);
    if (it == runs.end() || it->second.empty()) return std::nullopt;
    std::vector<double> v = it->second;
    std::sort(v.begin(), v.end());
    size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  }

  std::map<std::string, double> medians_;
  std::map<std::string, std::vector<double>> iterations_;
  std::map<std::string, std::string> errors_;
  std::map<std::string, double> mt_median_;
  std::map<std::string, std::vector<double>> mt_runs_;
  int64_t repetitions_ = 0;
};

const std::vector<std::string> kVariants = {"root_cache", "child_cache", "kmalloc", "glibc",
                                            "tcmalloc",   "jemalloc",    "mimalloc"};

void PrintRatios(const CollectingReporter& rep, const std::map<std::string, std::string>& skipped) {
  // ns per single alloc+free.
  auto op_ns = [&](const std::string& kind, const std::string& variant) -> std::optional<double> {
    auto ns = rep.MedianNs(kind + "/" + variant);
    if (!ns) return std::nullopt;
    return kind == "batch" ? *ns / kBatch : *ns;
  };
  auto missing = [&](const std::string& kind, const std::string& variant) -> std::string {
    if (skipped.count(variant)) return variant + " skipped";
    if (rep.errors().count(kind + "/" + variant)) return kind + "/" + variant + " failed";
    return kind + "/" + variant + " not run";
  };

  const long long reps = rep.repetitions();
  if (reps == 0) {
    std::printf("\nRatios (same run): no benchmark results (filter matched nothing?)\n");
    return;
  }
  std::printf("\nRatios (same run; medians of %lld repetition%s, CPU time, %zu-byte objects)\n", reps,
              reps == 1 ? "" : "s", kObjSize);
  std::printf("  %-46s %8s  %-8s %s\n", "ratio", "value", "target", "result");
  struct RatioRow {
    const char* label;
    const char* kind;
    const char* num;  // variant
    const char* den;  // variant
    bool throughput;  // value = den_time / num_time (throughput ratio)
    bool at_most;
    double target;
  };
  const RatioRow rows[] = {
      {"root_cache pair / tcmalloc pair (time)", "pair", "root_cache", "tcmalloc", false, true, 1.00},
      {"child_cache pair / root_cache pair (time)", "pair", "child_cache", "root_cache", false, true,
       1.15},
      {"root_cache batch / tcmalloc batch (throughput)", "batch", "root_cache", "tcmalloc", true,
       false, 1.00},
  };
  for (const RatioRow& row : rows) {
    auto a = op_ns(row.kind, row.num), b = op_ns(row.kind, row.den);
    char target[16];
    std::snprintf(target, sizeof target, "%s %.2f", row.at_most ? "<=" : ">=", row.target);
    if (!a || !b) {
      std::string why = !a ? missing(row.kind, row.num) : missing(row.kind, row.den);
      std::printf("  %-46s %8s  %-8s n/a (%s)\n", row.label, "-", target, why.c_str());
      continue;
    }
    double value = row.throughput ? *b / *a : *a / *b;
    bool pass = row.at_most ? value <= row.target : value >= row.target;
    std::printf("  %-46s %8.3f  %-8s %s\n", row.label, value, target, pass ? "PASS" : "MISS");
  }

  std::printf("\nPer variant: CPU ns per alloc+free (median), and time vs glibc (< 1.00 = faster)\n");
  std::printf("  %-12s %10s %9s %11s %9s %13s\n", "variant", "pair ns", "vs glibc", "batch ns",
              "vs glibc", "batch Mops/s");
  auto g_pair = op_ns("pair", "glibc"), g_batch = op_ns("batch", "glibc");
  for (const auto& v : kVariants) {
    auto p = op_ns("pair", v), b = op_ns("batch", v);
    if (!p && !b) {
      std::printf("  %-12s %s\n", v.c_str(),
                  skipped.count(v) ? ("skipped: " + skipped.at(v)).c_str() : "not run");
      continue;
    }
    auto cell = [](std::optional<double> x, const char* fmt, char* buf, size_t n) {
      if (x) {
        std::snprintf(buf, n, fmt, *x);
      } else {
        std::snprintf(buf, n, "-");
      }
      return buf;
    };
    char c1[32], c2[32], c3[32], c4[32], c5[32];
    std::optional<double> pr, br, mops;
    if (p && g_pair) pr = *p / *g_pair;
    if (b && g_batch) br = *b / *g_batch;
    if (b) mops = 1e3 / *b;
    std::printf("  %-12s %10s %9s %11s %9s %13s\n", v.c_str(), cell(p, "%.2f", c1, sizeof c1),
                cell(pr, "%.2f", c2, sizeof c2), cell(b, "%.2f", c3, sizeof c3),
                cell(br, "%.2f", c4, sizeof c4), cell(mops, "%.1f", c5, sizeof c5));
  }

  bool any_mt = false;
  for (const auto& v : kVariants) any_mt = any_mt || rep.MtMops(v, 1) || rep.MtMops(v, 2);
  if (!any_mt) return;
  std::printf("\nScaling: the batch loop on 1 and 2 threads at once (total Mops/s, wall time, median)\n");
  std::printf("  %-12s %12s %12s %9s %14s\n", "variant", "1 thread", "2 threads", "2T / 1T", "2T vs glibc 2T");
  auto g2 = rep.MtMops("glibc", 2);
  for (const auto& v : kVariants) {
    auto m1 = rep.MtMops(v, 1), m2 = rep.MtMops(v, 2);
    if (!m1 && !m2) continue;
    char a1[32] = "-", a2[32] = "-", a3[32] = "-", a4[32] = "-";
    if (m1) std::snprintf(a1, sizeof a1, "%.1f", *m1);
    if (m2) std::snprintf(a2, sizeof a2, "%.1f", *m2);
    if (m1 && m2) std::snprintf(a3, sizeof a3, "%.2f", *m2 / *m1);
    if (m2 && g2) std::snprintf(a4, sizeof a4, "%.2f", *m2 / *g2);
    std::printf("  %-12s %12s %12s %9s %14s\n", v.c_str(), a1, a2, a3, a4);
  }
}

// ------------------------------------------------------------------------------------------------

benchmark::ConsoleReporter::OutputOptions ConsoleOptions(int argc, char** argv) {
  std::string color = "auto";
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    constexpr std::string_view kFlag = "--benchmark_color=";
    if (arg.substr(0, kFlag.size()) == kFlag) color = std::string(arg.substr(kFlag.size()));
  }
  bool use_color;
  if (color == "true" || color == "yes" || color == "1" || color == "always") {
    use_color = true;
  } else if (color == "false" || color == "no" || color == "0" || color == "never") {
    use_color = false;
  } else {
    const char* term = std::getenv("TERM");
    use_color = isatty(STDOUT_FILENO) && term != nullptr && std::string_view(term) != "dumb";
  }
  return use_color ? benchmark::ConsoleReporter::OO_ColorTabular
                   : benchmark::ConsoleReporter::OO_Tabular;
}

}  // namespace

int main(int argc, char** argv) {
  // Peers first: loading jemalloc may need a re-exec with more static TLS (see the top comment).
  std::vector<Peer> peers = LoadPeers(argv);

  // Default to repetitions so the ratios come from medians.
  std::vector<char*> args(argv, argv + argc);
  bool has_reps = false;
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]).rfind("--benchmark_repetitions", 0) == 0) has_reps = true;
    if (std::string_view(argv[i]).rfind("--benchmark_format=", 0) == 0 &&
        std::string_view(argv[i]) != "--benchmark_format=console") {
      std::fprintf(stderr,
                   "cgslab_bench: note: the console format is always used on stdout (the ratio "
                   "table needs it); use --benchmark_out=FILE --benchmark_out_format=json\n");
    }
  }
  std::string reps_flag = "--benchmark_repetitions=" + std::to_string(kDefaultRepetitions);
  if (!has_reps) args.insert(args.begin() + 1, reps_flag.data());
  int bargc = static_cast<int>(args.size());
  args.push_back(nullptr);
  benchmark::Initialize(&bargc, args.data());
  if (benchmark::ReportUnrecognizedArguments(bargc, args.data())) return 1;

  std::printf("cgslab fast-path bench: %zu-byte objects, batch %d, CPU time, %s\n", kObjSize, kBatch,
              has_reps ? "repetitions as given" : "--benchmark_repetitions=5 (default)");
  if (const char* t = std::getenv(kReexecEnv); t != nullptr) {
    std::printf("  (re-executed with GLIBC_TUNABLES=%s so libjemalloc.so.2 can be dlopen'd)\n",
                std::getenv("GLIBC_TUNABLES") ? std::getenv("GLIBC_TUNABLES") : "");
  }
  std::map<std::string, std::string> skipped;
  for (const Peer& p : peers) {
    if (p.ok) {
      std::printf("  using: %-8s %s (%s/%s%s%s), verified: %s\n", p.name, p.path.c_str(),
                  p.malloc_sym, p.free_sym, p.version.empty() ? "" : ", ", p.version.c_str(),
                  p.check.c_str());
    } else {
      std::printf("  skipped: %s (%s)\n", p.name, p.skip_reason.c_str());
      skipped[p.name] = p.skip_reason;
    }
  }

  CgslabEnv* env = SetUpCgslab();
  std::printf("  child_cache: %s\n", env->child_note.c_str());
  std::fflush(stdout);

  cgslab::Allocator* a = &env->alloc;
  auto child = [env](benchmark::State& state, auto body) {
    cgslab::TaskCgroupScope scope(env->cg);
    cgslab::CacheState st = env->alloc.child_state_for_testing(env->acct, env->cg);
    if (st != cgslab::CacheState::kActive) {
      std::string msg = std::string("child cache is ") + cgslab::cache_state_name(st) +
                        ", expected active";
      state.SkipWithError(msg.c_str());
      return;
    }
    body(state, CacheOps{&env->alloc, env->acct});
  };

  for (const char* kind : {"pair", "batch", "mt"}) {
    const bool pair = std::string_view(kind) == "pair";
    const bool mt = std::string_view(kind) == "mt";
    auto reg = [&](const std::string& variant, auto fn) {
      auto* b = benchmark::RegisterBenchmark((std::string(kind) + "/" + variant).c_str(), fn);
      b->Unit(benchmark::kNanosecond);
      if (mt) b->Threads(1)->Threads(2)->UseRealTime();
    };
    auto run = [pair](benchmark::State& s, const auto& ops) {
      if (pair) {
        RunPair(s, ops);
      } else {
        RunBatch(s, ops);
      }
    };
    reg("root_cache", [=](benchmark::State& s) { run(s, CacheOps{a, env->root}); });
    reg("child_cache", [=](benchmark::State& s) {
      child(s, [&](benchmark::State& s2, const CacheOps& ops) { run(s2, ops); });
    });
    reg("kmalloc", [=](benchmark::State& s) { run(s, KmallocOps{a}); });
    reg("glibc", [=](benchmark::State& s) { run(s, GlibcOps{}); });
    for (const Peer& p : peers) {
      if (!p.ok) continue;
      PeerOps ops{p.malloc_fn, p.free_fn};
      reg(p.name, [=](benchmark::State& s) { run(s, ops); });
    }
  }

  CollectingReporter reporter(ConsoleOptions(argc, argv));
  benchmark::RunSpecifiedBenchmarks(&reporter);
  std::fflush(stdout);
  PrintRatios(reporter, skipped);
  for (const Peer& p : peers) {
    if (!p.ok) std::printf("skipped: %s (%s)\n", p.name, p.skip_reason.c_str());
  }
  benchmark::Shutdown();

  int rc = 0;
  if (!reporter.errors().empty()) {
    for (const auto& [name, msg] : reporter.errors()) {
      std::fprintf(stderr, "cgslab_bench: %s failed: %s\n", name.c_str(), msg.c_str());
    }
    rc = 1;
  }
  std::fflush(stdout);
  if (!TearDownCgslab(env)) {
    std::fprintf(stderr, "cgslab_bench: cgslab teardown reported problems (see above)\n");
    rc = 1;
  }
  return rc;
}
