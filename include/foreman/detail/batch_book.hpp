#pragma once
/// @file batch_book.hpp
/// The master's account of a grouped run's batches (foreman::hierarchy): which of the run's
/// tasks each batch sent and not yet answered holds, and how an answer is filed into the run's
/// results, records and failures. No MPI: run_grouped() (grouped_run.hpp) drives it with the top
/// layer's job, batch_book_test with a fake one.

#include <foreman/detail/batch.hpp>
#include <foreman/detail/failure_types.hpp>
#include <foreman/errors.hpp>
#include <foreman/outcome.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace foreman {
namespace detail {

/// The run's indices of a batch's tasks: [first, first + count), or, for a batch put together
/// again from some tasks of others, `indices`.
struct batch_span {
  std::size_t first = 0, count = 0;
  std::vector<std::size_t> indices;
  std::size_t operator[](std::size_t i) const { return indices.empty() ? first + i : indices[i]; }
};

/// The master's book of a grouped run: cuts the run's tasks into batches, remembers each batch
/// sent by the ticket it travels under, and files each answer, task by task, into the run's
/// `results`, `info.tasks`, `info.losses` and `failures` (as the flat loop files a chunk's).
///
/// A task whose group ran it is filed with its result or failure (one attempt; the group's own
/// re-dispatch is in its retries). A task its group answered as not run goes again in a batch
/// of its own, charged no attempt (counted in `info.retries`). A batch that failed as a whole
/// fails each of its tasks with that failure. A task that cannot be encoded, or whose result
/// cannot be decoded, fails alone (foreman::serialization_error, with the codec's message). With
/// `fail_fast`, the first failure filed stops the run (stopped()): no batch is cut or sent again
/// after it, and cancel_unfiled() fails what is left as cancelled.
///
/// The callables: `Submit` takes a batch<Task>&& and returns the std::uint64_t ticket it was
/// submitted under; `OnDone` takes (std::size_t index, steady_clock::time_point) and is called
/// once per task filed. A `Codec` has
/// - `std::optional<std::string> encode(std::size_t index, std::vector<char>& bytes)`: appends
///   task `index` to `bytes` as an item, or leaves `bytes` as they were and says why it could not;
/// - `std::optional<std::string> decode(std::size_t index, const std::vector<char>& values,
///   std::size_t& at, Result& into)`: reads the result of task `index` from byte offset `at` of
///   `values` into `into`, moving `at` past it whether or not it could be read, or says why not.
template <class Task, class Result>
class batch_book {
public:
  /// @param tasks    the run's tasks, index i for task i (referred to: it must outlive the book)
  /// @param names    a resumed run's indices of them in the whole task list, or null (index i is i)
  /// @param carried  the options each batch carries to its sub-master
  /// @param results, info, failures  the run's, filed into (info.tasks holds a record per task)
  batch_book(const std::vector<Task>& tasks, const std::vector<std::size_t>* names, const relay_options& carried,
             bool fail_fast, std::vector<Result>& results, run_info& info, std::vector<task_failure>& failures)
      : tasks_(tasks), names_(names), carried_(carried), fail_fast_(fail_fast), results_(results), info_(info),
        failures_(failures) {}

  /// Task i's index in the whole task list (a resumed run's `names`), as messages name it.
  std::size_t name_of(std::size_t i) const { return names_ ? (*names_)[i] : i; }

  /// Whether tasks are left to put into batches (none once the run stopped).
  bool unbatched() const { return next_ < tasks_.size() && stopped_.empty(); }

  /// Why the tasks not filed are not run (options::fail_fast); empty while the run goes on.
  const std::string& stopped() const { return stopped_; }

  /// Batches sent and not yet answered.
  std::size_t open_batches() const { return sent_.size(); }

  /// Puts the next `size` (>= 1) tasks not yet in a batch, fewer at the end, into a batch and
  /// hands it to `submit`; a task that cannot be encoded is filed as failed instead.
  template <class Codec, class OnDone, class Submit>
  void send_next(std::size_t size, Codec& codec, OnDone& on_done, Submit&& submit) {
    batch<Task> b;
    b.opt = carried_;
    batch_span span{next_, 0, {}};
    const std::size_t end = std::min(tasks_.size(), next_ + size);
    for (; next_ < end && stopped_.empty(); ++next_) {
      if (std::optional<std::string> why = codec.encode(next_, b.tasks)) {
        unsendable(next_, std::move(*why), on_done);
        continue;
      }
      if (span.count == 0) {
        span.first = next_;
      } else if (span.indices.empty() && next_ != span.first + span.count) { // a gap: listed from here on
        for (std::size_t i = span.first; i < span.first + span.count; ++i) span.indices.push_back(i);
      }
      if (!span.indices.empty()) span.indices.push_back(next_);
      ++span.count;
    }
    if (span.count == 0 || !stopped_.empty()) return; // (stopped: its tasks are cancelled)
    b.first = span.first;
    b.count = span.count;
    if (!span.indices.empty() || names_)
      for (std::size_t i = 0; i < span.count; ++i) b.indices.push_back(name_of(span[i]));
    sent_[submit(std::move(b))] = std::move(span);
  }

  /// Takes the batch answered under `ticket` out of the book: the run's indices of its tasks.
  /// @throws error when no batch was sent under it
  batch_span take(std::uint64_t ticket) {
    const auto at = sent_.find(ticket);
    if (at == sent_.end()) throw error("internal error: the answer of a batch that was not sent");
    batch_span tasks = std::move(at->second);
    sent_.erase(at);
    return tasks;
  }

  /// Files the answer to batch `tasks`, which sub-master `sub_master` (its rank in the whole
  /// pool) ran: its results and failures task by task, or, when `answer` is a failure, that
  /// failure for each task. Its group's losses join info.losses. The tasks the group did not run
  /// go again in a batch through `submit`, unless the run stopped.
  template <class Codec, class OnDone, class Submit>
  void file(const batch_span& tasks, int sub_master, outcome<batch_reply<Result>> answer, Codec& codec,
            OnDone& on_done, Submit&& submit) {
    const std::size_t count = tasks.count;
    const auto when = std::chrono::steady_clock::now();
    std::optional<task_failure> whole; // the batch failed as a whole
    batch_reply<Result> reply;
    if (answer.ok()) {
      reply = std::move(answer).value();
      if (reply.items.size() != count)
        whole = task_failure{0, sub_master, "foreman::error",
                             "internal error: a sub-master answered a batch of " + std::to_string(count) +
                                 " tasks with " + std::to_string(reply.items.size()) + " results"};
    } else {
      whole = answer.failure();
    }
    for (relay_loss& l : reply.losses) {
      info_.lost_workers.push_back(l.worker);
      info_.losses.push_back(worker_loss{l.worker, static_cast<loss_reason>(l.reason), l.noticed, l.silent_for,
                                         static_cast<std::size_t>(l.tasks_held), std::move(l.message)});
    }
    info_.retries += static_cast<std::size_t>(reply.retries);
    std::vector<std::size_t> again; // the tasks its group could not run, for another group
    std::size_t at = 0;             // the next result's byte offset in reply.values
    for (std::size_t i = 0; i < count; ++i) {
      const std::size_t index = tasks[i];
      task_record& record = info_.tasks[index];
      if (!whole && reply.items[i].not_run) { // no attempt charged; cancelled later if the run stops
        again.push_back(index);
        continue;
      }
      record.attempts = 1;
      if (whole) {
        file_failure(index, sub_master, whole->type, whole->message);
      } else {
        relay_item<Result>& item = reply.items[i];
        record.seconds = item.seconds;
        if (item.failed) {
          file_failure(index, item.worker, std::move(item.type), std::move(item.message));
        } else if (std::optional<std::string> why = codec.decode(index, reply.values, at, results_[index])) {
          file_failure(index, item.worker, serialization_error_type, std::move(*why));
        } else {
          record.worker = item.worker;
        }
      }
      on_done(index, when);
      stop_if_failed(index);
    }
    if (!again.empty() && stopped_.empty()) resend(again, codec, on_done, submit);
  }

  /// Once the run stopped (options::fail_fast): fails every task not filed (never batched, or
  /// in a batch that was dropped or not sent again) as cancelled, with stopped() as its message.
  template <class OnDone>
  void cancel_unfiled(OnDone& on_done) {
    if (stopped_.empty()) return;
    for (std::size_t index = 0; index < tasks_.size(); ++index)
      if (info_.tasks[index].attempts == 0) {
        file_failure(index, 0, cancelled_type, stopped_);
        on_done(index, std::chrono::steady_clock::now());
      }
  }

private:
  void file_failure(std::size_t index, int worker, std::string type, std::string message) {
    info_.tasks[index].worker = worker;
    info_.tasks[index].failed = true;
    failures_.push_back(task_failure{index, worker, std::move(type), std::move(message)});
  }

  // Task `index` could not be encoded on the master: it fails there, as in a flat run.
  template <class OnDone>
  void unsendable(std::size_t index, std::string why, OnDone& on_done) {
    info_.tasks[index].attempts = 1;
    file_failure(index, 0, serialization_error_type, std::move(why));
    on_done(index, std::chrono::steady_clock::now());
    stop_if_failed(index);
  }

  // options::fail_fast: the first task filed as failed stops the run.
  void stop_if_failed(std::size_t index) {
    if (fail_fast_ && stopped_.empty() && info_.tasks[index].failed)
      stopped_ = "not run: task " + std::to_string(name_of(index)) +
                 " failed first, and options::fail_fast stops the run at the first failure";
  }

  // Sends the tasks `indices` again, in a batch of their own, charging them no attempt.
  template <class Codec, class OnDone, class Submit>
  void resend(const std::vector<std::size_t>& indices, Codec& codec, OnDone& on_done, Submit&& submit) {
    batch<Task> b;
    b.opt = carried_;
    batch_span span;
    for (const std::size_t index : indices) {
      if (std::optional<std::string> why = codec.encode(index, b.tasks)) {
        unsendable(index, std::move(*why), on_done);
        continue;
      }
      span.indices.push_back(index);
      b.indices.push_back(name_of(index));
    }
    span.count = span.indices.size();
    if (span.count == 0 || !stopped_.empty()) return;
    b.count = span.count;
    info_.retries += span.count;
    sent_[submit(std::move(b))] = std::move(span);
  }

  const std::vector<Task>& tasks_;
  const std::vector<std::size_t>* names_;
  relay_options carried_;
  bool fail_fast_;
  std::vector<Result>& results_;
  run_info& info_;
  std::vector<task_failure>& failures_;
  std::size_t next_ = 0;                              // the first task not yet in a batch
  std::unordered_map<std::uint64_t, batch_span> sent_; // batches sent, not yet answered, by ticket
  std::string stopped_;
};

} // namespace detail
} // namespace foreman
