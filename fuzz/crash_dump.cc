#include "crash_dump.h"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

// Not instrumented: these run inside a sanitizer report, where an instrumented access would
// re-enter the runtime (TSan) and a coverage counter would count a path no input chose.
#define CGSLAB_RAW __attribute__((no_sanitize("thread", "address", "undefined", "coverage")))

namespace cgslab::fuzz {
namespace {

constexpr size_t kPathMax = 4096;
char g_prefix[kPathMax];  // -artifact_prefix (libFuzzer: the last one given)
char g_exact[kPathMax];   // -exact_artifact_path; when set it is the file's whole path
bool g_too_long = false;  // a path that does not fit: write nothing rather than elsewhere
const uint8_t* volatile g_data = nullptr;
volatile size_t g_size = 0;

CGSLAB_RAW size_t raw_len(const char* s) {
  size_t n = 0;
  while (s[n]) ++n;
  return n;
}
// False when s did not fit (dst then holds what did).
CGSLAB_RAW bool raw_append(char* dst, size_t cap, size_t* len, const char* s) {
  for (; *s && *len + 1 < cap; ++s) dst[(*len)++] = *s;
  dst[*len] = 0;
  return *s == 0;
}
CGSLAB_RAW void raw_write_all(int fd, const char* s, size_t n) {
  while (n > 0) {
    long w = syscall(SYS_write, fd, s, n);
    if (w <= 0) return;
    s += w;
    n -= size_t(w);
  }
}
CGSLAB_RAW bool starts_with(const char* s, const char* p) {
  for (; *p; ++s, ++p)
    if (*s != *p) return false;
  return true;
}

CGSLAB_RAW uint32_t rol(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

CGSLAB_RAW void sha1_block(uint32_t h[5], const uint8_t b[64]) {
  uint32_t w[80];
  for (int i = 0; i < 16; ++i)
    w[i] = uint32_t(b[4 * i]) << 24 | uint32_t(b[4 * i + 1]) << 16 | uint32_t(b[4 * i + 2]) << 8 | b[4 * i + 3];
  for (int i = 16; i < 80; ++i) w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
  uint32_t a = h[0], bb = h[1], c = h[2], d = h[3], e = h[4];
  for (int i = 0; i < 80; ++i) {
    uint32_t f, k;
    if (i < 20) f = (bb & c) | (~bb & d), k = 0x5a827999;
    else if (i < 40) f = bb ^ c ^ d, k = 0x6ed9eba1;
    else if (i < 60) f = (bb & c) | (bb & d) | (c & d), k = 0x8f1bbcdc;
    else f = bb ^ c ^ d, k = 0xca62c1d6;
    uint32_t t = rol(a, 5) + f + e + k + w[i];
    e = d, d = c, c = rol(bb, 30), bb = a, a = t;
  }
  h[0] += a, h[1] += bb, h[2] += c, h[3] += d, h[4] += e;
}

}  // namespace

CGSLAB_RAW void sha1_hex(const uint8_t* data, size_t size, char out[41]) {
  uint32_t h[5] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0};
  size_t i = 0;
  for (; i + 64 <= size; i += 64) sha1_block(h, data + i);
  uint8_t tail[128];
  size_t n = size - i;
  for (size_t k = 0; k < n; ++k) tail[k] = data[i + k];
  tail[n++] = 0x80;
  size_t total = n <= 56 ? 64 : 128;
  while (n < total - 8) tail[n++] = 0;
  uint64_t bits = uint64_t(size) * 8;
  for (int k = 7; k >= 0; --k) tail[n++] = uint8_t(bits >> (8 * k));
  sha1_block(h, tail);
  if (total == 128) sha1_block(h, tail + 64);
  static const char kHex[] = "0123456789abcdef";
  for (int k = 0; k < 20; ++k) {
    uint8_t byte = uint8_t(h[k / 4] >> (24 - 8 * (k % 4)));
    out[2 * k] = kHex[byte >> 4];
    out[2 * k + 1] = kHex[byte & 15];
  }
  out[40] = 0;
}

void crash_dump_init(int argc, char** argv) {
  // libFuzzer's flag rules: the last occurrence wins, an empty exact path is no exact path, and
  // nothing after -ignore_remaining_args=1 is a flag.
  g_prefix[0] = g_exact[0] = 0;
  g_too_long = false;
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    if (starts_with(a, "-ignore_remaining_args=1")) break;
    char* dst = starts_with(a, "-exact_artifact_path=") ? g_exact
                : starts_with(a, "-artifact_prefix=")   ? g_prefix
                                                        : nullptr;
    if (!dst) continue;
    const char* v = a + raw_len(dst == g_exact ? "-exact_artifact_path=" : "-artifact_prefix=");
    size_t len = 0;
    dst[0] = 0;
    if (!raw_append(dst, kPathMax, &len, v)) g_too_long = true;
  }
}

CGSLAB_RAW void crash_dump_set_input(const uint8_t* data, size_t size) {
  g_size = size;
  g_data = data;
}

CGSLAB_RAW bool crash_dump() {
  const uint8_t* data = g_data;
  size_t size = g_size;
  if (!data) return false;
  char path[kPathMax + 64];
  size_t len = 0;
  path[0] = 0;
  bool fits = !g_too_long;
  if (g_exact[0]) {
    fits &= raw_append(path, sizeof path, &len, g_exact);
  } else {
    char hex[41];
    sha1_hex(data, size, hex);
    fits &= raw_append(path, sizeof path, &len, g_prefix);
    fits &= raw_append(path, sizeof path, &len, "crash-");
    fits &= raw_append(path, sizeof path, &len, hex);
  }
  long fd = fits ? syscall(SYS_openat, AT_FDCWD, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) : -1;
  if (fd < 0) {
    static const char kMsg[] = "cgslab fuzz: cannot write the crash file ";
    raw_write_all(2, kMsg, sizeof kMsg - 1);
    raw_write_all(2, path, len);
    raw_write_all(2, fits ? "\n" : "... (path too long)\n", fits ? 1 : 21);
    return false;
  }
  raw_write_all(int(fd), reinterpret_cast<const char*>(data), size);
  syscall(SYS_close, fd);
  const char* pre = g_exact[0] ? "" : g_prefix;
  raw_write_all(2, "artifact_prefix='", 17);
  raw_write_all(2, pre, raw_len(pre));
  raw_write_all(2, "'; Test unit written to ", 24);
  raw_write_all(2, path, len);
  raw_write_all(2, "\n", 1);
  return true;
}

CGSLAB_RAW void crash_exit(int code) {
  for (;;) syscall(SYS_exit_group, code);
}

}  // namespace cgslab::fuzz
