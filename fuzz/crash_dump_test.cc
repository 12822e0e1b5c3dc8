// crash_dump_test: the crash file written from a sanitizer report (crash_dump.h) is libFuzzer's:
// named by the SHA-1 of the input under the artifact prefix (or the exact artifact path), with
// the input's bytes, and nothing is written when no input is running.
#include "crash_dump.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace cgslab::fuzz {
namespace {

std::string sha1_of(const std::string& s) {
  char hex[41];
  sha1_hex(reinterpret_cast<const uint8_t*>(s.data()), s.size(), hex);
  return hex;
}

TEST(CrashDump, Sha1MatchesTheStandardVectors) {
  EXPECT_EQ(sha1_of(""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  EXPECT_EQ(sha1_of("abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
  // 56 bytes: the length no longer fits the first padded block.
  EXPECT_EQ(sha1_of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
  EXPECT_EQ(sha1_of(std::string(1000, 'a')), "291e9a6c66994949b57ba5e650361e98fc36b1ba");
  // A whole block, and one byte short of the two-block padding.
  EXPECT_EQ(sha1_of(std::string(64, 'a')), "0098ba824b5c16427bd7a1122a5a442a25ec644d");
  EXPECT_EQ(sha1_of(std::string(55, 'a')), "c1c8bbdc22796e28c0e15163d20899b65621d65a");
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class CrashDumpFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/crash_dump_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    crash_dump_set_input(nullptr, 0);
    std::string cmd = "rm -rf '" + dir_ + "'";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
  }
  void init(std::vector<std::string> flags) {
    flags.insert(flags.begin(), {"fuzz_threads", "corpus", "-max_len=600"});
    std::vector<char*> argv;
    for (std::string& f : flags) argv.push_back(f.data());
    argv.push_back(nullptr);
    crash_dump_init(int(flags.size()), argv.data());
  }
  void init(const std::string& flag) { init(std::vector<std::string>{flag}); }
  std::string dir_;
};

TEST_F(CrashDumpFiles, WritesTheRunningInputUnderTheArtifactPrefix) {
  init("-artifact_prefix=" + dir_ + "/");
  const std::string input("\x01\x09\x04\x00program bytes", 17);
  crash_dump_set_input(reinterpret_cast<const uint8_t*>(input.data()), input.size());
  ASSERT_TRUE(crash_dump());
  EXPECT_EQ(read_all(dir_ + "/crash-" + sha1_of(input)), input);
}

TEST_F(CrashDumpFiles, TheExactArtifactPathWins) {
  init("-exact_artifact_path=" + dir_ + "/the-crash");
  const std::string input = "xyz";
  crash_dump_set_input(reinterpret_cast<const uint8_t*>(input.data()), input.size());
  ASSERT_TRUE(crash_dump());
  EXPECT_EQ(read_all(dir_ + "/the-crash"), input);
}

TEST_F(CrashDumpFiles, FlagsFollowLibFuzzersRules) {
  const std::string input = "abc";
  crash_dump_set_input(reinterpret_cast<const uint8_t*>(input.data()), input.size());
  // The exact path wins over a prefix in either order; the last of each flag counts; an empty
  // exact path is none; nothing after -ignore_remaining_args=1 is a flag.
  init({"-exact_artifact_path=" + dir_ + "/first", "-artifact_prefix=" + dir_ + "/p-",
        "-exact_artifact_path=" + dir_ + "/last"});
  ASSERT_TRUE(crash_dump());
  EXPECT_EQ(read_all(dir_ + "/last"), input);
  EXPECT_EQ(read_all(dir_ + "/first"), "");
  init({"-exact_artifact_path=", "-artifact_prefix=" + dir_ + "/q-", "-ignore_remaining_args=1",
        "-artifact_prefix=" + dir_ + "/r-"});
  ASSERT_TRUE(crash_dump());
  EXPECT_EQ(read_all(dir_ + "/q-crash-" + sha1_of(input)), input);
}

TEST_F(CrashDumpFiles, APathTooLongIsRefusedNotCut) {
  init("-artifact_prefix=" + dir_ + "/" + std::string(5000, 'x'));
  crash_dump_set_input(reinterpret_cast<const uint8_t*>("a"), 1);
  EXPECT_FALSE(crash_dump());
}

TEST_F(CrashDumpFiles, NoInputRunningWritesNothing) {
  init("-artifact_prefix=" + dir_ + "/");
  crash_dump_set_input(nullptr, 0);
  EXPECT_FALSE(crash_dump());
  const std::string input;  // an empty input is still an input
  crash_dump_set_input(reinterpret_cast<const uint8_t*>(""), 0);
  ASSERT_TRUE(crash_dump());
  EXPECT_EQ(read_all(dir_ + "/crash-" + sha1_of(input)), "");
}

TEST_F(CrashDumpFiles, AnUnwritablePathIsReportedNotFatal) {
  init("-artifact_prefix=" + dir_ + "/missing-dir/");
  crash_dump_set_input(reinterpret_cast<const uint8_t*>("a"), 1);
  EXPECT_FALSE(crash_dump());
}

}  // namespace
}  // namespace cgslab::fuzz
