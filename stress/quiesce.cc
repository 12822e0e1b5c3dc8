// quiesce.cc: see quiesce.h. join() during a pause blocks until resume: a thread that joined
// after the checker counted the parked threads must not start operating under validate().
#include "quiesce.h"

#include <algorithm>
#include <cstdio>

namespace cgslab::stress {

Quiescer::Quiescer(unsigned max_threads) : slots_(max_threads) {}

unsigned Quiescer::join(const std::string& name) {
  std::unique_lock<std::mutex> g(mu_);
  for (unsigned i = 0; i < slots_.size(); ++i) {
    if (slots_[i].used.load()) continue;
    slots_[i].name = name;
    slots_[i].doing.store("starting");
    slots_[i].parked.store(false);
    slots_[i].used.store(true);
    uint64_t e = epoch_;
    while (pause_.load()) {
      slots_[i].parked.store(true);
      cv_.notify_all();
      cv_.wait(g, [&] { return epoch_ != e; });
      e = epoch_;
    }
    slots_[i].parked.store(false);
    return i;
  }
  std::fprintf(stderr, "stress: internal error: more than %zu threads joined the quiescer\n", slots_.size());
  std::abort();
}

void Quiescer::leave(unsigned id) {
  std::lock_guard<std::mutex> g(mu_);
  slots_[id].used.store(false);
  cv_.notify_all();
}

void Quiescer::park(unsigned id) {
  std::unique_lock<std::mutex> g(mu_);
  if (!pause_.load()) return;
  uint64_t e = epoch_;
  const char* was = slots_[id].doing.load();
  slots_[id].doing.store("parked");
  slots_[id].parked.store(true);
  cv_.notify_all();
  cv_.wait(g, [&] { return epoch_ != e; });
  slots_[id].parked.store(false);
  slots_[id].doing.store(was);
}

bool Quiescer::nap(unsigned id, double seconds, const std::atomic<bool>& stop) {
  auto end = std::chrono::steady_clock::now() +
             std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(seconds));
  while (!stop.load(std::memory_order_relaxed)) {
    point(id);
    auto now = std::chrono::steady_clock::now();
    if (now >= end) return true;
    std::chrono::steady_clock::duration step = std::min<std::chrono::steady_clock::duration>(
        end - now, std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::milliseconds(2)));
    std::this_thread::sleep_for(step);
  }
  return false;
}

bool Quiescer::pause(double bound_s, std::string* why) {
  std::unique_lock<std::mutex> g(mu_);
  pause_.store(true, std::memory_order_release);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(bound_s);
  auto all_parked = [&] {
    for (auto& s : slots_)
      if (s.used.load() && !s.parked.load()) return false;
    return true;
  };
  while (!all_parked()) {
    if (cv_.wait_until(g, deadline) == std::cv_status::timeout && !all_parked()) {
      std::string w;
      for (auto& s : slots_)
        if (s.used.load() && !s.parked.load()) w += " [" + s.name + ": " + s.doing.load() + "]";
      if (why)
        *why = "quiescent barrier: waited " + std::to_string(int(bound_s)) +
               " s for every thread to stop between operations; still running:" + w +
               " (a hang inside the allocator or a lost wake-up)";
      return false;
    }
  }
  return true;
}

void Quiescer::resume() {
  {
    std::lock_guard<std::mutex> g(mu_);
    pause_.store(false, std::memory_order_release);
    ++epoch_;
  }
  cv_.notify_all();
}

}  // namespace cgslab::stress
