#include "page_counter.h"

namespace cgslab {

void PageCounter::bump_watermark(long v) {
  long w = watermark_.load(std::memory_order_relaxed);
  while (v > w && !watermark_.compare_exchange_weak(w, v, std::memory_order_relaxed)) {
  }
}

bool PageCounter::try_charge(long nr_pages, PageCounter** failed) {
  PageCounter* c;
  for (c = this; c; c = c->parent_) {
    long v = c->usage_.fetch_add(nr_pages, std::memory_order_relaxed) + nr_pages;
    if (v > c->max_.load(std::memory_order_relaxed)) {
      c->usage_.fetch_sub(nr_pages, std::memory_order_relaxed);
      c->failcnt_.fetch_add(1, std::memory_order_relaxed);
      if (failed) *failed = c;
      for (PageCounter* u = this; u != c; u = u->parent_) u->sub(nr_pages);
      return false;
    }
    c->bump_watermark(v);
  }
  return true;
}

void PageCounter::charge(long nr_pages) {
  for (PageCounter* c = this; c; c = c->parent_)
    c->bump_watermark(c->usage_.fetch_add(nr_pages, std::memory_order_relaxed) + nr_pages);
}

bool PageCounter::sub(long nr_pages) {
  long v = usage_.fetch_sub(nr_pages, std::memory_order_relaxed) - nr_pages;
  if (v < 0) {
    usage_.fetch_add(-v, std::memory_order_relaxed);
    return false;
  }
  return true;
}

bool PageCounter::uncharge(long nr_pages) {
  bool ok = true;
  for (PageCounter* c = this; c; c = c->parent_) ok &= c->sub(nr_pages);
  return ok;
}

bool PageCounter::cancel_local(long nr_pages) { return sub(nr_pages); }

}  // namespace cgslab
