// cgslab-dict: writes the libFuzzer dictionary of a dialect, generated from ops.def.
//   cgslab-dict lifecycle|api OUT
#include <cstdio>
#include <cstring>
#include <fstream>

#include "program.h"

int main(int argc, char** argv) {
  using namespace cgslab::harness;
  if (argc != 3 || (std::strcmp(argv[1], "lifecycle") != 0 && std::strcmp(argv[1], "api") != 0)) {
    std::fprintf(stderr, "usage: cgslab-dict lifecycle|api OUT\n");
    return 2;
  }
  Dialect d = std::strcmp(argv[1], "api") == 0 ? Dialect::kApi : Dialect::kLifecycle;
  std::ofstream o(argv[2]);
  o << dictionary(d);
  if (!o) {
    std::fprintf(stderr, "cgslab-dict: cannot write %s\n", argv[2]);
    return 1;
  }
  return 0;
}
