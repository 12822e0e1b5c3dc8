// page_counter.h: hierarchical page counters (kernel: mm/page_counter.c).
//
// Owns usage/max/watermark/failcnt of one level and a pointer to its parent level. A charge adds
// at every level up to the top (the root cgroup has no counter: it is never charged); if any
// level would exceed its max the levels already charged are rolled back, that level's failcnt is
// bumped and it is reported to the caller. Lock-free: every field is an atomic; a charge that
// races with set_max may transiently exceed the new max, as in the kernel. Uncharging below zero
// is a bug: uncharge() returns false and the caller reports it.
#pragma once

#include <atomic>
#include <climits>
#include <cstddef>

namespace cgslab {

class PageCounter {
 public:
  static constexpr long kUnlimited = LONG_MAX / 2;

  explicit PageCounter(PageCounter* parent) : parent_(parent) {}

  // Charge nr_pages at every level, or none. On failure *failed names the level that refused.
  bool try_charge(long nr_pages, PageCounter** failed);
  // Charge ignoring max (kernel: page_counter_charge, used for NOFAIL).
  void charge(long nr_pages);
  // Uncharge at every level. false if any level went below zero (a bug); the counter is
  // clamped at zero so the next checks still make sense.
  bool uncharge(long nr_pages);
  // Remove nr_pages from this level only (reparenting: the parent levels keep the charge).
  bool cancel_local(long nr_pages);

  long usage() const { return usage_.load(std::memory_order_relaxed); }
  long max() const { return max_.load(std::memory_order_relaxed); }
  long watermark() const { return watermark_.load(std::memory_order_relaxed); }
  long failcnt() const { return failcnt_.load(std::memory_order_relaxed); }
  void set_max(long nr_pages) { max_.store(nr_pages, std::memory_order_relaxed); }
  PageCounter* parent() const { return parent_; }

 private:
  void bump_watermark(long v);
  bool sub(long nr_pages);

  std::atomic<long> usage_{0};
  std::atomic<long> max_{kUnlimited};
  std::atomic<long> watermark_{0};
  std::atomic<long> failcnt_{0};
  PageCounter* const parent_;
};

}  // namespace cgslab
