#pragma once
/// @file send_progress.hpp
/// A worker's thread that keeps its last reply's sends moving while the user's function runs
/// (options::send_thread). MPI need not move a message outside MPI calls: over TCP a large
/// result's transfer otherwise waits for the worker's next MPI call, after the next task.
///
/// Who calls MPI when: the worker's own thread hands the thread a reply (drive()) just before the
/// user's function runs, and parks it (park()) as soon as the function returns, before the
/// worker's loop calls MPI again. In between, only the thread calls MPI (MPI_Test and MPI_Testall
/// on that reply's requests, with pauses between tests), so MPI_THREAD_SERIALIZED suffices for
/// foreman's own calls; sends_in_background() says where the thread may run.

#include <foreman/detail/env_override.hpp>
#include <foreman/detail/mpi_check.hpp>
#include <foreman/detail/transport.hpp>
#include <foreman/options.hpp>

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <utility>

namespace foreman {
namespace detail {

/// The send-thread policy in force: options::send_thread, overridden by
/// FOREMAN_SEND_THREAD=automatic|on|off (unknown values are ignored).
inline send_thread_policy effective_send_thread_policy(send_thread_policy option) {
  return env_override("FOREMAN_SEND_THREAD", option,
                      {{"on", send_thread_policy::on},
                       {"off", send_thread_policy::off},
                       {"automatic", send_thread_policy::automatic},
                       {"auto", send_thread_policy::automatic}});
}

/// Whether a worker may drive its sends from a thread of its own under `policy`, MPI giving the
/// thread level `provided` (MPI_Query_thread): `on` needs MPI_THREAD_SERIALIZED (foreman's calls
/// never overlap: see the file's comment), `automatic` MPI_THREAD_MULTIPLE (the user's function
/// may then call MPI while the thread does).
inline bool sends_in_background(send_thread_policy policy, int provided) {
  switch (policy) {
  case send_thread_policy::on:
    return provided >= MPI_THREAD_SERIALIZED;
  case send_thread_policy::automatic:
    return provided >= MPI_THREAD_MULTIPLE;
  case send_thread_policy::off:
    break;
  }
  return false;
}

/// The thread support MPI gives this process. @throws mpi_error
inline int mpi_thread_level() {
  int provided = MPI_THREAD_SINGLE;
  check_mpi(MPI_Query_thread(&provided), "MPI_Query_thread");
  return provided;
}

/// A thread that tests one send_slot's requests until they complete or until it is parked,
/// pausing between two tests (from 25 µs, doubling to 400 µs): it takes no core from the user's
/// function on an oversubscribed host, yet answers a transport's handshake (a rendezvous, a TCP
/// buffer drained) within a fraction of a millisecond. Started at the first drive(), it waits on
/// a condition variable between two slots, and is joined by the destructor.
///
/// Thread safety: drive() and park() are called by one thread, the worker's, in turns: drive(),
/// then park() before that thread touches the slot or calls MPI again. What the thread did to
/// the slot (completed requests) is visible to the worker once park() returns.
class send_progress {
public:
  send_progress() = default;
  send_progress(const send_progress&) = delete;
  send_progress& operator=(const send_progress&) = delete;
  /// Stops and joins the thread (a slot still driven is let go: its sends stay posted).
  ~send_progress() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      state_ = state::stopping;
    }
    wake_.notify_one();
    if (thread_.joinable()) thread_.join();
  }

  /// Hands `slot` to the thread, which tests its sends until they complete or park() is called.
  /// The worker's thread makes no MPI call and leaves `slot` alone until park() returns.
  void drive(send_slot& slot) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      slot_ = &slot;
      state_ = state::driving;
    }
    if (!thread_.joinable())
      thread_ = std::thread([this] { serve(); });
    else
      wake_.notify_one();
  }

  /// Returns once the thread makes no MPI call and holds no slot (at once if its slot completed).
  /// @throws mpi_error when one of its tests failed (the slot's requests are then as the failing
  /// call left them)
  void park() {
    std::unique_lock<std::mutex> lock(mutex_);
    if (state_ == state::driving) {
      state_ = state::parking;
      wake_.notify_one();
    }
    parked_.wait(lock, [&] { return state_ == state::idle || state_ == state::stopping; });
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
  }

  /// Calls park() when it goes out of scope; end() parks at once and reports the thread's
  /// failure. The scope of a user's function during which the thread drives a slot: an exception
  /// that leaves it still parks the thread before the slot is touched again.
  class scope {
  public:
    /// @param progress the thread driving a slot, or null (nothing to park)
    explicit scope(send_progress* progress) : progress_(progress) {}
    scope(const scope&) = delete;
    scope& operator=(const scope&) = delete;
    ~scope() {
      if (progress_ == nullptr) return;
      try {
        progress_->park();
      } catch (...) { // an exception is on its way already; the slot's next test meets this failure again
      }
    }
    /// @throws mpi_error as park()
    void end() {
      if (progress_ != nullptr) std::exchange(progress_, nullptr)->park();
    }

  private:
    send_progress* progress_;
  };

private:
  enum class state { idle, driving, parking, stopping };
  static constexpr std::chrono::microseconds first_pause{25};
  static constexpr std::chrono::microseconds longest_pause{400};

  void serve() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      // Not idle: driving, or already parked (a function that returned before the thread woke),
      // or stopping.
      wake_.wait(lock, [&] { return state_ != state::idle; });
      if (state_ == state::stopping) return;
      std::chrono::microseconds pause = first_pause;
      while (state_ == state::driving) {
        send_slot& slot = *slot_;
        lock.unlock();
        bool done = false;
        std::exception_ptr failed;
        try {
          done = slot.test();
        } catch (...) {
          failed = std::current_exception();
        }
        lock.lock();
        if (failed) error_ = failed;
        if (done || failed) break;
        wake_.wait_for(lock, pause, [&] { return state_ != state::driving; });
        pause = std::min(pause * 2, longest_pause);
      }
      slot_ = nullptr;
      if (state_ == state::stopping) return;
      state_ = state::idle;
      parked_.notify_one();
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;   // the thread's: a slot to drive, park, or stop
  std::condition_variable parked_; // the worker's: the thread is idle again
  state state_ = state::idle;
  send_slot* slot_ = nullptr;
  std::exception_ptr error_; // the failure of the thread's last test, for park()
  std::thread thread_;       // declared last: started once the members it uses exist
};

} // namespace detail
} // namespace foreman
