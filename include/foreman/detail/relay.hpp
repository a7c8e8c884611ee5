#pragma once
/// @file relay.hpp
/// Hierarchical dispatch (foreman::hierarchy): the sub-master's side, the relay of each batch
/// the master sends to a job of its own group (what travels between them: batch.hpp; the
/// master's side: grouped_run.hpp).
///
/// A grouped run is two layers of the flat machinery: the master runs a job (job.hpp) on the
/// pool of itself and the sub-masters whose tasks are batches of the run's tasks; each
/// sub-master, as that job's worker, runs a batch by submitting its tasks to a job of its own
/// group and answering with their results once every one is in. Timeouts, re-dispatch and lost
/// ranks are those layers' own: a lost worker is handled by its sub-master, a lost sub-master by
/// the master (its batch goes to another group).

#include <foreman/detail/batch.hpp>
#include <foreman/detail/failure_types.hpp>
#include <foreman/detail/invoke.hpp>
#include <foreman/detail/keep_alive.hpp>
#include <foreman/detail/pool_state.hpp>
#include <foreman/detail/wire.hpp>
#include <foreman/errors.hpp>
#include <foreman/job.hpp>
#include <foreman/options.hpp>
#include <foreman/outcome.hpp>
#include <foreman/shared.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace foreman {
namespace detail {

/// The sub-master's side: runs each batch the master sends on its group, as a job of the group's
/// pool opened at the first batch (with the master's options, which come with it) and closed by
/// finish() when the master ends the run. A function that shares a value (with_shared()) shares
/// the master's with the group: the top layer brings it to the sub-master (keep()), and the
/// group's job sends it on.
///
/// A group left with no live worker (all lost, or, for this run, all failed to set up) runs
/// nothing more: the tasks of the batch it was running that no worker could run go back to the
/// master marked not run, and the next batch it is sent is refused (run_refused): the master then
/// hands that sub-master's batches to the other groups for the rest of the run, charging them no
/// attempt. A run whose every group refused fails its tasks left as a flat run with no worker
/// does (run_grouped()).
template <class Task, class Result, class GroupPool, class Fn>
class relay {
public:
  using shared_type = typename shared_type_of<Fn>::type;
  using kept_type = std::conditional_t<std::is_void_v<shared_type>, char, shared_type>;

  /// @param group     the pool of this sub-master (its rank 0) and its workers
  /// @param workers   that pool's record of its workers (pool_state): which are lost, and how
  ///                  its messages name their tasks (the run's indices, while this relay lives)
  /// @param first     this sub-master's rank in the whole pool (its workers follow it)
  /// @param own       this rank's options of the run (wait, send_thread)
  relay(GroupPool& group, pool_state& workers, Fn& fn, int first, const options& own)
      : group_(group), workers_(workers), fn_(fn), first_(first), own_(own) {
    workers_.shown_tasks = &names_;
  }
  ~relay() { workers_.shown_tasks = nullptr; }
  relay(const relay&) = delete;
  relay& operator=(const relay&) = delete;

  /// Runs batch `b` on the group; its answer has one item per task, in the batch's order. A task
  /// that cannot be decoded here, or whose result cannot be encoded, fails alone
  /// (foreman::serialization_error, naming this sub-master).
  /// @throws run_refused when the group has no live worker
  batch_reply<Result> operator()(const batch<Task>& b) {
    if (workers_.live_workers() == 0) refuse();
    keep_alive(); // (the batch's decoding is behind; opening the group's job encodes its shared value)
    if (!job_) open(b.opt.applied_to(own_));
    job<Task, Result>& j = *job_;
    const auto count = static_cast<std::size_t>(b.count);
    batch_reply<Result> reply;
    reply.items.resize(count);
    const std::uint64_t base = next_ticket_;
    std::vector<std::size_t> item_of; // per ticket from `base`: its item
    decoder in(b.tasks.data(), b.tasks.size());
    // keep_alive() between items: the master hears from this sub-master at least every
    // progress_interval while it holds the batch (keep_alive.hpp), and in next()'s waits.
    for (std::size_t i = 0; i < count; ++i) {
      keep_alive();
      std::size_t body_bytes = 0; // (none: a batch's tasks are inline items)
      try {
        get_item(in, task_, body_bytes);
      } catch (const serialization_error&) {
        fail_here(reply.items[i], "task " + std::to_string(b.index(i)) + " could not be decoded");
        task_ = Task{}; // not what a failed load left behind
        continue;
      }
      j.submit(task_);
      names_.push_back(b.index(i)); // ticket base + item_of.size()
      item_of.push_back(i);
    }
    next_ticket_ += item_of.size();
    std::vector<Result> held(count); // the results, by item
    for (std::size_t done = 0; done < item_of.size(); ++done) {
      keep_alive();
      completion<Result> c = j.next();
      const std::size_t i = item_of[static_cast<std::size_t>(c.ticket - base)];
      relay_item<Result>& item = reply.items[i];
      item.worker = c.worker >= 0 ? first_ + c.worker : c.worker;
      item.seconds = c.seconds;
      if (c.result.ok()) {
        held[i] = std::move(c.result).value();
      } else {
        item.failed = true;
        item.type = c.result.failure().type;
        item.message = named_in_run(c.result.failure().message, c.ticket, b.index(i));
      }
    }
    // What the group's job noticed meanwhile (the pool's record of the job grows as it goes).
    const run_info& seen = group_.last_run();
    for (; losses_told_ < seen.losses.size(); ++losses_told_) {
      const worker_loss& l = seen.losses[losses_told_];
      reply.losses.push_back(relay_loss{first_ + l.worker, static_cast<std::int32_t>(l.reason), l.noticed, l.silent_for,
                                        l.tasks_held, l.message});
    }
    reply.retries = seen.retries - retries_told_;
    retries_told_ = seen.retries;
    // No worker is left: the tasks that failed for want of one go back to the master, to run on
    // another group (a task that failed on its own, or was lost with its workers max_attempts
    // times, stays failed).
    if (workers_.live_workers() == 0)
      for (relay_item<Result>& item : reply.items)
        if (item.failed && ((item.type == worker_lost_type && item.message == no_live_worker_message) ||
                            item.type == initializer_error_type)) {
          item = relay_item<Result>{};
          item.not_run = true;
        }
    // The results, each an item of its own: one whose save throws fails its task alone.
    encoder out(reply.values);
    for (std::size_t i = 0; i < count; ++i) {
      keep_alive();
      relay_item<Result>& item = reply.items[i];
      if (!item.ok()) continue;
      const std::size_t at = out.size();
      try {
        put_inline_item(out, held[i]);
      } catch (...) {
        out.rollback(at);
        fail_here(item, "the result of task " + std::to_string(b.index(i)) + " could not be encoded");
      }
    }
    out.finish();
    return reply;
  }

  /// The master ended the run: ends the group's job, opening it first if no batch came, so that
  /// the group's workers, waiting in their start(), return. `pool_closed`: the master shut the
  /// pool down instead; a job not yet open is not opened (the workers take the goodbye instead).
  void finish(bool pool_closed) {
    // (Not this rank's own options as they are: a worker's copy may name the master's checkpoint.)
    if (!job_ && !pool_closed) {
      const options opt = relay_options::of(options{}).applied_to(own_);
      if constexpr (!std::is_void_v<shared_type>) {
        if (kept_ == nullptr) {
          // The master's value never came (it could not be encoded there: every task failed and
          // no batch was sent): the group's job is opened without one, and its workers, which
          // get no task, neither need one nor set up.
          job_.emplace(group_.start([](const Task&) -> Result { throw error("internal error: a task without its shared value"); }, opt));
        }
      }
      if (!job_) open(opt);
    }
    if (job_) job_->close();
    job_.reset();
    kept_ = nullptr; // the next run's value comes with its top job
    losses_told_ = 0;
    retries_told_ = 0;
  }

  /// The master's shared value of this run, as the top layer delivered it (it stays where it is
  /// until the next run's arrives; finish() forgets it).
  void keep(const kept_type& value) { kept_ = &value; }

private:
  // Refuses the rest of the run (run_refused), naming why: the group's workers were lost, or
  // (their last loss) could not set up for this run.
  [[noreturn]] void refuse() const {
    const int size = static_cast<int>(workers_.lost.size());
    std::string ranks = size > 2 ? "ranks " + std::to_string(first_ + 1) + "-" + std::to_string(first_ + size - 1)
                                 : "rank " + std::to_string(first_ + 1);
    const std::vector<worker_loss>& losses = group_.last_run().losses;
    const bool set_up = !losses.empty() && losses.back().reason == loss_reason::initializer_failed;
    run_refused why;
    why.type = set_up ? initializer_error_type : worker_lost_type;
    why.message = "sub-master " + std::to_string(first_) + " has no live worker left in its group (" + ranks + ")";
    if (set_up)
      why.message += ": the set-up for this run failed on them (the last, worker " +
                     std::to_string(first_ + losses.back().worker) + ": " + losses.back().message + ")";
    throw why;
  }

  // A group's worker names a task by its ticket in the group's job when a value of it could not
  // be moved ("task 7 could not be decoded on worker 5: ...", worker_loop.hpp): the run's index
  // in its place, as a flat run's worker names it.
  static std::string named_in_run(const std::string& message, std::uint64_t ticket, std::uint64_t index) {
    if (message.find(" on worker ") == std::string::npos) return message;
    for (const char* lead : {"foreman: task ", "foreman: the result of task "}) {
      const std::string prefix = lead + std::to_string(ticket) + " could not be ";
      if (message.compare(0, prefix.size(), prefix) == 0)
        return lead + std::to_string(index) + message.substr(prefix.size() - std::string(" could not be ").size());
    }
    return message;
  }

  // Files a value of this batch that could not be moved here: `what` ("task 3 could not be
  // decoded") and the exception being handled.
  void fail_here(relay_item<Result>& item, const std::string& what) const {
    item.failed = true;
    item.worker = first_;
    item.type = serialization_error_type;
    item.message = serialization_failure(what + " on sub-master " + std::to_string(first_));
  }

  void open(const options& opt) {
    if constexpr (std::is_void_v<shared_type>) {
      job_.emplace(group_.start(fn_, opt));
    } else {
      // this rank's function and initializer with the master's value (referred to, not copied)
      std::shared_ptr<const shared_type> value(std::shared_ptr<const shared_type>(), kept_);
      if (kept_ == nullptr) throw error("internal error: a sub-master's group job opened before the shared value came");
      job_.emplace(group_.start(worker_function<shared_type, typename Fn::function_type, typename Fn::initializer_type>(
                                    std::move(value), fn_.function(), fn_.initializer()),
                                opt));
    }
  }

  GroupPool& group_;
  pool_state& workers_;
  Fn& fn_;
  const kept_type* kept_ = nullptr;
  std::size_t losses_told_ = 0;  // of the group's job's losses, those sent to the master
  std::size_t retries_told_ = 0; // of its retries, those counted in an answer
  int first_;
  options own_;
  std::optional<job<Task, Result>> job_;
  std::uint64_t next_ticket_ = 0;
  std::vector<std::uint64_t> names_; // per ticket of the group's job: the run's index of its task
  Task task_{};                      // the task being decoded
};

} // namespace detail
} // namespace foreman
