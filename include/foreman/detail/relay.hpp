#pragma once
/// @file relay.hpp
/// Hierarchical dispatch (foreman::hierarchy): what travels between the master and its
/// sub-masters, the sub-master's relay of a batch to its group, and the master's side of a
/// grouped run().
///
/// A grouped run is two layers of the flat machinery: the master runs a job (job.hpp) on the
/// pool of itself and the sub-masters whose tasks are batches of the run's tasks; each
/// sub-master, as that job's worker, runs a batch by submitting its tasks to a job of its own
/// group and answering with their results once every one is in. Timeouts, re-dispatch and lost
/// ranks are those layers' own: a lost worker is handled by its sub-master, a lost sub-master by
/// the master (its batch goes to another group).

#include <foreman/detail/group_layout.hpp>
#include <foreman/detail/invoke.hpp>
#include <foreman/detail/pool_state.hpp>
#include <foreman/detail/wire.hpp>
#include <foreman/errors.hpp>
#include <foreman/job.hpp>
#include <foreman/options.hpp>
#include <foreman/outcome.hpp>
#include <foreman/shared.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

namespace foreman {
namespace detail {

/// The master's options a sub-master runs its batches under (a plain struct: sent as its bytes).
struct relay_options {
  double task_timeout = 0.0; // seconds; 0: none
  std::uint64_t chunk_size = 0;
  std::uint64_t tasks_in_flight = 2;
  std::uint32_t max_attempts = 3;
  std::uint8_t round_robin = 0;
  std::uint8_t announce_faults = 1;
  std::uint8_t unused[2] = {0, 0}; // no padding bytes of unknown value travel

  static relay_options of(const options& opt) {
    relay_options r;
    r.task_timeout = opt.task_timeout.count();
    r.chunk_size = opt.chunk_size;
    r.tasks_in_flight = opt.tasks_in_flight;
    r.max_attempts = opt.max_attempts;
    r.round_robin = opt.schedule == schedule::round_robin ? 1 : 0;
    r.announce_faults = opt.announce_faults ? 1 : 0;
    return r;
  }
  /// `base` (the sub-master's own options: wait, send_thread) with the master's scheduling.
  options applied_to(options base) const {
    base.task_timeout = std::chrono::duration<double>(task_timeout);
    base.chunk_size = static_cast<std::size_t>(chunk_size);
    base.tasks_in_flight = static_cast<std::size_t>(tasks_in_flight);
    base.max_attempts = max_attempts;
    base.schedule = round_robin ? schedule::round_robin : schedule::dynamic;
    base.announce_faults = announce_faults != 0;
    base.checkpoint.clear(); // the master keeps the journal, the timeline and the progress
    base.timeline_json.clear();
    base.timeline_html.clear();
    base.progress = false;
    base.fail_fast = false;
    return base;
  }
};

/// A batch: tasks of a run, sent by the master to one sub-master in one message, with the run's
/// index of each (for the sub-master's messages): indices[i], or, when indices is empty,
/// first + i.
template <class Task>
struct batch {
  relay_options opt;
  std::vector<Task> tasks;
  std::uint64_t first = 0;
  std::vector<std::uint64_t> indices;
  std::uint64_t index(std::size_t i) const { return indices.empty() ? first + i : indices[i]; }
  template <class Archive>
  void serialize(Archive& ar, const unsigned int /*version*/) {
    ar& opt;
    ar& tasks;
    ar& first;
    ar& indices;
  }
};

/// One task's part of a batch's answer: its result, the failure it raised, or that it was not
/// run (its group lost every worker that could run it: the master sends it to another group).
template <class Result>
struct relay_item {
  Result value{};
  std::string type;    // failure: the exception's type
  std::string message; // failure: what()
  double seconds = 0.0;
  std::int32_t worker = -1; // the rank, in the whole pool, that ran it
  bool failed = false;
  bool not_run = false; // returned to the master, neither a result nor a failure
  template <class Archive>
  void serialize(Archive& ar, const unsigned int /*version*/) {
    ar& failed;
    ar& not_run;
    ar& worker;
    ar& seconds;
    if (failed) {
      ar& type;
      ar& message;
    } else if (!not_run) {
      ar& value;
    }
  }
};

/// A worker lost inside a group, as its sub-master saw it (worker_loss, its rank in the whole pool).
struct relay_loss {
  std::int32_t worker = -1;
  std::int32_t reason = 0; // loss_reason
  double noticed = 0.0;    // seconds since the group's job started (at the run's first batch)
  double silent_for = 0.0;
  std::uint64_t tasks_held = 0;
  std::string message;
  template <class Archive>
  void serialize(Archive& ar, const unsigned int /*version*/) {
    ar& worker& reason& noticed& silent_for& tasks_held& message;
  }
};

/// A batch's answer: item i for the batch's task i; the workers the group lost since the last
/// answer, and the tasks it sent again.
template <class Result>
struct batch_reply {
  std::vector<relay_item<Result>> items;
  std::vector<relay_loss> losses;
  std::uint64_t retries = 0;
  template <class Archive>
  void serialize(Archive& ar, const unsigned int /*version*/) {
    ar& items& losses& retries;
  }
};

template <class T>
struct is_batch : std::false_type {};
template <class Task>
struct is_batch<batch<Task>> : std::true_type {};
/// Whether Task is already a batch: a pool of batches is the top layer and is never grouped again.
template <class T>
inline constexpr bool is_batch_v = is_batch<T>::value;

/// The type of the value a task function shares (with_shared()); void when it shares none.
template <class Fn, bool = is_worker_function_v<Fn>>
struct shared_type_of {
  using type = void;
};
template <class Fn>
struct shared_type_of<Fn, true> {
  using type = typename std::remove_cv_t<Fn>::shared_type;
};

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

  /// Runs batch `b` on the group; its answer has one item per task, in the batch's order.
  /// @throws run_refused when the group has no live worker
  batch_reply<Result> operator()(const batch<Task>& b) {
    if (workers_.live_workers() == 0) refuse();
    if (!job_) open(b.opt.applied_to(own_));
    job<Task, Result>& j = *job_;
    const std::uint64_t base = next_ticket_;
    for (std::size_t i = 0; i < b.tasks.size(); ++i) {
      j.submit(b.tasks[i]);
      names_.push_back(b.index(i)); // ticket base + i
    }
    next_ticket_ += b.tasks.size();
    batch_reply<Result> reply;
    reply.items.resize(b.tasks.size());
    for (std::size_t done = 0; done < b.tasks.size(); ++done) {
      completion<Result> c = j.next();
      relay_item<Result>& item = reply.items[static_cast<std::size_t>(c.ticket - base)];
      item.worker = c.worker >= 0 ? first_ + c.worker : c.worker;
      item.seconds = c.seconds;
      if (c.result.ok()) {
        item.value = std::move(c.result).value();
      } else {
        item.failed = true;
        item.type = c.result.failure().type;
        item.message = c.result.failure().message;
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
    return reply;
  }

  /// The master ended the run: ends the group's job, opening it first if no batch came, so that
  /// the group's workers, waiting in their start(), return. `pool_closed`: the master shut the
  /// pool down instead; a job not yet open is not opened (the workers take the goodbye instead).
  void finish(bool pool_closed) {
    // (Not this rank's own options as they are: a worker's copy may name the master's checkpoint.)
    if (!job_ && !pool_closed) open(relay_options::of(options{}).applied_to(own_));
    if (job_) job_->close();
    job_.reset();
    losses_told_ = 0;
    retries_told_ = 0;
  }

  /// The master's shared value of this run, as the top layer delivered it (it stays where it is
  /// until the next run's arrives).
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
};

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

/// The master's side of a grouped run: cuts `tasks` into batches, submits them to a job of the
/// top pool (itself and the sub-masters) a few per group ahead, and files each task's result or
/// failure as its batch's answer arrives, calling on_done(index, when) per task as the flat loop
/// does. A batch that failed as a whole (its sub-master's relay threw; no sub-master left) fails
/// each of its tasks with that failure. `names`: a resumed run's indices in the whole task list
/// (for the messages of options::fail_fast), or null.
template <class Task, class Result, class TopPool, class Fn, class OnDone>
grouped_run_end run_grouped(TopPool& top, const group_layout& layout, const std::vector<Task>& tasks, const Fn& fn,
                            const options& opt, std::vector<Result>& results, run_info& info,
                            std::vector<task_failure>& failures, OnDone& on_done,
                            const std::vector<std::size_t>* names) {
  const std::size_t n = tasks.size();
  const std::size_t size = batch_size(n, layout);
  int fewest = layout.workers(0);
  for (int g = 1; g < layout.groups(); ++g) fewest = std::min(fewest, layout.workers(g));
  options top_opt;
  top_opt.chunk_size = 1; // a batch is a message
  top_opt.tasks_in_flight = 2;
  top_opt.task_timeout = std::chrono::duration<double>(batch_timeout(opt, size, fewest));
  top_opt.max_attempts = opt.max_attempts;
  top_opt.announce_faults = opt.announce_faults;
  top_opt.wait = opt.wait;
  top_opt.send_thread = opt.send_thread;
  job<batch<Task>, batch_reply<Result>> j = open_top_job<Task, Result>(top, fn, top_opt);
  const relay_options carried = relay_options::of(opt);
  const std::size_t ahead = 3 * static_cast<std::size_t>(layout.groups()); // batches submitted, not yet answered
  std::size_t next = 0;                                                    // first task not yet in a batch
  std::string stopped; // options::fail_fast: why the tasks left are not run
  // Task i's index in the whole task list (a resumed run's `names`), as messages and batches name it.
  auto name_of = [names](std::size_t i) { return names ? (*names)[i] : i; };
  auto file_failure = [&](std::size_t index, int worker, std::string type, std::string message) {
    info.tasks[index].worker = worker;
    info.tasks[index].failed = true;
    failures.push_back(task_failure{index, worker, std::move(type), std::move(message)});
  };
  // The tasks of each batch submitted and not yet answered, by ticket: [first, first + count),
  // or, for a batch sent again without the tasks that could not be encoded, `indices`.
  struct span {
    std::size_t first = 0, count = 0;
    std::vector<std::size_t> indices;
    std::size_t operator[](std::size_t i) const { return indices.empty() ? first + i : indices[i]; }
  };
  std::unordered_map<std::uint64_t, span> spans;
  std::vector<char> scratch;
  while ((next < n && stopped.empty()) || j.pending() > 0) {
    while (next < n && stopped.empty() && j.pending() < ahead) {
      batch<Task> b;
      b.opt = carried;
      const std::size_t end = std::min(n, next + size);
      // One by one: GCC 12 at -O2 takes a range copy of a plain struct for a memmove to null
      // (-Wnonnull, a false positive that -Werror makes an error).
      b.tasks.reserve(end - next);
      for (std::size_t i = next; i < end; ++i) b.tasks.push_back(tasks[i]);
      b.first = next;
      if (names)
        for (std::size_t i = next; i < end; ++i) b.indices.push_back(name_of(i));
      spans[j.submit(std::move(b))] = span{next, end - next, {}};
      next = end;
    }
    completion<batch_reply<Result>> c = j.next();
    const auto at = spans.find(c.ticket);
    if (at == spans.end()) throw error("internal error: the answer of a batch that was not sent");
    const span tasks_of = std::move(at->second);
    spans.erase(at);
    const std::size_t count = tasks_of.count;
    const auto when = std::chrono::steady_clock::now();
    // A task whose serialize() threw made its whole batch unsendable: that task fails (as in a
    // flat run, with its own index), the others go again in a batch of their own.
    if (!c.result.ok() && c.result.failure().type == serialization_error_type &&
        c.result.failure().message.find("could not be encoded on the master") != std::string::npos && stopped.empty()) {
      span again;
      batch<Task> b;
      b.opt = carried;
      for (std::size_t i = 0; i < count; ++i) {
        const std::size_t index = tasks_of[i];
        try {
          scratch.clear();
          encoder(scratch).put(tasks[index]);
        } catch (...) {
          info.tasks[index].attempts = 1;
          file_failure(index, 0, serialization_error_type,
                       serialization_failure("task " + std::to_string(name_of(index)) +
                                             " could not be encoded on the master"));
          on_done(index, when);
          continue;
        }
        again.indices.push_back(index);
        b.tasks.push_back(tasks[index]);
        b.indices.push_back(name_of(index));
      }
      again.count = again.indices.size();
      if (again.count < count) { // else the failure was not a task's: it is filed below
        if (again.count > 0) spans[j.submit(std::move(b))] = std::move(again);
        continue;
      }
    }
    // Its sub-master's rank in the whole pool (the top pool's rank t is group t - 1's sub-master).
    const int sub_master = c.worker >= 1 ? layout.first(c.worker - 1) : c.worker;
    std::optional<task_failure> whole; // the batch failed as a whole
    batch_reply<Result> reply;
    if (c.result.ok()) {
      reply = std::move(c.result).value();
      if (reply.items.size() != count)
        whole = task_failure{0, sub_master, "foreman::error",
                             "internal error: a sub-master answered a batch of " + std::to_string(count) +
                                 " tasks with " + std::to_string(reply.items.size()) + " results"};
    } else {
      whole = c.result.failure();
      // Every group refused the run (relay::refuse()), and the top job failed the batches left
      // as a flat job with no worker left fails its tasks: as a flat run whose workers were all
      // lost, when they were lost (not when their set-up failed).
      if (whole->type == initializer_error_type && refused_for_losses(top.last_run())) {
        whole->type = worker_lost_type;
        whole->message = no_live_worker_message;
      }
    }
    for (relay_loss& l : reply.losses) {
      info.lost_workers.push_back(l.worker);
      info.losses.push_back(worker_loss{l.worker, static_cast<loss_reason>(l.reason), l.noticed, l.silent_for,
                                        static_cast<std::size_t>(l.tasks_held), std::move(l.message)});
    }
    info.retries += static_cast<std::size_t>(reply.retries);
    span again; // the tasks its group could not run, for another group
    batch<Task> retry;
    retry.opt = carried;
    for (std::size_t i = 0; i < count; ++i) {
      const std::size_t index = tasks_of[i];
      task_record& record = info.tasks[index];
      if (!whole && reply.items[i].not_run) { // no attempt charged; cancelled below if the run stops
        again.indices.push_back(index);
        retry.tasks.push_back(tasks[index]);
        retry.indices.push_back(name_of(index));
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
        } else {
          record.worker = item.worker;
          results[index] = std::move(item.value);
        }
      }
      on_done(index, when);
      if (record.failed && opt.fail_fast && stopped.empty()) {
        stopped = "not run: task " + std::to_string(name_of(index)) +
                  " failed first, and options::fail_fast stops the run at the first failure";
        j.cancel();
      }
    }
    if (!again.indices.empty() && stopped.empty()) {
      again.count = again.indices.size();
      info.retries += again.count;
      spans[j.submit(std::move(retry))] = std::move(again);
    }
  }
  // options::fail_fast: every task not filed is cancelled (those never batched, and those of
  // batches the cancel dropped).
  if (!stopped.empty())
    for (std::size_t index = 0; index < n; ++index)
      if (info.tasks[index].attempts == 0) {
        file_failure(index, 0, cancelled_type, stopped);
        on_done(index, std::chrono::steady_clock::now());
      }
  j.close();
  // The top pool's record of this job: its rank t is the sub-master of group t - 1.
  const run_info& top_info = top.last_run();
  // A sub-master that refused the run (its group had no live worker) is not lost: its group's
  // losses came with its answers.
  grouped_run_end end;
  for (worker_loss l : top_info.losses) {
    if (l.reason == loss_reason::initializer_failed) continue;
    end.lost_groups.push_back(l.worker - 1);
    l.worker = layout.first(l.worker - 1);
    end.sub_losses.push_back(std::move(l));
  }
  end.batches = top_info.messages;
  end.batches_resent = top_info.retries;
  return end;
}

} // namespace detail
} // namespace foreman
