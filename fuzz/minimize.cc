// minimize.cc: `cgslab-prog minimize` (design: minimize.h).
//
//   cgslab-prog minimize CRASH [--runs N] [--out PREFIX] [--promote NAME] [--dialect D] [--text]
//                              [--time-limit S] [--run-bound S] [--signature-only]
//
// Reproduces CRASH N times (default 10) in child processes, prints the rate and the signature,
// shrinks it (at most S seconds of candidates, default 300), prints the result, its interleaving
// trace and the before/after sizes, writes PREFIX.bin (fuzz input bytes), PREFIX.txt and
// PREFIX.trace (default PREFIX: CRASH without .txt, plus ".min"). --promote NAME also writes
// corpus/regressions/NAME.txt in the source tree, with a header saying what failed. With
// --signature-only it only reproduces and prints "K/N<TAB>signature" (ci/fuzz.sh's dedup key).
#include "minimize.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "program.h"
#include "tool_support.h"

extern char** environ;

#ifndef CGSLAB_SOURCE_DIR
#define CGSLAB_SOURCE_DIR "."
#endif

namespace cgslab::harness {

namespace {

using Clock = std::chrono::steady_clock;

int usage(const char* msg) {
  if (msg) std::fprintf(stderr, "cgslab-prog minimize: %s\n", msg);
  std::fprintf(stderr,
               "usage: cgslab-prog minimize CRASH [--runs N] [--out PREFIX] [--promote NAME] [--dialect lifecycle|api]\n"
               "                            [--text] [--time-limit S] [--run-bound S] [--signature-only]\n"
               "  --runs N          reproduce N times before and after (1..1000, default 10)\n"
               "  --out PREFIX      write PREFIX.bin, PREFIX.txt, PREFIX.trace (default: CRASH.min)\n"
               "  --promote NAME    also write corpus/regressions/NAME.txt (NAME: letters, digits, _)\n"
               "  --time-limit S    stop shrinking after S seconds (default 300)\n"
               "  --run-bound S     kill a run after S seconds (default 30; it counts as 'timeout')\n"
               "  --signature-only  reproduce only; print \"K/N<TAB>signature\"\n");
  return 2;
}

bool write_all(const std::string& path, const std::string& data) {
  std::ofstream o(path, std::ios::binary | std::ios::trunc);
  o.write(data.data(), std::streamsize(data.size()));
  return bool(o);
}

std::string bytes_of(const Program& p) {
  std::vector<uint8_t> b = encode(p);
  return std::string(b.begin(), b.end());
}

// ---- signatures -------------------------------------------------------------------------------

// Numbers (decimal and hex) become N, so that "2 pages in use" and "3 pages in use" match.
std::string mask_numbers(const std::string& s) {
  std::string r;
  for (size_t i = 0; i < s.size();) {
    if (std::isdigit(static_cast<unsigned char>(s[i]))) {
      if (s[i] == '0' && i + 1 < s.size() && (s[i + 1] == 'x' || s[i + 1] == 'X')) i += 2;
      while (i < s.size() && std::isxdigit(static_cast<unsigned char>(s[i]))) ++i;
      r += 'N';
    } else {
      r += s[i++];
    }
  }
  return r;
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n"), e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> v;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) v.push_back(l);
  return v;
}

// "bool cgslab::Memcg::try_charge<...>(long, ...) const" -> "Memcg::try_charge".
std::string frame_function(std::string f) {
  std::string t;
  int depth = 0;
  for (char c : f) {
    if (c == '<') ++depth;
    else if (c == '>' && depth > 0) --depth;
    else if (depth == 0) t += c;
  }
  size_t paren = t.find('(');
  if (paren != std::string::npos) t = t.substr(0, paren);
  size_t sp = t.rfind(' ');
  if (sp != std::string::npos) t = t.substr(sp + 1);
  if (t.rfind("cgslab::", 0) == 0) t = t.substr(8);
  return t;
}

// The top three distinct allocator functions of the first stack in a sanitizer report (any
// functions outside the sanitizer runtime and the standard library when none is the allocator's).
std::string top_frames(const std::vector<std::string>& ls, size_t from) {
  std::vector<std::string> mine, any;
  bool in_stack = false;
  for (size_t i = from; i < ls.size(); ++i) {
    std::string l = trim(ls[i]);
    if (l.rfind("#", 0) != 0) {
      if (in_stack) break;
      continue;
    }
    in_stack = true;
    size_t in = l.find(" in ");
    if (in == std::string::npos) continue;
    std::string rest = l.substr(in + 4);
    size_t sp = rest.rfind(' ');
    std::string where = sp == std::string::npos ? "" : rest.substr(sp + 1);
    std::string fn = frame_function(sp == std::string::npos ? rest : rest.substr(0, sp));
    if (fn.empty() || fn.rfind("std::", 0) == 0 || fn.rfind("__", 0) == 0) continue;
    auto add = [&](std::vector<std::string>& v) {
      if (v.size() < 3 && std::find(v.begin(), v.end(), fn) == v.end()) v.push_back(fn);
    };
    if (where.find("/allocator/") != std::string::npos) add(mine);
    add(any);
  }
  const std::vector<std::string>& v = mine.empty() ? any : mine;
  std::string s;
  for (const std::string& f : v) s += (s.empty() ? "" : " < ") + f;
  return s.empty() ? "?" : s;
}

// The signature of one run's output and status; "" when the run passed.
std::string classify(const std::string& out, int status, bool timed_out) {
  if (timed_out) return "timeout";
  std::vector<std::string> ls = lines_of(out);
  for (size_t i = 0; i < ls.size(); ++i) {
    const std::string& l = ls[i];
    size_t p;
    if ((p = l.find("cgslab harness FAILURE (")) != std::string::npos) {
      size_t c = l.find("): ", p);
      std::string what = c == std::string::npos ? l.substr(p) : l.substr(c + 3);
      if (what.rfind("validate() failed", 0) == 0) {
        // The report's first line says what is wrong; the op it followed is not the bug.
        std::string first = i + 1 < ls.size() ? trim(ls[i + 1]) : "";
        return "oracle: validate() failed: " + mask_numbers(first);
      }
      size_t semi = what.find("; tasks:");
      if (semi != std::string::npos) what = what.substr(0, semi);
      return "oracle: " + mask_numbers(trim(what));
    }
    if ((p = l.find("ERROR: AddressSanitizer: ")) != std::string::npos) {
      std::string kind = l.substr(p + 25);
      kind = kind.substr(0, kind.find(' '));
      return "asan: " + kind + " in " + top_frames(ls, i + 1);
    }
    if ((p = l.find("ERROR: LeakSanitizer: ")) != std::string::npos)
      return "lsan: leak in " + top_frames(ls, i + 1);
    if ((p = l.find(": runtime error: ")) != std::string::npos) {
      std::string loc = l.substr(0, p);
      size_t slash = loc.rfind('/');
      if (slash != std::string::npos) loc = loc.substr(slash + 1);
      loc = loc.substr(0, loc.find(':'));
      return "ubsan: " + loc + ": " + mask_numbers(l.substr(p + 17));
    }
  }
  if (WIFSIGNALED(status)) return std::string("signal ") + strsignal(WTERMSIG(status));
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return "";
  return "exit " + std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

// ---- child runs -------------------------------------------------------------------------------

struct Child {
  bool started = false;
  bool timed_out = false;
  int status = 0;
  std::string out;
};

std::string self_path() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "";
  buf[n] = 0;
  return buf;
}

// Runs this binary with args, stdout and stderr into out_path, killed after bound_s seconds.
Child run_child(const std::string& self, const std::vector<std::string>& args, const std::string& out_path,
                double bound_s) {
  Child c;
  std::vector<char*> argv;
  std::string a0 = "cgslab-prog";
  argv.push_back(a0.data());
  std::vector<std::string> copy = args;
  for (std::string& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid;
  int rc = posix_spawn(&pid, self.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    std::fprintf(stderr, "cgslab-prog minimize: cannot start %s: %s\n", self.c_str(), std::strerror(rc));
    return c;
  }
  c.started = true;
  ChildExit e = wait_bounded(pid, bound_s);
  c.status = e.status;
  c.timed_out = e.timed_out;
  read_file(out_path, &c.out);
  return c;
}

struct Sizes {
  size_t ops, steps, points, bytes;
};
Sizes sizes_of(const Program& p) {
  Sizes s{p.ops.size(), p.pct ? 0 : p.steps.size(), 0, encode(p).size()};
  for (const SchedStep& st : p.steps) s.points += p.pct ? 0 : std::max<unsigned>(1, st.count);
  return s;
}
std::string sizes_text(const Program& p) {
  Sizes s = sizes_of(p);
  std::string sched = p.pct ? "pct schedule" : std::to_string(s.steps) + " schedule steps (" +
                                                   std::to_string(s.points) + " points)";
  return std::to_string(s.ops) + " ops, " + std::to_string(p.ntasks) + " tasks, " + sched + ", " +
         std::to_string(s.bytes) + " bytes";
}

class Minimizer {
 public:
  Minimizer(std::string self, Dialect d, std::string work, double bound)
      : self_(std::move(self)), dialect_(d), work_(std::move(work)), bound_(bound) {}

  // The signature of one run of p ("" = passed). Cached by encoding: runs are deterministic.
  std::string signature(const Program& p, bool use_cache = true) {
    std::string b = bytes_of(p);
    if (use_cache) {
      auto it = cache_.find(b);
      if (it != cache_.end()) return it->second;
    }
    ++runs_;
    write_all(work_ + "/cand.bin", b);
    Child c = run_child(self_, {"replay", "--dialect", dialect_name(dialect_), work_ + "/cand.bin"},
                        work_ + "/cand.out", bound_);
    std::string sig = c.started ? classify(c.out, c.status, c.timed_out) : "exit -1";
    cache_[b] = sig;
    return sig;
  }

  // The explicit schedule that p's run executed, up to its failure; false when it cannot be had.
  bool recorded_schedule(const Program& p, std::vector<SchedStep>* steps, std::string* why) {
    std::string rec = work_ + "/decisions";
    write_all(work_ + "/cand.bin", bytes_of(p));
    ++runs_;
    Child c = run_child(self_, {"replay", "--dialect", dialect_name(dialect_), "--record-schedule", rec,
                                work_ + "/cand.bin"},
                        work_ + "/cand.out", bound_);
    std::string data;
    if (!c.started || !read_file(rec, &data) || data.size() < 8) return *why = "no decisions recorded", false;
    uint64_t n;
    std::memcpy(&n, data.data(), 8);
    if (n > data.size() - 8) return *why = "more decisions than the record holds", false;
    return schedule_of_decisions(p, reinterpret_cast<const int8_t*>(data.data() + 8), size_t(n), steps, why);
  }

  uint64_t runs() const { return runs_; }

 private:
  std::string self_;
  Dialect dialect_;
  std::string work_;
  double bound_;
  std::map<std::string, std::string> cache_;
  uint64_t runs_ = 0;
};

// ---- the passes -------------------------------------------------------------------------------

struct Search {
  Minimizer* m;
  Program cur;
  std::string want;
  Clock::time_point deadline;
  bool out_of_time = false;
  int accepted = 0;

  bool expired() {
    if (!out_of_time && Clock::now() >= deadline) out_of_time = true;
    return out_of_time;
  }
  // Keeps cand when it fails with the wanted signature.
  bool attempt(const Program& cand) {
    if (expired() || cand == cur) return false;
    if (m->signature(cand) != want) return false;
    cur = cand;
    ++accepted;
    return true;
  }
};

Program without_task(const Program& p, int i) {
  Program q = p;
  q.ntasks = uint8_t(p.ntasks - 1);
  q.ops.clear();
  for (Op op : p.ops) {
    if (op.task == i) continue;
    if (op.task > i) --op.task;
    q.ops.push_back(op);
  }
  if (!p.pct) {
    q.steps.clear();
    for (SchedStep s : p.steps) {
      int j = s.task % schedule_label_count(p);
      if (j == i) continue;
      s.task = uint8_t(j > i ? j - 1 : j);
      q.steps.push_back(s);
    }
  }
  return q;
}

void pass_tasks(Search& s) {
  for (int i = s.cur.ntasks - 1; i >= 0 && s.cur.ntasks > 1 && !s.expired(); --i) s.attempt(without_task(s.cur, i));
}

// Removes chunks of a list (ops or steps): halves, then quarters, ... then single elements,
// from the end backwards (the end of a failing program is most often after the failure).
template <typename Get>
void pass_chunks(Search& s, Get get) {
  size_t n = get(s.cur).size();
  for (size_t chunk = std::max<size_t>(1, n / 2);; chunk /= 2) {
    for (size_t end = get(s.cur).size(); end > 0 && !s.expired();) {
      size_t begin = end >= chunk ? end - chunk : 0;
      Program cand = s.cur;
      auto& v = get(cand);
      v.erase(v.begin() + long(begin), v.begin() + long(end));
      s.attempt(cand);
      end = begin;
    }
    if (chunk <= 1 || s.expired()) break;
  }
}

void pass_steps(Search& s) {
  if (s.cur.pct) return;
  // Adjacent steps of one task are one step.
  for (size_t i = 0; i + 1 < s.cur.steps.size() && !s.expired(); ++i) {
    const SchedStep &a = s.cur.steps[i], &b = s.cur.steps[i + 1];
    if (a.task % schedule_label_count(s.cur) != b.task % schedule_label_count(s.cur) || a.count + b.count > 255) continue;
    Program cand = s.cur;
    cand.steps[i].count = uint8_t(a.count + b.count);
    cand.steps.erase(cand.steps.begin() + long(i) + 1);
    if (s.attempt(cand)) --i;
  }
  // Shorter steps: the smallest count that still fails, tried from 1 upwards by halving the gap.
  for (size_t i = 0; i < s.cur.steps.size() && !s.expired(); ++i) {
    unsigned c = std::max<unsigned>(1, s.cur.steps[i].count);
    for (unsigned lo = 1; lo < c && !s.expired();) {
      Program cand = s.cur;
      cand.steps[i].count = uint8_t(lo);
      if (s.attempt(cand)) c = lo;
      else lo = lo + (c - lo + 1) / 2;
    }
  }
}

// An operation is also schedule points of its task: removing it shifts every later step of that
// task. When an op cannot go alone, try it together with one point fewer in one step of its task.
void pass_ops_with_steps(Search& s) {
  if (s.cur.pct) return;
  const int labels = schedule_label_count(s.cur);
  for (size_t i = s.cur.ops.size(); i-- > 0 && !s.expired();) {
    if (i >= s.cur.ops.size()) continue;
    bool done = false;
    for (size_t j = 0; j < s.cur.steps.size() && !done && !s.expired(); ++j) {
      if (s.cur.steps[j].task % labels != s.cur.ops[i].task) continue;
      for (unsigned d = 1; d <= 3 && !done && !s.expired(); ++d) {
        Program cand = s.cur;
        cand.ops.erase(cand.ops.begin() + long(i));
        unsigned c = std::max<unsigned>(1, cand.steps[j].count);
        if (c <= d) cand.steps.erase(cand.steps.begin() + long(j));
        else cand.steps[j].count = uint8_t(c - d);
        done = s.attempt(cand);
      }
    }
  }
}

void pass_args(Search& s) {
  for (size_t i = 0; i < s.cur.ops.size() && !s.expired(); ++i) {
    for (int a = 0; a < 3 && !s.expired(); ++a) {
      ArgKind k = op_info(s.cur.ops[i].kind).arg[a].kind;
      if (k == ArgKind::kNone) continue;
      if (k == ArgKind::kGfp || k == ArgKind::kCacheFlags) {
        // Flags: one bit at a time, so that the ones the failure needs stay.
        for (int bit = 7; bit >= 0 && !s.expired(); --bit) {
          uint8_t v = s.cur.ops[i].arg[a];
          if (!(v & (1u << bit))) continue;
          Program cand = s.cur;
          cand.ops[i].arg[a] = arg_canonical(k, uint8_t(v & ~(1u << bit)));
          s.attempt(cand);
        }
        continue;
      }
      std::vector<uint8_t> dom = arg_domain(k);
      auto pos = size_t(std::find(dom.begin(), dom.end(), s.cur.ops[i].arg[a]) - dom.begin());
      if (pos >= dom.size()) continue;
      if (k == ArgKind::kCg || k == ArgKind::kCache || k == ArgKind::kObj) {
        // A handle is taken modulo the live ones: 15 may be 1, and 8 may be 0. Small ones first.
        for (size_t v = 0; v < pos && v < 8 && !s.expired(); ++v) {
          Program cand = s.cur;
          cand.ops[i].arg[a] = dom[v];
          if (s.attempt(cand)) {
            pos = v;
            break;
          }
        }
      }
      // The smallest value that still fails, searched like the step counts.
      for (size_t lo = 0; lo < pos && !s.expired();) {
        Program cand = s.cur;
        cand.ops[i].arg[a] = dom[lo];
        if (s.attempt(cand)) pos = lo;
        else lo = lo + (pos - lo + 1) / 2;
      }
    }
  }
}

void pass_pct(Search& s) {
  if (!s.cur.pct) return;
  for (uint8_t d = 1; d < s.cur.depth && !s.expired(); ++d) {
    Program cand = s.cur;
    cand.depth = d;
    if (s.attempt(cand)) break;
  }
}

struct Repro {
  int hits = 0;
  std::string sig;
};

Repro reproduce(Minimizer& m, const Program& p, int runs) {
  std::map<std::string, int> count;
  for (int r = 0; r < runs; ++r) ++count[m.signature(p, /*use_cache=*/false)];
  Repro best;
  for (auto& [sig, n] : count)
    if (!sig.empty() && n > best.hits) best = {n, sig};
  return best;
}

bool valid_name(const std::string& n) {
  if (n.empty() || n.size() > 100) return false;
  for (char c : n)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  return true;
}

std::string commented(const std::string& text) {
  std::string r;
  for (const std::string& l : lines_of(text)) r += "# " + l + "\n";
  return r;
}

// Drops the comment header print() writes (a promoted file carries its own).
std::string without_comments(const std::string& text) {
  std::string r;
  for (const std::string& l : lines_of(text))
    if (l.rfind("#", 0) != 0) r += l + "\n";
  return r;
}

}  // namespace

int minimize_main(int argc, char** argv) {
  std::string crash, out_prefix, promote;
  Dialect dialect = Dialect::kLifecycle;
  bool text = false, signature_only = false;
  double runs_d = 10, time_limit = 300, bound = 30;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char* what) -> const char* {
      if (i + 1 >= argc) return nullptr;
      (void)what;
      return argv[++i];
    };
    const char* v = nullptr;
    if (a == "--runs") {
      if (!(v = value("N")) || !parse_number(v, 1, 1000, &runs_d) || runs_d != int(runs_d))
        return usage("--runs takes a whole number in 1..1000");
    } else if (a == "--time-limit") {
      if (!(v = value("S")) || !parse_number(v, 0, 86400, &time_limit)) return usage("--time-limit takes seconds in 0..86400");
    } else if (a == "--run-bound") {
      if (!(v = value("S")) || !parse_number(v, 0.1, 3600, &bound)) return usage("--run-bound takes seconds in 0.1..3600");
    } else if (a == "--out") {
      if (!(v = value("PREFIX")) || !*v) return usage("--out takes a path prefix");
      out_prefix = v;
    } else if (a == "--promote") {
      if (!(v = value("NAME")) || !valid_name(v)) return usage("--promote takes a name of letters, digits and _");
      promote = v;
    } else if (a == "--dialect") {
      if (!(v = value("D"))) return usage("--dialect takes lifecycle or api");
      std::string d = v;
      if (d == "api" || d == "fuzz_api") dialect = Dialect::kApi;
      else if (d == "lifecycle" || d == "fuzz_lifecycle" || d == "fuzz_threads") dialect = Dialect::kLifecycle;
      else return usage(("unknown dialect '" + d + "'").c_str());
    } else if (a == "--text") {
      text = true;
    } else if (a == "-h" || a == "--help") {
      usage(nullptr);
      return 0;
    } else if (a == "--signature-only") {
      signature_only = true;
    } else if (a.rfind("--", 0) == 0) {
      return usage(("unknown option '" + a + "'").c_str());
    } else if (crash.empty()) {
      crash = a;
    } else {
      return usage("minimize takes one CRASH file");
    }
  }
  if (crash.empty()) return usage("missing CRASH file");
  const int runs = int(runs_d);

  Program orig;
  if (!load_program(crash, dialect, text, &orig, "cgslab-prog minimize")) return 1;
  dialect = orig.dialect;

  std::string self = self_path();
  if (self.empty()) {
    std::fprintf(stderr, "cgslab-prog minimize: cannot find this executable (/proc/self/exe)\n");
    return 1;
  }
  char tmpl[] = "/tmp/cgslab-minimize.XXXXXX";
  if (!mkdtemp(tmpl)) {
    std::fprintf(stderr, "cgslab-prog minimize: cannot make a work directory: %s\n", std::strerror(errno));
    return 1;
  }
  std::string work = tmpl;
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      for (const char* f : {"/cand.bin", "/cand.out", "/decisions"}) unlink((dir + f).c_str());
      rmdir(dir.c_str());
    }
  } cleanup{work};

  Minimizer m(self, dialect, work, bound);
  const char* defect = std::getenv("CGSLAB_DEFECT");
  const std::string defect_note = defect && *defect ? std::string(" with CGSLAB_DEFECT=") + defect : "";
  auto t0 = Clock::now();
  Repro before = reproduce(m, orig, runs);
  if (signature_only) {
    std::printf("%d/%d\t%s\n", before.hits, runs, before.hits ? before.sig.c_str() : "passes");
    return before.hits ? 0 : 1;
  }
  std::printf("cgslab-prog minimize: %s%s: reproduced %d/%d: %s\n", crash.c_str(), defect_note.c_str(), before.hits,
              runs, before.hits ? before.sig.c_str() : "it passes");
  if (!before.hits) return 1;
  if (before.hits != runs)
    std::printf("  warning: not every run failed the same way; the minimizer keeps the most common signature\n");
  std::printf("  before: %s\n", sizes_text(orig).c_str());
  std::fflush(stdout);

  Search s{&m, orig, before.sig,
           Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(time_limit))};
  // A PCT schedule becomes the explicit schedule it executed (readable, editable, shrinkable).
  if (s.cur.pct) {
    Program ex = s.cur;
    std::string why;
    if (m.recorded_schedule(s.cur, &ex.steps, &why)) {
      ex.pct = false;
      ex.seed = 0;
      ex.depth = 1;
      if (s.attempt(ex)) std::printf("  pct -> explicit: %zu steps, same failure\n", s.cur.steps.size());
      else std::printf("  pct -> explicit: the recorded schedule does not fail the same way (%s); keeping pct\n",
                       m.signature(ex).empty() ? "it passes" : m.signature(ex).c_str());
    } else {
      std::printf("  pct -> explicit: %s; keeping pct\n", why.c_str());
    }
    std::fflush(stdout);
  }
  for (int round = 1; !s.expired(); ++round) {
    int before_round = s.accepted;
    pass_tasks(s);
    pass_chunks(s, [](Program& p) -> std::vector<Op>& { return p.ops; });
    if (!s.cur.pct) pass_chunks(s, [](Program& p) -> std::vector<SchedStep>& { return p.steps; });
    pass_steps(s);
    pass_ops_with_steps(s);
    pass_args(s);
    pass_pct(s);
    std::printf("  round %d: %s (%llu runs so far)\n", round, sizes_text(s.cur).c_str(),
                static_cast<unsigned long long>(m.runs()));
    std::fflush(stdout);
    if (s.accepted == before_round) break;
  }
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  if (s.out_of_time) std::printf("  time limit (%.0f s) reached: the result is smaller but maybe not minimal\n", time_limit);

  Repro after = reproduce(m, s.cur, runs);
  // The interleaving of the result, up to its failure.
  write_all(work + "/cand.bin", bytes_of(s.cur));
  Child tr = run_child(self, {"replay", "--dialect", dialect_name(dialect), "--trace", work + "/cand.bin"},
                       work + "/cand.out", bound);
  std::string prefix = out_prefix.empty() ? (is_text_name(crash) ? crash.substr(0, crash.size() - 4) : crash) + ".min" : out_prefix;
  std::string txt = print(s.cur);
  if (!write_all(prefix + ".bin", bytes_of(s.cur)) || !write_all(prefix + ".txt", txt) ||
      !write_all(prefix + ".trace", tr.out)) {
    std::fprintf(stderr, "cgslab-prog minimize: cannot write %s.{bin,txt,trace}: %s\n", prefix.c_str(),
                 std::strerror(errno));
    return 1;
  }

  std::printf("\n=== minimized program ===\n%s", txt.c_str());
  std::printf("\n=== interleaving (replay --trace, up to the failure) ===\n");
  std::vector<std::string> tl = lines_of(tr.out);
  const size_t kShow = 200;
  for (size_t i = 0; i < tl.size() && i < kShow; ++i) std::printf("%s\n", tl[i].c_str());
  if (tl.size() > kShow) std::printf("... %zu more lines in %s.trace\n", tl.size() - kShow, prefix.c_str());
  Sizes b = sizes_of(orig), a = sizes_of(s.cur);
  std::printf("\n=== result ===\n");
  std::printf("signature:  %s\n", before.sig.c_str());
  std::printf("before:     %s\n", sizes_text(orig).c_str());
  std::printf("after:      %s\n", sizes_text(s.cur).c_str());
  std::printf("reproduced: before %d/%d, after %d/%d%s\n", before.hits, runs,
              after.sig == before.sig ? after.hits : 0, runs, after.sig == before.sig ? "" : " (signature changed!)");
  std::printf("time:       %.1f s, %llu runs\n", secs, static_cast<unsigned long long>(m.runs()));
  std::printf("wrote:      %s.bin (%zu bytes, fuzz input) %s.txt %s.trace\n", prefix.c_str(), a.bytes,
              prefix.c_str(), prefix.c_str());
  std::printf("reproduce:  %s%s replay --trace %s.txt\n", defect && *defect ? ("CGSLAB_DEFECT=" + std::string(defect) + " ").c_str() : "",
              self.c_str(), prefix.c_str());
  int status = after.sig == before.sig && after.hits > 0 ? 0 : 1;

  if (!promote.empty()) {
    std::string path = std::string(CGSLAB_SOURCE_DIR) + "/corpus/regressions/" + promote + ".txt";
    struct stat st;
    if (stat(path.c_str(), &st) == 0) {
      std::fprintf(stderr, "cgslab-prog minimize: %s exists; pick another --promote name\n", path.c_str());
      return 1;
    }
    std::string base = crash.substr(crash.rfind('/') == std::string::npos ? 0 : crash.rfind('/') + 1);
    std::string head = "Minimized by cgslab-prog minimize from " + base + " (" + std::to_string(b.ops) + " ops, " +
                       std::to_string(b.bytes) + " bytes -> " + std::to_string(a.ops) + " ops, " +
                       std::to_string(a.bytes) + " bytes).\nFails" + defect_note + ": " + before.sig +
                       "\n(reproduced " + std::to_string(after.hits) + "/" + std::to_string(runs) +
                       "). CTest replays it: it must pass on a correct allocator.\n";
    if (!write_all(path, commented(head) + without_comments(txt))) {
      std::fprintf(stderr, "cgslab-prog minimize: cannot write %s: %s\n", path.c_str(), std::strerror(errno));
      return 1;
    }
    std::printf("promoted:   %s (CTest test corpus/regressions/%s after the next configure)\n", path.c_str(),
                promote.c_str());
  }
  return status;
}

}  // namespace cgslab::harness
