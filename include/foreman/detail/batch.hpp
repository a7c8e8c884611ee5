#pragma once
/// @file batch.hpp
/// What travels between the master of a grouped pool (foreman::hierarchy) and its sub-masters:
/// a batch of the run's tasks with the options to run them under, and the batch's answer (a
/// result, a failure or "not run" per task, and the losses its group noticed). grouped_run.hpp
/// sends them, relay.hpp answers them, batch_book.hpp keeps the master's account of them.

#include <foreman/detail/keep_alive.hpp>
#include <foreman/options.hpp>

#include <cstdint>
#include <string>
#include <type_traits>
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
/// first + i. Each task travels as an item of its own (wire.hpp, put_inline_item()), so that a
/// task whose load throws on the sub-master fails alone, as in a flat run.
template <class Task>
struct batch {
  relay_options opt;
  std::uint64_t count = 0;  // tasks in `tasks`
  std::vector<char> tasks;  // the tasks, one item each, in order
  std::uint64_t first = 0;
  std::vector<std::uint64_t> indices;
  std::uint64_t index(std::size_t i) const { return indices.empty() ? first + i : indices[i]; }
  template <class Archive>
  void serialize(Archive& ar, const unsigned int /*version*/) {
    ar& opt;
    ar& count;
    ar& tasks;
    ar& first;
    ar& indices;
  }
};

/// One task's part of a batch's answer: that it ran (its result is the next item of the answer's
/// `values`), the failure it raised, or that it was not run (its group lost every worker that
/// could run it: the master sends it to another group).
template <class Result>
struct relay_item {
  std::string type;    // failure: the exception's type
  std::string message; // failure: what()
  double seconds = 0.0;
  std::int32_t worker = -1; // the rank, in the whole pool, that ran it
  bool failed = false;
  bool not_run = false; // returned to the master, neither a result nor a failure
  bool ok() const { return !failed && !not_run; }
  template <class Archive>
  void serialize(Archive& ar, const unsigned int /*version*/) {
    ar& failed;
    ar& not_run;
    ar& worker;
    ar& seconds;
    if (failed) {
      ar& type;
      ar& message;
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

/// A batch's answer: item i for the batch's task i, and the results of the items that ran, in
/// item order, one item each (put_inline_item(): a result whose load throws on the master fails
/// alone); the workers the group lost since the last answer, and the tasks it sent again.
template <class Result>
struct batch_reply {
  std::vector<relay_item<Result>> items;
  std::vector<char> values;
  std::vector<relay_loss> losses;
  std::uint64_t retries = 0;
  template <class Archive>
  void serialize(Archive& ar, const unsigned int /*version*/) {
    ar& items& values& losses& retries;
  }
};

template <class T>
struct is_batch : std::false_type {};
template <class Task>
struct is_batch<batch<Task>> : std::true_type {};
/// Whether Task is already a batch: a pool of batches is the top layer and is never grouped again.
template <class T>
inline constexpr bool is_batch_v = is_batch<T>::value;
/// A sub-master's relay of a batch sends progress notes while it runs (keep_alive.hpp).
template <class Task>
inline constexpr bool notes_during_task<batch<Task>> = true;

} // namespace detail
} // namespace foreman
