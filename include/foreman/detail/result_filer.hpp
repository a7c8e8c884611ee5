#pragma once
/// @file result_filer.hpp
/// The master's filing of tasks' outcomes into a task store (task_store.hpp): the results and
/// failures a worker's reply carries, each under its task; a reply's answer for a task filed
/// already (a lost worker's late answer, a task cancelled meanwhile) read and dropped; a result
/// that cannot be decoded on the master failed as foreman::serialization_error; the tasks of a
/// tasks message the worker found damaged failed; and the failures the master files itself (a
/// lost worker's last attempt, no worker left, a cancellation by options::fail_fast). Each filed
/// task is handed to OnDone once. No MPI call and no worker state here: master_loop.hpp reads the
/// replies and hands their items over; the bodies a reply announces go to the caller's sink and
/// come back through file_body() once they have arrived. Tested without mpirun
/// (tests/result_filer_test.cpp).

#include <foreman/detail/failure_types.hpp>
#include <foreman/detail/hot_path.hpp>
#include <foreman/detail/pool_state.hpp>
#include <foreman/detail/scheduler.hpp>
#include <foreman/detail/transport.hpp> // clock
#include <foreman/detail/wire.hpp>
#include <foreman/errors.hpp>
#include <foreman/outcome.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

namespace foreman {
namespace detail {

/// @tparam Store  dense_store or job_store (task_store.hpp)
/// @tparam OnDone called as on_done(ticket, Store::item, time) once per task, when its result or
///                failure is filed; time: when the reply that brought it arrived (for a failure
///                the master files itself: when it filed it)
template <class Result, class Store, class OnDone>
class result_filer {
public:
  /// @param pool   names tasks (pool_state::shown_task) and ranks (peer(), master_name()) in
  ///               failure messages
  /// @param sched  told each result's compute time (scheduler::observe(): automatic chunks)
  result_filer(Store& store, scheduler& sched, const pool_state& pool, OnDone& on_done)
      : store_(store), scheduler_(sched), pool_(pool), on_done_(on_done) {}

  /// Files the `count` items of a reply from `worker` that arrived at `arrival`, `in` at the
  /// first (wire.hpp: u64 name, u8 status, f64 seconds, then the Result, or a failure's type and
  /// message); `in` is left past the last. An item for a task the store no longer keeps or has
  /// filed already is read and dropped. A result that travels as a body is not filed here:
  /// `bodies.await(t, seconds, into, body)` is called for it (`into`: the store's element,
  /// sized for the body that `body` spans), and file_body() files it once the body has arrived;
  /// a body that must be dropped instead (a dropped item's, or one announced for a value that
  /// could not be decoded) is told as `bodies.drop(bytes)`.
  /// @throws error for a name that was never a ticket of this run (the store's lookup(): unknown_task())
  template <class Bodies>
  FOREMAN_DETAIL_INLINE void read_items(int worker, clock::time_point arrival, decoder& in, std::uint32_t count,
                                        Bodies& bodies) {
    for (std::uint32_t k = 0; k < count; ++k) {
      ticket t = 0;
      typename Store::item it{};
      const bool kept = store_.lookup(in.get<std::uint64_t>(), worker, t, it);
      const auto status = in.get<item_status>();
      const auto seconds = in.get<double>();
      const bool duplicate = !kept || store_.done(it);
      if (status != item_status::ok) {
        task_failure failure;
        failure.index = static_cast<std::size_t>(t);
        failure.worker = worker;
        in.get(failure.type);
        in.get(failure.message);
        if (duplicate) continue;
        file_failure(std::move(failure));
        file(t, it, worker, seconds, true, arrival);
        continue;
      }
      std::optional<Result> ignored;
      Result& into = duplicate ? ignored.emplace() : store_.result(it);
      std::size_t body_bytes = 0;
      std::string why;
      const body_span body = decode_result(in, into, body_bytes, t, why);
      if (body) {
        if (duplicate)
          bodies.drop(body.bytes);
        else
          bodies.await(t, seconds, into, body);
        continue;
      }
      if (body_bytes > 0) bodies.drop(body_bytes); // announced for a value that could not be decoded
      if (duplicate) continue;
      const bool failed = !why.empty();
      if (failed) {
        into = Result{}; // not what a failed load left behind
        file_failure(task_failure{static_cast<std::size_t>(t), worker, serialization_error_type, std::move(why)});
      }
      file(t, it, worker, seconds, failed, arrival);
    }
  }

  /// The body of task t's result, awaited through read_items()'s `bodies.await()`, has arrived:
  /// files the task, unless it was filed meanwhile (cancelled: job::cancel(),
  /// options::fail_fast), when the result is dropped. `value`: where the body was received when
  /// the store's element may move meanwhile (a job's, !Store::results_stay_put), moved into the
  /// element; otherwise the body went into the element itself and `value` is not read.
  void file_body(ticket t, int worker, double seconds, Result& value, clock::time_point now) {
    if (store_.done(t)) {
      if constexpr (Store::results_stay_put) store_.result(t) = Result{}; // a failure's result
      return;
    }
    const typename Store::item it = store_.item_of(t);
    if constexpr (!Store::results_stay_put) store_.result(it) = std::move(value);
    file(t, it, worker, seconds, false, now);
  }

  /// `worker` could not read the tasks message that held `tickets` (its framing was broken,
  /// wire.hpp): no item of it can be trusted, so each of those tasks not filed yet fails as
  /// foreman::serialization_error (a damaged message comes from a defect or corruption, never
  /// from a user's type), `why` (the worker's words) in its message.
  template <class Tickets>
  void file_damaged(int worker, clock::time_point arrival, const Tickets& tickets, const std::string& why) {
    for (ticket t : tickets) {
      if (store_.done(t)) continue;
      file_failure(task_failure{static_cast<std::size_t>(t), worker, serialization_error_type,
                                serialization_error("task " + std::to_string(pool_.shown_task(store_.name(t))) +
                                                    " could not be decoded on " + pool_.peer(worker) +
                                                    ": the tasks message holding it was damaged: " + why)
                                    .what()});
      auto& record = store_.record(t);
      record.worker = worker;
      record.seconds = 0.0;
      record.failed = true;
      finish(t, store_.item_of(t), arrival);
    }
  }

  /// Files a failure of task t that the master decides (a lost worker's last attempt, no worker
  /// left), charged to `worker` (0: none ran it).
  void fail(ticket t, int worker, std::string message, const char* type = worker_lost_type) {
    file_failure(task_failure{static_cast<std::size_t>(t), worker, type, std::move(message)});
    auto& record = store_.record(t);
    record.worker = worker;
    record.failed = true;
    finish(t, store_.item_of(t), clock::now());
  }

  /// options::fail_fast: task t, not filed when another failed, ends as foreman::cancelled,
  /// naming the task that failed first.
  void cancel(ticket t) {
    store_.fail(task_failure{static_cast<std::size_t>(t), 0, cancelled_type,
                             "not run: task " + std::to_string(first_failed_) +
                                 " failed first, and options::fail_fast stops the run at the first failure"});
    store_.record(t).failed = true;
    finish(t, store_.item_of(t), clock::now());
  }

  /// Whether a task failed (a cancellation aside): options::fail_fast then stops the run.
  bool any_failed() const { return failed_; }

private:
  // Files task t's outcome (its result or failure is in the store already, at `it`) from `worker`.
  FOREMAN_DETAIL_INLINE void file(ticket t, typename Store::item it, int worker, double seconds, bool failed,
                                  clock::time_point when) {
    auto& record = store_.record(it);
    record.worker = worker;
    record.seconds = seconds;
    scheduler_.observe(seconds);
    record.failed = failed;
    finish(t, it, when);
  }

  void file_failure(task_failure f) {
    if (!failed_) first_failed_ = store_.name(f.index);
    failed_ = true;
    store_.fail(std::move(f));
  }

  FOREMAN_DETAIL_INLINE void finish(ticket t, typename Store::item it, clock::time_point when) {
    store_.finish(it);
    on_done_(t, it, when);
  }

  // Reads a result item into `into`; on a serialization_error, `why` gets the task's failure
  // message and the returned span is empty (`in` is then at the next item, and body_bytes says
  // how many bytes of a body announced for it must be dropped).
  body_span decode_result(decoder& in, Result& into, std::size_t& body_bytes, ticket t, std::string& why) {
    try {
      return get_item(in, into, body_bytes);
    } catch (const serialization_error&) {
      why = serialization_failure("the result of task " + std::to_string(pool_.shown_task(store_.name(t))) +
                                  " could not be decoded on " + pool_.master_name());
      return body_span{nullptr, 0};
    }
  }

  Store& store_;
  scheduler& scheduler_;
  const pool_state& pool_;
  OnDone& on_done_;
  bool failed_ = false;            // some task failed (options::fail_fast)
  std::uint64_t first_failed_ = 0; // the name of the first task that failed
};

} // namespace detail
} // namespace foreman
