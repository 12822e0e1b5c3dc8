// program.h: the harness's one operation vocabulary. A Program is a few tasks, each a list of
// typed operations over handles (cgroup, cache, object), plus a schedule. The same Program type is
// produced by the byte decoder (fuzz inputs), the text parser (readable corpora), and consumed by
// the encoder, the text printer and the runner (sim replay, real threads).
//
// Every byte string decodes to a valid Program (decode never fails); decode(encode(p)) == p and
// parse(print(p)) == p, so a crash input can be read, edited and turned back into bytes.
//
// Byte layout: [header][op count][op records: 4 bytes each][schedule bytes...]. Missing bytes
// read as zero. Header: bits 0-1 task count - 1, bit 2 PCT (else explicit), bit 3 API dialect.
// Op record: byte 0 = task (bits 0-1) | kind (bits 2-7, modulo the dialect's kind count), then
// three argument bytes a, b, c. Schedule: explicit: (task, count) byte pairs; PCT: 8 seed bytes
// and a depth byte. Handle arguments are raw bytes the runner maps onto live handles (modulo).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cgslab::fuzz {

enum class OpKind : uint8_t {
  // lifecycle dialect (every target)
  kYield,
  kCgroupCreate,
  kCgroupOffline,
  kCgroupSetMax,
  kAttach,
  kRemoteBegin,
  kScopeEnd,
  kCacheCreate,
  kCacheShrink,
  kCacheDestroy,
  kAlloc,
  kAllocMany,
  kFree,
  kFreeMany,
  kKmalloc,
  kRcuLock,
  kRcuRead,
  kRcuUnlock,
  kRegisterShrinker,
  kFailMapping,
  kFailInternal,
  kSynchronizeRcu,
  kShrinkAll,
  kDrain,
  kLifecycleCount,
  // API dialect only (fuzz_api): misuse whose error must be reported exactly
  kDoubleFree = kLifecycleCount,
  kFreeInterior,
  kFreeForeign,
  kFreeWrongCache,
  kUseDestroyedCache,
  kOfflineTwice,
  kOfflineRoot,
  kBadCacheArgs,
  kBadGfp,
  kUnbalancedRcuUnlock,
  kSyncInRcu,
  kDestroyBusy,
  kApiCount,
};

enum class Dialect : uint8_t { kLifecycle, kApi };

struct Op {
  uint8_t task = 0;
  OpKind kind = OpKind::kYield;
  uint8_t a = 0, b = 0, c = 0;  // meaning per kind (op_info); unused ones are 0
  bool operator==(const Op&) const = default;
};

struct SchedStep {
  uint8_t task = 0;   // schedule index: t0..t(n-1), then rcu, wq (modulo n + 2)
  uint8_t count = 1;  // schedule points, >= 1
  bool operator==(const SchedStep&) const = default;
};

struct Program {
  Dialect dialect = Dialect::kLifecycle;
  uint8_t ntasks = 1;  // 1..4
  bool pct = false;
  uint64_t seed = 0;   // pct
  uint8_t depth = 1;   // pct, 1..4
  std::vector<SchedStep> steps;  // explicit
  std::vector<Op> ops;           // in program order; each op belongs to ops[i].task
  bool operator==(const Program&) const = default;
};

inline constexpr size_t kMaxOps = 255;
inline constexpr size_t kMaxSteps = 512;

// The schedule labels the sim scheduler matches task names against, in schedule-index order.
std::vector<std::string> schedule_labels(const Program& p);

Program decode(const uint8_t* data, size_t size, Dialect dialect);
std::vector<uint8_t> encode(const Program& p);
std::string print(const Program& p);
// Parse the text form; false with a message naming the line on malformed text.
bool parse(const std::string& text, Program* out, std::string* error);
// One op as text ("t1 alloc cache=2 gfp=account|nowait").
std::string print_op(const Op& op);

// Argument tables shared with the runner.
inline constexpr size_t kCacheSizes[] = {8, 16, 24, 40, 64, 100, 192, 256, 600, 1024, 3000, 4096, 9000, 32768};
inline constexpr size_t kCacheAligns[] = {8, 16, 64};
inline constexpr unsigned kHarnessReclaimable = 1u << 5;  // alloc gfp bit: the shrinker may free it
inline constexpr unsigned kCacheCtor = 1u << 3;           // cache flag bit: give the cache a ctor

}  // namespace cgslab::fuzz
