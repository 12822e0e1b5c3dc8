// checks.h: the stress binaries use the harness's oracles (harness/oracles.h): ErrorChecker with
// thread expectations for the allocator's errors, check_quiescent (validate + charge conservation)
// at quiescent points, settle + nothing_left at the end.
#pragma once

#include "oracles.h"
#include "run.h"

namespace cgslab::stress {
using harness::Census;
using harness::CgNode;
using harness::check_quiescent;
using harness::default_cpu_slots;
}  // namespace cgslab::stress
