/* larson.c: the larson server workload (Larson & Krishnan), deterministic. `larson THREADS ROUNDS
 * SLOTS OPS`: each of THREADS threads owns SLOTS blocks of random size 16..1024 and replaces OPS
 * random ones (free + malloc, contents stamped and checked); after each round every thread's
 * array is handed to a new thread of the next round, so blocks are freed by threads that did not
 * allocate them. Prints a checksum that depends only on the arguments; exits 1 if a block's stamp
 * was damaged. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  unsigned char** blocks;
  size_t* sizes;
  uint64_t seed;
  uint64_t sum;
  int bad;
} Arena;

static long g_slots, g_ops;

static uint64_t next(uint64_t* s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

static void* run(void* arg) {
  Arena* a = arg;
  for (long i = 0; i < g_ops; ++i) {
    uint64_t r = next(&a->seed);
    long k = (long)(r % (uint64_t)g_slots);
    size_t n = 16 + (size_t)((r >> 20) % 1009);
    if (a->blocks[k]) {
      if (a->blocks[k][0] != (unsigned char)a->sizes[k] || a->blocks[k][a->sizes[k] - 1] != (unsigned char)k) a->bad = 1;
      a->sum += a->sizes[k];
      free(a->blocks[k]);
    }
    unsigned char* p = malloc(n);
    if (!p) {
      a->bad = 2;
      return NULL;
    }
    p[0] = (unsigned char)n;
    p[n - 1] = (unsigned char)k;
    a->blocks[k] = p;
    a->sizes[k] = n;
  }
  return NULL;
}

int main(int argc, char** argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: larson THREADS ROUNDS SLOTS OPS\n");
    return 2;
  }
  int threads = atoi(argv[1]), rounds = atoi(argv[2]);
  g_slots = atol(argv[3]);
  g_ops = atol(argv[4]);
  if (threads < 1 || threads > 256 || rounds < 1 || g_slots < 1 || g_ops < 1) {
    fprintf(stderr, "larson: arguments must be positive (threads <= 256)\n");
    return 2;
  }
  Arena* arenas = calloc((size_t)threads, sizeof(Arena));
  for (int t = 0; t < threads; ++t) {
    arenas[t].blocks = calloc((size_t)g_slots, sizeof(unsigned char*));
    arenas[t].sizes = calloc((size_t)g_slots, sizeof(size_t));
    arenas[t].seed = 0x9e3779b97f4a7c15ull * (uint64_t)(t + 1);
  }
  pthread_t* tid = malloc(sizeof(pthread_t) * (size_t)threads);
  for (int r = 0; r < rounds; ++r) {
    for (int t = 0; t < threads; ++t) pthread_create(&tid[t], NULL, run, &arenas[(t + r) % threads]);
    for (int t = 0; t < threads; ++t) pthread_join(tid[t], NULL);
  }
  uint64_t sum = 0;
  int bad = 0;
  for (int t = 0; t < threads; ++t) {
    for (long k = 0; k < g_slots; ++k) free(arenas[t].blocks[k]);
    sum += arenas[t].sum;
    bad |= arenas[t].bad;
    free(arenas[t].blocks);
    free(arenas[t].sizes);
  }
  free(arenas);
  free(tid);
  printf("larson: %d threads x %d rounds x %ld ops, checksum %llu%s\n", threads, rounds, g_ops,
         (unsigned long long)sum, bad ? " CORRUPTED" : "");
  return bad ? 1 : 0;
}
