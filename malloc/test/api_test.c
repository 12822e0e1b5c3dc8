/* api_test.c: the API contract of libcgslab_malloc.so. Run under LD_PRELOAD (CTest sets it);
 * refuses to run without it (cgslab_malloc_cgroup_usage must resolve), so it cannot pass on
 * glibc by accident. Each check prints what failed and the test exits 1. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int failures;
#define CHECK(c, ...)                                          \
  do {                                                         \
    if (!(c)) {                                                \
      fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #c); \
      fprintf(stderr, __VA_ARGS__);                            \
      fputc('\n', stderr);                                     \
      ++failures;                                              \
    }                                                          \
  } while (0)

static void fill(unsigned char* p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; ++i) p[i] = (unsigned char)(seed + i * 7);
}
static int same(const unsigned char* p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; ++i)
    if (p[i] != (unsigned char)(seed + i * 7)) return 0;
  return 1;
}

static void test_alignment(void) {
  static const size_t aligns[] = {8, 16, 32, 64, 128, 256, 1024, 4096, 8192, 32768, 65536, 1u << 21};
  static const size_t sizes[] = {1, 24, 100, 1000, 5000, 40000, 200000};
  for (size_t i = 0; i < sizeof aligns / sizeof *aligns; ++i)
    for (size_t j = 0; j < sizeof sizes / sizeof *sizes; ++j) {
      size_t a = aligns[i], n = sizes[j];
      void* p = NULL;
      int rc = posix_memalign(&p, a, n);
      CHECK(rc == 0 && p && ((uintptr_t)p % a) == 0, "posix_memalign(%zu, %zu) = %d, %p", a, n, rc, p);
      if (p) {
        CHECK(malloc_usable_size(p) >= n, "usable %zu < %zu", malloc_usable_size(p), n);
        memset(p, 0xab, n);
        free(p);
      }
      p = aligned_alloc(a, n);
      CHECK(p && ((uintptr_t)p % a) == 0, "aligned_alloc(%zu, %zu) = %p", a, n, p);
      if (p) memset(p, 1, n);
      free(p);
      p = memalign(a, n);
      CHECK(p && ((uintptr_t)p % a) == 0, "memalign(%zu, %zu) = %p", a, n, p);
      free(p);
    }
  void* p = NULL;
  CHECK(posix_memalign(&p, 24, 10) == EINVAL, "posix_memalign(24) must be EINVAL");
  CHECK(posix_memalign(&p, 4, 10) == EINVAL, "posix_memalign(4) must be EINVAL");
  errno = 0;
  size_t bad_align = 48;
  CHECK(aligned_alloc(bad_align, 10) == NULL && errno == EINVAL, "aligned_alloc(48) must fail with EINVAL");
  p = valloc(100);
  CHECK(p && ((uintptr_t)p & 4095) == 0, "valloc %p", p);
  free(p);
  p = pvalloc(100);
  CHECK(p && ((uintptr_t)p & 4095) == 0 && malloc_usable_size(p) >= 4096, "pvalloc %p", p);
  free(p);
  for (size_t n = 1; n <= 70000; n = n * 3 + 1) {
    p = malloc(n);
    CHECK(p && ((uintptr_t)p & 15) == 0, "malloc(%zu) = %p not 16-aligned", n, p);
    CHECK(malloc_usable_size(p) >= n, "malloc_usable_size(malloc(%zu)) = %zu", n, malloc_usable_size(p));
    free(p);
  }
}

static void test_calloc(void) {
  static const size_t sizes[] = {1, 16, 100, 4000, 32768, 40000, 1 << 20};
  for (int round = 0; round < 2; ++round)
    for (size_t j = 0; j < sizeof sizes / sizeof *sizes; ++j) {
      /* dirty memory first, so a recycled object would show */
      unsigned char* d = malloc(sizes[j]);
      memset(d, 0xee, sizes[j]);
      free(d);
      unsigned char* p = calloc(1, sizes[j]);
      CHECK(p != NULL, "calloc(%zu)", sizes[j]);
      size_t nz = 0;
      for (size_t i = 0; p && i < sizes[j]; ++i) nz += p[i] != 0;
      CHECK(nz == 0, "calloc(%zu): %zu non-zero bytes", sizes[j], nz);
      free(p);
    }
  errno = 0;
  CHECK(calloc(SIZE_MAX / 2, 3) == NULL && errno == ENOMEM, "calloc overflow must be NULL/ENOMEM");
  errno = 0;
  CHECK(malloc(SIZE_MAX - 100) == NULL && errno == ENOMEM, "malloc(huge) must be NULL/ENOMEM");
}

static void test_realloc(void) {
  size_t steps[] = {10, 100, 1000, 20000, 40000, 300000, 5000000, 70000, 3000, 50, 5};
  unsigned char* p = malloc(1);
  p[0] = 1;
  fill(p, 1, 3);
  size_t have = 1;
  for (size_t i = 0; i < sizeof steps / sizeof *steps; ++i) {
    size_t n = steps[i];
    unsigned char* q = realloc(p, n);
    CHECK(q != NULL, "realloc(%zu)", n);
    if (!q) return;
    size_t keep = have < n ? have : n;
    CHECK(same(q, keep, 3), "realloc %zu -> %zu lost contents", have, n);
    fill(q, n, 3);
    p = q;
    have = n;
  }
  free(p);
  CHECK(realloc(NULL, 100) != NULL, "realloc(NULL)");  /* leaks 100 bytes on purpose: trivial */
  void* z = malloc(10);
  CHECK(realloc(z, 0) == NULL, "realloc(p, 0) frees and returns NULL (glibc)");
  errno = 0;
  unsigned char* keep = malloc(64);
  fill(keep, 64, 9);
  CHECK(realloc(keep, SIZE_MAX - 4096) == NULL && errno == ENOMEM, "realloc(huge) must fail");
  CHECK(same(keep, 64, 9), "failed realloc must leave the block intact");
  free(keep);
}

static void test_zero_and_null(void) {
  void* a = malloc(0);
  void* b = malloc(0);
  CHECK(a && b && a != b, "malloc(0) returns distinct unique pointers: %p %p", a, b);
  free(a);
  free(b);
  free(NULL);
  CHECK(malloc_usable_size(NULL) == 0, "malloc_usable_size(NULL)");
}

static void* worker(void* arg) {
  unsigned seed = (unsigned)(uintptr_t)arg;
  unsigned char* slots[256] = {0};
  size_t sizes[256] = {0};
  for (int i = 0; i < 200000; ++i) {
    seed = seed * 1103515245u + 12345u;
    unsigned k = (seed >> 8) & 255;
    size_t n = ((seed >> 16) % 7 == 0) ? (seed >> 4) % 50000 + 1 : (seed >> 4) % 300 + 1;
    if (slots[k]) {
      size_t m = sizes[k] < 16 ? sizes[k] : 16;
      if (!same(slots[k], m, k) || (sizes[k] >= 32 && !same(slots[k] + sizes[k] - m, m, k + 1)))
        return (void*)1;
      free(slots[k]);
    }
    slots[k] = malloc(n);
    if (!slots[k]) return (void*)2;
    sizes[k] = n;
    size_t m = n < 16 ? n : 16;
    fill(slots[k] + n - m, m, k + 1); /* head and tail overlap when n < 32: tail first */
    fill(slots[k], m, k);
  }
  for (int k = 0; k < 256; ++k) free(slots[k]);
  return NULL;
}

static void test_threads(void) {
  pthread_t t[4];
  for (int i = 0; i < 4; ++i) CHECK(pthread_create(&t[i], NULL, worker, (void*)(uintptr_t)(i + 1)) == 0, "create");
  for (int i = 0; i < 4; ++i) {
    void* r;
    pthread_join(t[i], &r);
    CHECK(r == NULL, "thread %d: %s", i, r == (void*)1 ? "contents corrupted" : "malloc failed");
  }
}

/* A thread is in the middle of allocating when the main thread forks. */
static volatile int stop_spinner;
static void* spinner(void* arg) {
  (void)arg;
  while (!stop_spinner) free(malloc(64 + (rand() & 1023)));
  return NULL;
}

static void test_fork(void) {
  pthread_t t;
  pthread_create(&t, NULL, spinner, NULL);
  for (int round = 0; round < 5; ++round) {
    void* held = malloc(1000);
    pid_t pid = fork();
    if (pid == 0) {
      /* child: allocate and free a lot, free the parent's block, use a thread, fork again */
      void* v[1000];
      for (int i = 0; i < 1000; ++i) v[i] = malloc((size_t)i * 37 + 1);
      for (int i = 0; i < 1000; ++i) free(v[i]);
      free(held);
      void* big = malloc(1 << 20);
      memset(big, 1, 1 << 20);
      free(big);
      pthread_t c;
      if (pthread_create(&c, NULL, worker, (void*)7) != 0) _exit(3);
      void* r;
      pthread_join(c, &r);
      if (r) _exit(4);
      pid_t g = fork();
      if (g == 0) {
        free(malloc(77));
        _exit(0);
      }
      int gs;
      waitpid(g, &gs, 0);
      exit(WIFEXITED(gs) && WEXITSTATUS(gs) == 0 ? 0 : 5);
    }
    int st;
    CHECK(waitpid(pid, &st, 0) == pid, "waitpid");
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "fork child round %d: status %#x", round, st);
    free(held);
  }
  stop_spinner = 1;
  pthread_join(t, NULL);
}

/* Bad use must go through the allocator's error path and abort with a clear message. */
static void expect_abort(const char* what, void (*bad)(void), const char* needle) {
  int fds[2];
  if (pipe(fds)) return;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 2);
    bad();
    _exit(0);
  }
  close(fds[1]);
  char buf[4096];
  size_t len = 0;
  ssize_t r;
  while ((r = read(fds[0], buf + len, sizeof buf - 1 - len)) > 0) len += (size_t)r;
  buf[len] = 0;
  close(fds[0]);
  int st;
  waitpid(pid, &st, 0);
  CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "%s: expected SIGABRT, status %#x", what, st);
  CHECK(strstr(buf, needle) != NULL, "%s: stderr lacks '%s': %s", what, needle, buf);
}
/* volatile: the compiler must not elide the malloc/free pairs (the file is also built with
 * -fno-builtin for the same reason). */
static void* volatile sink;
static void double_free(void) {
  sink = malloc(100);
  free(sink);
  free(sink);
}
static void foreign_free(void) {
  static char not_heap[64];
  free(not_heap + 16);
}
static void interior_free(void) {
  sink = malloc(200);
  free((char*)sink + 16);
}

int main(void) {
  if (!dlsym(RTLD_DEFAULT, "cgslab_malloc_cgroup_usage")) {
    fprintf(stderr, "api_test: libcgslab_malloc.so is not preloaded (set LD_PRELOAD)\n");
    return 2;
  }
  test_alignment();
  test_calloc();
  test_realloc();
  test_zero_and_null();
  test_threads();
  test_fork();
  expect_abort("double free", double_free, "double-free");
  expect_abort("foreign pointer", foreign_free, "invalid-free");
  expect_abort("interior pointer", interior_free, "not the start of an object");
  if (failures) {
    fprintf(stderr, "api_test: %d failures\n", failures);
    return 1;
  }
  puts("api_test: all checks passed");
  return 0;
}
