// validate.cc: the consistency check of one allocator's state (kernel: SLUB's
// validate_slab_cache, plus the memcg accounting that the kernel only asserts piecemeal), run
// by Allocator::validate between operations.
//
// It owns nothing and changes nothing: under cgroup_mutex, slab_mutex and charge_lock (and each
// cache's list_lock and each slot, one at a time) it walks every root and child cache, every
// magazine and slab freelist, every cgroup, and checks the invariants the layers state in their
// headers: slab counts against the lists, pages in use against the caches' slabs, each cgroup's
// usage against the pages of the caches below it plus stock, and its css refcount against the
// references it must hold.
//
// A file of its own because the fuzz builds compile it without libFuzzer's comparison tracing
// (allocator/CMakeLists.txt): its loops compare every pointer on every freelist after every
// operation, which made tracing the largest single cost of an execution, and comparisons inside
// a checker are no guide for the mutator. Its edges stay instrumented, so states that make the
// walk longer still count as coverage.
#include "validate.h"

#include <vector>

#include "cgslab/cgslab.h"
#include "memcg.h"
#include "memcg_cache.h"
#include "page_alloc.h"
#include "platform/platform.h"
#include "slab.h"

namespace cgslab {

namespace {
// One cache's failures: each clears ok and, when there is an out, adds a line naming the cache.
struct CacheFailures {
  const Cache* c;
  std::string* out;
  bool ok = true;
  void operator()(const std::string& s) {
    ok = false;
    if (out) *out += "cache " + c->name + ": " + s + "\n";
  }
};
}  // namespace

bool Slab::validate_magazine(Cache* c, unsigned i, std::string* out) {
  CacheFailures fail{c, out};
  const CpuCache& cc = c->cpu[i];
  for (unsigned k = 0; k < cc.avail; ++k) {
    void* o = cc.entries[k];
    if (PageDesc* pd = pages_.lookup(o); !pd || pd->slab_cache != c)
      fail(platform::strprintf("slot %u magazine holds %p of another cache", i, o));
    else if (!has_marker(c, o))
      fail(platform::strprintf("slot %u magazine object %p lacks the free marker", i, o));
  }
  // Deactivation only stops new objects from entering the magazines; the deactivate work
  // empties them (shrink) before it marks the cache killed.
  if (cc.avail && c->dead.load() && c->state.load() >= CacheState::kKilled &&
      c->state.load() != CacheState::kDestroyFailed)
    fail(platform::strprintf("dead cache has %u objects in slot %u", cc.avail, i));
  return fail.ok;
}

bool Slab::validate_slabs(Cache* c, std::string* out, size_t* pages) {
  CacheFailures fail{c, out};
  platform::MutexLock g(c->list_lock);
  size_t slabs = 0, empty = 0, nfree = 0;
  auto walk = [&](ListNode* head, uint8_t list) {
    for (ListNode* n = head->next; n != head; n = n->next) {
      PageDesc* pd = pd_of(n);
      ++slabs;
      if (pd->slab_cache != c) fail("slab on the list of another cache");
      if (pd->list != list) fail("slab list tag mismatch");
      size_t f = 0;
      const uintptr_t lo = reinterpret_cast<uintptr_t>(pd->addr);
      const uintptr_t span = uintptr_t(pd->objects) * c->slot_size;
      for (void* o = pd->freelist; o && f <= pd->objects; o = get_next(c, o)) {
        ++f;
        // In this slab and on an object boundary (cheaper and stricter than a page lookup).
        uintptr_t off = reinterpret_cast<uintptr_t>(o) - lo;
        if (off >= span || off % c->slot_size) {
          fail(platform::strprintf("freelist of slab %p points outside it or between objects (%p)",
                                   static_cast<void*>(pd->addr), o));
          break;
        }
      }
      if (f + pd->inuse != pd->objects)
        fail(platform::strprintf("slab %p: %zu free + %u inuse != %u objects", static_cast<void*>(pd->addr), f,
                                 unsigned(pd->inuse), unsigned(pd->objects)));
      if ((f == 0) != (list == kListFull)) fail("slab on the wrong list for its free count");
      if (pd->inuse == 0) ++empty;
      nfree += f;
    }
  };
  walk(&c->partial, kListPartial);
  walk(&c->full, kListFull);
  if (slabs != c->nr_slabs) fail(platform::strprintf("nr_slabs %zu but %zu on lists", c->nr_slabs, slabs));
  if (empty != c->nr_empty) fail(platform::strprintf("nr_empty %zu but %zu empty slabs", c->nr_empty, empty));
  if (nfree != c->nr_free) fail(platform::strprintf("nr_free %zu but %zu free objects", c->nr_free, nfree));
  // A dead cache keeps no empty slab: its last free must be able to destroy it. The empty slabs
  // it kept while live go only when the deactivate work shrinks it (state kKilled from then on),
  // as in the kernel. Judged by the state, not by min_partial, which deactivation itself sets.
  const bool dead = c->dead.load();
  const bool shrink_pending = dead && c->state.load() == CacheState::kDeactivated;
  const unsigned may_keep = !dead ? c->min_partial : shrink_pending ? Cache::kMinPartial : 0;
  if (empty > may_keep)
    fail(platform::strprintf("%zu empty slabs kept by a %s cache (at most %u)", empty,
                             dead ? "dead" : "live", may_keep));
  *pages = (c->nr_slabs + c->nr_rcu_slabs.load(std::memory_order_relaxed)) << c->order;
  return fail.ok;
}

bool validate_allocator(Memcg& memcg, MemcgCaches& caches, Slab& slab, PageAlloc& pages, std::string* out) {
  std::string rep;
  bool ok = true;
  auto fail = [&](const std::string& s) {
    ok = false;
    rep += s + "\n";
  };
  platform::MutexLock cm(memcg.cgroup_mutex);
  platform::MutexLock sm(caches.slab_mutex);
  platform::WriteLock cl(memcg.charge_lock);

  // Caches: slab structure, child bookkeeping, array entries.
  size_t pages_expected = 0;
  std::vector<Cache*> all;
  all.reserve(64);
  caches.for_each_root_locked([&](Cache* r) {
    all.push_back(r);
    MemcgCacheArray* a = r->memcg_caches.load();
    if (!a) fail("root cache " + r->name + " has no memcg_caches array");
    else if (a->size != memcg.nr_cache_ids())
      fail(platform::strprintf("root cache %s: array size %d != nr_cache_ids %d", r->name.c_str(), a->size,
                               memcg.nr_cache_ids()));
    for (int i = 0; a && i < a->size; ++i) {
      Cache* c = a->entries[i].load();
      if (!is_real_cache(c)) continue;
      if (c->root != r) fail(platform::strprintf("%s: entry %d holds a child of another root", r->name.c_str(), i));
      if (c->state.load() != CacheState::kActive)
        fail(platform::strprintf("%s: entry %d holds %s in state %s", r->name.c_str(), i, c->name.c_str(),
                                 cache_state_name(c->state.load())));
      Cgroup* cg = c->memcg.load();
      if (!cg || !memcg.is_online(cg) || cg->kmemcg_id.load() != i)
        fail(platform::strprintf("%s: entry %d holds %s whose cgroup is not the online owner of id %d",
                                 r->name.c_str(), i, c->name.c_str(), i));
    }
    for (ListNode* n = r->children.next; n != &r->children; n = n->next) {
      Cache* c = cache_of(n, &Cache::children_node);
      all.push_back(c);
      if (c->root != r) fail("child " + c->name + " on the children list of another root");
      Cgroup* cg = c->memcg.load();
      if (!cg) fail("child " + c->name + " has no cgroup");
      else if (cg != memcg.root() && !memcg.is_online(cg))
        fail("child " + c->name + " belongs to offline cgroup " + cg->path + " (not reparented)");
      CacheState st = c->state.load();
      if (st == CacheState::kActive && c->dead.load()) fail("active child " + c->name + " is dead");
      if (st != CacheState::kActive && !c->dead.load()) fail("inactive child " + c->name + " is not dead");
    }
  });
  // Magazines and stocks slot by slot: each slot is taken once, not once per cache and cgroup.
  platform::SlotTable& slots = slab.plat().slots;
  std::vector<std::pair<const Cgroup*, long>> stocks;  // per slot: cached cgroup, pages
  stocks.reserve(slots.size());
  for (unsigned i = 0; i < slots.size(); ++i) {
    slots.acquire_remote(i);
    for (Cache* c : all) {
      std::string r;
      if (!slab.validate_magazine(c, i, &r)) fail(r);
    }
    long nr = 0;
    const Cgroup* cg = memcg.stock_of_slot(i, &nr);
    stocks.emplace_back(cg, nr);
    slots.release(i);
  }
  for (Cache* c : all) {
    std::string r;
    size_t pages = 0;
    if (!slab.validate_slabs(c, &r, &pages)) fail(r);
    pages_expected += pages;
    if (!c->is_root() && size_t(c->charged_pages.load()) != pages)
      fail(platform::strprintf("child %s: charged_pages %ld but %zu pages in slabs", c->name.c_str(),
                               c->charged_pages.load(), pages));
  }
  if (pages.pages_in_use() != pages_expected)
    fail(platform::strprintf("page allocator has %zu pages in use, caches account for %zu", pages.pages_in_use(),
                             pages_expected));

  // Cgroups: counters, charge conservation, css reference equation.
  std::vector<Cgroup*> cgs;
  cgs.reserve(32);
  memcg.for_each_descendant_pre(memcg.root(), [&](Cgroup* c) { cgs.push_back(c); });
  for (Cgroup* cg : cgs) {
    if (memcg.is_root(cg)) continue;
    // An offline cgroup indexes its nearest online ancestor's caches (kernel: memcg_offline_kmem
    // gives the parent's kmemcg_id to the cgroup and every descendant), never a freed id.
    if (!memcg.is_online(cg)) {
      Cgroup* up = cg->parent;
      while (!memcg.is_root(up) && !memcg.is_online(up)) up = up->parent;
      if (cg->kmemcg_id.load() != up->kmemcg_id.load())
        fail(platform::strprintf("offline cgroup %s has kmemcg_id %d, its nearest online ancestor %s has %d",
                                 cg->path.c_str(), cg->kmemcg_id.load(), up->path.c_str(), up->kmemcg_id.load()));
    }
    long usage = cg->memory.usage();
    if (usage < 0) fail("cgroup " + cg->path + ": negative usage");
    if (cg->memory.watermark() < usage) fail("cgroup " + cg->path + ": watermark below usage");
    long expect = 0;
    for (Cgroup* d : cgs)
      if (memcg.is_descendant(d, cg)) {
        for (ListNode* n = d->kmem_caches.next; n != &d->kmem_caches; n = n->next)
          expect += cache_of(n, &Cache::kmem_caches_node)->charged_pages.load();
        for (const auto& [scg, nr] : stocks)
          if (scg == d) expect += nr;
      }
    if (usage != expect)
      fail(platform::strprintf("cgroup %s: usage %ld pages != %ld pages of slabs owned below it plus stock",
                               cg->path.c_str(), usage, expect));
    if (!memcg.is_online(cg) && usage != 0)
      fail(platform::strprintf("offline cgroup %s still has %ld pages charged", cg->path.c_str(), usage));
    long refs = memcg.is_online(cg) ? 1 : 0;
    refs += long(cg->children.size());
    refs += long(cg->kmem_caches.size());
    refs += cg->attached.load() + cg->remote_scopes.load() + cg->pending_creates.load();
    for (const auto& st : stocks) refs += st.first == cg;
    if (memcg.css_refs(cg) != refs)
      fail(platform::strprintf("cgroup %s: css refcount %ld, expected %ld (online + children + caches + "
                               "tasks + remote scopes + pending creations + stocks)",
                               cg->path.c_str(), memcg.css_refs(cg), refs));
  }
  if (out) *out = rep;
  return ok;
}

}  // namespace cgslab
