#pragma once
/// @file task_store.hpp
/// Where the master keeps, per ticket, the task, the object its result is received into, its
/// record and whether it is finished. The master's loop is written against the interface both
/// stores share, so that run() keeps its dense vectors and a job holds only its live tasks:
///
///   const Task& task(ticket) const          the task to encode
///   std::uint64_t name(ticket) const        the name it has on the wire and in messages
///   bool lookup(name, worker, ticket&) const the ticket a reply names: false when it names a
///                                           task no longer kept (cancelled); throws error when
///                                           it names no task at all (a protocol error)
///   bool done(ticket) const                 its result or failure is filed (or it is gone)
///   Result& result(ticket)                  where its result is decoded
///   task_record& record(ticket)
///   void mark_resent(ticket); bool take_resent(ticket): taken from a lost worker, to be announced
///   void fail(task_failure)                 files a failure (failure.index: the ticket)
///   void finish(ticket)                     marks it done
///   static bool results_stay_put            result(t) stays where it is until the run ends, so
///                                           that a body can be received straight into it while
///                                           the loop goes on (reply_reader.hpp)

#include <foreman/detail/scheduler.hpp>
#include <foreman/errors.hpp>
#include <foreman/outcome.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace foreman {
namespace detail {

inline error unknown_task(std::uint64_t name, int worker, const std::string& known) {
  return error("protocol error: worker " + std::to_string(worker) + " answered task " + std::to_string(name) +
               ", which is not one of " + known);
}

/// The store of run(): the caller's task list, result vector, records and failure list, indexed
/// by ticket = position in the list. `names` (a resumed run, see master_worker::compute_missing())
/// gives each ticket the index it has in the whole list; null: the ticket itself.
template <class Task, class Result>
class dense_store {
public:
  dense_store(const std::vector<Task>& tasks, std::vector<Result>& results, std::vector<task_record>& records,
              std::vector<task_failure>& failures, const std::vector<std::size_t>* names = nullptr)
      : tasks_(tasks), results_(results), records_(records), failures_(failures), names_(names), done_(tasks.size(), 0),
        resent_(tasks.size(), 0) {}

  static constexpr bool results_stay_put = true; // the caller's vector is not touched during run()

  std::size_t size() const { return tasks_.size(); }
  std::size_t finished() const { return finished_; }

  const Task& task(ticket t) const { return tasks_[t]; }
  std::uint64_t name(ticket t) const { return names_ ? (*names_)[t] : t; }
  bool lookup(std::uint64_t name, int worker, ticket& t) const {
    std::size_t k = static_cast<std::size_t>(name);
    if (names_) {
      const auto at = std::lower_bound(names_->begin(), names_->end(), name);
      k = at != names_->end() && *at == name ? static_cast<std::size_t>(at - names_->begin()) : tasks_.size();
    }
    if (name >= std::uint64_t{1} << 63 || k >= tasks_.size())
      throw unknown_task(name, worker, "the " + std::to_string(tasks_.size()) + " tasks of this run");
    t = k;
    return true;
  }
  bool done(ticket t) const { return done_[t] != 0; }
  Result& result(ticket t) { return results_[t]; }
  task_record& record(ticket t) { return records_[t]; }
  void mark_resent(ticket t) { resent_[t] = 1; }
  bool take_resent(ticket t) { return std::exchange(resent_[t], 0) != 0; }
  void fail(task_failure f) { failures_.push_back(std::move(f)); }
  void finish(ticket t) {
    done_[t] = 1;
    ++finished_;
  }

private:
  const std::vector<Task>& tasks_;
  std::vector<Result>& results_;
  std::vector<task_record>& records_;
  std::vector<task_failure>& failures_;
  const std::vector<std::size_t>* names_;
  std::vector<char> done_;   // per task: filed already (guards against a reply counted twice)
  std::vector<char> resent_; // per task: taken from a lost worker, to be announced when sent again
  std::size_t finished_ = 0;
};

/// The store of a job: only the tasks submitted and not yet handed back (by their completion, or
/// dropped by a cancellation), in a hash table by ticket. Tickets are given in submission order
/// from 0; a ticket is its task's name on the wire.
template <class Task, class Result>
class job_store {
public:
  struct entry {
    Task task;
    Result result{};
    task_record record{};
    std::optional<task_failure> failure;
    bool done = false;
    bool resent = false;
  };

  /// An entry is erased when its task is cancelled (job::cancel()), also while its body arrives.
  static constexpr bool results_stay_put = false;

  /// Keeps `task` under the next ticket, which it returns.
  ticket add(Task task) {
    const ticket t = next_++;
    entries_.emplace(t, entry{std::move(task), Result{}, task_record{}, std::nullopt, false, false});
    return t;
  }
  /// Tickets given so far.
  ticket issued() const { return next_; }
  std::size_t kept() const { return entries_.size(); }
  bool has(ticket t) const { return entries_.count(t) != 0; }
  entry& at(ticket t) { return entries_.at(t); }
  /// Forgets ticket t (its completion was handed out, or it was cancelled).
  void erase(ticket t) { entries_.erase(t); }
  std::size_t finished() const { return finished_; }

  const Task& task(ticket t) const { return entries_.at(t).task; }
  std::uint64_t name(ticket t) const { return t; }
  bool lookup(std::uint64_t name, int worker, ticket& t) const {
    if (name >= next_) throw unknown_task(name, worker, "the " + std::to_string(next_) + " tasks of this job");
    t = name;
    return entries_.count(t) != 0;
  }
  bool done(ticket t) const {
    const auto at = entries_.find(t);
    return at == entries_.end() || at->second.done;
  }
  Result& result(ticket t) { return entries_.at(t).result; }
  task_record& record(ticket t) { return entries_.at(t).record; }
  void mark_resent(ticket t) { entries_.at(t).resent = true; }
  bool take_resent(ticket t) { return std::exchange(entries_.at(t).resent, false); }
  void fail(task_failure f) {
    const ticket t = f.index;
    entries_.at(t).failure = std::move(f);
  }
  void finish(ticket t) {
    entries_.at(t).done = true;
    ++finished_;
  }

private:
  std::unordered_map<ticket, entry> entries_;
  ticket next_ = 0;
  std::size_t finished_ = 0;
};

} // namespace detail
} // namespace foreman
