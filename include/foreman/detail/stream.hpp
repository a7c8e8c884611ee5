#pragma once
/// @file stream.hpp
/// Streaming on a job (master_worker::run_stream(), reduce()): tasks read lazily from a source,
/// at most a bounded number ahead of the results handed to the sink, which gets them in task
/// order (holding only those that arrived early) or in completion order.

#include <foreman/errors.hpp>
#include <foreman/job.hpp>
#include <foreman/options.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
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

/// Runs a stream on the master's side of an open job: submits what next_task() returns (nullopt:
/// the source is exhausted) while fewer than the bound are submitted and not yet handed on, and
/// hands each completion to deliver(completion&&), which returns false to stop early (the job is
/// then cancelled). In task order unless options::unordered. Closes the job at the end.
template <class Task, class Result, class NextTask, class Deliver>
void drive_stream(job<Task, Result>& job, NextTask& next_task, Deliver& deliver, const options& opt, int workers) {
  const std::size_t bound = stream_bound(opt, workers);
  // In task order: completions that came before an earlier ticket's wait in a ring, ticket t at
  // t & (size - 1), its size a power of two. The tickets out (submitted, not handed on) are
  // next_in_order .. next_in_order + out - 1, fewer than `bound`: the ring grows (doubles) when a
  // ticket falls past it, so it never exceeds `bound` rounded up to a power of two, and a stream
  // whose tickets complete about in order keeps it small.
  std::vector<std::optional<completion<Result>>> early(opt.unordered ? 0 : 64);
  auto place = [&](std::uint64_t t) -> std::optional<completion<Result>>& {
    return early[static_cast<std::size_t>(t) & (early.size() - 1)];
  };
  std::uint64_t next_in_order = 0;
  std::size_t out = 0;
  bool exhausted = false, stopped = false;
  while (!stopped) {
    while (!exhausted && out < bound) {
      std::optional<Task> task = next_task();
      if (!task) {
        exhausted = true;
        break;
      }
      job.submit(std::move(*task));
      ++out;
    }
    if (out == 0) break;
    completion<Result> c = job.next();
    if (opt.unordered) {
      --out;
      stopped = !deliver(std::move(c));
      continue;
    }
    if (c.ticket - next_in_order >= early.size()) {
      std::vector<std::optional<completion<Result>>> wider(early.size());
      while (c.ticket - next_in_order >= wider.size()) wider.resize(2 * wider.size());
      for (std::uint64_t t = next_in_order; t < next_in_order + early.size(); ++t)
        if (auto& from = place(t)) wider[static_cast<std::size_t>(t) & (wider.size() - 1)] = std::move(from);
      early.swap(wider);
    }
    place(c.ticket) = std::move(c);
    for (auto* slot = &place(next_in_order); *slot && !stopped; slot = &place(next_in_order)) {
      completion<Result> ready = std::move(**slot);
      slot->reset();
      ++next_in_order;
      --out;
      stopped = !deliver(std::move(ready));
    }
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
