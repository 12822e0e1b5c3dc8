// run.h: one stress run's bookkeeping: operation counters, the first failure, the status line,
// the time series and the JSON report.
//
// Counters are per thread (one cache line per thread, written only by that thread with relaxed
// stores), so counting costs the hot loop no shared write. A failure can be raised from any
// thread (a stamp mismatch in a worker, an unexpected error from inside the allocator); the
// first one wins and the main thread turns it into the exit: message, seed, operation counts
// and the command that repeats the run, on stderr, then the report with verdict "fail", then
// exit status 1. Crashes that never return to the main thread (a sanitizer report, an abort
// from the allocator's hang detector) print the same seed/counts line from a death callback /
// signal handler, so every failing log says how to repeat it.
//
// The report is JSON: configuration, verdict, totals, an RSS verdict, and "series" — columns of
// equal length, one row per sample — which stress_plot renders as SVG.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "cli.h"

namespace cgslab::stress {

// Resident set size of this process (/proc/self/statm), bytes.
size_t rss_bytes();
// Bytes malloc'd and not yet freed (sanitizer builds: the sanitizer allocator's count, quarantine
// excluded; otherwise glibc's mallinfo2).
size_t heap_live_bytes();

// "asan", "tsan" or "release"/"debug": which build this binary is.
const char* build_flavour();

inline constexpr int kMaxOpKinds = 32;

struct alignas(64) OpCounters {
  std::atomic<uint64_t> n[kMaxOpKinds] = {};
  // Single writer: a relaxed load+store, not a locked RMW.
  void add(int kind, uint64_t k = 1) { n[kind].store(n[kind].load(std::memory_order_relaxed) + k, std::memory_order_relaxed); }
};

class Run {
 public:
  Run(std::string tool, const CommonOptions& o, std::vector<std::string> op_names, unsigned max_threads);
  ~Run();

  const CommonOptions& opt() const { return opt_; }
  OpCounters& counters(unsigned thread) { return counters_[thread]; }
  uint64_t op_total() const;
  uint64_t op_count(int kind) const;
  std::string op_summary() const;

  double elapsed() const;

  // First failure wins; callable from any thread.
  void fail(const std::string& why);
  bool failed() const { return failed_.load(std::memory_order_acquire); }
  std::string failure() const;
  // Prints the failure with seed, counts and the repeat command, writes the report, exit(1).
  [[noreturn]] void die();

  // --- time series ---
  using Row = std::vector<std::pair<std::string, double>>;
  void add_sample(const Row& row);  // columns must come in the same order every time
  // One status line: elapsed, ops/s and whatever `extra` says (RSS, caches...).
  void status(const std::string& extra);

  // Totals and raw JSON sections for the report.
  void set_total(const std::string& key, double v);
  void add_section(const std::string& key, const std::string& raw_json);

  // Memory after warm-up (column rss_mb, or live_mb with --judge-memory live): baseline = median
  // of the first fifth (at least 3) of the samples at or after warm-up, final = median of the last
  // fifth. false (and why) if growth exceeds --max-rss-growth and the slack.
  bool rss_verdict(std::string* why);

  void write_report(bool pass);

 private:
  std::string tool_;
  CommonOptions opt_;
  std::vector<std::string> op_names_;
  unsigned max_threads_;
  OpCounters* counters_;
  std::chrono::steady_clock::time_point start_;
  std::atomic<bool> failed_{false};
  mutable std::mutex mu_;
  std::string failure_;
  std::vector<std::string> cols_;
  std::vector<std::vector<double>> series_;
  std::vector<std::pair<std::string, double>> totals_;
  std::vector<std::pair<std::string, std::string>> sections_;
  std::string rss_json_ = "null";
  uint64_t last_status_ops_ = 0;
  double last_status_t_ = 0;
};

}  // namespace cgslab::stress
