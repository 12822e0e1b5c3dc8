// run.cc: see run.h. The crash path (signal handler, sanitizer death callback) formats into a
// static buffer with snprintf and write(2): it must not allocate, since it may run inside a
// broken allocator or after a sanitizer found heap corruption.
#include "run.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define STRESS_SANITIZER 1
#include <sanitizer/allocator_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#endif
#if !STRESS_SANITIZER
#include <malloc.h>
#endif

namespace cgslab::stress {

size_t rss_bytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  unsigned long size = 0, resident = 0;
  int n = std::fscanf(f, "%lu %lu", &size, &resident);
  std::fclose(f);
  return n == 2 ? size_t(resident) * size_t(sysconf(_SC_PAGESIZE)) : 0;
}

size_t heap_live_bytes() {
#if STRESS_SANITIZER
  return __sanitizer_get_current_allocated_bytes();
#else
  struct mallinfo2 m = mallinfo2();
  return m.uordblks + m.hblkhd;
#endif
}

const char* build_flavour() {
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
  return "asan";
#elif __has_feature(thread_sanitizer)
  return "tsan";
#endif
#endif
#ifdef NDEBUG
  return "release";
#else
  return "debug";
#endif
}

namespace {

Run* g_run = nullptr;
char g_repeat[1024];

// Appends "kind=n" pairs without allocating.
size_t format_counts(const Run& r, const std::vector<std::string>& names, char* buf, size_t cap) {
  size_t len = 0;
  for (size_t k = 0; k < names.size() && len + 64 < cap; ++k) {
    uint64_t n = r.op_count(int(k));
    if (n == 0) continue;
    int w = std::snprintf(buf + len, cap - len, "%s%s=%" PRIu64, len ? " " : "", names[k].c_str(), n);
    if (w > 0) len += size_t(w);
  }
  return len;
}

std::vector<std::string>* g_names = nullptr;

void crash_note(const char* what) {
  if (!g_run || !g_names) return;
  static char buf[4096];
  int w = std::snprintf(buf, sizeof buf, "\n%s — seed %" PRIu64 ", ops: ", what, g_run->opt().seed);
  size_t len = w > 0 ? size_t(w) : 0;
  len += format_counts(*g_run, *g_names, buf + len, sizeof buf - len - 1100);
  w = std::snprintf(buf + len, sizeof buf - len, "\n%s\n", g_repeat);
  if (w > 0) len += size_t(w);
  ssize_t ignored = write(2, buf, len);
  (void)ignored;
}

void on_signal(int sig) {
  crash_note(sig == SIGABRT ? "stress: aborted (SIGABRT: allocator hang/abort or assertion)"
                            : "stress: crashed (fatal signal)");
  signal(sig, SIG_DFL);
  raise(sig);
}

#if STRESS_SANITIZER
void on_sanitizer_death() { crash_note("stress: sanitizer report (see above)"); }
#endif

std::string json_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '"': o += "\\\""; break;
      case '\\': o += "\\\\"; break;
      case '\n': o += "\\n"; break;
      case '\t': o += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char b[8];
          std::snprintf(b, sizeof b, "\\u%04x", c);
          o += b;
        } else {
          o += c;
        }
    }
  }
  return o;
}

std::string num(double v) {
  if (!std::isfinite(v)) return "null";
  char b[64];
  if (v == std::floor(v) && std::fabs(v) < 9e15)
    std::snprintf(b, sizeof b, "%.0f", v);
  else
    std::snprintf(b, sizeof b, "%.6g", v);
  return b;
}

double median_of(const std::vector<double>& v, size_t from, size_t to) {
  std::vector<double> w(v.begin() + long(from), v.begin() + long(to));
  std::sort(w.begin(), w.end());
  return w.empty() ? 0 : w[w.size() / 2];
}

}  // namespace

Run::Run(std::string tool, const CommonOptions& o, std::vector<std::string> op_names, unsigned max_threads)
    : tool_(std::move(tool)), opt_(o), op_names_(std::move(op_names)), max_threads_(max_threads),
      counters_(new OpCounters[max_threads]), start_(std::chrono::steady_clock::now()) {
  std::snprintf(g_repeat, sizeof g_repeat, "repeat with: %s --seed %" PRIu64 " (same operation choices; "
                "thread interleaving differs between runs)", opt_.command_line.c_str(), opt_.seed);
  g_run = this;
  g_names = &op_names_;
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGABRT, &sa, nullptr);
#if STRESS_SANITIZER
  __sanitizer_set_death_callback(on_sanitizer_death);
#else
  sigaction(SIGSEGV, &sa, nullptr);
  sigaction(SIGBUS, &sa, nullptr);
#endif
}

Run::~Run() {
  g_run = nullptr;
  g_names = nullptr;
  delete[] counters_;
}

uint64_t Run::op_count(int kind) const {
  uint64_t n = 0;
  for (unsigned t = 0; t < max_threads_; ++t) n += counters_[t].n[kind].load(std::memory_order_relaxed);
  return n;
}

uint64_t Run::op_total() const {
  uint64_t n = 0;
  for (size_t k = 0; k < op_names_.size(); ++k) n += op_count(int(k));
  return n;
}

std::string Run::op_summary() const {
  char buf[4096];
  size_t len = format_counts(*this, op_names_, buf, sizeof buf);
  return std::string(buf, len);
}

double Run::elapsed() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Run::fail(const std::string& why) {
  std::lock_guard<std::mutex> g(mu_);
  if (failed_.load()) return;
  failure_ = why;
  failed_.store(true, std::memory_order_release);
}

std::string Run::failure() const {
  std::lock_guard<std::mutex> g(mu_);
  return failure_;
}

void Run::die() {
  std::string f = failure();
  std::fflush(stdout);
  std::fprintf(stderr,
               "\n%s: FAIL after %.1f s: %s\n%s: seed %" PRIu64 ", %" PRIu64 " operations: %s\n%s: %s\n",
               tool_.c_str(), elapsed(), f.c_str(), tool_.c_str(), opt_.seed, op_total(),
               op_summary().c_str(), tool_.c_str(), g_repeat);
  std::fflush(stderr);
  write_report(false);
  // Worker threads may still be running (or stuck): do not run destructors.
  std::_Exit(1);
}

void Run::add_sample(const Row& row) {
  std::lock_guard<std::mutex> g(mu_);
  if (cols_.empty()) {
    for (auto& [k, v] : row) cols_.push_back(k);
    series_.resize(cols_.size());
  }
  for (size_t i = 0; i < row.size() && i < cols_.size(); ++i) series_[i].push_back(row[i].second);
}

void Run::status(const std::string& extra) {
  double t = elapsed();
  uint64_t ops = op_total();
  double rate = t > last_status_t_ ? double(ops - last_status_ops_) / (t - last_status_t_) : 0;
  last_status_ops_ = ops;
  last_status_t_ = t;
  std::printf("[%7.1fs] %s ops/s %.2fM  ops %" PRIu64 "  %s\n", t, tool_.c_str(), rate / 1e6, ops,
              extra.c_str());
  std::fflush(stdout);
}

void Run::set_total(const std::string& key, double v) {
  std::lock_guard<std::mutex> g(mu_);
  for (auto& kv : totals_)
    if (kv.first == key) {
      kv.second = v;
      return;
    }
  totals_.push_back({key, v});
}

void Run::add_section(const std::string& key, const std::string& raw_json) {
  std::lock_guard<std::mutex> g(mu_);
  sections_.push_back({key, raw_json});
}

bool Run::rss_verdict(std::string* why) {
  std::lock_guard<std::mutex> g(mu_);
  int ti = -1, ri = -1;
  for (size_t i = 0; i < cols_.size(); ++i) {
    if (cols_[i] == "t_s") ti = int(i);
    if (cols_[i] == (opt_.judge_memory == "live" ? "live_mb" : "rss_mb")) ri = int(i);
  }
  if (ti < 0 || ri < 0) return true;
  const auto& t = series_[size_t(ti)];
  const auto& r = series_[size_t(ri)];
  size_t first = 0;
  while (first < t.size() && t[first] < opt_.warmup_s) ++first;
  size_t n = t.size();
  char buf[512];
  if (n < first + 2) {
    std::snprintf(buf, sizeof buf, "{\"warmup_s\": %s, \"judged\": false, \"why\": \"fewer than 2 samples after warm-up\"}",
                  num(opt_.warmup_s).c_str());
    rss_json_ = buf;
    return true;
  }
  // Windows of a fifth of the samples after warm-up (at least 3), so that no single sample
  // decides. The baseline is the highest window median of the first half: memory swings with
  // the slab footprint of the moment, in steps that last minutes (a TSan run's live memory went
  // 36 -> 64 -> 45 MiB with no leak), so the end is compared with the range the run already
  // held, not with whichever window came first. A leak grows the end past that range by its
  // rate times half the run.
  size_t win = std::max<size_t>(3, (n - first) / 5);
  size_t half_end = std::max(std::min(n, first + win), first + (n - first) / 2);
  double base = median_of(r, first, std::min(n, first + win));
  for (size_t i = first + 1; i + win <= half_end; ++i) base = std::max(base, median_of(r, i, i + win));
  double fin = median_of(r, n - std::min(win, n - first), n);
  double peak = *std::max_element(r.begin() + long(first), r.end());
  double growth = base > 0 ? (fin - base) / base * 100 : 0;
  bool judged = opt_.max_rss_growth_pct > 0;
  bool ok = !judged || growth <= opt_.max_rss_growth_pct || (fin - base) <= opt_.rss_slack_mb;
  std::snprintf(buf, sizeof buf,
                "{\"measure\": \"%s\", \"warmup_s\": %s, \"baseline_mb\": %s, \"final_mb\": %s, \"peak_after_warmup_mb\": %s, "
                "\"growth_pct\": %s, \"limit_pct\": %s, \"slack_mb\": %s, \"judged\": %s, \"ok\": %s}",
                opt_.judge_memory.c_str(), num(opt_.warmup_s).c_str(), num(base).c_str(), num(fin).c_str(),
                num(peak).c_str(),
                num(growth).c_str(), num(opt_.max_rss_growth_pct).c_str(), num(opt_.rss_slack_mb).c_str(),
                judged ? "true" : "false", ok ? "true" : "false");
  rss_json_ = buf;
  if (!ok && why) {
    std::snprintf(buf, sizeof buf,
                  "%s grew %.1f%% after warm-up (%.1f MiB, the highest level of the first half after %.0f s "
                  "-> %.1f MiB at the end), more than --max-rss-growth %.1f%% and --rss-slack-mb %.1f: a leak?",
                  opt_.judge_memory == "live" ? "live memory (malloc'd + mapped)" : "RSS", growth, base,
                  opt_.warmup_s, fin, opt_.max_rss_growth_pct, opt_.rss_slack_mb);
    *why = buf;
  }
  return ok;
}

void Run::write_report(bool pass) {
  if (opt_.report.empty()) return;
  std::string failure = this->failure();
  std::lock_guard<std::mutex> g(mu_);
  std::string j = "{\n";
  j += "  \"tool\": \"" + tool_ + "\",\n";
  j += "  \"build\": \"" + std::string(build_flavour()) + "\",\n";
  j += "  \"command\": \"" + json_escape(opt_.command_line) + "\",\n";
  j += "  \"seed\": " + std::to_string(opt_.seed) + ",\n";
  j += "  \"threads\": " + std::to_string(opt_.threads) + ",\n";
  j += "  \"duration_s\": " + num(opt_.duration_s) + ",\n";
  j += "  \"check_every_s\": " + num(opt_.check_every_s) + ",\n";
  j += "  \"elapsed_s\": " + num(std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count()) + ",\n";
  j += std::string("  \"verdict\": \"") + (pass ? "pass" : "fail") + "\",\n";
  j += "  \"failure\": \"" + json_escape(failure) + "\",\n";
  j += "  \"ops\": {";
  for (size_t k = 0; k < op_names_.size(); ++k) {
    uint64_t n = 0;
    for (unsigned t = 0; t < max_threads_; ++t) n += counters_[t].n[k].load(std::memory_order_relaxed);
    j += (k ? ", \"" : "\"") + op_names_[k] + "\": " + std::to_string(n);
  }
  j += "},\n  \"totals\": {";
  for (size_t i = 0; i < totals_.size(); ++i)
    j += (i ? ", \"" : "\"") + totals_[i].first + "\": " + num(totals_[i].second);
  j += "},\n  \"rss\": " + rss_json_ + ",\n";
  for (auto& [k, v] : sections_) j += "  \"" + k + "\": " + v + ",\n";
  j += "  \"series\": {\n";
  for (size_t i = 0; i < cols_.size(); ++i) {
    j += "    \"" + cols_[i] + "\": [";
    for (size_t r = 0; r < series_[i].size(); ++r) j += (r ? ", " : "") + num(series_[i][r]);
    j += i + 1 < cols_.size() ? "],\n" : "]\n";
  }
  j += "  }\n}\n";
  std::ofstream f(opt_.report);
  f << j;
  if (!f) std::fprintf(stderr, "%s: cannot write report %s\n", tool_.c_str(), opt_.report.c_str());
}

}  // namespace cgslab::stress
