// coverage.h: interleaving coverage for libFuzzer. The sim scheduler reports every context switch
// as an edge hash of (the site the running task stopped at, the site the next task resumes at);
// counting those in __libfuzzer_extra_counters makes libFuzzer keep inputs that reach new
// interleavings, not only new code. Include in exactly one translation unit per target.
#pragma once

#include <cstdint>

namespace cgslab::harness {

__attribute__((section("__libfuzzer_extra_counters"))) inline uint8_t g_interleaving_counters[1 << 13];

// Saturates without a branch: under AFL++ nothing clears these counters between executions (only
// libFuzzer does), so a branch on the count would be an edge whose direction depends on earlier
// inputs, which AFL++ reports as instability.
inline void count_interleaving(uint32_t edge) {
  uint8_t& c = g_interleaving_counters[(edge ^ (edge >> 13)) & ((1 << 13) - 1)];
  c = static_cast<uint8_t>(c + (c != 255));
}

}  // namespace cgslab::harness
