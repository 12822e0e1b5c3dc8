// program_test: the vocabulary's round trips on random and edge-case inputs. decode() must accept
// any bytes; print/parse and encode/decode must give back the same Program; parse must reject
// malformed text with a message naming the line.
#include <gtest/gtest.h>

#include <random>

#include "program.h"

namespace cgslab::fuzz {
namespace {

std::vector<uint8_t> random_bytes(std::mt19937_64& rng, size_t max_len) {
  std::vector<uint8_t> b(rng() % (max_len + 1));
  for (auto& x : b) x = uint8_t(rng());
  return b;
}

TEST(ProgramTest, AnyBytesRoundTripThroughTextAndBytes) {
  std::mt19937_64 rng(12345);
  for (int i = 0; i < 3000; ++i) {
    auto bytes = random_bytes(rng, 1200);
    for (Dialect d : {Dialect::kLifecycle, Dialect::kApi}) {
      Program p = decode(bytes.data(), bytes.size(), d);
      ASSERT_GE(p.ntasks, 1);
      ASSERT_LE(p.ntasks, 4);
      for (const Op& op : p.ops) ASSERT_LT(op.task, p.ntasks);
      std::string text = print(p), err;
      Program q;
      ASSERT_TRUE(parse(text, &q, &err)) << err << "\n" << text;
      ASSERT_EQ(p, q) << text;
      auto enc = encode(p);
      ASSERT_EQ(decode(enc.data(), enc.size(), d), p) << text;
    }
  }
}

TEST(ProgramTest, EmptyInputIsAOneTaskProgram) {
  Program p = decode(nullptr, 0, Dialect::kLifecycle);
  EXPECT_EQ(p.ntasks, 1);
  EXPECT_TRUE(p.ops.empty());
}

TEST(ProgramTest, MalformedTextIsRejectedWithTheLine) {
  struct Case {
    const char* text;
    const char* want;
  } cases[] = {
      {"sched explicit\n", "missing 'tasks N'"},
      {"tasks 9\n", "line 1"},
      {"tasks 2\nt0 frobnicate\n", "unknown operation 'frobnicate'"},
      {"tasks 2\nt0 alloc cache=1 gfp=sometimes\n", "bad value 'sometimes'"},
      {"tasks 2\nt0 alloc color=1\n", "no argument 'color'"},
      {"tasks 1\nt3 yield\n", "but tasks 1"},
      {"tasks 2\nsched explicit t7*3\n", "unknown schedule label 't7'"},
      {"tasks 2\nsched pct depth=9\n", "bad pct parameter"},
      {"tasks 2\nt0 cache_create size=65 flags=0 align=8\n", "bad value '65'"},
      {"dialect api\ntasks 1\nt0 double_free obj=x\n", "bad value 'x'"},
      {"tasks 1\nt0 double_free obj=1\n", "unknown operation 'double_free'"},
  };
  for (const auto& c : cases) {
    Program p;
    std::string err;
    EXPECT_FALSE(parse(c.text, &p, &err)) << c.text;
    EXPECT_NE(err.find(c.want), std::string::npos) << "text: " << c.text << "\nerror: " << err;
  }
}

}  // namespace
}  // namespace cgslab::fuzz
