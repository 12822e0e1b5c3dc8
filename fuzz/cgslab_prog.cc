// cgslab-prog: read, write and replay harness programs.
//
//   cgslab-prog decode [--dialect D] FILE          print FILE (bytes or text) as text
//   cgslab-prog encode [--dialect D] FILE OUT      parse text FILE, write its bytes to OUT
//   cgslab-prog replay [--dialect D] [--trace] [--repeat N] [--no-validate] FILE...
//                                                  run each program in sim mode; --trace prints the
//                                                  executed interleaving; --repeat N runs it N times
//                                                  and fails unless every trace hash is the same;
//                                                  --no-validate skips validate() after each op;
//                                                  --record-schedule OUT writes every scheduling
//                                                  decision to OUT as it happens (minimize reads it)
//   cgslab-prog minimize CRASH [...]               shrink a failing program (minimize.cc)
//   cgslab-prog explore [--delays K | --preemptions K] [--max-schedules N] [--time-limit S]
//                       [--out PREFIX] FILE        run FILE under every schedule with at most K
//                                                  delays or preemptions (explore.h); on a failure,
//                                                  write PREFIX.txt with the failing explicit schedule
//
// D is lifecycle (default; fuzz_lifecycle, fuzz_threads inputs) or api (fuzz_api inputs); a text
// file names its own dialect. A file is text when its name ends in .txt or --text is given;
// anything else is fuzz input bytes, and every byte string decodes (nothing is guessed).
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "exec.h"
#include "explore.h"
#include "minimize.h"
#include "tool_support.h"

using namespace cgslab::harness;

namespace {

int usage(const char* msg) {
  if (msg) std::fprintf(stderr, "cgslab-prog: %s\n", msg);
  std::fprintf(stderr,
               "usage: cgslab-prog decode [--dialect lifecycle|api] [--text] FILE\n"
               "       cgslab-prog encode [--dialect lifecycle|api] FILE.txt OUT\n"
               "       cgslab-prog replay [--dialect lifecycle|api] [--trace] [--repeat N] [--no-validate]\n"
               "                          [--record-schedule OUT] FILE...\n"
               "       cgslab-prog minimize CRASH [--runs N] [--out PREFIX] [--promote NAME] [--dialect D]\n"
               "                          [--time-limit S] [--signature-only]   (cgslab-prog minimize --help)\n"
               "       cgslab-prog explore [--dialect lifecycle|api] [--delays K | --preemptions K]\n"
               "                          [--max-schedules N] [--time-limit S] [--no-validate] [--out PREFIX] FILE\n"
               "                          K: 0..8 (default --delays 2); N: default 10000000; S: seconds, default 600\n");
  return 2;
}

// The decisions of one run in a shared file mapping: [u64 count][int8 label]...; the pages stay
// in the file when the run aborts on a failure, which is the run minimize wants to read.
struct DecisionLog {
  static constexpr size_t kCap = size_t(1) << 21;  // the scheduler's livelock bound
  uint8_t* base = nullptr;
  bool open(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || ftruncate(fd, off_t(8 + kCap)) != 0) {
      std::fprintf(stderr, "cgslab-prog: cannot create %s: %s\n", path.c_str(), std::strerror(errno));
      if (fd >= 0) close(fd);
      return false;
    }
    void* p = mmap(nullptr, 8 + kCap, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED) return false;
    base = static_cast<uint8_t*>(p);
    return true;
  }
  void add(int label) {
    uint64_t n;
    std::memcpy(&n, base, 8);
    if (n < kCap) base[8 + n] = uint8_t(int8_t(label));
    ++n;
    std::memcpy(base, &n, 8);
  }
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage("missing command");
  std::string cmd = argv[1];
  // Line-buffered even into a file or pipe: a failure aborts, and the trace up to it must be there.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  if (cmd == "minimize") return minimize_main(argc, argv);
  std::string record;
  Dialect dialect = Dialect::kLifecycle;
  bool trace = false;
  bool text = false;
  bool validate = true;
  long repeat = 1;
  ExploreOptions xo;
  std::vector<std::string> files;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--dialect" && i + 1 < argc) {
      std::string d = argv[++i];
      if (d == "api" || d == "fuzz_api") dialect = Dialect::kApi;
      else if (d == "lifecycle" || d == "fuzz_lifecycle" || d == "fuzz_threads") dialect = Dialect::kLifecycle;
      else return usage(("unknown dialect '" + d + "'").c_str());
    } else if (a == "--text") {
      text = true;
    } else if (a == "--no-validate") {
      validate = false;
    } else if (a == "--record-schedule" && i + 1 < argc) {
      record = argv[++i];
    } else if (a == "--trace") {
      trace = true;
    } else if (a == "--repeat" && i + 1 < argc) {
      char* end = nullptr;
      repeat = std::strtol(argv[++i], &end, 10);
      if (*end || repeat < 1 || repeat > 1000) return usage("--repeat takes a number in 1..1000");
    } else if (a == "--preemptions" && i + 1 < argc) {
      double v;
      if (!parse_number(argv[++i], 0, 8, &v) || v != unsigned(v)) return usage("--preemptions takes a whole number in 0..8");
      xo.bound = unsigned(v);
      xo.delays = false;
    } else if (a == "--delays" && i + 1 < argc) {
      double v;
      if (!parse_number(argv[++i], 0, 8, &v) || v != unsigned(v)) return usage("--delays takes a whole number in 0..8");
      xo.bound = unsigned(v);
      xo.delays = true;
    } else if (a == "--max-schedules" && i + 1 < argc) {
      double v;
      if (!parse_number(argv[++i], 1, 1e15, &v) || v != uint64_t(v)) return usage("--max-schedules takes a whole number >= 1");
      xo.max_schedules = uint64_t(v);
    } else if (a == "--time-limit" && i + 1 < argc) {
      if (!parse_number(argv[++i], 0.1, 86400, &xo.time_limit_s)) return usage("--time-limit takes seconds in 0.1..86400");
    } else if (a == "--out" && i + 1 < argc) {
      xo.out_prefix = argv[++i];
      if (xo.out_prefix.empty()) return usage("--out takes a path prefix");
    } else if (a.rfind("--", 0) == 0) {
      return usage(("unknown option '" + a + "' (or its value is missing)").c_str());
    } else {
      files.push_back(a);
    }
  }
  if (cmd == "decode") {
    if (files.size() != 1) return usage("decode takes one FILE");
    Program p;
    if (!load_program(files[0], dialect, text, &p, "cgslab-prog")) return 1;
    std::fputs(print(p).c_str(), stdout);
    return 0;
  }
  if (cmd == "encode") {
    if (files.size() != 2) return usage("encode takes FILE and OUT");
    Program p;
    if (!load_program(files[0], dialect, text, &p, "cgslab-prog")) return 1;
    std::vector<uint8_t> bytes = encode(p);
    Program back = decode(bytes.data(), bytes.size(), p.dialect);
    if (!(back == p)) {
      std::fprintf(stderr, "cgslab-prog: internal error: the encoding of %s does not decode back\n", files[0].c_str());
      return 1;
    }
    std::ofstream o(files[1], std::ios::binary);
    o.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
    if (!o) {
      std::fprintf(stderr, "cgslab-prog: cannot write %s: %s\n", files[1].c_str(), std::strerror(errno));
      return 1;
    }
    return 0;
  }
  if (cmd == "explore") {
    if (files.size() != 1) return usage("explore takes one FILE");
    Program p;
    if (!load_program(files[0], dialect, text, &p, "cgslab-prog")) return 1;
    xo.validate_each_op = validate;
    return explore(p, files[0], xo);
  }
  if (cmd == "replay") {
    if (files.empty()) return usage("replay takes at least one FILE");
    if (!record.empty() && (files.size() != 1 || repeat != 1))
      return usage("--record-schedule takes one FILE and no --repeat");
    DecisionLog log;
    if (!record.empty() && !log.open(record)) return 1;
    int status = 0;
    for (const std::string& f : files) {
      Program p;
      if (!load_program(f, dialect, text, &p, "cgslab-prog")) return 1;
      uint64_t first = 0;
      for (long r = 0; r < repeat; ++r) {
        RunOptions o;
        o.validate_each_op = validate;
        if (trace && r == 0) o.trace = [](const std::string& line) { std::printf("%s\n", line.c_str()); };
        if (log.base) o.on_decide = [&log](const cgslab::sim::Decision& d) { log.add(d.label); };
        RunStats s = exec_sim(p, o);
        if (r == 0) {
          first = s.trace_hash;
          std::printf("%s: ok (%s mode): %" PRIu64 " ops, %" PRIu64 " schedule points, %" PRIu64
                      " switches, %" PRIu64 " validations, trace hash %016" PRIx64 "\n",
                      f.c_str(), "sim", s.ops, s.steps, s.switches, s.validations, s.trace_hash);
        } else if (s.trace_hash != first) {
          std::printf("%s: NOT DETERMINISTIC: run %ld has trace hash %016" PRIx64 ", run 1 had %016" PRIx64 "\n",
                      f.c_str(), r + 1, s.trace_hash, first);
          status = 1;
          break;
        }
      }
      if (repeat > 1 && status == 0) std::printf("%s: %ld runs, identical trace hash\n", f.c_str(), repeat);
    }
    return status;
  }
  return usage(("unknown command '" + cmd + "'").c_str());
}
