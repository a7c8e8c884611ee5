#pragma once
/// @file loss_ledger.hpp
/// The account the master keeps of the workers it loses during a run (master_loop.hpp): what it
/// records in run_info, the lines it announces (options::announce_faults), the set-up failures it
/// quotes when no worker is left, and what becomes of each task a lost worker held. No MPI and no
/// clock (times come in as seconds), so that it is unit-tested in plain Catch2
/// (tests/loss_ledger_test.cpp). The loop decides when a worker is lost and moves its tasks; this
/// says how that reads and counts.

#include <foreman/detail/announce.hpp>
#include <foreman/detail/failure_types.hpp>
#include <foreman/errors.hpp>
#include <foreman/outcome.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace foreman {
namespace detail {

/// What becomes of a task that a lost worker held and that is not done (loss_ledger::fate()).
enum class held_fate {
  /// Sent again without charging an attempt: it was queued behind the task the worker was running
  /// (a worker runs its chunks in order), or the worker could not set up and ran nothing.
  requeued,
  /// Sent again as a new attempt (run_info::retries counts it).
  retried,
  /// Its last attempt (options::max_attempts) was lost: it fails as foreman::worker_lost.
  failed,
};

/// What the master knows of a worker when it declares it lost (loss_ledger::lost()).
struct loss_facts {
  int worker = -1;
  std::string peer; ///< how messages name it: "worker 3", "sub-master 4" (pool_state::peer())
  loss_reason reason = loss_reason::silent;
  double noticed = 0.0; ///< seconds since the run began
  double silent = 0.0;  ///< seconds since its last sign of life
  /// The tasks it held that are not done, as messages name them (pool_state::shown_task()).
  std::vector<std::size_t> held;
  std::uint64_t pid = 0; ///< its process id (in its pid namespace), for loss_reason::process_exited
  /// loss_reason::mpi_error: MPI's failure; loss_reason::silent: why, when it was judged by a
  /// transfer's deadline rather than the task timeout (transfer_stopped()); else empty.
  std::string detail;
  /// Silent and idle: what it was sent could have arrived (at 1 MiB/s) after its last sign of
  /// life, so its silence counts from then (worker_table::arrival()).
  bool awaited = false;
  double awaited_for = 0.0;      ///< seconds since that arrival
  std::size_t awaited_bytes = 0; ///< what it was sent to receive first
  bool delivered = false;        ///< whether every send of that was seen complete
};

/// A task's failure as foreman files it: its exception type's name and its message.
struct failure_text {
  std::string message;
  const char* type = worker_lost_type;
};

/// One run's account of its lost workers. Not copyable: it refers to the run's run_info.
class loss_ledger {
public:
  /// @param info          the run's facts: lost_workers and losses are appended to
  /// @param task_timeout  options::task_timeout in seconds (0: none), as the lines quote it
  /// @param max_attempts  options::max_attempts (at least 1)
  /// @param noun, plural  how lines name the tasks: "task(s)" and "tasks", or on the top layer
  ///                      of a grouped pool "batch(es)" and "batches" (pool_state::tasks_noun())
  loss_ledger(run_info& info, double task_timeout, unsigned max_attempts, const char* noun, const char* plural)
      : info_(info), timeout_(task_timeout), max_attempts_(std::max(1u, max_attempts)), noun_(noun), plural_(plural) {}
  loss_ledger(const loss_ledger&) = delete;
  loss_ledger& operator=(const loss_ledger&) = delete;

  unsigned max_attempts() const { return max_attempts_; }

  /// Records worker f.worker as lost in run_info (lost_workers, and losses with the set-up
  /// failure's text for loss_reason::initializer_failed) and returns the line that announces it.
  std::string lost(const loss_facts& f) {
    const bool set_up = f.reason == loss_reason::initializer_failed;
    last_reason_ = f.reason;
    info_.lost_workers.push_back(f.worker);
    info_.losses.push_back(
        worker_loss{f.worker, f.reason, f.noticed, f.silent, f.held.size(), set_up ? set_up_error_ : std::string()});
    const std::string held = "; it held " + std::to_string(f.held.size()) + " " + noun_ +
                             (f.held.empty() ? "" : ": " + index_ranges(f.held)) + "; it gets no more " + plural_;
    if (set_up)
      return f.peer + " could not set up for this run (" + set_up_error_.substr(0, 300) + ")" + held +
             " in this run, and sets up again in the next";
    return f.peer + " lost: " + why(f) + held;
  }

  /// Worker w (named `peer`) answered that it could not set up for this run: its initializer
  /// threw, or the shared value could not be received (`type`: the exception's type, `message`:
  /// its what()). Call before lost() with loss_reason::initializer_failed, which quotes it.
  void set_up_failed(int w, const std::string& peer, const std::string& type, const std::string& message) {
    set_up_error_ = type + ": " + message;
    // The first few quoted: every task left fails with this text when no worker can run it.
    if (set_up_failed_.size() < 3)
      set_up_errors_ += (set_up_errors_.empty() ? "" : ", ") + peer + " (" + set_up_error_.substr(0, 300) + ")";
    else if (set_up_failed_.size() == 3)
      set_up_errors_ += " and others";
    set_up_failed_.push_back(w);
  }
  /// The workers that could not set up: out of this run only (the next one sends them tasks again).
  const std::vector<int>& set_up_failures() const { return set_up_failed_; }

  /// The failure of a task no worker is left to run: foreman::worker_lost, or, when the last
  /// worker lost could not set up, foreman::initializer_error quoting the first set-up failures.
  failure_text no_worker_left() const {
    if (last_reason_ == loss_reason::initializer_failed)
      return {"not run: no worker is left to run it: the set-up for this run failed on " + set_up_errors_,
              initializer_error_type};
    return {no_live_worker_message, worker_lost_type};
  }

  /// What becomes of a task a lost worker held and that is not done: `oldest`, it was in the
  /// worker's oldest unanswered chunk (the only one it can have started); `set_up`, the worker
  /// could not set up (it ran nothing); `attempts`, the task's attempts so far, this one included.
  /// retried counts in run_info::retries here.
  held_fate fate(bool oldest, bool set_up, unsigned attempts) {
    if (!oldest || set_up) return held_fate::requeued;
    if (attempts >= max_attempts_) return held_fate::failed;
    ++info_.retries;
    return held_fate::retried;
  }
  /// The message of a task that fails because `peer` was lost running its last attempt.
  std::string last_attempt_lost(const std::string& peer) const {
    return peer + " was lost while running this task, the last of " + std::to_string(max_attempts_) + " attempts";
  }

  /// The line that announces tasks sent again to `peer`: `resent` holds each one's name and
  /// attempt (1: it had been queued behind the task a lost worker ran, so not charged).
  std::string resent(const std::string& peer, const std::vector<std::pair<std::size_t, unsigned>>& resent) const {
    std::vector<std::size_t> names;
    names.reserve(resent.size());
    for (const auto& r : resent) names.push_back(r.first);
    std::string line =
        std::to_string(resent.size()) + " " + noun_ + " sent again, to " + peer + ": " + index_ranges(names);
    // Grouped by attempt: a task queued behind the one a lost worker was running is not charged.
    std::string attempts;
    for (unsigned a = 2; a <= max_attempts_; ++a) {
      std::vector<std::size_t> at;
      for (const auto& r : resent)
        if (r.second == a) at.push_back(r.first);
      if (!at.empty())
        attempts += std::string(attempts.empty() ? "" : "; ") + "attempt " + std::to_string(a) + " of " +
                    std::to_string(max_attempts_) + ": " + index_ranges(at);
    }
    return line + (attempts.empty() ? "" : " (" + attempts + ")");
  }

  /// Why a live worker's reply transfer made it lost: nothing of the transfer arrived for
  /// `quiet` seconds where `allowed` were (reply_reader::allowance()): loss_facts::detail.
  std::string transfer_stopped(double quiet, double allowed) const {
    char why[200];
    std::snprintf(why, sizeof why,
                  "the transfer of its reply stopped: nothing of it arrived for %.2f s (%.2f s allowed: task timeout "
                  "%g s + 0.1 s + the piece awaited at 1 MiB/s)",
                  quiet, allowed, timeout_);
    return why;
  }

  /// The line that warns that sends to a lost `peer` may still read memory foreman does not own:
  /// `tasks`, tasks' bodies read from the caller's tasks (run()); `value`, a shared value given
  /// by std::cref. Empty when neither.
  static std::string unfinished_sends(const std::string& peer, bool tasks, bool value) {
    if (!tasks && !value) return std::string();
    return std::string("the sending of ") + (tasks ? "tasks' bodies" : "") + (tasks && value ? " and " : "") +
           (value ? "the shared value given by std::cref" : "") + " to " + peer +
           " had not completed: if it still runs, MPI may read them from their own memory until that send "
           "completes, after the run too: keep them alive and unchanged until the program ends "
           "(docs/reliability.md, \"Lost while receiving\")";
  }

private:
  std::string why(const loss_facts& f) const {
    char why[256];
    if (f.reason == loss_reason::process_exited)
      std::snprintf(why, sizeof why, "its process (pid %llu) has ended; last sign of life %.2f s ago",
                    static_cast<unsigned long long>(f.pid), f.silent);
    else if (f.reason == loss_reason::mpi_error)
      std::snprintf(why, sizeof why, "MPI reported a failure on its connection (%.100s)", f.detail.c_str());
    else if (!f.detail.empty())
      return f.detail;
    else if (f.awaited)
      std::snprintf(why, sizeof why,
                    "nothing heard from it for %.2f s after what it was sent (%zu bytes, %s) could have arrived at "
                    "1 MiB/s (task timeout %g s)",
                    f.awaited_for, f.awaited_bytes, f.delivered ? "delivered" : "not all of it delivered", timeout_);
    else
      std::snprintf(why, sizeof why, "nothing heard from it for %.2f s (task timeout %g s)", f.silent, timeout_);
    return why;
  }

  run_info& info_;
  double timeout_;
  unsigned max_attempts_;
  const char* noun_;
  const char* plural_;
  std::vector<int> set_up_failed_;                // workers out of this run only
  std::string set_up_error_;                      // the last worker's set-up failure, "type: message"
  std::string set_up_errors_;                     // the first three: "worker 1 (type: message), ..."
  loss_reason last_reason_ = loss_reason::silent; // why the last worker lost was lost
};

} // namespace detail
} // namespace foreman
