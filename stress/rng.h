// rng.h: a fast per-thread random generator, and the type word of the stress binaries'
// TYPESAFE_BY_RCU objects. Object stamps are the harness's (harness/oracles.h: stamp_at,
// stamp_write, stamp_check): the head word (the second word of a TYPESAFE_BY_RCU object, whose
// first is the type word below) and the last whole word, checked whenever an object changes
// hands, before it is freed, and at quiescent checks.
#pragma once

#include <atomic>
#include <cstdint>

namespace cgslab::stress {

// splitmix64 step: a cheap generator good enough for choosing operations.
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed) {}
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  uint32_t below(uint32_t n) { return uint32_t((uint64_t(uint32_t(next())) * n) >> 32); }
  bool chance(uint32_t per_million) { return below(1000000) < per_million; }
};

// The type tag in the first word of TYPESAFE_BY_RCU objects: written atomically by every
// allocation (and by the cache's ctor), read atomically by RCU readers that may hold a pointer
// to an object another thread freed meanwhile (it is still memory of this cache type).
inline constexpr uint64_t kRcuTypeTag = 0x7e57ab1e5afe7c0dull;
inline std::atomic_ref<uint64_t> type_word(void* p) { return std::atomic_ref<uint64_t>(*static_cast<uint64_t*>(p)); }

}  // namespace cgslab::stress
