// cli.h: the command line shared by the stress binaries.
//
// Every binary takes the common flags (--threads, --duration, --seed, --report, --check-every,
// --status-every, --warmup, --max-rss-growth, --barrier-timeout) and may register its own. A bad
// argument is a usage error: one line saying what is wrong, the usage text, exit status 2 (so a
// CI script can tell "you called me wrong" from "the allocator failed", which exits 1).
// Durations accept plain seconds ("90", "1.5") or units, also combined: "90s", "30m", "2h",
// "1h30m".
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace cgslab::stress {

struct CommonOptions {
  unsigned threads = 4;
  double duration_s = 60;
  uint64_t seed = 0;          // 0 on the command line: pick one from the clock (printed)
  std::string report;         // --report FILE (JSON); empty: none
  double check_every_s = 5;   // quiescent checks
  double status_every_s = 10; // status line
  double warmup_s = -1;       // RSS baseline starts after this; <0: min(duration/5, 300 s)
  double max_rss_growth_pct = 0;  // 0: RSS growth is reported, not judged
  double rss_slack_mb = 8;    // growth below this many MiB never fails (small-baseline noise)
  // What --max-rss-growth judges: "rss" (resident set) or "live" (bytes malloc'd and not freed +
  // cgslab's own mappings: what a leak in cgslab or the harness grows; for ASan, whose quarantine,
  // allocator caches and shadow memory make RSS creep for reasons of its own).
  std::string judge_memory = "rss";
  double barrier_timeout_s = 60;  // bounded wait for all threads to reach a quiescent point
  std::string command_line;   // as given, for the "repeat with" line
};

// Parses "90", "90s", "1.5m", "2h", "1h30m" into seconds. false on anything else.
bool parse_duration(const std::string& text, double* seconds);

class ArgParser {
 public:
  // `extra_usage` documents the binary's own flags (one per line, already indented).
  ArgParser(std::string tool, std::string summary, std::string extra_usage);

  // Registers a binary-specific flag taking a value. The setter returns an error text ("" = ok).
  void add(const std::string& flag, std::function<std::string(const std::string&)> set);

  // Parses argv into `o` and the registered flags. --help prints the usage and exits 0; an
  // error prints it and exits 2.
  void parse(int argc, char** argv, CommonOptions* o);

  std::string usage() const;
  [[noreturn]] void usage_error(const std::string& what) const;

 private:
  struct Extra {
    std::string flag;
    std::function<std::string(const std::string&)> set;
  };
  std::string tool_, summary_, extra_usage_;
  std::vector<Extra> extras_;
};

// Helpers for setters: parse an unsigned / a double in [lo, hi]; "" on success.
std::string parse_uint(const std::string& v, unsigned lo, unsigned hi, unsigned* out);
std::string parse_double(const std::string& v, double lo, double hi, double* out);

}  // namespace cgslab::stress
