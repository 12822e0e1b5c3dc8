// crash_dump.h: writes the input being fuzzed as libFuzzer's crash file, from a context where
// malloc, stdio and locks may deadlock, and ends the process.
//
// Why: under ThreadSanitizer a report halts through libFuzzer's death callback, which names and
// writes the crash file with std::string and fopen. TSan calls it while it still holds its own
// locks, and now and then the callback's first allocation blocks on one of them for good (a
// fuzz_threads run hung after a data race report, with no crash file, until it was killed).
// The report hook calls crash_dump() and crash_exit() instead: the file gets libFuzzer's name
// (<artifact_prefix>crash-<sha1 of the input>, or -exact_artifact_path), the same "Test unit
// written to" line, and the process exits with TSan's exit code.
//
// Owns: the artifact path (from the command line, set once before fuzzing) and the pointer to the
// input of the running callback (set at the start of each). Everything here runs on the stack
// with raw system calls: no allocation, no stdio, no locks, no sanitizer callbacks.
#pragma once

#include <cstddef>
#include <cstdint>

namespace cgslab::fuzz {

// Reads -artifact_prefix= and -exact_artifact_path= from libFuzzer's command line (again on each
// call: a call forgets the last one's paths).
void crash_dump_init(int argc, char** argv);
// The input libFuzzer is running now (data stays valid until the callback returns); null: none.
void crash_dump_set_input(const uint8_t* data, size_t size);
// Writes the current input as the crash file and says so on stderr; false when no input is running
// or the file cannot be written.
bool crash_dump();
// Ends the process at once (no atexit handlers, no flushing: there is nothing safe to flush).
[[noreturn]] void crash_exit(int code);
// SHA-1 of data as 40 hex digits and a NUL (libFuzzer names artifacts by it).
void sha1_hex(const uint8_t* data, size_t size, char out[41]);

}  // namespace cgslab::fuzz
