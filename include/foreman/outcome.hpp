#pragma once
/// @file outcome.hpp
/// What a run reports besides its results: per-task outcomes and per-task records.

#include <foreman/detail/hot_path.hpp>
#include <foreman/errors.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
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
  explicit outcome(task_failure failure) : failure_(std::make_unique<task_failure>(std::move(failure))) {}
  outcome(const outcome& other)
      : value_(other.value_), failure_(other.failure_ ? std::make_unique<task_failure>(*other.failure_) : nullptr) {}
  outcome(outcome&&) noexcept(std::is_nothrow_move_constructible_v<Result>) = default;
  outcome& operator=(const outcome& other) {
    if (this != &other) *this = outcome(other);
    return *this;
  }
  outcome& operator=(outcome&&) noexcept(std::is_nothrow_move_assignable_v<Result>) = default;
  ~outcome() = default;

  /// True when the task returned a value.
  bool ok() const noexcept { return failure_ == nullptr; }
  explicit operator bool() const noexcept { return ok(); }

  /// The task's value. @throws task_error when the task failed.
  const Result& value() const& {
    if (failure_) raise();
    return value_;
  }
  /// On a temporary (e.g. `job.next().result.value()`), the value is moved out and returned by
  /// value, so that a reference bound to the call's result never dangles.
  Result value() && {
    if (failure_) raise();
    return std::move(value_);
  }

  /// The failure. Precondition: !ok().
  const task_failure& failure() const { return *failure_; }

private:
  // Out of line, so that value() is small enough to inline where a result is taken per task.
  [[noreturn]] FOREMAN_DETAIL_COLD void raise() const { throw task_error({*failure_}); }

  Result value_{};
  // Apart from the value: a failure is rare, and an outcome (in run_outcomes()'s vector, in a
  // job's completion) stays the size of its Result plus a pointer.
  std::unique_ptr<task_failure> failure_;
};

/// Where and how long one task ran.
struct task_record {
  int worker = -1;       ///< rank that ran the task (0 when the master ran it itself), -1 if never run
  double seconds = 0.0;  ///< time spent in the user's function on that rank
  bool failed = false;   ///< the function threw, or every worker that tried it was lost
  unsigned attempts = 0; ///< how many times the task was sent (more than 1 after a lost worker)
  bool replayed = false; ///< its result was read back from the checkpoint journal, not computed
  /// When the task ran, in seconds since run() started, on the master's clock: `finished` is
  /// when its result reached the master (or, for a task answered together with later ones in
  /// one message, when the worker began the next one), and `started` is `finished - seconds`.
  /// Set on the master after the run; what a timeline draws.
  double started = 0.0;
  double finished = 0.0; ///< see `started`
};

/// Why the master declared a worker lost (worker_loss::reason).
enum class loss_reason {
  /// Its process ended (SIGKILL, abort(), exit(), out of memory). Seen without any timeout when
  /// the worker runs on the master's host and in its pid namespace (see docs/reliability.md).
  process_exited,
  /// Nothing was heard from it for longer than options::task_timeout while it held tasks: hung,
  /// far too slow, or dead where its process cannot be watched (another host).
  silent,
  /// An MPI call on its connection failed (foreman::mpi_error naming it as the peer): an MPI that
  /// reports a dead peer (e.g. with ULFM, MPI_ERR_PROC_FAILED) or a broken link.
  mpi_error,
  /// It could not set up for the run or job (with_initializer(), with_shared()): its initializer
  /// threw, or the shared value could not be received (worker_loss::message says which). Out of
  /// this run or job only: it stays in the pool, and sets up again in the next.
  initializer_failed,
};

/// One worker declared lost during a run (run_info::losses): what foreman noticed, when and why.
struct worker_loss {
  int worker = -1;                          ///< its rank
  loss_reason reason = loss_reason::silent; ///< what gave it away
  double noticed = 0.0;                     ///< when it was declared lost, in seconds since run() started
  /// How long before `noticed` the master last had a sign of life from it: a reply, a progress
  /// note sent between the tasks of a chunk, or (if it had been idle) the chunk it was sent. For a
  /// process that exited this bounds the detection delay; for a silent worker it exceeds
  /// task_timeout.
  double silent_for = 0.0;
  std::size_t tasks_held = 0; ///< unanswered tasks it held, each sent again or ended as a failure
  /// For loss_reason::initializer_failed, what went wrong on the worker: the exception's type
  /// and what(), as "std::runtime_error: no such file" (cut after 640 characters); else empty.
  std::string message;
};

/// What one rank did in a job or stream whose per-task records were not kept (run_info::totals).
struct worker_totals {
  std::size_t tasks = 0;     ///< tasks whose final attempt ran there, failed ones included
  std::size_t failed = 0;    ///< of those, how many failed
  double busy_seconds = 0.0; ///< time spent in the user's function there
};

/// Facts about the last run, available on the master after run() returns or throws.
struct run_info {
  /// One record per task, in task order (for a job, by ticket). A job or stream keeps them only
  /// when a timeline is asked for (options::timeline_json/_html, FOREMAN_TIMELINE): 48 bytes a
  /// task; otherwise this is empty and `totals` has the sums per rank.
  std::vector<task_record> tasks;
  /// A job or stream: per rank (index: the rank), its tasks, failures and busy time; what
  /// run_report reads when `tasks` is empty. Empty for run().
  std::vector<worker_totals> totals;
  double wall_seconds = 0.0;                  ///< duration of run() on the master
  std::size_t failures = 0;                   ///< number of tasks that failed
  std::size_t retries = 0;                    ///< task re-dispatches after a lost worker (grouped: + batches)
  std::size_t messages = 0;                   ///< messages of tasks the master sent (fewer than tasks when chunked)
  std::vector<int> lost_workers;              ///< ranks declared lost during this run, in the order noticed
  std::vector<worker_loss> losses;            ///< the same, with when, why and how long after its last sign of life
  std::size_t replayed = 0;                   ///< results read back from the checkpoint journal (options::checkpoint)
  std::uint64_t checkpoint_dropped_bytes = 0; ///< torn or damaged journal tail cut off before resuming
  int workers = 0;                            ///< worker ranks in the pool (0: the master ran every task itself)
  std::vector<int> sub_masters;               ///< a grouped run() (foreman::hierarchy): the sub-masters, which run no task
};

} // namespace foreman
