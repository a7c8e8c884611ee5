#pragma once
/// @file options.hpp
/// The knobs of a run, gathered in one aggregate so that new knobs never break callers.

#include <cstddef>

namespace foreman {

/// How tasks are placed on workers.
enum class schedule {
  /// A free worker gets the next unassigned task (self-scheduling). Best for uneven tasks.
  dynamic,
  /// Task i runs on worker 1 + (i mod worker_count()): deterministic placement, so that
  /// "worker r computed chunk r" holds, as in hand-written master/worker programs.
  round_robin,
};

/// Options of master_worker::run(). Set the fields you care about; the others keep their
/// defaults. Only the master's options matter: workers ignore the options they are given.
///
/// @code
/// foreman::options opt;
/// opt.schedule = foreman::schedule::round_robin;
/// auto results = pool.run(tasks, fn, opt);
/// @endcode
struct options {
  /// Placement of tasks on workers.
  foreman::schedule schedule = schedule::dynamic;

  /// Tasks sent to a worker in one message. Larger chunks amortise the per-message cost of
  /// tiny tasks; 1 gives the finest load balance.
  std::size_t chunk_size = 1;

  /// Messages (chunks) a worker may hold at once: with 2 or more a worker finds its next
  /// task already delivered when it finishes one, instead of waiting a round trip.
  std::size_t tasks_in_flight = 2;
};

} // namespace foreman
