#pragma once
/// @file outcome.hpp
/// What a run reports besides its results: per-task outcomes and per-task records.

#include <foreman/errors.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

namespace foreman {

/// The outcome of one task: either its Result or the failure it raised.
/// Returned by master_worker::run_outcomes(), which never throws task_error.
template <class Result>
class outcome {
public:
  outcome() = default;
  explicit outcome(Result value) : value_(std::move(value)) {}
  explicit outcome(task_failure failure) : failure_(std::move(failure)) {}

  /// True when the task returned a value.
  bool ok() const noexcept { return !failure_.has_value(); }
  explicit operator bool() const noexcept { return ok(); }

  /// The task's value. @throws task_error when the task failed.
  const Result& value() const& {
    if (failure_) throw task_error({*failure_});
    return value_;
  }
  Result&& value() && {
    if (failure_) throw task_error({*failure_});
    return std::move(value_);
  }

  /// The failure. Precondition: !ok().
  const task_failure& failure() const { return *failure_; }

private:
  Result value_{};
  std::optional<task_failure> failure_;
};

/// Where and how long one task ran.
struct task_record {
  int worker = -1;      ///< rank that ran the task (0 when the master ran it itself), -1 if never run
  double seconds = 0.0; ///< time spent in the user's function on that rank
  bool failed = false;  ///< the function threw, or every worker that tried it was lost
  unsigned attempts = 0; ///< how many times the task was sent (more than 1 after a lost worker)
  bool replayed = false; ///< its result was read back from the checkpoint journal, not computed
  /// When the task ran, in seconds since run() started, on the master's clock: `finished` is
  /// when its result reached the master (or, for a task answered together with later ones in
  /// one message, when the worker began the next one), and `started` is `finished - seconds`.
  /// Set on the master after the run; what a timeline draws.
  double started = 0.0;
  double finished = 0.0; ///< see `started`
};

/// Facts about the last run, available on the master after run() returns or throws.
struct run_info {
  std::vector<task_record> tasks; ///< one record per task, in task order
  double wall_seconds = 0.0;      ///< duration of run() on the master
  std::size_t failures = 0;       ///< number of tasks that failed
  std::size_t retries = 0;        ///< task re-dispatches after a lost worker
  std::size_t messages = 0;       ///< messages of tasks the master sent (fewer than tasks when chunked)
  std::vector<int> lost_workers;  ///< ranks declared lost during this run, in the order noticed
  std::size_t replayed = 0;       ///< results read back from the checkpoint journal (options::checkpoint)
  std::uint64_t checkpoint_dropped_bytes = 0; ///< torn or damaged journal tail cut off before resuming
  int workers = 0;                ///< worker ranks in the pool (0: the master ran every task itself)
};

} // namespace foreman
