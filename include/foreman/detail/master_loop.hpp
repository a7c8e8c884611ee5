#pragma once
/// @file master_loop.hpp
/// The master's scheduling loop: keeps every worker supplied with up to `tasks_in_flight`
/// chunks, files each reply into its task's slot, and never blocks on any single worker
/// (all sends and receives are non-blocking; idle time backs off to sleeping).

#include <foreman/detail/idle.hpp>
#include <foreman/detail/wire.hpp>
#include <foreman/errors.hpp>
#include <foreman/options.hpp>
#include <foreman/outcome.hpp>

#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <string>
#include <vector>

namespace foreman {
namespace detail {

/// Sends a byte buffer without blocking. @throws error when it exceeds MPI's int count.
inline MPI_Request post_send(const std::vector<char>& bytes, int dest, tag t, MPI_Comm comm) {
  if (bytes.size() > static_cast<std::size_t>(INT_MAX))
    throw error("a message of " + std::to_string(bytes.size()) +
                " bytes exceeds MPI's 2 GiB limit per message; split the task or result");
  MPI_Request request = MPI_REQUEST_NULL;
  MPI_Isend(bytes.data(), static_cast<int>(bytes.size()), MPI_BYTE, dest, static_cast<int>(t), comm, &request);
  return request;
}

/// Receives the message a matched probe found, into `into` (resized to fit).
inline void receive_matched(MPI_Message& message, const MPI_Status& status, std::vector<char>& into) {
  int count = 0;
  MPI_Get_count(&status, MPI_BYTE, &count);
  into.resize(static_cast<std::size_t>(count));
  MPI_Mrecv(into.data(), count, MPI_BYTE, &message, MPI_STATUS_IGNORE);
}

/// Tells every worker that run `run` is over (or, with tag::shutdown, that the pool is closed).
inline void broadcast_control(MPI_Comm comm, int size, tag t, std::uint32_t run) {
  std::vector<char> bytes;
  encoder(bytes).put(run);
  std::vector<MPI_Request> requests;
  for (int w = 1; w < size; ++w) requests.push_back(post_send(bytes, w, t, comm));
  MPI_Waitall(static_cast<int>(requests.size()), requests.data(), MPI_STATUSES_IGNORE);
}

template <class Task, class Result, class OnDone>
class master_loop {
public:
  /// @param on_done called with a task's index once its result or failure is filed
  master_loop(MPI_Comm comm, std::uint32_t run, const std::vector<Task>& tasks, const options& opt,
              std::vector<Result>& results, run_info& info, std::vector<task_failure>& failures, OnDone& on_done)
      : comm_(comm), run_(run), tasks_(tasks), results_(results), info_(info), failures_(failures),
        on_done_(on_done), schedule_(opt.schedule), chunk_(std::max<std::size_t>(1, opt.chunk_size)),
        in_flight_limit_(std::max<std::size_t>(1, opt.tasks_in_flight)) {
    MPI_Comm_size(comm_, &size_);
    workers_.resize(static_cast<std::size_t>(size_));
    for (auto& w : workers_) w.slots.resize(in_flight_limit_);
    done_.assign(tasks_.size(), 0);
  }

  /// Runs until every task has a result or a failure, then ends the run on every worker.
  void run() {
    idle_backoff idle;
    for (int w = 1; w < size_; ++w) refill(w);
    while (finished_ < tasks_.size()) {
      if (poll_results())
        idle.reset();
      else
        idle.pause();
    }
    for (auto& w : workers_)
      for (auto& slot : w.slots) MPI_Wait(&slot.request, MPI_STATUS_IGNORE);
    broadcast_control(comm_, size_, tag::end_run, run_);
  }

private:
  struct send_slot {
    std::vector<char> bytes;
    MPI_Request request = MPI_REQUEST_NULL;
  };
  struct worker_state {
    std::vector<send_slot> slots;
    std::size_t in_flight = 0;  // chunks sent and not yet answered
    std::size_t next_round = 0; // round robin: how many of this worker's tasks were sent
  };

  std::size_t worker_count() const { return static_cast<std::size_t>(size_ - 1); }

  // Next task for worker w, or tasks_.size() when it has none left.
  std::size_t next_task(int w) const {
    if (schedule_ == schedule::dynamic) return next_;
    return static_cast<std::size_t>(w - 1) + workers_[static_cast<std::size_t>(w)].next_round * worker_count();
  }
  void take_task(int w) {
    if (schedule_ == schedule::dynamic)
      ++next_;
    else
      ++workers_[static_cast<std::size_t>(w)].next_round;
  }

  send_slot* free_slot(worker_state& w) {
    for (auto& slot : w.slots) {
      if (slot.request == MPI_REQUEST_NULL) return &slot;
      int complete = 0;
      MPI_Test(&slot.request, &complete, MPI_STATUS_IGNORE);
      if (complete) return &slot;
    }
    return nullptr;
  }

  // Sends worker w chunks until it holds in_flight_limit_ of them or has no work left.
  void refill(int w) {
    worker_state& state = workers_[static_cast<std::size_t>(w)];
    while (state.in_flight < in_flight_limit_ && next_task(w) < tasks_.size()) {
      send_slot* slot = free_slot(state);
      if (slot == nullptr) return;
      chunk_indices_.clear();
      for (std::size_t i = next_task(w); i < tasks_.size() && chunk_indices_.size() < chunk_; i = next_task(w)) {
        chunk_indices_.push_back(i);
        take_task(w);
      }
      slot->bytes.clear();
      encoder out(slot->bytes);
      out.put(run_);
      out.put(static_cast<std::uint32_t>(chunk_indices_.size()));
      for (std::size_t i : chunk_indices_) {
        out.put(static_cast<std::uint64_t>(i));
        out.put(tasks_[i]);
      }
      slot->request = post_send(slot->bytes, w, tag::tasks, comm_);
      ++state.in_flight;
    }
  }

  // Files every reply that has arrived; returns whether there was any.
  bool poll_results() {
    bool any = false;
    for (;;) {
      int found = 0;
      MPI_Message message;
      MPI_Status status;
      MPI_Improbe(MPI_ANY_SOURCE, static_cast<int>(tag::results), comm_, &found, &message, &status);
      if (!found) return any;
      any = true;
      receive_matched(message, status, reply_);
      file_reply(status.MPI_SOURCE);
      refill(status.MPI_SOURCE);
    }
  }

  void file_reply(int worker) {
    decoder in(reply_.data(), reply_.size());
    if (in.get<std::uint32_t>() != run_) return; // a late reply to an earlier run
    worker_state& state = workers_[static_cast<std::size_t>(worker)];
    if (state.in_flight > 0) --state.in_flight;
    const auto count = in.get<std::uint32_t>();
    for (std::uint32_t k = 0; k < count; ++k) {
      const auto index = in.get<std::uint64_t>();
      const auto status = in.get<item_status>();
      const auto seconds = in.get<double>();
      if (index >= tasks_.size())
        throw error("protocol error: worker " + std::to_string(worker) + " answered task " + std::to_string(index) +
                    " of a run with " + std::to_string(tasks_.size()) + " tasks");
      const bool duplicate = done_[index] != 0;
      if (status == item_status::ok) {
        if (duplicate) {
          Result ignored{};
          in.get(ignored);
          continue;
        }
        in.get(results_[index]);
      } else {
        task_failure failure;
        failure.index = index;
        failure.worker = worker;
        in.get(failure.type);
        in.get(failure.message);
        if (duplicate) continue;
        failures_.push_back(std::move(failure));
      }
      done_[index] = 1;
      ++finished_;
      info_.tasks[index] = task_record{worker, seconds, status != item_status::ok};
      on_done_(index);
    }
  }

  MPI_Comm comm_;
  int size_ = 0;
  std::uint32_t run_;
  const std::vector<Task>& tasks_;
  std::vector<Result>& results_;
  run_info& info_;
  std::vector<task_failure>& failures_;
  OnDone& on_done_;
  foreman::schedule schedule_;
  std::size_t chunk_;
  std::size_t in_flight_limit_;

  std::vector<worker_state> workers_;
  std::vector<char> done_;  // per task: filed already (guards against a reply counted twice)
  std::size_t next_ = 0;    // dynamic schedule: first task not yet sent
  std::size_t finished_ = 0;
  std::vector<std::size_t> chunk_indices_;
  std::vector<char> reply_; // reused receive buffer
};

} // namespace detail
} // namespace foreman
