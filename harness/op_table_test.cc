// op_table_test: the operation table and the program forms derived from it. decode() accepts any
// bytes; print/parse and encode/decode give back the same Program; every op of the table
// round-trips with every value of each argument and prints the value that runs; parse rejects
// malformed text with a message naming the line; the dictionaries hold well-formed records.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <sstream>

#include "program.h"

namespace cgslab::harness {
namespace {

std::vector<uint8_t> random_bytes(std::mt19937_64& rng, size_t max_len) {
  std::vector<uint8_t> b(rng() % (max_len + 1));
  for (auto& x : b) x = uint8_t(rng());
  return b;
}

TEST(OpTable, AnyBytesRoundTripThroughTextAndBytes) {
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

TEST(OpTable, EmptyInputIsAOneTaskProgram) {
  Program p = decode(nullptr, 0, Dialect::kLifecycle);
  EXPECT_EQ(p.ntasks, 1);
  EXPECT_TRUE(p.ops.empty());
}

TEST(OpTable, MalformedTextIsRejectedWithTheLine) {
  struct Case {
    const char* text;
    const char* want;
  } cases[] = {
      {"sched explicit\n", "missing 'tasks N'"},
      {"tasks 9\n", "line 1"},
      {"tasks 2\nt0 frobnicate\n", "unknown operation 'frobnicate'"},
      {"tasks 2\nt0 alloc cache=1 gfp=sometimes\n", "bad value 'sometimes'"},
      {"tasks 1\nt0 kmalloc size=100 gfp=0\n", "bad value '100'"},   // kmalloc sizes are 1,3,..,255,256,512..
      {"tasks 1\nt0 alloc_many cache=0 n=17 gfp=0\n", "bad value '17'"},
      {"tasks 1\nt0 cgroup_set_max cg=1 pages=255\n", "bad value '255'"},  // "unlimited" says it
      {"tasks 1\nt0 register_shrinker batch=0\n", "bad value '0'"},
      {"tasks 2\nt0 alloc color=1\n", "no argument 'color'"},
      {"tasks 1\nt3 yield\n", "but tasks 1"},
      {"tasks 2\nsched explicit t7*3\n", "unknown schedule label 't7'"},
      {"tasks 2\nsched pct depth=9\n", "bad pct parameter"},
      {"tasks 2\nsched pct horizon=100\n", "bad pct parameter"},  // not a multiple of 16
      {"tasks 2\nsched pct horizon=4096\n", "bad pct parameter"},
      {"tasks 2\nt0 cache_create size=65 flags=0 align=8\n", "bad value '65'"},
      {"dialect api\ntasks 1\nt0 double_free obj=x\n", "bad value 'x'"},
      {"dialect api\ntasks 1\nt0 bad_gfp bit=7\n", "bad value '7'"},
      {"tasks 1\nt0 double_free obj=1\n", "unknown operation 'double_free'"},
  };
  for (const auto& c : cases) {
    Program p;
    std::string err;
    EXPECT_FALSE(parse(c.text, &p, &err)) << c.text;
    EXPECT_NE(err.find(c.want), std::string::npos) << "text: " << c.text << "\nerror: " << err;
  }
}

// Every op, every value of each argument: encode/decode and print/parse give the op back, and the
// text shows the value the executor will use (arg_value), not a byte.
TEST(OpTable, EveryOpRoundTripsWithEveryValue) {
  for (Dialect d : {Dialect::kLifecycle, Dialect::kApi}) {
    for (size_t k = 0; k < dialect_kinds(d); ++k) {
      const OpInfo& info = op_info(OpKind(k));
      SCOPED_TRACE(info.name);
      EXPECT_TRUE(d == Dialect::kApi || info.dialect == Dialect::kLifecycle);
      for (int a = 0; a < 3; ++a) {
        ArgKind ak = info.arg[a].kind;
        if (ak == ArgKind::kNone) continue;
        std::vector<uint8_t> dom = arg_domain(ak);
        ASSERT_FALSE(dom.empty());
        for (uint8_t c : dom) {
          Program p;
          p.dialect = d;
          Op op;
          op.kind = OpKind(k);
          op.arg[a] = c;
          for (int o = 0; o < 3; ++o)
            if (o != a) op.arg[o] = arg_canonical(info.arg[o].kind, 0);
          p.ops.push_back(op);
          auto bytes = encode(p);
          ASSERT_EQ(decode(bytes.data(), bytes.size(), d), p);
          std::string text = print(p), err;
          Program q;
          ASSERT_TRUE(parse(text, &q, &err)) << err << "\n" << text;
          ASSERT_EQ(p, q) << text;
          std::string shown = std::string(info.arg[a].name) + "=" + arg_text(ak, c);
          EXPECT_NE(print_op(op).find(shown), std::string::npos) << print_op(op);
        }
      }
    }
  }
}

TEST(OpTable, PrintedValuesAreTheValuesThatRun) {
  auto one = [](const char* line) {
    Program p;
    std::string err;
    EXPECT_TRUE(parse(std::string("dialect api\ntasks 1\n") + line + "\n", &p, &err)) << err;
    return p.ops.at(0);
  };
  EXPECT_EQ(arg(one("t0 kmalloc size=201 gfp=0"), 0), 201u);
  EXPECT_EQ(arg(one("t0 kmalloc size=32768 gfp=0"), 0), 32768u);
  EXPECT_EQ(arg(one("t0 cgroup_set_max cg=1 pages=unlimited"), 1), UINT64_MAX);
  EXPECT_EQ(arg(one("t0 cgroup_set_max cg=1 pages=0"), 1), 0u);
  EXPECT_EQ(arg(one("t0 alloc_many cache=0 n=16 gfp=0"), 1), 16u);
  EXPECT_EQ(arg(one("t0 register_shrinker batch=8"), 0), 8u);
  EXPECT_EQ(arg(one("t0 bad_gfp bit=27"), 0), 27u);
  EXPECT_EQ(arg(one("t0 cache_create size=9000 flags=rcu|ctor align=64"), 0), 9000u);
  EXPECT_EQ(arg(one("t0 cache_create size=9000 flags=rcu|ctor align=64"), 1), kCacheTypesafeByRcu | kCacheCtor);
  EXPECT_EQ(arg(one("t0 cache_create size=9000 flags=rcu|ctor align=64"), 2), 64u);
  EXPECT_EQ(arg(one("t0 fail_mapping nth=off"), 0), 0u);
  // A raw byte decodes to the value it runs with: kmalloc byte 100 is 201 bytes, and prints so.
  const uint8_t bytes[] = {0, 1, uint8_t(size_t(OpKind::k_kmalloc) << 2), 100, 0, 0};
  Program p = decode(bytes, sizeof bytes, Dialect::kLifecycle);
  EXPECT_EQ(print_op(p.ops.at(0)), "t0 kmalloc size=201 gfp=0");
  // alloc_many's count byte 40 runs 40 % 17 = 6 allocations and says so.
  const uint8_t many[] = {0, 1, uint8_t(size_t(OpKind::k_alloc_many) << 2), 0, 40, 0};
  p = decode(many, sizeof many, Dialect::kLifecycle);
  EXPECT_EQ(print_op(p.ops.at(0)), "t0 alloc_many cache=0 n=6 gfp=0");
}

TEST(OpTable, AttributesAndDialects) {
  // Lifecycle rows come first; api adds only misuse rows, each of which expects an error.
  for (size_t k = 0; k < size_t(OpKind::kCount); ++k) {
    const OpInfo& info = op_info(OpKind(k));
    EXPECT_EQ(k < dialect_kinds(Dialect::kLifecycle), info.dialect == Dialect::kLifecycle) << info.name;
    EXPECT_EQ(info.dialect == Dialect::kApi, info.expects_error) << info.name;
    if (info.attrs & kAllowedInRcu) EXPECT_TRUE(info.attrs & kMaySleep) << info.name;
  }
  EXPECT_EQ(dialect_kinds(Dialect::kApi), size_t(OpKind::kCount));
  EXPECT_TRUE(op_info(OpKind::k_synchronize_rcu).attrs & kMaySleep);
  EXPECT_TRUE(op_info(OpKind::k_validate).attrs & kQuiescentOnly);
  EXPECT_EQ(op_info(OpKind::k_destroy_busy).error, ErrorKind::kCacheBusy);
}

TEST(OpTable, DictionaryHasOneRecordPerOpAndTask) {
  for (Dialect d : {Dialect::kLifecycle, Dialect::kApi}) {
    std::string dict = dictionary(d);
    size_t records = 0;
    std::istringstream in(dict);
    for (std::string line; std::getline(in, line);) {
      if (line.empty() || line[0] == '#') continue;
      ++records;
      EXPECT_EQ(line.rfind("op_", 0), 0u) << line;
      EXPECT_NE(line.find("=\"\\x"), std::string::npos) << line;
      EXPECT_EQ(std::count(line.begin(), line.end(), 'x') >= 4, true) << line;
    }
    EXPECT_EQ(records, dialect_kinds(d) * (d == Dialect::kApi ? 1 : 4));
    EXPECT_NE(dict.find("op_kmalloc_t0="), std::string::npos);
  }
}

}  // namespace
}  // namespace cgslab::harness
