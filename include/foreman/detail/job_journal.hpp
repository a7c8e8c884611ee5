#pragma once
/// @file job_journal.hpp
/// The checkpoint journal of a job (start() with options::checkpoint): the job layout of
/// journal.hpp. A job's tasks complete in any order, so each successful result is recorded as it
/// is filed, with its ticket (the task's submission number, from 0) and its task's fingerprint.
/// A rerun of the program that submits the same tasks in the same order gets, at each
/// submission the journal holds, the recorded result back as a completion ready at once, and the
/// task is not sent. Each run appends one segment, as a stream's does.
///
/// Memory: the recorded results are read at open and held, serialized, until their ticket is
/// submitted again (as run() holds a whole run's results); a stream's journal, read in task
/// order, holds nothing of the kind (stream_journal.hpp).

#include <foreman/detail/keyed_journal.hpp>
#include <foreman/detail/scheduler.hpp>
#include <foreman/detail/value_fingerprint.hpp>
#include <foreman/detail/wire.hpp>
#include <foreman/errors.hpp>

#include <cstdint>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace foreman {
namespace detail {

/// A job's journal, open on the master while the job is.
template <class Task, class Result>
class job_journal : public keyed_journal {
public:
  /// Opens (or creates) the journal at `path` for `types`; reads every sound record.
  /// @throws error as journal_file::open_stream()
  void open(const std::string& path, const std::string& types, journal_sync sync) {
    open_file(
        path, types, sync,
        [&](std::uint64_t, std::uint64_t t, std::uint64_t fingerprint, const std::vector<char>& payload) {
          held_.try_emplace(t, record_held{fingerprint, payload}); // a ticket's first record
        },
        job_journal_format);
  }

  /// Looks up ticket `t`, whose task is `task` (verdict::changed: the submissions changed, see
  /// changed()): when restored, its result is in `into`. A record
  /// read back is forgotten (its ticket is not recorded again).
  verdict look_up(ticket t, const Task& task, Result& into) {
    const auto found = held_.find(t);
    if (found == held_.end()) return verdict::run;
    std::uint64_t fingerprint = 0;
    if (!task_fingerprint(task, fingerprint)) return verdict::run; // fails when it is sent, as without a journal
    if (found->second.fingerprint != fingerprint) {
      changed_ = "checkpoint " + path_ + ": task " + std::to_string(t) +
                 " submitted to the job is not the task the journal recorded under that ticket (their "
                 "fingerprints differ): the job submits other tasks, or in another order, than when the journal "
                 "was written; it was not submitted. Delete the journal or choose another checkpoint file";
      return verdict::changed;
    }
    if (!read_payload(found->second.payload, into)) return verdict::run; // unreadable: the task runs again
    held_.erase(found);
    ++restored_;
    return verdict::restored;
  }

  /// The message of the last verdict::changed.
  const std::string& changed() const noexcept { return changed_; }

  /// Records `result` of ticket `t`, whose task is `task`. A task that cannot be fingerprinted is
  /// not recorded; an error (a record too long, an I/O error that closes the journal) is kept
  /// for rethrow(), and the job goes on.
  void record(ticket t, const Task& task, const Result& result) {
    if (!file_.is_open()) return;
    std::uint64_t fingerprint = 0;
    if (!task_fingerprint(task, fingerprint)) return;
    record_result(t, fingerprint, result);
  }

  /// Syncs and closes the journal; an error is kept for rethrow().
  void close() {
    held_.clear();
    close_file();
  }

  /// Throws the first error the journal met, if any.
  void rethrow() const { rethrow_failure(); }

private:
  struct record_held {
    std::uint64_t fingerprint;
    std::vector<char> payload;
  };

  std::unordered_map<ticket, record_held> held_;
};

} // namespace detail
} // namespace foreman
