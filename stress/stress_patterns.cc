// stress_patterns: the classic allocator stress shapes on accounted caches, with throughput
// measured side by side with glibc malloc and tcmalloc in the same run.
//
// Shapes (each run in short phases, round-robin over shapes x allocators so that drift of the
// machine affects every allocator alike):
//  - larson: each thread owns an array of slots and replaces random ones (free the old object,
//    allocate a new one of a random size class). Arrays outlive their threads: the next phase's
//    thread t adopts array t, so every object is freed by a different thread than the one that
//    allocated it (Larson & Krishnan's server benchmark, objects handed between threads).
//  - prodcons: half the threads allocate batches of objects and queue them, the other half take
//    the batches and free them (xmalloc-test); batches queued at the end of a phase are freed by
//    the next phase's consumers.
//  - exit: waves of short-lived threads; each allocates objects and exits with them still live,
//    and the next wave's thread frees them.
//  - pow2: each thread keeps a ring of objects of power-of-two sizes 16..32768 (kmalloc for
//    cgslab) and replaces the oldest.
//
// cgslab side: size classes are accounted caches (kCacheAccount) and pow2 is accounted kmalloc;
// every phase creates one cgroup per thread under /patterns, its threads run attached to them,
// and the cgroups go offline when the phase ends — objects carried into the next phase are then
// charged to dying caches, which must die once those objects are freed. Peers run the same code
// with malloc/free. ops = allocations + frees; each phase's time is wall time from thread start to
// join (thread creation included, for every allocator alike).
//
// Quiescent points are the phase boundaries (every thread joined): there the checks of
// stress_lifecycle run (drain, validate, charge conservation, stamps of every live object).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cgslab/cgslab.h"
#include "checks.h"
#include "cli.h"
#include "peers.h"
#include "run.h"
#include "oracles.h"
#include "rng.h"

namespace cgslab::stress {
namespace {

constexpr size_t kClassSizes[] = {32, 64, 128, 256, 512, 1024};
constexpr int kNrClasses = 6;
constexpr size_t kLarsonSlots = 2000;
constexpr size_t kBatch = 64;
constexpr size_t kQueueBatches = 64;
constexpr size_t kExitObjects = 512;
constexpr size_t kRing = 512;

enum ShapeId { kLarson, kProdCons, kExit, kPow2, kNrShapes };
const char* kShapeNames[] = {"larson", "prodcons", "exit", "pow2"};

struct Item {
  void* p = nullptr;
  uint32_t size = 0;
  int32_t cls = -1;  // size class, -1: by size (kmalloc / malloc)
  uint32_t tag = 0;
};

class Backend {
 public:
  Backend(std::string name, int index) : name_(std::move(name)), index_(index) {}
  virtual ~Backend() = default;
  const std::string& name() const { return name_; }
  int alloc_kind() const { return 2 * index_; }
  int free_kind() const { return 2 * index_ + 1; }
  virtual void* alloc(size_t size, int cls) = 0;
  virtual void release(void* p, int cls) = 0;
  virtual void phase_begin(unsigned /*threads*/) {}
  virtual void phase_end() {}
  virtual void thread_begin(unsigned /*t*/) {}
  virtual void thread_end() {}

 private:
  std::string name_;
  int index_;
};

class CgslabBackend : public Backend {
 public:
  CgslabBackend(Allocator& a, Run& run) : Backend("cgslab", 0), a_(a), run_(run) {
    for (int i = 0; i < kNrClasses; ++i) {
      caches_[i] = a.cache_create("pat" + std::to_string(kClassSizes[i]), kClassSizes[i], 8, kCacheAccount);
      if (!caches_[i]) run.fail("cache_create(pat" + std::to_string(kClassSizes[i]) + ") failed");
    }
    parent_ = a.cgroup_create(a.root_cgroup(), "patterns");
    a.cgroup_set_max(parent_, size_t(1) << 30);
  }
  void* alloc(size_t size, int cls) override {
    void* p = cls >= 0 ? a_.cache_alloc(caches_[cls]) : a_.kmalloc(size, kGfpAccount);
    if (!p) run_.fail("cgslab allocation of " + std::to_string(size) + " bytes returned null (no limit is near)");
    return p;
  }
  void release(void* p, int cls) override {
    if (cls >= 0)
      a_.cache_free(caches_[cls], p);
    else
      a_.kfree(p);
  }
  void phase_begin(unsigned threads) override {
    ++phase_;
    for (unsigned t = 0; t < threads; ++t) {
      Cgroup* cg = a_.cgroup_create(parent_, "p" + std::to_string(phase_) + "t" + std::to_string(t));
      if (!cg) run_.fail("cgroup_create under /patterns failed");
      cgs_.push_back(cg);
    }
  }
  void phase_end() override {
    for (Cgroup* cg : cgs_)
      if (cg && !a_.cgroup_offline(cg)) run_.fail("phase cgroup refused to go offline after its threads exited");
    cgs_.clear();
  }
  void thread_begin(unsigned t) override {
    if (!cgs_.empty()) scope().emplace(cgs_[t % cgs_.size()]);
  }
  void thread_end() override { scope().reset(); }

  void teardown() {
    if (!a_.cgroup_offline(parent_)) run_.fail("teardown: /patterns refused to go offline");
    for (Cache* c : caches_)
      if (!a_.cache_destroy(c)) run_.fail("teardown: cache_destroy of a pattern cache returned false");
  }
  Cgroup* parent() const { return parent_; }

 private:
  static std::optional<TaskCgroupScope>& scope() {
    thread_local std::optional<TaskCgroupScope> s;
    return s;
  }
  Allocator& a_;
  Run& run_;
  Cache* caches_[kNrClasses] = {};
  Cgroup* parent_ = nullptr;
  std::vector<Cgroup*> cgs_;
  uint64_t phase_ = 0;
};

class PeerBackend : public Backend {
 public:
  PeerBackend(const Peer& p, int index, Run& run) : Backend(p.name, index), peer_(p), run_(run) {}
  void* alloc(size_t size, int) override {
    void* p = peer_.malloc_fn(size);
    if (!p) run_.fail(name() + " malloc(" + std::to_string(size) + ") returned null");
    return p;
  }
  void release(void* p, int) override { peer_.free_fn(p); }

 private:
  Peer peer_;
  Run& run_;
};

struct BatchSlot {
  Item items[kBatch];
  size_t n = 0;
};

// Live objects of one (shape, allocator) pair, carried from phase to phase.
struct ShapeState {
  std::vector<std::vector<Item>> arrays;  // larson: [thread][slot]; exit: [thread]; pow2: [thread] rings
  std::vector<size_t> pos;                // pow2 ring positions
  std::mutex qmu;                         // prodcons queue (a ring of batches)
  std::vector<BatchSlot> queue{kQueueBatches + 1};
  size_t qhead = 0, qlen = 0;
  std::vector<BatchSlot> overflow;        // batches queued at a phase's end beyond the ring
};

class World {
 public:
  World(const CommonOptions& o) : opt(o), run("stress_patterns", o, op_names(), o.threads + 2), sink(&harness::thread_expectation, [this](const std::string& m) { run.fail(m); }) {
    Options ao;
    ao.on_error = sink.handler();
    ao.nr_cpu_slots = nr_slots;
    a = std::make_unique<Allocator>(ao);
  }
  static std::vector<std::string> op_names() {
    return {"cgslab_alloc", "cgslab_free", "glibc_alloc", "glibc_free", "tcmalloc_alloc", "tcmalloc_free",
            "phases", "threads"};
  }
  static constexpr int kPhases = 6, kThreads = 7;

  const CommonOptions& opt;
  Run run;
  harness::ErrorChecker sink;
  unsigned nr_slots = default_cpu_slots();
  std::unique_ptr<Allocator> a;
  std::atomic<bool> stop{false};
  std::atomic<double> join_deadline{0};  // >0 while the main thread joins a phase's threads
  std::atomic<bool> finished{false};
  std::atomic<const char*> phase_name{""};

  // Fails the run when a phase's threads are not joined by the deadline.
  void watchdog() {
    while (!finished.load()) {
      double d = join_deadline.load();
      if (d > 0 && run.elapsed() > d) {
        run.fail(std::string("quiescent point: phase ") + phase_name.load() + ": its threads did not stop within " +
                 std::to_string(int(opt.barrier_timeout_s)) + " s of the phase's end (a hang inside the allocator?)");
        run.die();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  Item make(Backend& b, size_t size, int cls, uint32_t tag, OpCounters& k) {
    Item it{b.alloc(size, cls), uint32_t(size), cls, tag};
    k.add(b.alloc_kind());
    if (it.p) harness::stamp_write(it.p, size, harness::stamp_at(it.p, tag));
    return it;
  }
  void drop(Backend& b, Item& it, OpCounters& k, const char* shape) {
    if (!it.p) return;
    if (!harness::stamp_check(it.p, it.size, harness::stamp_at(it.p, it.tag), 0, nullptr)) {
      char buf[256];
      std::snprintf(buf, sizeof buf, "%s/%s: object %p (%u bytes) changed while allocated", b.name().c_str(), shape,
                    it.p, it.size);
      run.fail(buf);
    }
    b.release(it.p, it.cls);
    k.add(b.free_kind());
    it.p = nullptr;
  }

  void larson(Backend& b, ShapeState& s, unsigned t, uint64_t seed) {
    OpCounters& k = run.counters(t);
    Rng rng(seed);
    auto& arr = s.arrays[t];
    uint32_t tag = uint32_t(seed);
    while (!stop.load(std::memory_order_relaxed)) {
      Item& it = arr[rng.below(kLarsonSlots)];
      drop(b, it, k, "larson");
      int cls = int(rng.below(kNrClasses));
      it = make(b, kClassSizes[cls], cls, ++tag, k);
    }
  }

  void producer(Backend& b, ShapeState& s, unsigned t, uint64_t seed) {
    OpCounters& k = run.counters(t);
    Rng rng(seed);
    uint32_t tag = uint32_t(seed);
    BatchSlot batch;
    while (!stop.load(std::memory_order_relaxed)) {
      batch.n = 0;
      for (size_t i = 0; i < kBatch; ++i) {
        int cls = int(rng.below(kNrClasses));
        batch.items[batch.n++] = make(b, kClassSizes[cls], cls, ++tag, k);
      }
      for (;;) {
        {
          std::lock_guard<std::mutex> g(s.qmu);
          if (s.qlen < kQueueBatches) {
            s.queue[(s.qhead + s.qlen++) % kQueueBatches] = batch;
            break;
          }
          if (stop.load(std::memory_order_relaxed)) {  // keep it for the next phase
            s.overflow.push_back(batch);
            break;
          }
        }
        std::this_thread::yield();
      }
    }
  }

  void consumer(Backend& b, ShapeState& s, unsigned t) {
    OpCounters& k = run.counters(t);
    BatchSlot batch;
    while (!stop.load(std::memory_order_relaxed)) {
      bool got = false;
      {
        std::lock_guard<std::mutex> g(s.qmu);
        if (s.qlen) {
          batch = s.queue[s.qhead];
          s.qhead = (s.qhead + 1) % kQueueBatches;
          --s.qlen;
          got = true;
        } else if (!s.overflow.empty()) {
          batch = s.overflow.back();
          s.overflow.pop_back();
          got = true;
        }
      }
      if (!got) {
        std::this_thread::yield();
        continue;
      }
      for (size_t i = 0; i < batch.n; ++i) drop(b, batch.items[i], k, "prodcons");
    }
  }

  void exit_waves(Backend& b, ShapeState& s, unsigned threads, uint64_t seed) {
    uint64_t wave = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      ++wave;
      std::vector<std::thread> ws;
      for (unsigned t = 0; t < threads; ++t)
        ws.emplace_back([&, t] {
          b.thread_begin(t);
          OpCounters& k = run.counters(t);
          Rng rng(seed + wave * 131 + t);
          auto& left = s.arrays[t];  // the previous wave's thread left these live
          for (Item& it : left) drop(b, it, k, "exit");
          left.clear();
          uint32_t tag = uint32_t(rng.next());
          for (size_t i = 0; i < kExitObjects; ++i) {
            int cls = int(rng.below(kNrClasses));
            left.push_back(make(b, kClassSizes[cls], cls, ++tag, k));
          }
          k.add(kThreads);
          b.thread_end();  // and exit with the objects live
        });
      for (auto& w : ws) w.join();
    }
  }

  void pow2(Backend& b, ShapeState& s, unsigned t, uint64_t seed) {
    OpCounters& k = run.counters(t);
    Rng rng(seed);
    auto& ring = s.arrays[t];
    size_t& pos = s.pos[t];
    uint32_t tag = uint32_t(seed);
    while (!stop.load(std::memory_order_relaxed)) {
      Item& it = ring[pos];
      pos = (pos + 1) % kRing;
      drop(b, it, k, "pow2");
      unsigned shift = rng.below(10) < 7 ? 4 + rng.below(7) : 11 + rng.below(5);  // 16..1024 : 2k..32k
      it = make(b, size_t(1) << shift, -1, ++tag, k);
    }
  }

  // Runs one phase; returns its wall time.
  double phase(int shape, Backend& b, ShapeState& s, double seconds, uint64_t seed) {
    const unsigned T = opt.threads;
    phase_name.store(kShapeNames[shape]);
    b.phase_begin(T);
    stop.store(false);
    auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> th;
    auto spawn = [&](unsigned t, auto fn) {
      th.emplace_back([&, t, fn] {
        b.thread_begin(t);
        fn(t);
        b.thread_end();
      });
      run.counters(t).add(kThreads);
    };
    switch (shape) {
      case kLarson:
        for (unsigned t = 0; t < T; ++t) spawn(t, [&](unsigned x) { larson(b, s, x, seed + x); });
        break;
      case kProdCons: {
        unsigned producers = std::max(1u, T / 2);
        for (unsigned t = 0; t < producers; ++t) spawn(t, [&](unsigned x) { producer(b, s, x, seed + x); });
        for (unsigned t = producers; t < std::max(T, producers + 1); ++t)
          spawn(t, [&](unsigned x) { consumer(b, s, x); });
        break;
      }
      case kExit:
        th.emplace_back([&] { exit_waves(b, s, T, seed); });
        break;
      case kPow2:
        for (unsigned t = 0; t < T; ++t) spawn(t, [&](unsigned x) { pow2(b, s, x, seed + x); });
        break;
    }
    auto end = t0 + std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(seconds));
    while (std::chrono::steady_clock::now() < end && !run.failed()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    stop.store(true);
    // Bounded: a thread that does not come back is a hang (watchdog() fails the run).
    join_deadline.store(run.elapsed() + opt.barrier_timeout_s);
    for (auto& x : th) x.join();
    join_deadline.store(0);
    double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    b.phase_end();
    run.counters(T).add(kPhases);
    return wall;
  }

  template <typename F>
  void for_each_item(ShapeState& s, F f) {
    for (auto& v : s.arrays)
      for (auto& it : v) f(it);
    for (size_t i = 0; i < s.qlen; ++i) {
      BatchSlot& b = s.queue[(s.qhead + i) % kQueueBatches];
      for (size_t j = 0; j < b.n; ++j) f(b.items[j]);
    }
    for (auto& b : s.overflow)
      for (size_t j = 0; j < b.n; ++j) f(b.items[j]);
  }
};

std::string mops(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f", v / 1e6);
  return b;
}

int main_impl(int argc, char** argv) {
  CommonOptions o;
  double phase_s = 1;
  std::string peers_arg = "default", shapes_arg = "larson,prodcons,exit,pow2";
  ArgParser ap("stress_patterns",
               "Larson, producer/consumer, thread exit with live objects and power-of-two kmalloc on\n"
               "accounted caches; throughput side by side with glibc malloc and tcmalloc (same run).",
               "  --phase T            length of one (shape, allocator) phase (default 1s)\n"
               "  --shapes LIST        comma list of larson,prodcons,exit,pow2 (default all)\n"
               "  --peers LIST         comma list of glibc,tcmalloc, or none (default: both in release\n"
               "                       builds, none in sanitizer builds)\n");
  ap.add("--phase", [&](const std::string& v) {
    if (!parse_duration(v, &phase_s) || phase_s < 0.05) return std::string("'" + v + "' is not a duration >= 0.05 s");
    return std::string();
  });
  ap.add("--shapes", [&](const std::string& v) { shapes_arg = v; return std::string(); });
  ap.add("--peers", [&](const std::string& v) { peers_arg = v; return std::string(); });
  ap.parse(argc, argv, &o);

  auto split = [](const std::string& s) {
    std::vector<std::string> out;
    size_t i = 0;
    while (i <= s.size()) {
      size_t j = s.find(',', i);
      if (j == std::string::npos) j = s.size();
      if (j > i) out.push_back(s.substr(i, j - i));
      i = j + 1;
    }
    return out;
  };
  std::vector<int> shapes;
  for (auto& n : split(shapes_arg)) {
    int id = -1;
    for (int s = 0; s < kNrShapes; ++s)
      if (n == kShapeNames[s]) id = s;
    if (id < 0) ap.usage_error("--shapes: unknown shape '" + n + "' (larson, prodcons, exit, pow2)");
    shapes.push_back(id);
  }
  if (shapes.empty()) ap.usage_error("--shapes: empty list");
  bool sanitized = std::string(build_flavour()) == "asan" || std::string(build_flavour()) == "tsan";
  if (peers_arg == "default") peers_arg = sanitized ? "none" : "glibc,tcmalloc";
  std::vector<std::string> peer_names;
  if (peers_arg != "none")
    for (auto& n : split(peers_arg)) {
      if (n != "glibc" && n != "tcmalloc") ap.usage_error("--peers: unknown allocator '" + n + "' (glibc, tcmalloc, none)");
      peer_names.push_back(n);
    }

  World w(o);
  std::printf("stress_patterns: %s build, seed %" PRIu64 ", %u threads, %.0f s, phases of %.2f s, check every %.1f s\n",
              build_flavour(), o.seed, o.threads, o.duration_s, phase_s, o.check_every_s);
  auto cg = std::make_unique<CgslabBackend>(*w.a, w.run);
  std::vector<Backend*> backends = {cg.get()};
  std::vector<std::unique_ptr<PeerBackend>> peers;
  std::printf("  cgslab: accounted caches %s, accounted kmalloc for pow2; threads attached to per-phase cgroups\n",
              "pat32..pat1024");
  for (auto& n : peer_names) {
    Peer p = n == "glibc" ? load_glibc() : load_tcmalloc();
    std::printf("  %s: %s\n", p.name.c_str(), p.detail.c_str());
    if (!p.ok) continue;
    peers.push_back(std::make_unique<PeerBackend>(p, n == "glibc" ? 1 : 2, w.run));
    backends.push_back(peers.back().get());
  }
  std::fflush(stdout);

  // state[shape][backend]
  const unsigned T = o.threads;
  std::vector<std::vector<std::unique_ptr<ShapeState>>> state(kNrShapes);
  for (int s = 0; s < kNrShapes; ++s)
    for (size_t b = 0; b < backends.size(); ++b) {
      auto st = std::make_unique<ShapeState>();
      size_t per = s == kLarson ? kLarsonSlots : s == kPow2 ? kRing : 0;
      st->arrays.assign(T, std::vector<Item>(per));
      st->pos.assign(T, 0);
      state[size_t(s)].push_back(std::move(st));
    }
  std::vector<std::vector<double>> secs(kNrShapes, std::vector<double>(backends.size())), ops = secs;

  uint64_t checks = 0, phases = 0;
  Census census;
  double next_check = o.check_every_s, next_status = o.status_every_s;
  double win_ops = 0, win_secs = 0;  // cgslab ops and time since the last sample
  auto verify = [&](std::string* why) {
    size_t n = 0;
    for (int s = 0; s < kNrShapes; ++s)
      for (size_t b = 0; b < backends.size(); ++b)
        w.for_each_item(*state[size_t(s)][b], [&](Item& it) {
          if (!it.p || !why->empty()) return;
          ++n;
          if (!harness::stamp_check(it.p, it.size, harness::stamp_at(it.p, it.tag), 0, nullptr)) {
            char buf[200];
            std::snprintf(buf, sizeof buf, "%s/%s: live object %p (%u bytes) changed", backends[b]->name().c_str(),
                          kShapeNames[s], it.p, it.size);
            *why = buf;
          }
        });
    w.run.set_total("objects_checked_last", double(n));
    return why->empty();
  };
  auto check = [&] {
    auto t0 = std::chrono::steady_clock::now();
    std::string why;
    bool ok = check_quiescent(*w.a, {{cg->parent(), -1}}, w.nr_slots, &census, &why) && verify(&why);
    ++checks;
    if (!ok) w.run.fail("quiescent check " + std::to_string(checks) + ": " + why);
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    w.run.add_sample({{"t_s", w.run.elapsed()},
                      {"ops_per_s", win_secs > 0 ? win_ops / win_secs : 0},
                      {"rss_mb", double(rss_bytes()) / (1 << 20)},
                      {"live_mb", double(heap_live_bytes() + census.mapped_bytes) / (1 << 20)},
                      {"live_caches", double(census.live_caches)},
                      {"dying_caches", double(census.dying_caches)},
                      {"child_caches", double(census.child_caches)},
                      {"cgroups", double(census.cgroups)},
                      {"slab_mb", double(census.slab_pages) * kPageSize / (1 << 20)},
                      {"mapped_mb", double(census.mapped_bytes) / (1 << 20)},
                      {"children_created", double(census.children_created)},
                      {"children_freed", double(census.children_freed)},
                      {"check_ms", ms}});
    win_ops = win_secs = 0;
    return ok;
  };
  auto status = [&] {
    char b[256];
    std::snprintf(b, sizeof b, "rss %.1fMB  caches live %zu dying %zu  cgroups %zu  phases %" PRIu64 "  checks %" PRIu64,
                  double(rss_bytes()) / (1 << 20), census.live_caches, census.dying_caches, census.cgroups, phases,
                  checks);
    w.run.status(b);
  };

  std::thread watchdog([&w] { w.watchdog(); });
  bool done = false;
  for (uint64_t round = 0; !done && !w.run.failed(); ++round) {
    for (int s : shapes) {
      for (size_t b = 0; b < backends.size() && !done; ++b) {
        double left = o.duration_s - w.run.elapsed();
        if (left <= 0.02) {
          done = true;
          break;
        }
        uint64_t before = w.run.op_count(backends[b]->alloc_kind()) + w.run.op_count(backends[b]->free_kind());
        double wall = w.phase(s, *backends[b], *state[size_t(s)][b], std::min(phase_s, left),
                              o.seed * 31 + round * 1009 + uint64_t(s) * 97 + b);
        uint64_t n = w.run.op_count(backends[b]->alloc_kind()) + w.run.op_count(backends[b]->free_kind()) - before;
        ++phases;
        secs[size_t(s)][b] += wall;
        ops[size_t(s)][b] += double(n);
        if (b == 0) {
          win_ops += double(n);
          win_secs += wall;
        }
        if (w.run.failed()) w.run.die();
        double t = w.run.elapsed();
        if (t >= next_check) {
          if (!check()) w.run.die();
          next_check = w.run.elapsed() + o.check_every_s;
        }
        if (t >= next_status) {
          status();
          next_status = w.run.elapsed() + o.status_every_s;
        }
      }
      if (done) break;
    }
  }
  w.finished.store(true);
  watchdog.join();
  if (w.run.failed()) w.run.die();
  if (!check()) w.run.die();
  status();

  // Teardown: free everything every allocator still holds.
  OpCounters& k = w.run.counters(T + 1);
  for (int s = 0; s < kNrShapes; ++s)
    for (size_t b = 0; b < backends.size(); ++b) {
      ShapeState& st = *state[size_t(s)][b];
      w.for_each_item(st, [&](Item& it) { w.drop(*backends[b], it, k, "teardown"); });
    }
  cg->teardown();
  std::string why;
  if (!w.run.failed()) {
    harness::settle(*w.a);
    if (!harness::nothing_left(*w.a, &why)) w.run.fail(why);
  }
  if (w.run.failed()) w.run.die();
  w.a.reset();
  if (w.run.failed()) w.run.die();

  // Throughput table (same run) and the report.
  std::string table = "[";
  std::printf("\nthroughput, same run, %u threads (Mops/s; ops = allocations + frees; wall time per phase):\n", T);
  std::printf("  %-9s", "shape");
  for (auto* b : backends) std::printf(" %10s", b->name().c_str());
  for (size_t b = 1; b < backends.size(); ++b) std::printf("  cgslab/%-8s", backends[b]->name().c_str());
  std::printf("\n");
  for (int s : shapes) {
    std::printf("  %-9s", kShapeNames[s]);
    std::vector<double> rate(backends.size());
    for (size_t b = 0; b < backends.size(); ++b) {
      rate[b] = secs[size_t(s)][b] > 0 ? ops[size_t(s)][b] / secs[size_t(s)][b] : 0;
      std::printf(" %10s", mops(rate[b]).c_str());
      char e[256];
      std::snprintf(e, sizeof e, "%s{\"shape\": \"%s\", \"allocator\": \"%s\", \"ops\": %.0f, \"seconds\": %.3f, \"ops_per_s\": %.0f}",
                    table.size() > 1 ? ", " : "", kShapeNames[s], backends[b]->name().c_str(), ops[size_t(s)][b],
                    secs[size_t(s)][b], rate[b]);
      table += e;
    }
    for (size_t b = 1; b < backends.size(); ++b) std::printf("  %15.2f", rate[b] > 0 ? rate[0] / rate[b] : 0);
    std::printf("\n");
  }
  table += "]";
  w.run.add_section("throughput", table);

  std::string rss_why;
  bool rss_ok = w.run.rss_verdict(&rss_why);
  double total = w.run.elapsed();
  w.run.set_total("ops", double(w.run.op_total()));
  {
    double cg_ops = 0, cg_secs = 0;
    for (int s : shapes) cg_ops += ops[size_t(s)][0], cg_secs += secs[size_t(s)][0];
    w.run.set_total("ops_per_s", cg_secs > 0 ? cg_ops / cg_secs : 0);  // cgslab phases only
  }
  w.run.set_total("checks", double(checks));
  w.run.set_total("phases", double(phases));
  w.run.set_total("children_created", double(census.children_created));
  if (!rss_ok) {
    w.run.fail(rss_why);
    w.run.die();
  }
  w.run.write_report(true);
  std::printf("stress_patterns: PASS  %.1f s, %" PRIu64 " phases, %" PRIu64
              " quiescent checks, %" PRIu64 " child caches created; teardown left nothing\n  ops: %s\n",
              total, phases, checks, census.children_created, w.run.op_summary().c_str());
  return 0;
}

}  // namespace
}  // namespace cgslab::stress

int main(int argc, char** argv) { return cgslab::stress::main_impl(argc, argv); }
