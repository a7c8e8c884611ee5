#pragma once
/// @file stream.hpp
/// Streaming on a job (master_worker::run_stream(), reduce()): tasks read lazily from a source,
/// at most a bounded number ahead of the results handed to the sink, which gets them in task
/// order (holding only those that arrived early) or in completion order.

#include <foreman/detail/stream_journal.hpp>
#include <foreman/errors.hpp>
#include <foreman/job.hpp>
#include <foreman/options.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

namespace foreman {
namespace detail {

/// The bound on tasks read ahead: options::buffersize, or when it is 0 enough for every worker to
/// hold tasks_in_flight full chunks twice over (a fixed chunk_size, or the largest automatic one),
/// and at least 1024.
inline std::size_t stream_bound(const options& opt, int workers) {
  if (opt.buffersize > 0) return opt.buffersize;
  const std::size_t chunk = opt.chunk_size > 0 ? opt.chunk_size : scheduler::max_auto_chunk;
  const std::size_t in_flight = std::max<std::size_t>(1, opt.tasks_in_flight);
  return std::max<std::size_t>(1024, 2 * static_cast<std::size_t>(std::max(1, workers)) * in_flight * chunk);
}

/// Slots for the keys [low, low + span) of a window that moves forward: key k at k & (size - 1),
/// the size a power of two that doubles when a key falls past it, so it never exceeds the widest
/// span rounded up. A slot left behind by the window must be reset by its user.
template <class T>
class window_ring {
public:
  T& at(std::uint64_t key, std::uint64_t low) {
    if (key - low >= slots_.size()) {
      std::vector<T> wider(slots_.size());
      while (key - low >= wider.size()) wider.resize(2 * wider.size());
      for (std::uint64_t k = low; k < low + slots_.size(); ++k)
        wider[place(k, wider)] = std::move(slots_[place(k, slots_)]);
      slots_.swap(wider);
    }
    return slots_[place(key, slots_)];
  }

private:
  static std::size_t place(std::uint64_t key, const std::vector<T>& in) {
    return static_cast<std::size_t>(key) & (in.size() - 1);
  }
  std::vector<T> slots_ = std::vector<T>(64);
};

/// A task of a stream read from the source and not yet finished: handed on (in task order unless
/// options::unordered) and, with a journal, recorded.
template <class Result>
struct stream_slot {
  std::optional<completion<Result>> ready; ///< in task order: arrived (or restored), waiting for earlier ones
  std::uint64_t fingerprint = 0;           ///< with a journal: its task's (when fingerprinted)
  bool fingerprinted = false;
  bool restored = false;  ///< read back from the journal: not recorded again
  bool handed_on = false; ///< options::unordered: handed to the sink, its record (if any) in `record`
  bool to_record = false;
  std::vector<char> record; ///< options::unordered with a journal: its serialized result
};

/// Runs a stream without a journal on the master's side of an open job: reads tasks from
/// next_task() (nullopt: the source is exhausted) while fewer than the bound are read and not
/// handed on, and hands each result to deliver(index, worker, Result& value, task_failure*
/// failure) (failure null for a success), which returns false to stop early (the job is then
/// cancelled). In task order unless options::unordered. Closes the job at the end.
///
/// A stream's job is its own from its first ticket, so a ticket is the task's index in the
/// stream. The values are handed on from the job's store, where they were received, without a
/// completion object (job_core::take_in_order(), take_ready()): in task order, the store is the
/// window that holds what arrived early.
template <class Task, class Result, class NextTask, class Deliver>
void drive_stream(job<Task, Result>& stream, NextTask& next_task, Deliver& deliver, const options& opt, int workers) {
  job_core<Task, Result>& core = job_access::core(stream);
  const std::size_t bound = stream_bound(opt, workers);
  if (!opt.unordered) core.hand_out_in_order();
  std::uint64_t low = 0; // in task order: the next index to hand on
  std::size_t out = 0;   // read, not handed on
  bool exhausted = false, stopped = false;
  auto hand_on = [&](ticket t, int worker, double, Result& value, task_failure* failure) {
    --out;
    stopped = !deliver(t, worker, value, failure) || stopped;
    return !stopped;
  };
  for (;;) {
    if (!exhausted && out < bound) out += core.submit_from(next_task, bound - out, exhausted);
    if (out == 0) break;
    const std::size_t taken = opt.unordered ? core.take_ready(hand_on) : core.take_in_order(low, hand_on);
    if (stopped) break;
    if (taken == 0) core.wait_for_more();
  }
  if (stopped) core.cancel();
  core.close();
}

/// As drive_stream() above, with a journal, handing each completion to deliver(completion&&).
///
/// With a journal (options::checkpoint), a task the journal holds is not submitted: its recorded
/// result is handed on in its place (worker -1), and each result is recorded in task order as it
/// is handed on; with options::unordered a result handed on early is kept serialized until those
/// before it are recorded, and counts against the bound until then. A task the journal holds for
/// another value (the source changed) ends the source there: the tasks before it complete, and
/// the journal's rethrow() names it. The completions' indices are the stream's (the order of the
/// source), not the job's tickets.
template <class Task, class Result, class NextTask, class Deliver>
void drive_stream(job<Task, Result>& job, NextTask& next_task, Deliver& deliver, const options& opt, int workers,
                  stream_journal<Task, Result>& journal) {
  const std::size_t bound = stream_bound(opt, workers);
  // The tasks read and not finished are low .. read - 1, fewer than `bound`.
  window_ring<stream_slot<Result>> window;
  std::deque<std::uint64_t> index_of; // index_of[t - first_ticket] is ticket t's index
  std::uint64_t first_ticket = 0;
  std::uint64_t read = 0, low = 0;
  std::size_t out = 0; // read, not finished
  bool exhausted = false, stopped = false;
  auto hand_on = [&](completion<Result>&& c) { stopped = !deliver(std::move(c)) || stopped; };
  // Finishes the tasks from `low` on that can be: in task order, hands each on (recording it
  // first); in completion order, records those handed on.
  auto settle = [&] {
    while (low < read) {
      stream_slot<Result>& s = window.at(low, low);
      if (opt.unordered) {
        if (!s.handed_on) break;
        if (s.to_record) journal.record_encoded(low, s.fingerprint, s.record);
      } else {
        if (!s.ready || stopped) break;
        if (!s.restored && s.fingerprinted && s.ready->result.ok())
          journal.record(low, s.fingerprint, s.ready->result.value());
        hand_on(std::move(*s.ready));
      }
      s = stream_slot<Result>{};
      ++low;
      --out;
    }
    while (!index_of.empty() && index_of.front() < low) {
      index_of.pop_front();
      ++first_ticket;
    }
  };
  while (!stopped) {
    while (!exhausted && out < bound && !stopped) {
      std::optional<Task> task = next_task();
      if (!task) {
        exhausted = true;
        break;
      }
      stream_slot<Result>& s = window.at(read, low);
      Result value{};
      const auto verdict = journal.look_up(read, *task, s.fingerprint, s.fingerprinted, value);
      if (verdict == stream_journal<Task, Result>::verdict::changed) {
        s = stream_slot<Result>{};
        exhausted = true; // the source ends here: what came before completes
        break;
      }
      if (verdict == stream_journal<Task, Result>::verdict::restored) {
        s.restored = true;
        completion<Result> c{read, -1, 0.0, outcome<Result>(std::move(value))};
        ++read;
        ++out;
        if (opt.unordered) {
          s.handed_on = true;
          hand_on(std::move(c));
        } else {
          s.ready = std::move(c);
        }
        continue;
      }
      index_of.push_back(read);
      job.submit(std::move(*task));
      ++read;
      ++out;
    }
    settle();
    if (stopped || (out == 0 && exhausted)) break;
    if (out == 0) continue; // restored tasks only, so far: read on
    completion<Result> c = job.next();
    c.ticket = index_of[static_cast<std::size_t>(c.ticket - first_ticket)];
    if (!c.result.ok()) {
      task_failure f = c.result.failure();
      f.index = static_cast<std::size_t>(c.ticket);
      c.result = outcome<Result>(std::move(f));
    }
    stream_slot<Result>& s = window.at(c.ticket, low);
    if (opt.unordered) {
      if (c.result.ok() && s.fingerprinted) {
        stream_journal<Task, Result>::encode(c.result.value(), s.record);
        s.to_record = true;
      }
      s.handed_on = true;
      hand_on(std::move(c));
    } else {
      s.ready = std::move(c);
    }
    settle();
  }
  if (stopped) job.cancel();
  job.close();
}

/// Calls a stream's sink, given as for run()'s on_result: (index, worker, const Result&) for each
/// success, or (index, worker, const outcome<Result>&) for every task; it may return bool (false:
/// stop the stream) or nothing. Failures a value sink does not see are kept for task_error.
template <class Result, class Sink>
class stream_sink {
public:
  static constexpr bool takes_values = std::is_invocable_v<Sink&, std::uint64_t, int, const Result&>;
  static constexpr bool takes_outcomes = std::is_invocable_v<Sink&, std::uint64_t, int, const outcome<Result>&>;

  stream_sink(Sink& sink, bool fail_fast) : sink_(sink), fail_fast_(fail_fast) {}

  /// A result handed on from the job's store (drive_stream() without a journal): `value` when
  /// `failure` is null.
  bool operator()(std::uint64_t index, int worker, Result& value, task_failure* failure) {
    bool go_on = true;
    if constexpr (takes_outcomes) {
      const outcome<Result> o = failure ? outcome<Result>(std::move(*failure)) : outcome<Result>(std::move(value));
      go_on = call(index, worker, o);
    } else {
      if (failure == nullptr) go_on = call(index, worker, std::as_const(value));
    }
    if (failure != nullptr) {
      if constexpr (!takes_outcomes) failures_.push_back(std::move(*failure));
      if (fail_fast_) go_on = false;
    }
    return go_on;
  }

  bool operator()(completion<Result>&& c) {
    const bool ok = c.result.ok();
    bool go_on = true;
    if constexpr (takes_outcomes) {
      go_on = call(c.ticket, c.worker, std::as_const(c.result));
    } else {
      if (ok) go_on = call(c.ticket, c.worker, c.result.value());
    }
    if (!ok) {
      if constexpr (!takes_outcomes) failures_.push_back(c.result.failure());
      if (fail_fast_) go_on = false;
    }
    return go_on;
  }

  /// The failures a value sink did not see, in task order.
  std::vector<task_failure>& failures() {
    std::sort(failures_.begin(), failures_.end(),
              [](const task_failure& a, const task_failure& b) { return a.index < b.index; });
    return failures_;
  }

private:
  template <class Value>
  bool call(std::uint64_t index, int worker, const Value& value) {
    if constexpr (std::is_convertible_v<std::invoke_result_t<Sink&, std::uint64_t, int, const Value&>, bool>)
      return static_cast<bool>(sink_(index, worker, value));
    else {
      sink_(index, worker, value);
      return true;
    }
  }

  Sink& sink_;
  bool fail_fast_;
  std::vector<task_failure> failures_;
};

} // namespace detail
} // namespace foreman
