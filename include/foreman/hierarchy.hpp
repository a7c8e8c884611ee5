#pragma once
/// @file hierarchy.hpp
/// How a pool's ranks are arranged: one master serving every worker (flat), or a master serving
/// sub-masters that each serve a group of workers (hierarchical dispatch).

/// The dispatch a master_worker that names none gets. Not for programs: the test suite sets it to
/// foreman::hierarchical_dispatch to run suites written for flat pools in grouped ones. Every
/// translation unit of a program must see the same value.
#ifndef FOREMAN_DETAIL_DEFAULT_DISPATCH
#define FOREMAN_DETAIL_DEFAULT_DISPATCH ::foreman::flat_dispatch
#endif

namespace foreman {

/// master_worker's third template argument: one master serves every worker (the default).
struct flat_dispatch {};
/// master_worker's third template argument: the pool may group its workers under sub-masters
/// (foreman::hierarchy), chosen when it is built.
struct hierarchical_dispatch {};

template <class Task, class Result, class Dispatch = FOREMAN_DETAIL_DEFAULT_DISPATCH>
class master_worker;

/// The arrangement of the ranks of a `master_worker<Task, Result, hierarchical_dispatch>`, chosen
/// when the pool is built (its constructor's second argument).
///
/// Flat: rank 0 sends every chunk and takes every reply; its work per second grows with the
/// worker count (docs/design.md, "Toward 10,000 workers"). Grouped: ranks 1, 2, ... are cut into
/// consecutive groups of `group_size` + 1 ranks; the first rank of each group is a sub-master and
/// the others its workers. The master sends each sub-master a batch of many tasks and gets back
/// one message with their results; the sub-master hands the batch out to its workers as the master
/// of a flat pool would (automatic chunks, timeouts, re-dispatch after a lost worker). The master
/// then sees one peer per group instead of one per worker.
///
/// Grouping applies to run(), run_outcomes() and run_into(); jobs and streams (start(),
/// run_stream(), reduce()) are served flat by the master on every rank, sub-masters included.
/// A sub-master runs no task itself: a grouped pool of P ranks has P - 1 - (number of groups)
/// ranks that compute. A sub-master that is lost (dead, or silent for task_timeout + 0.1 s while
/// it holds a batch, as a worker: it sends progress notes while its group runs the batch) has its
/// batch run again on another group, and its workers count as lost.
///
/// The master's choice holds on every rank (it is broadcast as the pool is built). The
/// environment variable FOREMAN_GROUP_SIZE, read on the master, replaces automatic() (the
/// default; a choice written in the code is kept): a number of workers per sub-master, or 0 for
/// flat. A pool of flat_dispatch (master_worker's default) is always flat and pays nothing for
/// this: grouped runs compile into about twice the code of flat ones.
struct hierarchy {
  /// Workers per sub-master; 0: flat. Negative: automatic (see automatic()).
  int group_size = -1;

  /// Flat below automatic_threshold workers (the default: every pool of this machine's scale);
  /// from there, groups of about √(workers) workers (100 at 10,000), which gives the master and
  /// each sub-master about as many peers.
  static constexpr hierarchy automatic() noexcept { return hierarchy{-1}; }
  /// One master serving every worker, whatever the size.
  static constexpr hierarchy flat() noexcept { return hierarchy{0}; }
  /// Sub-masters serving `workers` workers each: the last group takes the ranks left over (from
  /// 1 to `workers` + 1 workers). Fewer than 1 means flat; so does a pool of fewer than 3 ranks.
  static constexpr hierarchy groups(int workers) noexcept { return hierarchy{workers < 1 ? 0 : workers}; }

  /// The worker count from which automatic() groups: where the model of docs/design.md puts
  /// a flat master's cost per message at about 8 µs (c(P) ≈ 0.6 µs + 7.5 ns × P).
  static constexpr int automatic_threshold = 1024;
};

} // namespace foreman
