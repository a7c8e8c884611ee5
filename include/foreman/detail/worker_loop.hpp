#pragma once
/// @file worker_loop.hpp
/// The worker's loop: receive a chunk of tasks from the master, run the user's function on
/// each, send back one reply per chunk, until the master ends the run or closes the pool.

#include <foreman/detail/idle.hpp>
#include <foreman/detail/invoke.hpp>
#include <foreman/detail/master_loop.hpp>
#include <foreman/detail/wire.hpp>
#include <foreman/errors.hpp>

#include <mpi.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace foreman {
namespace detail {

/// What ended a worker's loop.
enum class worker_exit { run_ended, pool_closed };

template <class Task, class Result, class Fn>
class worker_loop {
public:
  /// @param idle how to wait for the master's messages (options::wait)
  worker_loop(MPI_Comm comm, std::uint64_t pool, std::uint32_t run, Fn& fn, idle_backoff idle = idle_backoff())
      : comm_(comm), pool_(pool), run_(run), fn_(fn), idle_(idle) {}

  /// Serves the current run: returns when the master ends it (run_ended) or closes the pool.
  worker_exit run() { return loop(false); }

  /// Waits for the master's goodbye when the pool is destroyed on this worker. Freeing a
  /// communicator while a message to it is still on its way breaks the next communicator that
  /// reuses its context (Open MPI), so the worker leaves only once the goodbye is received.
  /// Tasks of runs the master starts meanwhile are answered with `fn`'s failure, so that the
  /// master reports them instead of waiting for them.
  void close() { loop(true); }

private:
  worker_exit loop(bool closing) {
    idle_backoff idle = idle_;
    for (;;) {
      int found = 0;
      MPI_Message message;
      MPI_Status status;
      // Any tag from the master: MPI's non-overtaking order keeps end_run behind the run's tasks.
      MPI_Improbe(0, MPI_ANY_TAG, comm_, &found, &message, &status);
      if (!found) {
        idle.pause();
        continue;
      }
      idle.reset();
      receive_matched(message, status, request_);
      decoder in(request_.data(), request_.size());
      const auto stamp = in.get<header>();
      if (stamp.pool != pool_) { // left over from a pool destroyed earlier
        if (static_cast<tag>(status.MPI_TAG) == tag::tasks) drain_bodies(in);
        continue;
      }
      switch (static_cast<tag>(status.MPI_TAG)) {
      case tag::tasks:
        if (closing)
          run_ = stamp.run; // answer whatever run the master is in
        else
          check_run(stamp.run);
        serve(in);
        break;
      case tag::end_run:
        if (closing) break;
        check_run(stamp.run);
        finish();
        return worker_exit::run_ended;
      case tag::shutdown:
        finish();
        return worker_exit::pool_closed;
      default:
        throw error("protocol error: unexpected message tag " + std::to_string(status.MPI_TAG) + " from the master");
      }
    }
  }

  // A reply being sent: its message and the results whose bodies are sent from themselves.
  struct reply_slot : send_slot {
    std::vector<Result> held;
  };

  void check_run(std::uint32_t master_run) const {
    if (master_run != run_)
      throw error("the master is in its run " + std::to_string(master_run) + " but this worker in its run " +
                  std::to_string(run_) + ": every rank must call run() the same number of times");
  }

  // Receives and drops the bodies of a tasks message that is not served.
  void drain_bodies(decoder& in) {
    in.get<std::uint32_t>(); // count
    const auto bodies = in.get<std::uint32_t>();
    for (std::uint32_t k = 0; k < bodies; ++k) {
      MPI_Message message;
      MPI_Status status;
      MPI_Mprobe(0, static_cast<int>(tag::task_body), comm_, &message, &status);
      receive_matched(message, status, request_);
    }
  }

  void serve(decoder& in) {
    const auto count = in.get<std::uint32_t>();
    in.get<std::uint32_t>(); // bodies: each is received where its item says

    // Two reply buffers: one may still be in transit while the next is filled.
    reply_slot& slot = slots_[next_slot_];
    next_slot_ = 1 - next_slot_;
    slot.wait();
    slot.held.clear();
    slot.bytes.clear();
    encoder out(slot.bytes);
    out.put(header{pool_, run_});
    out.put(count);
    const std::size_t bodies_at = out.size();
    out.put(std::uint32_t{0}); // bodies: patched below
    bodies_.clear();
    auto clock = std::chrono::steady_clock::now();
    for (std::uint32_t k = 0; k < count; ++k) {
      const auto index = in.get<std::uint64_t>();
      if (const body_span body = get_item(in, task_)) {
        // The master sent it right after the message: received straight into the task.
        MPI_Recv(body.data, static_cast<int>(body.bytes), MPI_BYTE, 0, static_cast<int>(tag::task_body), comm_,
                 MPI_STATUS_IGNORE);
        clock = std::chrono::steady_clock::now(); // the task starts once its bytes are here
      }
      clock = invoke_task<Result>(fn_, std::as_const(task_), result_, clock);
      out.put(index);
      if (result_.value) {
        out.put(item_status::ok);
        out.put(result_.seconds);
        if (travels_as_body(*result_.value)) {
          // A result sent as a body must outlive this loop: it moves to the slot.
          slot.held.push_back(std::move(*result_.value));
          result_.value.reset();
          bodies_.push_back(put_item(out, slot.held.back()));
        } else {
          put_item(out, *result_.value);
        }
      } else {
        out.put(item_status::failed);
        out.put(result_.seconds);
        out.put(result_.error_type);
        out.put(result_.error_message);
      }
    }
    out.patch(bodies_at, static_cast<std::uint32_t>(bodies_.size()));
    slot.request = post_send(slot.bytes, 0, tag::results, comm_);
    for (const body_span& body : bodies_) post_body(body, 0, tag::result_body, comm_, slot);
  }

  void finish() {
    for (auto& slot : slots_) slot.wait();
  }

  MPI_Comm comm_;
  std::uint64_t pool_;
  std::uint32_t run_;
  Fn& fn_;
  idle_backoff idle_;
  std::vector<char> request_;
  std::array<reply_slot, 2> slots_;
  std::vector<body_span> bodies_; // of the reply being built
  std::size_t next_slot_ = 0;
  Task task_{};
  invocation<Result> result_;
};

} // namespace detail
} // namespace foreman
