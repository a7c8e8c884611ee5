#pragma once
/// @file grouped_run.hpp
/// Hierarchical dispatch (foreman::hierarchy): the master's side of a grouped run(). It runs a
/// job on the top pool (itself and the sub-masters) whose tasks are batches of the run's tasks,
/// and files each task as its batch's answer arrives. What travels: batch.hpp; the account of
/// the batches, testable without MPI: batch_book.hpp; the sub-master's side: relay.hpp.

#include <foreman/detail/batch.hpp>
#include <foreman/detail/batch_book.hpp>
#include <foreman/detail/failure_types.hpp>
#include <foreman/detail/group_layout.hpp>
#include <foreman/detail/wire.hpp>
#include <foreman/errors.hpp>
#include <foreman/job.hpp>
#include <foreman/options.hpp>
#include <foreman/outcome.hpp>
#include <foreman/shared.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace foreman {
namespace detail {

/// The master's job on the top layer (itself and the sub-masters) for a run of `fn`: the master's
/// shared value of `fn` (with_shared()), if any, goes to the sub-masters as the job starts.
template <class Task, class Result, class TopPool, class Fn>
job<batch<Task>, batch_reply<Result>> open_top_job(TopPool& top, const Fn& fn, const options& top_opt) {
  using shared_type = typename shared_type_of<Fn>::type;
  auto unused = [](const batch<Task>&) -> batch_reply<Result> {
    throw error("internal error: the master of a grouped pool ran a batch itself");
  };
  if constexpr (std::is_void_v<shared_type>) {
    return top.start(unused, top_opt);
  } else {
    return top.start(
        with_shared(std::cref(*fn.shared()), [unused](const batch<Task>& b, const shared_type&) { return unused(b); }),
        top_opt);
  }
}

/// Whether the sub-masters that refused the current job of the top pool (`top`: its record so
/// far) all refused because their groups' workers were lost (relay::refuse()), not because
/// their set-up failed.
inline bool refused_for_losses(const run_info& top) {
  const std::string lost = std::string(worker_lost_type) + ": "; // a loss's message: "type: message"
  bool any = false;
  for (const worker_loss& l : top.losses)
    if (l.reason == loss_reason::initializer_failed) {
      if (l.message.compare(0, lost.size(), lost) != 0) return false;
      any = true;
    }
  return any;
}

/// What the master learns of the sub-masters as a grouped run ends.
struct grouped_run_end {
  std::vector<int> lost_groups;        // groups whose sub-master was declared lost, in the order noticed
  std::vector<worker_loss> sub_losses; // their losses, by the sub-masters' ranks in the whole pool
  std::size_t batches = 0;             // messages of tasks sent (one per batch)
  std::size_t batches_resent = 0;
};

/// How the master of a grouped run writes its tasks into batches and reads their results from
/// the answers (batch_book's Codec): each value an item of its own, so that one that cannot be
/// moved fails its task alone, with the message a flat run gives.
template <class Task, class Result>
struct grouped_codec {
  const std::vector<Task>& tasks;
  const batch_book<Task, Result>& book; // for the names of tasks (a resumed run's)

  std::optional<std::string> encode(std::size_t index, std::vector<char>& bytes) const {
    encoder out(bytes);
    const std::size_t at = out.size();
    try {
      put_inline_item(out, tasks[index]);
      out.finish();
      return std::nullopt;
    } catch (...) {
      out.rollback(at);
      out.finish();
      return serialization_failure("task " + std::to_string(book.name_of(index)) + " could not be encoded on the master");
    }
  }

  std::optional<std::string> decode(std::size_t index, const std::vector<char>& values, std::size_t& at,
                                    Result& into) const {
    decoder in(values.data() + std::min(at, values.size()), values.size() - std::min(at, values.size()));
    try {
      std::size_t body_bytes = 0; // (none: an answer's results are inline items)
      get_item(in, into, body_bytes);
      at = values.size() - in.remaining();
      return std::nullopt;
    } catch (...) {
      at = values.size() - in.remaining();
      std::string why = serialization_failure("the result of task " + std::to_string(book.name_of(index)) +
                                              " could not be decoded on the master");
      into = Result{}; // not what a failed load left behind
      return why;
    }
  }
};

/// The master's side of a grouped run: cuts `tasks` into batches, submits them to a job of the
/// top pool (itself and the sub-masters) a few per group ahead, and files each task's result or
/// failure as its batch's answer arrives (batch_book), calling on_done(index, when) per task as
/// the flat loop does. `names`: a resumed run's indices in the whole task list (for the
/// messages of options::fail_fast), or null.
template <class Task, class Result, class TopPool, class Fn, class OnDone>
grouped_run_end run_grouped(TopPool& top, const group_layout& layout, const std::vector<Task>& tasks, const Fn& fn,
                            const options& opt, std::vector<Result>& results, run_info& info,
                            std::vector<task_failure>& failures, OnDone& on_done,
                            const std::vector<std::size_t>* names) {
  const std::size_t size = batch_size(tasks.size(), layout);
  options top_opt;
  top_opt.chunk_size = 1; // a batch is a message
  top_opt.tasks_in_flight = 2;
  // A sub-master is judged as a worker is: lost when silent for task_timeout + progress_interval
  // while it holds a batch, however long the batch takes, for it sends progress notes while its
  // group runs it (keep_alive.hpp).
  top_opt.task_timeout = opt.task_timeout;
  top_opt.max_attempts = opt.max_attempts;
  top_opt.announce_faults = opt.announce_faults;
  top_opt.wait = opt.wait;
  top_opt.send_thread = opt.send_thread;
  job<batch<Task>, batch_reply<Result>> j = open_top_job<Task, Result>(top, fn, top_opt);
  batch_book<Task, Result> book(tasks, names, relay_options::of(opt), opt.fail_fast, results, info, failures);
  auto submit = [&j](batch<Task>&& b) { return j.submit(std::move(b)); };
  grouped_codec<Task, Result> codec{tasks, book};
  const std::size_t ahead = 3 * static_cast<std::size_t>(layout.groups()); // batches submitted, not yet answered
  bool cancelled = false;
  while (book.unbatched() || j.pending() > 0) {
    while (book.unbatched() && j.pending() < ahead) book.send_next(size, codec, on_done, submit);
    if (!book.stopped().empty() && !cancelled) { // options::fail_fast: a task could not be encoded
      j.cancel();
      cancelled = true;
    }
    if (j.pending() == 0) continue;
    completion<batch_reply<Result>> c = j.next();
    const batch_span tasks_of = book.take(c.ticket);
    // Every group refused the run (relay::refuse()), and the top job failed the batches left
    // as a flat job with no worker left fails its tasks: as a flat run whose workers were all
    // lost, when they were lost (not when their set-up failed).
    if (!c.result.ok() && c.result.failure().type == initializer_error_type && refused_for_losses(top.last_run())) {
      task_failure f = c.result.failure();
      f.type = worker_lost_type;
      f.message = no_live_worker_message;
      c.result = outcome<batch_reply<Result>>(std::move(f));
    }
    const int sub_master = layout.rank_of_top(c.worker);
    book.file(tasks_of, sub_master, std::move(c.result), codec, on_done, submit);
    if (!book.stopped().empty() && !cancelled) {
      j.cancel(); // options::fail_fast: the batches not answered are dropped
      cancelled = true;
    }
  }
  book.cancel_unfiled(on_done);
  j.close();
  // The top pool's record of this job: its rank t is the sub-master of group t - 1.
  const run_info& top_info = top.last_run();
  // A sub-master that refused the run (its group had no live worker) is not lost: its group's
  // losses came with its answers.
  grouped_run_end end;
  for (worker_loss l : top_info.losses) {
    if (l.reason == loss_reason::initializer_failed) continue;
    end.lost_groups.push_back(l.worker - 1);
    l.worker = layout.rank_of_top(l.worker);
    end.sub_losses.push_back(std::move(l));
  }
  end.batches = top_info.messages;
  end.batches_resent = top_info.retries;
  return end;
}

} // namespace detail
} // namespace foreman
