// cli.cc: see cli.h. Parsing is strict (a trailing "x" in "--threads 4x" is an error, not 4):
// a nightly job that silently ran with a different configuration than asked is worse than one
// that refused to start.
#include "cli.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace cgslab::stress {

bool parse_duration(const std::string& text, double* seconds) {
  if (text.empty()) return false;
  double total = 0;
  size_t i = 0;
  bool any = false;
  while (i < text.size()) {
    size_t start = i;
    while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
    if (i == start) return false;
    std::string num = text.substr(start, i - start);
    char* end = nullptr;
    double v = std::strtod(num.c_str(), &end);
    if (end == nullptr || *end != '\0' || !std::isfinite(v) || v < 0) return false;
    double unit = 1;
    if (i < text.size()) {
      switch (text[i]) {
        case 's': unit = 1; break;
        case 'm': unit = 60; break;
        case 'h': unit = 3600; break;
        default: return false;
      }
      ++i;
    } else if (any) {
      return false;  // "1h30" is ambiguous: require the unit after the first part
    }
    total += v * unit;
    any = true;
  }
  *seconds = total;
  return true;
}

std::string parse_uint(const std::string& v, unsigned lo, unsigned hi, unsigned* out) {
  char* end = nullptr;
  errno = 0;
  unsigned long x = std::strtoul(v.c_str(), &end, 10);
  if (v.empty() || v[0] == '-' || *end != '\0' || errno != 0 || x < lo || x > hi)
    return "'" + v + "' is not an integer in " + std::to_string(lo) + ".." + std::to_string(hi);
  *out = unsigned(x);
  return "";
}

std::string parse_double(const std::string& v, double lo, double hi, double* out) {
  char* end = nullptr;
  double x = std::strtod(v.c_str(), &end);
  if (v.empty() || *end != '\0' || !std::isfinite(x) || x < lo || x > hi) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "'%s' is not a number in %g..%g", v.c_str(), lo, hi);
    return buf;
  }
  *out = x;
  return "";
}

ArgParser::ArgParser(std::string tool, std::string summary, std::string extra_usage)
    : tool_(std::move(tool)), summary_(std::move(summary)), extra_usage_(std::move(extra_usage)) {}

void ArgParser::add(const std::string& flag, std::function<std::string(const std::string&)> set) {
  extras_.push_back({flag, std::move(set)});
}

std::string ArgParser::usage() const {
  std::string u = "usage: " + tool_ + " [flags]\n" + summary_ +
                  "\n"
                  "common flags (defaults: a useful 60-second run):\n"
                  "  --threads N          worker threads (default 4)\n"
                  "  --duration T         run time: seconds or 90s, 30m, 2h, 1h30m (default 60)\n"
                  "  --seed S             random seed; 0 or absent: taken from the clock and printed\n"
                  "  --report FILE        write the JSON report (time series) to FILE\n"
                  "  --check-every T      quiescent check interval (default 5s)\n"
                  "  --status-every T     status line interval, at most 10s (default 10s)\n"
                  "  --warmup T           RSS baseline taken after T (default min(duration/5, 300s))\n"
                  "  --max-rss-growth P   fail if RSS after warm-up grows by more than P percent and\n"
                  "                       by more than --rss-slack-mb (medians of the first and last\n"
                  "                       fifth of the samples; default 0: report only)\n"
                  "  --rss-slack-mb M     growth below M MiB never fails (default 8)\n"
                  "  --judge-memory W     rss (default) or live (malloc'd live bytes + cgslab's mappings)\n"
                  "  --barrier-timeout T  bounded wait for the quiescent point (default 60s)\n"
                  "  --help               this text\n";
  if (!extra_usage_.empty()) u += tool_ + " flags:\n" + extra_usage_;
  u += "exit status: 0 pass, 1 a check failed (message, seed and operation counts on stderr),\n"
       "             2 bad command line\n";
  return u;
}

void ArgParser::usage_error(const std::string& what) const {
  std::fprintf(stderr, "%s: error: %s\n\n%s", tool_.c_str(), what.c_str(), usage().c_str());
  std::exit(2);
}

void ArgParser::parse(int argc, char** argv, CommonOptions* o) {
  // The echoed command line leaves out --seed: the repeat line appends the seed actually used.
  o->command_line = tool_;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--seed") {
      ++i;
      continue;
    }
    if (a.rfind("--seed=", 0) == 0) continue;
    o->command_line += " " + a;
  }
  auto dur = [&](const std::string& flag, const std::string& v, double lo, double* out) {
    double s = 0;
    if (!parse_duration(v, &s)) usage_error(flag + ": '" + v + "' is not a duration (90, 90s, 30m, 2h, 1h30m)");
    if (s < lo) usage_error(flag + ": '" + v + "' is shorter than the minimum " + std::to_string(lo) + " s");
    *out = s;
  };
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(usage().c_str(), stdout);
      std::exit(0);
    }
    if (arg.rfind("--", 0) != 0) usage_error("unexpected argument '" + arg + "'");
    std::string flag = arg, value;
    bool has_value = false;
    if (size_t eq = arg.find('='); eq != std::string::npos) {
      flag = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      has_value = true;
    }
    auto need = [&]() -> std::string {
      if (has_value) return value;
      if (i + 1 >= argc) usage_error(flag + " needs a value");
      return argv[++i];
    };
    std::string err;
    if (flag == "--threads") {
      err = parse_uint(need(), 1, 256, &o->threads);
    } else if (flag == "--duration") {
      dur(flag, need(), 0.1, &o->duration_s);
    } else if (flag == "--seed") {
      std::string v = need();
      char* end = nullptr;
      errno = 0;
      unsigned long long s = std::strtoull(v.c_str(), &end, 0);
      if (v.empty() || v[0] == '-' || *end != '\0' || errno != 0) err = "'" + v + "' is not an unsigned integer";
      o->seed = s;
    } else if (flag == "--report") {
      o->report = need();
      if (o->report.empty()) err = "empty file name";
    } else if (flag == "--check-every") {
      dur(flag, need(), 0.05, &o->check_every_s);
    } else if (flag == "--status-every") {
      dur(flag, need(), 0.05, &o->status_every_s);
      if (o->status_every_s > 10) err = "at most 10s (a status line at least every 10 s)";
    } else if (flag == "--warmup") {
      dur(flag, need(), 0, &o->warmup_s);
    } else if (flag == "--max-rss-growth") {
      err = parse_double(need(), 0, 1e6, &o->max_rss_growth_pct);
    } else if (flag == "--rss-slack-mb") {
      err = parse_double(need(), 0, 1e6, &o->rss_slack_mb);
    } else if (flag == "--judge-memory") {
      o->judge_memory = need();
      if (o->judge_memory != "rss" && o->judge_memory != "live") err = "'" + o->judge_memory + "' is not rss or live";
    } else if (flag == "--barrier-timeout") {
      dur(flag, need(), 0.1, &o->barrier_timeout_s);
    } else {
      bool found = false;
      for (auto& e : extras_)
        if (e.flag == flag) {
          err = e.set(need());
          found = true;
          break;
        }
      if (!found) usage_error("unknown flag '" + flag + "'");
    }
    if (!err.empty()) usage_error(flag + ": " + err);
  }
  if (o->seed == 0) {
    o->seed = uint64_t(std::chrono::steady_clock::now().time_since_epoch().count()) ^
              uint64_t(std::chrono::system_clock::now().time_since_epoch().count());
    if (o->seed == 0) o->seed = 1;
  }
  if (o->warmup_s < 0) o->warmup_s = std::min(o->duration_s / 5, 300.0);
}

}  // namespace cgslab::stress
