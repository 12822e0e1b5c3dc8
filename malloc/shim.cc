// shim.cc: libcgslab_malloc.so, a drop-in malloc (LD_PRELOAD) over cgslab's kmalloc caches.
//
// What it owns. One Allocator in static storage, built lazily on the first call that needs it
// (placement new, never destroyed: malloc works before main and after exit has begun), and three
// kinds of memory, told apart by address alone:
//   - kmalloc objects (<= kMaxObjectSize = 32 KiB): Allocator::kmalloc/kfree/ksize. The kmalloc
//     sizes are multiples of 16 and slabs are page runs aligned to their size, so every object is
//     16-aligned and power-of-two sizes are naturally aligned (checked at run time for the aligned
//     calls; a misaligned result falls back to a large block).
//   - large blocks (kernel: kmalloc_large): their own mmap, the user pointer page-aligned (or
//     aligned to the requested alignment) with a LargeHeader just below it, recorded in a hash set
//     of addresses. Only page-aligned pointers are looked up there; everything else goes to kfree.
//   - internal blocks: every allocation made while this thread is inside the allocator (t_depth >
//     0: its std::string names, std::function, vectors, per-cpu arrays, the error handler), and
//     every allocation of the allocator's own service threads (RCU, work queue; they are marked at
//     birth by the pthread_create wrapper below), comes from a power-of-two free-list arena in one
//     reserved address range. So the allocator never re-enters itself (no lock or cpu slot is ever
//     taken twice) and its metadata is never charged to the program's cgroup.
//
// Cgroup mode. CGSLAB_CGROUP=/a/b creates that path under the root at init; CGSLAB_MAX=64M sets its
// limit. Every thread attaches to it on its first kmalloc (a TaskCgroupScope in thread storage,
// never ended) and allocates with kGfpAccount. Large blocks are charged by lowering the cgroup's
// limit by their size (cgroup_set_max(max - large bytes)), so slab pages + large blocks <= max.
// CGSLAB_STAT=1 prints memory_stat and slabinfo to stderr at exit.
//
// Fork. A fork gate: each thread has a record whose `inside` flag brackets every call into the
// Allocator; the prepare handler raises g_fork_pending, waits (membarrier, then a scan) until no
// thread is inside, drains RCU callbacks and work items so the service threads are idle (blocked
// on their condition variables, lock released), and takes the arena and large-block locks. The
// child has no service threads: it can allocate and free; work it queues (child-cache creation,
// RCU-deferred frees) never runs, so in cgroup mode a cgroup-cache first needed after the fork is
// not created and those allocations are served unaccounted from the root cache (as while a
// creation is pending). A child does not drain when it forks again.
//
// Locking: g_arena_lock (arena free lists and bump pointer), g_large_lock (hash set, large-byte
// accounting and the cgroup limit changes it makes), g_fork_mu (one fork at a time). None is
// held while calling into the Allocator, except g_large_lock around cgroup_stats/cgroup_set_max
// (the allocator never calls back into the shim with it held: its allocations go to the arena).
// Errors: bad frees go to kfree, whose report reaches Options::on_error (shim_error: one line on
// stderr, then abort); a second free of a large block is no longer in the hash set, so it reaches
// kfree too ("not allocated by this allocator"). Misuse of internal-arena blocks, which the shim
// detects itself, is printed by fatal() in the same format and aborts.
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/membarrier.h>

#include <atomic>
#include <cstdarg>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <string>

#include "cgslab/cgslab.h"

#define SHIM_EXPORT extern "C" __attribute__((visibility("default")))
#define TLS_IE __attribute__((tls_model("initial-exec")))
#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

namespace {

using cgslab::Allocator;
using cgslab::Cgroup;

constexpr size_t kPage = 4096;
constexpr size_t kMaxSmall = cgslab::kMaxObjectSize;

// ------------------------------------------------------------------------------------------------
// Small spin lock (no malloc, usable before anything is initialised, re-initialisable after fork).

struct SpinLock {
  std::atomic<bool> held{false};
  void lock() {
    for (unsigned spins = 0; held.exchange(true, std::memory_order_acquire); ++spins)
      if (spins > 64) sched_yield();
  }
  void unlock() { held.store(false, std::memory_order_release); }
};
struct SpinGuard {
  explicit SpinGuard(SpinLock& l) : l_(l) { l_.lock(); }
  ~SpinGuard() { l_.unlock(); }
  SpinLock& l_;
};

// >0: this thread is inside the Allocator or is one of its service threads: allocate internally.
thread_local int t_depth TLS_IE = 0;

[[noreturn]] void fatal(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void fatal(const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n > int(sizeof buf) - 2) n = int(sizeof buf) - 2;
  buf[n] = '\n';
  ssize_t w = write(2, "cgslab malloc: ", 15);
  w = write(2, buf, size_t(n) + 1);
  (void)w;
  abort();
}

// ------------------------------------------------------------------------------------------------
// Internal arena: power-of-two blocks from one reserved range; 16-byte header below the pointer.

constexpr size_t kArenaSize = size_t(1) << 30;
constexpr unsigned kMinClass = 5, kMaxClass = 30;  // 32 B .. 1 GiB blocks
constexpr uint32_t kArenaMagic = 0xa7e4a7e4;

struct ArenaHeader {
  uint32_t magic;
  uint32_t cls;
  uint64_t offset;  // user pointer - block start
};
static_assert(sizeof(ArenaHeader) == 16);

SpinLock g_arena_lock;
std::atomic<char*> g_arena_base{nullptr};
char* g_arena_bump = nullptr;  // guarded by g_arena_lock
void* g_arena_free[kMaxClass + 1] = {};  // guarded by g_arena_lock; next pointer in the block

char* arena_base() {
  char* b = g_arena_base.load(std::memory_order_acquire);
  if (LIKELY(b)) return b;
  void* m = mmap(nullptr, kArenaSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m == MAP_FAILED) fatal("cannot reserve the %zu-byte internal arena", kArenaSize);
  char* expected = nullptr;
  if (!g_arena_base.compare_exchange_strong(expected, static_cast<char*>(m))) {
    munmap(m, kArenaSize);
    return expected;
  }
  return static_cast<char*>(m);
}

inline bool in_arena(const void* p) {
  char* b = g_arena_base.load(std::memory_order_relaxed);
  return b && p >= b && p < b + kArenaSize;
}

unsigned ceil_log2(size_t n) { return n <= 1 ? 0 : 64 - unsigned(__builtin_clzll(n - 1)); }

void* arena_alloc(size_t size, size_t align) {
  if (align < 16) align = 16;
  if (size > kArenaSize / 2) return nullptr;
  size_t need = size + sizeof(ArenaHeader) + (align > 16 ? align : 0);
  unsigned cls = ceil_log2(need);
  if (cls < kMinClass) cls = kMinClass;
  if (cls > kMaxClass) return nullptr;
  char* base = arena_base();
  char* block;
  {
    SpinGuard g(g_arena_lock);
    if (g_arena_free[cls]) {
      block = static_cast<char*>(g_arena_free[cls]);
      g_arena_free[cls] = *reinterpret_cast<void**>(block);
    } else {
      if (!g_arena_bump) g_arena_bump = base;
      size_t bsize = size_t(1) << cls;
      // Blocks of a page or more start on a page, so their interior can be given back on free.
      char* b = bsize >= kPage ? reinterpret_cast<char*>((uintptr_t(g_arena_bump) + kPage - 1) & ~(kPage - 1))
                               : g_arena_bump;
      if (b + bsize > base + kArenaSize) return nullptr;
      block = b;
      g_arena_bump = b + bsize;
    }
  }
  uintptr_t user = (uintptr_t(block) + sizeof(ArenaHeader) + align - 1) & ~(uintptr_t(align) - 1);
  auto* h = reinterpret_cast<ArenaHeader*>(user - sizeof(ArenaHeader));
  h->magic = kArenaMagic;
  h->cls = cls;
  h->offset = user - uintptr_t(block);
  return reinterpret_cast<void*>(user);
}

ArenaHeader* arena_header(const void* p) {
  auto* h = reinterpret_cast<ArenaHeader*>(uintptr_t(p) - sizeof(ArenaHeader));
  if (UNLIKELY((uintptr_t(p) & 15) || h->magic != kArenaMagic || h->cls < kMinClass || h->cls > kMaxClass))
    fatal("invalid free: %p is inside the internal arena but not a block start (or was freed twice)", p);
  return h;
}

size_t arena_usable(const void* p) {
  ArenaHeader* h = arena_header(p);
  return (size_t(1) << h->cls) - h->offset;
}

void arena_free(void* p) {
  ArenaHeader* h = arena_header(p);
  unsigned cls = h->cls;
  char* block = static_cast<char*>(p) - h->offset;
  h->magic = 0;
  size_t bsize = size_t(1) << cls;
  if (bsize >= 16 * kPage) madvise(block + kPage, bsize - kPage, MADV_DONTNEED);
  SpinGuard g(g_arena_lock);
  *reinterpret_cast<void**>(block) = g_arena_free[cls];
  g_arena_free[cls] = block;
}

// ------------------------------------------------------------------------------------------------
// Large blocks: own mapping, page-aligned user pointer, header just below it, address hash set.

constexpr uint64_t kLargeMagic = 0x4c415247456d6170ull;
struct LargeHeader {
  uint64_t magic;
  char* map_base;
  size_t map_len;
  size_t usable;   // bytes from the user pointer to the end of the mapping
  size_t charged;  // bytes charged to the cgroup (cgroup mode), else 0
  size_t pad[3];
};
static_assert(sizeof(LargeHeader) == 64);

SpinLock g_large_lock;
uintptr_t* g_large_set = nullptr;  // open addressing; 0 empty, 1 tombstone
size_t g_large_cap = 0, g_large_used = 0, g_large_live = 0;  // guarded by g_large_lock

inline size_t hash_addr(uintptr_t a, size_t cap) { return size_t((a >> 12) * 0x9e3779b97f4a7c15ull) & (cap - 1); }

void large_set_insert_locked(uintptr_t a);
void large_set_grow_locked() {
  size_t ncap = g_large_cap ? g_large_cap * 2 : 1024;
  if (g_large_live * 4 < g_large_cap) ncap = g_large_cap;  // mostly tombstones: rehash in place
  void* m = mmap(nullptr, ncap * sizeof(uintptr_t), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) fatal("cannot map the large-block table (%zu entries)", ncap);
  uintptr_t* old = g_large_set;
  size_t ocap = g_large_cap;
  g_large_set = static_cast<uintptr_t*>(m);
  g_large_cap = ncap;
  g_large_used = g_large_live = 0;
  for (size_t i = 0; i < ocap; ++i)
    if (old[i] > 1) large_set_insert_locked(old[i]);
  if (old) munmap(old, ocap * sizeof(uintptr_t));
}
void large_set_insert_locked(uintptr_t a) {
  if ((g_large_used + 1) * 2 > g_large_cap) large_set_grow_locked();
  for (size_t i = hash_addr(a, g_large_cap);; i = (i + 1) & (g_large_cap - 1)) {
    if (g_large_set[i] <= 1) {
      if (g_large_set[i] == 0) ++g_large_used;
      g_large_set[i] = a;
      ++g_large_live;
      return;
    }
  }
}
// Index of a, or SIZE_MAX.
size_t large_set_find_locked(uintptr_t a) {
  if (!g_large_cap) return SIZE_MAX;
  for (size_t i = hash_addr(a, g_large_cap);; i = (i + 1) & (g_large_cap - 1)) {
    if (g_large_set[i] == a) return i;
    if (g_large_set[i] == 0) return SIZE_MAX;
  }
}

// ------------------------------------------------------------------------------------------------
// The allocator instance, configuration, per-thread records (fork gate).

alignas(Allocator) char g_alloc_buf[sizeof(Allocator)];
std::atomic<Allocator*> g_alloc{nullptr};
std::atomic<int> g_init_state{0};  // 0 none, 1 in progress, 2 done
Cgroup* g_cg = nullptr;            // CGSLAB_CGROUP, or nullptr
unsigned g_gfp = 0;

// Size classes of plain malloc. Above 256 B kmalloc's sizes double, so a block wastes up to half
// of itself (sqlite's 4.3 KiB pages took 8 KiB: 1.9x glibc's peak RSS). Three classes between
// each pair of kmalloc sizes from 256 B to 32 KiB, as jemalloc's four per doubling, are caches of
// their own ("malloc-320", ...); a request goes to the smallest class or kmalloc size that fits.
// Their slot sizes are multiples of 64, so their objects are 64-byte aligned. g_class[i] serves
// sizes in (128 * i, 128 * (i + 1)]; nullptr means kmalloc.
constexpr uint32_t kClassSizes[] = {320,  384,   448,   640,   768,   896,   1280,  1536,  1792,
                                    2560, 3072,  3584,  5120,  6144,  7168,  10240, 12288, 14336,
                                    20480, 24576, 28672};
constexpr size_t kClassStep = 128;
cgslab::Cache* g_class[cgslab::kMaxObjectSize / kClassStep + 1];

void create_size_classes(Allocator* a) {
  cgslab::Cache* made[sizeof(kClassSizes) / sizeof(kClassSizes[0])];
  for (size_t k = 0; k < sizeof(kClassSizes) / sizeof(kClassSizes[0]); ++k) {
    char name[32];
    snprintf(name, sizeof name, "malloc-%u", kClassSizes[k]);
    made[k] = a->cache_create(name, kClassSizes[k], 64, 0);
    if (!made[k]) fatal("cannot create the size class cache %s", name);
  }
  for (size_t i = 0; i < sizeof(g_class) / sizeof(g_class[0]); ++i) {
    const size_t hi = kClassStep * (i + 1);  // the largest size this entry serves
    size_t pow2 = 256;
    while (pow2 < hi) pow2 <<= 1;
    g_class[i] = nullptr;
    if (hi <= 256) continue;
    for (size_t k = 0; k < sizeof(kClassSizes) / sizeof(kClassSizes[0]); ++k)
      if (kClassSizes[k] >= hi && kClassSizes[k] < pow2) {
        g_class[i] = made[k];
        break;
      }
  }
}
size_t g_max = SIZE_MAX;           // CGSLAB_MAX (bytes)
size_t g_large_charged = 0;        // guarded by g_large_lock
bool g_stat = false;

struct ThreadRec {
  std::atomic<int> inside{0};
  std::atomic<bool> in_use{true};
  ThreadRec* next = nullptr;
};
std::atomic<ThreadRec*> g_threads{nullptr};
thread_local ThreadRec* t_rec TLS_IE = nullptr;
thread_local bool t_attached TLS_IE = false;
alignas(cgslab::TaskCgroupScope) thread_local char t_scope_buf[sizeof(cgslab::TaskCgroupScope)];
std::atomic<bool> g_fork_pending{false};
bool g_membarrier = false;  // private expedited membarrier registered: entry needs no fence
bool g_forked_child = false;
pthread_key_t g_thread_key;
pthread_mutex_t g_fork_mu = PTHREAD_MUTEX_INITIALIZER;

void thread_exit(void* r) { static_cast<ThreadRec*>(r)->in_use.store(false, std::memory_order_release); }

ThreadRec* register_thread() {
  ++t_depth;
  ThreadRec* r = nullptr;
  for (ThreadRec* x = g_threads.load(std::memory_order_acquire); x; x = x->next) {
    bool expected = false;
    if (!x->in_use.load(std::memory_order_relaxed) && x->in_use.compare_exchange_strong(expected, true)) {
      r = x;
      break;
    }
  }
  if (!r) {
    r = new (arena_alloc(sizeof(ThreadRec), 64)) ThreadRec;
    ThreadRec* head = g_threads.load(std::memory_order_relaxed);
    do r->next = head;
    while (!g_threads.compare_exchange_weak(head, r, std::memory_order_release, std::memory_order_relaxed));
  }
  t_rec = r;
  pthread_setspecific(g_thread_key, r);
  --t_depth;
  return r;
}

// Brackets one call into the Allocator: the fork gate, and t_depth for nested allocations.
struct Inside {
  ThreadRec* r;
  int prev;
  Inside() {
    r = t_rec;
    if (UNLIKELY(!r)) r = register_thread();
    ++t_depth;
    prev = r->inside.load(std::memory_order_relaxed);
    r->inside.store(1, std::memory_order_relaxed);
    if (g_membarrier)
      std::atomic_signal_fence(std::memory_order_seq_cst);
    else
      std::atomic_thread_fence(std::memory_order_seq_cst);
    if (UNLIKELY(g_fork_pending.load(std::memory_order_relaxed))) wait_fork();
  }
  ~Inside() {
    r->inside.store(prev, std::memory_order_release);
    --t_depth;
  }
  void wait_fork() {
    while (g_fork_pending.load(std::memory_order_acquire)) {
      r->inside.store(0, std::memory_order_release);
      while (g_fork_pending.load(std::memory_order_acquire)) sched_yield();
      r->inside.store(1, std::memory_order_relaxed);
      std::atomic_thread_fence(std::memory_order_seq_cst);
    }
  }
};

void shim_error(const cgslab::Error& e) {
  fatal("%s: %s (bad use of malloc/free by the program)", cgslab::error_kind_name(e.kind), e.message.c_str());
}

size_t parse_size(const char* s) {
  char* end = nullptr;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (end == s || errno) fatal("CGSLAB_MAX='%s': expected a number with an optional K, M or G suffix", s);
  unsigned shift = 0;
  switch (*end) {
    case '\0': break;
    case 'k': case 'K': shift = 10; ++end; break;
    case 'm': case 'M': shift = 20; ++end; break;
    case 'g': case 'G': shift = 30; ++end; break;
    default: fatal("CGSLAB_MAX='%s': unknown suffix '%s' (K, M or G)", s, end);
  }
  if (*end) fatal("CGSLAB_MAX='%s': trailing characters '%s'", s, end);
  if (v == 0 || (shift && v > (~0ull >> shift))) fatal("CGSLAB_MAX='%s': out of range", s);
  return size_t(v << shift);
}

size_t cgroup_usage_locked();
void print_stat() {
  Allocator* a = g_alloc.load(std::memory_order_acquire);
  if (!a) return;
  Inside in;
  std::string out = "cgslab malloc: statistics at exit\n";
  if (g_cg) {
    auto st = a->cgroup_stats(g_cg);
    char line[256];
    snprintf(line, sizeof line, "cgroup %s: usage %zu bytes (slab pages + stock), large blocks %zu bytes, limit %zu bytes, watermark %zu, failcnt %zu\n",
             st.path.c_str(), st.usage, g_large_charged, g_max, st.watermark, st.failcnt);
    out += line;
    out += a->memory_stat(g_cg);
    if (!out.empty() && out.back() != '\n') out += '\n';
  }
  out += a->slabinfo();
  if (!out.empty() && out.back() != '\n') out += '\n';
  fwrite(out.data(), 1, out.size(), stderr);
  fflush(stderr);
}

void fork_prepare();
void fork_parent();
void fork_child();

void init_slow() {
  int expected = 0;
  if (!g_init_state.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) {
    while (g_init_state.load(std::memory_order_acquire) != 2) sched_yield();
    return;
  }
  ++t_depth;
  arena_base();
  pthread_key_create(&g_thread_key, thread_exit);
  if (syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0) g_membarrier = true;
  const char* cg = getenv("CGSLAB_CGROUP");
  const char* mx = getenv("CGSLAB_MAX");
  const char* st = getenv("CGSLAB_STAT");
  if (mx && *mx && !(cg && *cg)) fatal("CGSLAB_MAX is set but CGSLAB_CGROUP is not (e.g. CGSLAB_CGROUP=/job)");
  if (cg && *cg && cg[0] != '/') fatal("CGSLAB_CGROUP='%s': expected an absolute path such as /job", cg);
  if (mx && *mx) g_max = parse_size(mx);
  g_stat = st && *st && strcmp(st, "0") != 0;
  cgslab::Options o;
  o.on_error = shim_error;
  o.poison = false;
  Allocator* a = new (g_alloc_buf) Allocator(o);
  create_size_classes(a);
  if (cg && *cg) {
    Cgroup* c = a->root_cgroup();
    std::string path(cg);
    size_t pos = 1;
    while (pos <= path.size()) {
      size_t e = path.find('/', pos);
      if (e == std::string::npos) e = path.size();
      if (e == pos) fatal("CGSLAB_CGROUP='%s': empty path component", cg);
      c = a->cgroup_create(c, std::string_view(path).substr(pos, e - pos));
      if (!c) fatal("CGSLAB_CGROUP='%s': cannot create the cgroup", cg);
      pos = e + 1;
    }
    g_cg = c;
    g_gfp = cgslab::kGfpAccount;
    // Create the cgroup's kmalloc caches now: until a child cache exists, accounted allocations
    // are served uncharged from the root cache (kernel behaviour while creation is queued), which
    // would let a program exceed its limit early on.
    {
      cgslab::TaskCgroupScope in(c);
      for (size_t sz = 16; sz <= kMaxSmall; sz *= 2) {
        for (size_t s2 : {sz, sz + sz / 2})
          if (s2 <= kMaxSmall) a->kfree(a->kmalloc(s2, cgslab::kGfpAccount));
      }
      for (cgslab::Cache* c : g_class)
        if (c) a->cache_free(c, a->cache_alloc(c, cgslab::kGfpAccount));
    }
    a->drain();
    if (g_max != SIZE_MAX) a->cgroup_set_max(c, g_max);
  }
  pthread_atfork(fork_prepare, fork_parent, fork_child);
  if (g_stat) atexit(print_stat);
  g_alloc.store(a, std::memory_order_release);
  --t_depth;
  g_init_state.store(2, std::memory_order_release);
}

inline Allocator* get_alloc() {
  Allocator* a = g_alloc.load(std::memory_order_acquire);
  if (LIKELY(a)) return a;
  init_slow();
  return g_alloc.load(std::memory_order_acquire);
}

void attach_thread(Allocator*) {
  // Inside the gate already (t_depth > 0): the scope's own bookkeeping may allocate.
  new (t_scope_buf) cgslab::TaskCgroupScope(g_cg);
  t_attached = true;
}

// ------------------------------------------------------------------------------------------------
// Allocation paths.

size_t cgroup_usage_locked() {
  Allocator* a = get_alloc();
  Inside in;
  return a->cgroup_stats(g_cg).usage;
}

void* large_alloc(size_t size, size_t align) {
  if (align < kPage) align = kPage;
  if (size > (SIZE_MAX >> 2)) return nullptr;
  size_t body = (size + kPage - 1) & ~(kPage - 1);
  if (!body) body = kPage;
  size_t len = body + align;  // align >= one page: room for the header page below the pointer
  size_t charge = 0;
  if (!g_alloc.load(std::memory_order_acquire) && getenv("CGSLAB_CGROUP")) get_alloc();
  if (g_cg) charge = body;
  if (charge && g_max != SIZE_MAX) {
    SpinGuard g(g_large_lock);
    Allocator* a = get_alloc();
    // Lower the slab limit first, so a concurrent slab charge cannot take the room.
    if (g_large_charged + charge > g_max) return nullptr;
    size_t newmax = g_max - g_large_charged - charge;
    {
      Inside in;
      a->cgroup_set_max(g_cg, newmax);
    }
    if (cgroup_usage_locked() > newmax) {
      Inside in;
      a->cgroup_set_max(g_cg, g_max - g_large_charged);
      return nullptr;
    }
    g_large_charged += charge;
  }
  void* m = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) {
    if (charge && g_max != SIZE_MAX) {
      SpinGuard g(g_large_lock);
      g_large_charged -= charge;
      Inside in;
      g_alloc.load()->cgroup_set_max(g_cg, g_max - g_large_charged);
    }
    return nullptr;
  }
  char* base = static_cast<char*>(m);
  uintptr_t user = (uintptr_t(base) + sizeof(LargeHeader) + align - 1) & ~(uintptr_t(align) - 1);
  auto* h = reinterpret_cast<LargeHeader*>(user - sizeof(LargeHeader));
  h->magic = kLargeMagic;
  h->map_base = base;
  h->map_len = len;
  h->usable = uintptr_t(base) + len - user;
  h->charged = (charge && g_max != SIZE_MAX) ? charge : 0;
  SpinGuard g(g_large_lock);
  large_set_insert_locked(user);
  return reinterpret_cast<void*>(user);
}

// If p is a large block: its header (the block stays registered). Else nullptr.
LargeHeader* large_lookup(const void* p) {
  if (uintptr_t(p) & (kPage - 1)) return nullptr;
  SpinGuard g(g_large_lock);
  if (large_set_find_locked(uintptr_t(p)) == SIZE_MAX) return nullptr;
  return reinterpret_cast<LargeHeader*>(uintptr_t(p) - sizeof(LargeHeader));
}

bool large_free(void* p) {
  if (uintptr_t(p) & (kPage - 1)) return false;
  LargeHeader* h;
  {
    SpinGuard g(g_large_lock);
    size_t i = large_set_find_locked(uintptr_t(p));
    if (i == SIZE_MAX) return false;
    g_large_set[i] = 1;
    --g_large_live;
    h = reinterpret_cast<LargeHeader*>(uintptr_t(p) - sizeof(LargeHeader));
    if (h->magic != kLargeMagic) fatal("internal: large block %p lost its header (heap corruption)", p);
    if (h->charged) {
      g_large_charged -= h->charged;
      Inside in;
      g_alloc.load()->cgroup_set_max(g_cg, g_max - g_large_charged);
    }
  }
  h->magic = 0;
  munmap(h->map_base, h->map_len);
  return true;
}

inline void* small_alloc(size_t n, unsigned extra_gfp) {
  Allocator* a = get_alloc();
  Inside in;
  if (g_cg && UNLIKELY(!t_attached)) attach_thread(a);
  if (n > 256) {
    if (cgslab::Cache* c = g_class[(n - 1) / kClassStep]) return a->cache_alloc(c, g_gfp | extra_gfp);
  }
  return a->kmalloc(n ? n : 1, g_gfp | extra_gfp);
}

inline void* do_malloc(size_t n) {
  if (UNLIKELY(t_depth > 0)) return arena_alloc(n, 16);
  void* p = LIKELY(n <= kMaxSmall) ? small_alloc(n, 0) : large_alloc(n, kPage);
  if (UNLIKELY(!p)) errno = ENOMEM;
  return p;
}

inline void do_free(void* p) {
  if (!p) return;
  if (UNLIKELY(in_arena(p))) return arena_free(p);
  if (UNLIKELY((uintptr_t(p) & (kPage - 1)) == 0) && large_free(p)) return;
  Allocator* a = get_alloc();
  Inside in;
  a->kfree(p);
}

size_t usable_size(const void* p) {
  if (!p) return 0;
  if (in_arena(p)) return arena_usable(p);
  if (LargeHeader* h = large_lookup(p)) return h->usable;
  Allocator* a = get_alloc();
  Inside in;
  return a->ksize(p);
}

bool pow2(size_t a) { return a && !(a & (a - 1)); }

// align: a power of two.
void* do_aligned(size_t align, size_t n) {
  if (align <= 16) return do_malloc(n);
  if (UNLIKELY(t_depth > 0)) return arena_alloc(n, align);
  if (n == 0) n = 1;
  size_t s = n < align ? align : n;
  if (s <= kMaxSmall) {
    // Power-of-two kmalloc sizes are naturally aligned; 96 and 192 are only 32- and 64-aligned.
    if (align > 32 && s > 64) s = size_t(1) << ceil_log2(s);
    if (s <= kMaxSmall) {
      void* p = small_alloc(s, 0);
      if (p && (uintptr_t(p) & (align - 1)) == 0) return p;
      if (p) do_free(p);  // layout gives less alignment than expected: use a mapping
      else {
        errno = ENOMEM;
        return nullptr;
      }
    }
  }
  void* p = large_alloc(n, align);
  if (!p) errno = ENOMEM;
  return p;
}

void* do_realloc(void* p, size_t n) {
  if (!p) return do_malloc(n);
  if (n == 0) {
    do_free(p);
    return nullptr;
  }
  size_t old = usable_size(p);
  if (n <= old && (n > old / 2 || old <= 64)) return p;  // fits without wasting half of it
  if (!in_arena(p) && old > kMaxSmall && n > kMaxSmall && (uintptr_t(p) & (kPage - 1)) == 0 && !g_cg) {
    // Large to large: move the mapping (its header page travels with it).
    LargeHeader* h = large_lookup(p);
    if (h && h->map_base + kPage == static_cast<char*>(p)) {
      size_t body = (n + kPage - 1) & ~(kPage - 1);
      size_t len = body + kPage;
      SpinGuard g(g_large_lock);
      size_t i = large_set_find_locked(uintptr_t(p));
      void* m = mremap(h->map_base, h->map_len, len, MREMAP_MAYMOVE);
      if (m != MAP_FAILED) {
        g_large_set[i] = 1;
        --g_large_live;
        char* base = static_cast<char*>(m);
        auto* nh = reinterpret_cast<LargeHeader*>(base + kPage - sizeof(LargeHeader));
        nh->map_base = base;
        nh->map_len = len;
        nh->usable = body;
        large_set_insert_locked(uintptr_t(base + kPage));
        return base + kPage;
      }
    }
  }
  void* q = do_malloc(n);
  if (!q) return nullptr;  // errno set; p untouched
  memcpy(q, p, n < old ? n : old);
  do_free(p);
  return q;
}

void* do_calloc(size_t nmemb, size_t size) {
  size_t n;
  if (__builtin_mul_overflow(nmemb, size, &n)) {
    errno = ENOMEM;
    return nullptr;
  }
  if (UNLIKELY(t_depth > 0)) {
    void* p = arena_alloc(n, 16);
    if (p) memset(p, 0, n);
    return p;
  }
  if (n > kMaxSmall) {  // fresh mappings are zero
    void* p = large_alloc(n, kPage);
    if (!p) errno = ENOMEM;
    return p;
  }
  void* p = small_alloc(n, cgslab::kGfpZero);
  if (!p) errno = ENOMEM;
  return p;
}

// ------------------------------------------------------------------------------------------------
// Fork.

void fork_prepare() {
  pthread_mutex_lock(&g_fork_mu);
  // Before the gate: a thread holding g_large_lock may be about to enter the allocator.
  g_large_lock.lock();
  Allocator* a = g_alloc.load(std::memory_order_acquire);
  if (a) {
    g_fork_pending.store(true, std::memory_order_seq_cst);
    if (g_membarrier) syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
    for (ThreadRec* r = g_threads.load(std::memory_order_acquire); r; r = r->next)
      if (r != t_rec)
        while (r->inside.load(std::memory_order_acquire)) sched_yield();
    if (!g_forked_child) {  // a forked child has no service threads to drain
      ++t_depth;
      a->drain();
      --t_depth;
    }
  }
  g_arena_lock.lock();
}

void fork_parent() {
  g_arena_lock.unlock();
  g_large_lock.unlock();
  g_fork_pending.store(false, std::memory_order_release);
  pthread_mutex_unlock(&g_fork_mu);
}

void fork_child() {
  g_forked_child = true;
  g_arena_lock.unlock();
  g_large_lock.unlock();
  // The other threads are gone; their records are not in use any more.
  for (ThreadRec* r = g_threads.load(std::memory_order_acquire); r; r = r->next)
    if (r != t_rec) {
      r->inside.store(0, std::memory_order_relaxed);
      r->in_use.store(false, std::memory_order_relaxed);
    }
  g_fork_pending.store(false, std::memory_order_release);
  pthread_mutex_init(&g_fork_mu, nullptr);
  // The registration is per process (mm); re-register in the child.
  if (g_membarrier && syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) != 0)
    g_membarrier = false;
}

// ------------------------------------------------------------------------------------------------
// The allocator's service threads are created while t_depth > 0: mark them internal.

struct Trampoline {
  void* (*fn)(void*);
  void* arg;
};
void* trampoline_main(void* x) {
  t_depth = 1;
  Trampoline t = *static_cast<Trampoline*>(x);
  arena_free(x);
  return t.fn(t.arg);
}
using PthreadCreate = int (*)(pthread_t*, const pthread_attr_t*, void* (*)(void*), void*);
std::atomic<PthreadCreate> g_real_pthread_create{nullptr};

}  // namespace

// ------------------------------------------------------------------------------------------------
// Exported C API.

SHIM_EXPORT int pthread_create(pthread_t* th, const pthread_attr_t* attr, void* (*fn)(void*), void* arg) {
  PthreadCreate real = g_real_pthread_create.load(std::memory_order_acquire);
  if (UNLIKELY(!real)) {
    ++t_depth;  // dlsym may allocate
    real = reinterpret_cast<PthreadCreate>(dlsym(RTLD_NEXT, "pthread_create"));
    --t_depth;
    if (!real) fatal("pthread_create: the next definition was not found (%s)", dlerror());
    g_real_pthread_create.store(real, std::memory_order_release);
  }
  if (LIKELY(t_depth == 0)) return real(th, attr, fn, arg);
  auto* t = static_cast<Trampoline*>(arena_alloc(sizeof(Trampoline), 16));
  if (!t) return EAGAIN;
  t->fn = fn;
  t->arg = arg;
  int rc = real(th, attr, trampoline_main, t);
  if (rc) arena_free(t);
  return rc;
}

SHIM_EXPORT void* malloc(size_t n) { return do_malloc(n); }
SHIM_EXPORT void free(void* p) { do_free(p); }
SHIM_EXPORT void cfree(void* p) { do_free(p); }
SHIM_EXPORT void* calloc(size_t a, size_t b) { return do_calloc(a, b); }
SHIM_EXPORT void* realloc(void* p, size_t n) { return do_realloc(p, n); }
SHIM_EXPORT void* reallocarray(void* p, size_t a, size_t b) {
  size_t n;
  if (__builtin_mul_overflow(a, b, &n)) {
    errno = ENOMEM;
    return nullptr;
  }
  return do_realloc(p, n);
}
SHIM_EXPORT int posix_memalign(void** out, size_t align, size_t n) {
  if (!pow2(align) || align % sizeof(void*)) return EINVAL;
  int saved = errno;
  void* p = do_aligned(align, n);
  errno = saved;
  if (!p) return ENOMEM;
  *out = p;
  return 0;
}
SHIM_EXPORT void* aligned_alloc(size_t align, size_t n) {
  if (!pow2(align)) {
    errno = EINVAL;
    return nullptr;
  }
  return do_aligned(align, n);
}
SHIM_EXPORT void* memalign(size_t align, size_t n) {
  if (align > (SIZE_MAX >> 1) + 1) {
    errno = EINVAL;
    return nullptr;
  }
  if (!pow2(align)) align = align ? size_t(1) << ceil_log2(align) : 1;  // glibc rounds up
  return do_aligned(align, n);
}
SHIM_EXPORT void* valloc(size_t n) { return do_aligned(kPage, n); }
SHIM_EXPORT void* pvalloc(size_t n) {
  if (n > SIZE_MAX - kPage) {
    errno = ENOMEM;
    return nullptr;
  }
  return do_aligned(kPage, n ? (n + kPage - 1) & ~(kPage - 1) : kPage);
}
SHIM_EXPORT size_t malloc_usable_size(void* p) { return usable_size(p); }

// For the tests: bytes charged to CGSLAB_CGROUP (slab pages + stock + large blocks); SIZE_MAX
// when not in cgroup mode.
SHIM_EXPORT size_t cgslab_malloc_cgroup_usage(void) {
  if (!g_cg) return SIZE_MAX;
  SpinGuard g(g_large_lock);
  return cgroup_usage_locked() + g_large_charged;
}

// ------------------------------------------------------------------------------------------------
// C++ operators.

namespace {
void* new_impl(size_t n) {
  for (;;) {
    void* p = do_malloc(n);
    if (LIKELY(p)) return p;
    std::new_handler h = std::get_new_handler();
    if (!h) throw std::bad_alloc();
    h();
  }
}
void* new_aligned_impl(size_t n, size_t align) {
  for (;;) {
    void* p = do_aligned(align, n);
    if (LIKELY(p)) return p;
    std::new_handler h = std::get_new_handler();
    if (!h) throw std::bad_alloc();
    h();
  }
}
void* new_nothrow(size_t n) noexcept {
  try {
    return new_impl(n);
  } catch (...) {
    return nullptr;
  }
}
void* new_aligned_nothrow(size_t n, size_t align) noexcept {
  try {
    return new_aligned_impl(n, align);
  } catch (...) {
    return nullptr;
  }
}
}  // namespace

__attribute__((visibility("default"))) void* operator new(size_t n) { return new_impl(n); }
__attribute__((visibility("default"))) void* operator new[](size_t n) { return new_impl(n); }
__attribute__((visibility("default"))) void* operator new(size_t n, const std::nothrow_t&) noexcept { return new_nothrow(n); }
__attribute__((visibility("default"))) void* operator new[](size_t n, const std::nothrow_t&) noexcept { return new_nothrow(n); }
__attribute__((visibility("default"))) void* operator new(size_t n, std::align_val_t a) { return new_aligned_impl(n, size_t(a)); }
__attribute__((visibility("default"))) void* operator new[](size_t n, std::align_val_t a) { return new_aligned_impl(n, size_t(a)); }
__attribute__((visibility("default"))) void* operator new(size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return new_aligned_nothrow(n, size_t(a));
}
__attribute__((visibility("default"))) void* operator new[](size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return new_aligned_nothrow(n, size_t(a));
}
__attribute__((visibility("default"))) void operator delete(void* p) noexcept { do_free(p); }
__attribute__((visibility("default"))) void operator delete[](void* p) noexcept { do_free(p); }
__attribute__((visibility("default"))) void operator delete(void* p, const std::nothrow_t&) noexcept { do_free(p); }
__attribute__((visibility("default"))) void operator delete[](void* p, const std::nothrow_t&) noexcept { do_free(p); }
__attribute__((visibility("default"))) void operator delete(void* p, size_t) noexcept { do_free(p); }
__attribute__((visibility("default"))) void operator delete[](void* p, size_t) noexcept { do_free(p); }
__attribute__((visibility("default"))) void operator delete(void* p, std::align_val_t) noexcept { do_free(p); }
__attribute__((visibility("default"))) void operator delete[](void* p, std::align_val_t) noexcept { do_free(p); }
__attribute__((visibility("default"))) void operator delete(void* p, size_t, std::align_val_t) noexcept { do_free(p); }
__attribute__((visibility("default"))) void operator delete[](void* p, size_t, std::align_val_t) noexcept { do_free(p); }
__attribute__((visibility("default"))) void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { do_free(p); }
__attribute__((visibility("default"))) void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { do_free(p); }
