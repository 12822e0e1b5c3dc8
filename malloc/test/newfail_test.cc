// newfail_test.cc: under a cgroup limit, operator new throws std::bad_alloc (and the nothrow
// form returns nullptr) instead of exceeding the limit. Run under LD_PRELOAD with
// CGSLAB_CGROUP=/job CGSLAB_MAX=4M. Exits 1 on failure.
#include <cstdio>
#include <new>
#include <vector>

int main() {
  std::vector<char*> v;
  v.reserve(1 << 14);  // 128 KiB; more may throw below, inside the try
  size_t got = 0;
  bool threw = false;
  try {
    for (int i = 0; i < (1 << 20) && !threw; ++i) {
      v.push_back(new char[1000]);
      got += 1000;
    }
  } catch (const std::bad_alloc&) {
    threw = true;
  }
  char* p = new (std::nothrow) char[1000];
  bool nothrow_null = p == nullptr;
  for (char* x : v) delete[] x;
  delete[] p;
  std::printf("allocated %zu bytes before bad_alloc\n", got);
  if (!threw || !nothrow_null || got > (4u << 20)) {
    std::fprintf(stderr, "FAIL: threw=%d nothrow_null=%d got=%zu\n", threw, nothrow_null, got);
    return 1;
  }
  char* again = new char[100000];  // room again after the frees
  delete[] again;
  std::puts("newfail_test: ok");
  return 0;
}
