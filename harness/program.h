// program.h: harness programs and their three forms (bytes, text, in memory), all derived from
// the operation table ops.def. A Program is a few tasks, each a list of typed operations over
// handles (cgroup, cache, object), plus a schedule.
//
// Invariants: every byte string decodes to a valid Program (decode never fails);
// decode(encode(p)) == p and parse(print(p)) == p. An Op stores each argument as its canonical
// byte: the decoder maps any input byte onto the canonical byte of the value that will run, so
// what print() shows is exactly what the executor does (`size=201` allocates 201 bytes).
//
// Byte layout: [header][op count][op records: 4 bytes each][schedule bytes...]; missing bytes
// read as zero. Header: bits 0-1 task count - 1 (the api dialect always has 1 task), bit 2 PCT
// (else explicit); the dialect is not in the bytes, it is the target's. Op record: byte 0 =
// task (bits 0-1, modulo the task count) | kind (bits 2-7, modulo the dialect's row count), then
// the three argument bytes. Schedule: explicit: (task, count) byte pairs; PCT: 8 seed bytes and a
// depth byte. No locking: plain values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "cgslab/cgslab.h"

namespace cgslab::harness {

// Argument kinds: how a byte maps to the value that runs, and how that value is written.
//   kCg, kCache, kObj  handle: the n-th live handle of that type when the op runs (modulo count)
//   kPages      cgroup limit in pages; 255 prints and runs as "unlimited"
//   kCount      1..16 (alloc_many, free_many)
//   kBatch      1..8 objects freed per shrinker call
//   kNth        fail the nth next mapping/internal allocation; 0 prints "off" and disables
//   kBool       0 or 1
//   kKmallocSize bytes: 1, 3, 5, ..., 255 (odd sizes exercise rounding), then 256..32768 step 256
//   kCacheSize  one of kCacheSizes; kAlign one of kCacheAligns
//   kGfp        account|nowait|noretry|nofail|zero|reclaimable (the last is the harness's: the
//               object may be freed by the program's shrinker)
//   kCacheFlags account|rcu|nomerge|ctor
//   kOffset     1..255: byte offset into an object (skipped when >= the object's size)
//   kForeign    static|heap: where a foreign pointer comes from
//   kBadCacheArg size0|huge|align24|flags: which cache_create argument is bad
//   kGfpBit     8..27: an unknown gfp bit
enum class ArgKind : uint8_t {
  kNone, kCg, kCache, kObj, kPages, kCount, kBatch, kNth, kBool, kKmallocSize,
  kCacheSize, kAlign, kGfp, kCacheFlags, kOffset, kForeign, kBadCacheArg, kGfpBit,
};

enum class Dialect : uint8_t { kLifecycle, kApi };

// Operation attributes (ops.def explains each).
enum OpAttr : unsigned { kMaySleep = 1, kAllowedInRcu = 2, kQuiescentOnly = 4 };

enum class OpKind : uint8_t {
#define OP(name, group, dialect, attrs, err, a0, a1, a2) k_##name,
#include "ops.def"
#undef OP
  kCount,
};

struct ArgSpec {
  ArgKind kind = ArgKind::kNone;
  const char* name = nullptr;
};

struct OpInfo {
  const char* name;
  const char* group;
  Dialect dialect;
  unsigned attrs;
  bool expects_error;
  ErrorKind error;  // when expects_error
  ArgSpec arg[3];
};

const OpInfo& op_info(OpKind k);
// Rows usable in a dialect (lifecycle rows are a prefix of the table).
size_t dialect_kinds(Dialect d);

struct Op {
  uint8_t task = 0;
  OpKind kind = OpKind::k_yield;
  uint8_t arg[3] = {0, 0, 0};  // canonical bytes (see above); unused ones are 0
  bool operator==(const Op&) const = default;
};

struct SchedStep {
  uint8_t task = 0;   // schedule index: t0..t(n-1), then rcu, wq, main (modulo n + 3)
  uint8_t count = 1;  // schedule points, >= 1
  bool operator==(const SchedStep&) const = default;
};

struct Program {
  Dialect dialect = Dialect::kLifecycle;
  uint8_t ntasks = 1;  // 1..4
  bool pct = false;
  uint64_t seed = 0;   // pct
  uint8_t depth = 1;   // pct, 1..4
  uint16_t horizon = 0;  // pct: change points fall in the first `horizon` steps (16..4080, a
                         // multiple of 16); 0: sized to the program (pct_horizon)
  std::vector<SchedStep> steps;  // explicit
  std::vector<Op> ops;           // in program order; each op belongs to ops[i].task
  bool operator==(const Program&) const = default;
};

inline constexpr size_t kMaxOps = 255;
inline constexpr size_t kMaxSteps = 512;

// The value tables behind kCacheSize and kAlign.
inline constexpr size_t kCacheSizes[] = {8, 16, 24, 40, 64, 100, 192, 256, 600, 1024, 3000, 4096, 9000, 32768};
inline constexpr size_t kCacheAligns[] = {8, 16, 64};
// The harness's own flag bits inside kGfp / kCacheFlags values (the rest are the API's bits).
inline constexpr unsigned kGfpReclaimable = 1u << 5;
inline constexpr unsigned kCacheCtor = 1u << 3;
enum class BadCacheArg : uint8_t { kSizeZero, kHuge, kAlign24, kFlags };

// The value an argument byte stands for (handles: the raw index; flags: the bit set).
uint64_t arg_value(ArgKind k, uint8_t canonical);
// The canonical byte for any input byte.
uint8_t arg_canonical(ArgKind k, uint8_t raw);
std::string arg_text(ArgKind k, uint8_t canonical);
// false on a value this kind cannot take.
bool arg_parse(ArgKind k, const std::string& text, uint8_t* canonical);
// Every canonical byte of a kind, in increasing order of value.
std::vector<uint8_t> arg_domain(ArgKind k);

// Convenience for perform functions: the value of op's i-th argument.
inline uint64_t arg(const Op& op, int i) { return arg_value(op_info(op.kind).arg[i].kind, op.arg[i]); }

// The schedule labels the sim scheduler matches task names against, in schedule-index order:
// every task that can run after the policy starts has one (main, too: it runs the teardown), so
// that any run's decisions are an explicit schedule.
std::vector<std::string> schedule_labels(const Program& p);
inline uint8_t schedule_label_count(const Program& p) { return uint8_t(p.ntasks + 3); }
// The explicit schedule that replays a run whose scheduling decisions (cgslab/sim.h
// Hooks::on_decide, in order) chose these labels: the labels run-length encoded. false, with the
// reason, for a label out of range or more steps than a program holds (kMaxSteps).
bool schedule_of_decisions(const Program& p, const int8_t* labels, size_t n, std::vector<SchedStep>* steps,
                           std::string* why);

// The steps over which PCT draws its change points: p.horizon, or when it is 0 an estimate of the
// steps the program's tasks take (a fixed part for the first cgroup and cache, then a few per op).
// PCT needs the change points spread over the run: a horizon far past its end leaves most of them
// unused, and runs are short (a seed's tasks took 7-20 steps per op after setup, counted once).
uint64_t pct_horizon(const Program& p);
inline constexpr uint64_t kPctHorizonBase = 48;
inline constexpr uint64_t kPctHorizonPerOp = 6;

Program decode(const uint8_t* data, size_t size, Dialect dialect);
std::vector<uint8_t> encode(const Program& p);
std::string print(const Program& p);
// Parse the text form; false with a message naming the line on malformed text.
bool parse(const std::string& text, Program* out, std::string* error);
// One op as text ("t1 alloc cache=2 gfp=account|nowait").
std::string print_op(const Op& op);
// The libFuzzer dictionary of a dialect: one op record per (kind, task), with typical arguments.
std::string dictionary(Dialect d);
const char* dialect_name(Dialect d);

}  // namespace cgslab::harness
