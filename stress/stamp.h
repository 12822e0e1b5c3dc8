// stamp.h: object contents stamps and a fast per-thread random generator.
//
// Every object a stress thread allocates is stamped with a value derived from its address and a
// tag: the first word (or the second, for TYPESAFE_BY_RCU objects whose first word is the type
// tag that RCU readers check) and the last whole word. The stamp is checked whenever the
// object changes hands, before it is freed, and by the quiescent checks: if the allocator hands
// one object out twice, or writes into a live object (a free-list pointer, a poison pattern),
// the stamp is wrong. Two words — head and tail — catch a slot size that overlaps neighbours.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>

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

inline uint64_t stamp_value(const void* p, uint32_t tag) {
  uint64_t x = uint64_t(reinterpret_cast<uintptr_t>(p)) ^ (uint64_t(tag) * 0x9e3779b97f4a7c15ull);
  x ^= x >> 29;
  return x * 0xbf58476d1ce4e5b9ull | 1;  // never 0: a zeroed object never passes
}

// `head` is the byte offset of the head stamp (0, or 8 for RCU-typed objects); size >= head + 8.
inline void stamp(void* p, size_t size, uint32_t tag, size_t head = 0) {
  uint64_t v = stamp_value(p, tag);
  std::memcpy(static_cast<char*>(p) + head, &v, 8);
  size_t tail = (size - 8) & ~size_t(7);
  if (tail > head) {
    uint64_t t = ~v;
    std::memcpy(static_cast<char*>(p) + tail, &t, 8);
  }
}

inline bool stamp_ok(const void* p, size_t size, uint32_t tag, size_t head = 0) {
  uint64_t v = stamp_value(p, tag), h, t;
  std::memcpy(&h, static_cast<const char*>(p) + head, 8);
  if (h != v) return false;
  size_t tail = (size - 8) & ~size_t(7);
  if (tail > head) {
    std::memcpy(&t, static_cast<const char*>(p) + tail, 8);
    if (t != ~v) return false;
  }
  return true;
}

// The type tag in the first word of TYPESAFE_BY_RCU objects: written atomically by every
// allocation (and by the cache's ctor), read atomically by RCU readers that may hold a pointer
// to an object another thread freed meanwhile (it is still memory of this cache type).
inline constexpr uint64_t kRcuTypeTag = 0x7e57ab1e5afe7c0dull;
inline std::atomic_ref<uint64_t> type_word(void* p) { return std::atomic_ref<uint64_t>(*static_cast<uint64_t*>(p)); }

}  // namespace cgslab::stress
