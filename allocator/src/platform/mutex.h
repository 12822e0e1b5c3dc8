// mutex.h: the lock types of the allocator. Mutex (sleeping lock, kernel: mutex/spinlock) and
// RwMutex (kernel: rw_semaphore), annotated for Clang's thread-safety analysis. Every acquisition
// is a schedule point and every wait is bounded: a lock not obtained within wait_bound_seconds()
// is reported as a hang naming the lock, instead of hanging the caller. The bounded wait is a
// try_lock loop with backoff, not try_lock_for: glibc implements the timed locks with
// pthread_mutex_clocklock, which ThreadSanitizer (clang 14) does not intercept.
//
// Backends: native locks are std::mutex / std::shared_mutex; sim locks are plain flags (all tasks
// are fibers on one OS thread, so try_lock needs no atomics) and a failed try_lock waits through
// wait_spin(), i.e. the scheduler runs someone else and reports a deadlock if nobody can run.
#pragma once

#include <chrono>
#include <mutex>
#include <shared_mutex>

#include "compiler.h"
#include "sched.h"

namespace cgslab::platform {

#if defined(CGSLAB_PLATFORM_SIM)
class RawMutex {
 public:
  bool try_lock() { return held_ ? false : (held_ = true); }
  void unlock() { held_ = false; }

 private:
  bool held_ = false;
};
class RawSharedMutex {
 public:
  bool try_lock() { return (writer_ || readers_) ? false : (writer_ = true); }
  void unlock() { writer_ = false; }
  bool try_lock_shared() { return writer_ ? false : (++readers_, true); }
  void unlock_shared() { --readers_; }

 private:
  bool writer_ = false;
  unsigned readers_ = 0;
};
#else
using RawMutex = std::mutex;
using RawSharedMutex = std::shared_mutex;
#endif

class CAPABILITY("mutex") Mutex {
 public:
  explicit Mutex(const char* name) : name_(name) {}
  void lock() ACQUIRE() {
    CGSLAB_SCHED(kLock);
    if (CGSLAB_LIKELY(m_.try_lock())) return;
    lock_slow();
  }
  void unlock() RELEASE() {
    m_.unlock();
    CGSLAB_SIM_NOTIFY(this);
    CGSLAB_SCHED(kUnlock);
  }
  bool try_lock() TRY_ACQUIRE(true) { return m_.try_lock(); }
  const char* name() const { return name_; }

 private:
  CGSLAB_SLOW_PATH void lock_slow() {
    for (uint64_t spins = 0; !m_.try_lock(); ++spins) wait_spin(spins, name_, this);
  }
  RawMutex m_;
  const char* name_;
};

class CAPABILITY("rwmutex") RwMutex {
 public:
  explicit RwMutex(const char* name) : name_(name) {}
  void lock() ACQUIRE() {
    CGSLAB_SCHED(kLock);
    for (uint64_t spins = 0; !m_.try_lock(); ++spins) wait_spin(spins, name_, this);
  }
  void unlock() RELEASE() {
    m_.unlock();
    CGSLAB_SIM_NOTIFY(this);
    CGSLAB_SCHED(kUnlock);
  }
  void lock_shared() ACQUIRE_SHARED() {
    CGSLAB_SCHED(kLock);
    for (uint64_t spins = 0; !m_.try_lock_shared(); ++spins) wait_spin(spins, name_, this);
  }
  void unlock_shared() RELEASE_SHARED() {
    m_.unlock_shared();
    CGSLAB_SIM_NOTIFY(this);
    CGSLAB_SCHED(kUnlock);
  }

 private:
  RawSharedMutex m_;
  const char* name_;
};

class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& m) ACQUIRE(m) : m_(m) { m_.lock(); }
  ~MutexLock() RELEASE() { m_.unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex& m_;
};

class SCOPED_CAPABILITY WriteLock {
 public:
  explicit WriteLock(RwMutex& m) ACQUIRE(m) : m_(m) { m_.lock(); }
  ~WriteLock() RELEASE() { m_.unlock(); }
  WriteLock(const WriteLock&) = delete;
  WriteLock& operator=(const WriteLock&) = delete;

 private:
  RwMutex& m_;
};

class SCOPED_CAPABILITY ReadLock {
 public:
  explicit ReadLock(RwMutex& m) ACQUIRE_SHARED(m) : m_(m) { m_.lock_shared(); }
  ~ReadLock() RELEASE() { m_.unlock_shared(); }
  ReadLock(const ReadLock&) = delete;
  ReadLock& operator=(const ReadLock&) = delete;

 private:
  RwMutex& m_;
};

}  // namespace cgslab::platform
