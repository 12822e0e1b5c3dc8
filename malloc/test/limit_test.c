/* limit_test.c: a program "inside a cgroup". Run under LD_PRELOAD with CGSLAB_CGROUP=/job and
 * CGSLAB_MAX (argv[1], bytes; CTest passes 8M = 8388608). Allocates a mix of small (kmalloc) and
 * large (mmap) blocks, touching every byte, until malloc returns NULL; checks errno == ENOMEM,
 * that the bytes it got and the cgroup's charge (slab pages + large blocks) stay within the
 * limit, that nearly all of it could be used, and that after freeing everything it can
 * allocate again (the charge went back). Exits 1 on any failure. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char** argv) {
  size_t (*usage)(void) = (size_t (*)(void))dlsym(RTLD_DEFAULT, "cgslab_malloc_cgroup_usage");
  if (argc != 2 || !usage) {
    fprintf(stderr, "usage: LD_PRELOAD=libcgslab_malloc.so CGSLAB_CGROUP=/job CGSLAB_MAX=N limit_test N\n");
    return 2;
  }
  size_t limit = strtoull(argv[1], NULL, 10);
  if (usage() == SIZE_MAX) {
    fprintf(stderr, "limit_test: not in cgroup mode (CGSLAB_CGROUP unset?)\n");
    return 2;
  }
  enum { kMax = 1 << 20 };
  static void* blocks[kMax];
  size_t n = 0, got = 0, peak_usage = 0;
  unsigned seed = 12345;
  int failures = 0;
  for (int round = 0; round < 2; ++round) {
    n = got = 0;
    errno = 0;
    for (;;) {
      seed = seed * 1103515245u + 12345u;
      size_t sz = (seed >> 10) % 16 == 0 ? 40000 + (seed >> 4) % 100000 : 16 + (seed >> 4) % 2000;
      void* p = malloc(sz);
      if (!p) break;
      memset(p, 0x5a, sz);
      blocks[n++] = p;
      got += sz;
      size_t u = usage();
      if (u > peak_usage) peak_usage = u;
      if (n == kMax || got > 4 * limit) break;
    }
    int e = errno;
    printf("round %d: %zu blocks, %zu bytes before NULL (errno %d); peak charge %zu; limit %zu\n", round, n, got, e,
           peak_usage, limit);
    if (n == kMax || got > 4 * limit) {
      fprintf(stderr, "FAIL: malloc never returned NULL (%zu bytes allocated)\n", got);
      ++failures;
    } else if (e != ENOMEM) {
      fprintf(stderr, "FAIL: errno %d after NULL, want ENOMEM\n", e);
      ++failures;
    }
    if (got > limit) {
      fprintf(stderr, "FAIL: %zu bytes allocated, above the limit %zu\n", got, limit);
      ++failures;
    }
    if (peak_usage > limit) {
      fprintf(stderr, "FAIL: cgroup charge %zu above the limit %zu\n", peak_usage, limit);
      ++failures;
    }
    if (got < limit / 2) {
      fprintf(stderr, "FAIL: only %zu of %zu bytes usable before NULL\n", got, limit);
      ++failures;
    }
    for (size_t i = 0; i < n; ++i) free(blocks[i]);
  }
  /* The charge must come back: a large block and many small ones fit again. */
  void* big = malloc(limit / 4);
  if (!big) {
    fprintf(stderr, "FAIL: malloc(%zu) after freeing everything returned NULL\n", limit / 4);
    ++failures;
  }
  free(big);
  if (failures) return 1;
  puts("limit_test: ok");
  return 0;
}
