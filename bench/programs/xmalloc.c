/* xmalloc.c: the xmalloc-test producer/consumer workload, deterministic. `xmalloc PAIRS BATCHES
 * BATCH`: PAIRS producer threads each allocate BATCHES batches of BATCH blocks (sizes 16..4096,
 * stamped) and hand each batch through a bounded queue to a consumer thread, which checks the
 * stamps and frees them: every block is freed by another thread than the one that allocated it.
 * Prints a checksum that depends only on the arguments; exits 1 if a stamp was damaged. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

enum { kQueue = 16 };

typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  void** q[kQueue];
  int head, tail, count, done;
  long batches, batch;
  uint64_t seed, sum;
  int bad;
} Pair;

static void* producer(void* arg) {
  Pair* p = arg;
  uint64_t s = p->seed;
  for (long b = 0; b < p->batches; ++b) {
    void** batch = malloc(sizeof(void*) * (size_t)p->batch);
    for (long i = 0; i < p->batch; ++i) {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      size_t n = 16 + (size_t)((s >> 33) % 4081);
      unsigned char* x = malloc(n);
      x[0] = (unsigned char)(n & 0xff);
      x[1] = (unsigned char)(n >> 8);
      x[n - 1] = 0xa5;
      batch[i] = x;
    }
    pthread_mutex_lock(&p->mu);
    while (p->count == kQueue) pthread_cond_wait(&p->cv, &p->mu);
    p->q[p->tail] = batch;
    p->tail = (p->tail + 1) % kQueue;
    p->count++;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
  }
  pthread_mutex_lock(&p->mu);
  p->done = 1;
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

static void* consumer(void* arg) {
  Pair* p = arg;
  for (;;) {
    pthread_mutex_lock(&p->mu);
    while (p->count == 0 && !p->done) pthread_cond_wait(&p->cv, &p->mu);
    if (p->count == 0) {
      pthread_mutex_unlock(&p->mu);
      return NULL;
    }
    void** batch = p->q[p->head];
    p->head = (p->head + 1) % kQueue;
    p->count--;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (long i = 0; i < p->batch; ++i) {
      unsigned char* x = batch[i];
      size_t n = (size_t)x[0] | (size_t)x[1] << 8;
      if (n < 16 || x[n - 1] != 0xa5) p->bad = 1;
      p->sum += n;
      free(x);
    }
    free(batch);
  }
}

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: xmalloc PAIRS BATCHES BATCH\n");
    return 2;
  }
  int pairs = atoi(argv[1]);
  long batches = atol(argv[2]), batch = atol(argv[3]);
  if (pairs < 1 || pairs > 64 || batches < 1 || batch < 1) {
    fprintf(stderr, "xmalloc: arguments must be positive (pairs <= 64)\n");
    return 2;
  }
  Pair* ps = calloc((size_t)pairs, sizeof(Pair));
  pthread_t* t = malloc(sizeof(pthread_t) * 2 * (size_t)pairs);
  for (int i = 0; i < pairs; ++i) {
    pthread_mutex_init(&ps[i].mu, NULL);
    pthread_cond_init(&ps[i].cv, NULL);
    ps[i].batches = batches;
    ps[i].batch = batch;
    ps[i].seed = (uint64_t)i * 7919 + 1;
    pthread_create(&t[2 * i], NULL, producer, &ps[i]);
    pthread_create(&t[2 * i + 1], NULL, consumer, &ps[i]);
  }
  uint64_t sum = 0;
  int bad = 0;
  for (int i = 0; i < 2 * pairs; ++i) pthread_join(t[i], NULL);
  for (int i = 0; i < pairs; ++i) {
    sum += ps[i].sum;
    bad |= ps[i].bad;
  }
  free(ps);
  free(t);
  printf("xmalloc: %d pairs x %ld batches x %ld blocks, checksum %llu%s\n", pairs, batches, batch,
         (unsigned long long)sum, bad ? " CORRUPTED" : "");
  return bad ? 1 : 0;
}
