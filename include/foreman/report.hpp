#pragma once
/// @file report.hpp
/// The report of a run: where the time went, per worker, as data and as a printable table.

#include <foreman/outcome.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <ostream>
#include <string>
#include <vector>

namespace foreman {

/// One row of a run_report: what one rank did during the run.
struct worker_report {
  int rank = 0;              ///< the worker's rank in the pool (0: the master, when it ran tasks itself)
  std::size_t tasks = 0;     ///< tasks whose final attempt ran on this rank, failed ones included
  std::size_t failed = 0;    ///< of those, how many failed
  double busy_seconds = 0.0; ///< time spent in the user's function, measured on the worker
  double utilization = 0.0;  ///< busy_seconds / wall time of the run, between 0 and 1
  bool lost = false;         ///< declared lost during the run (its unanswered tasks went elsewhere)
};

/// A summary of one run: wall time, throughput, per-worker load, and what went wrong. Build it
/// from master_worker::last_run() (or call master_worker::report()) on the master after run()
/// returned or threw task_error.
///
/// @code
/// auto outcomes = pool.run_outcomes(tasks, simulate);
/// if (pool.is_master()) pool.report().print(std::cout);
/// @endcode
///
/// prints, for examples/timeline.cpp under `mpirun -n 4`,
///
/// @code{.txt}
/// foreman run: 60 tasks in 0.419 s, 143.3 tasks/s, 4 failed, 0 retried, lost workers: none
///   worker  tasks  failed  busy(s)  utilization
///        1     22       1    0.416        99.3%
///        2     20       1    0.406        96.9%
///        3     18       2    0.394        94.0%
///      all     60       4    1.215        96.7%
/// @endcode
///
/// A worker's tasks include the failed ones; its busy time is measured on the worker, so a
/// utilization well below 100 % means it waited for work (or for the master).
struct run_report {
  double wall_seconds = 0.0;     ///< duration of run() on the master
  std::size_t tasks = 0;         ///< tasks in the run
  std::size_t replayed = 0;      ///< of those, results read back from the checkpoint journal
  double throughput = 0.0;       ///< tasks computed (not replayed) per second of wall time (0 for an instant run)
  std::size_t failures = 0;      ///< tasks that failed
  std::size_t retries = 0;       ///< tasks sent again after a lost worker (grouped: + batches sent again)
  std::vector<int> lost_workers; ///< ranks declared lost, in the order noticed
  double utilization = 0.0;      ///< total busy time / (rows × wall time), between 0 and 1
  /// One row per worker rank of the pool, in rank order, idle workers included; rank 0 appears
  /// when the master ran tasks itself (a pool without workers).
  std::vector<worker_report> workers;

  run_report() = default;

  /// Summarises `info`, e.g. master_worker::last_run().
  explicit run_report(const run_info& info);

  /// Prints the report as an aligned table: a summary line, one line per worker and a total.
  void print(std::ostream& out) const;

private:
  void from_totals(const run_info& info);
};

/// Same as `report.print(out)`.
inline std::ostream& operator<<(std::ostream& out, const run_report& report) {
  report.print(out);
  return out;
}

namespace detail {

/// The ranks that appear in a run: every worker of the pool, and any other rank a task ran on.
inline std::vector<int> ranks_of(const run_info& info) {
  std::vector<int> ranks;
  for (int r = 1; r <= info.workers; ++r) // a grouped run's sub-masters ran nothing: no rows
    if (!std::binary_search(info.sub_masters.begin(), info.sub_masters.end(), r)) ranks.push_back(r);
  for (const task_record& t : info.tasks) // ranks 1..workers are in: no search for them (a run may hold millions)
    if ((t.worker == 0 || t.worker > info.workers) && std::find(ranks.begin(), ranks.end(), t.worker) == ranks.end())
      ranks.push_back(t.worker);
  std::sort(ranks.begin(), ranks.end());
  return ranks;
}

/// The row of `rank` among `ranks` (sorted, from ranks_of(), and holding it).
inline std::size_t row_of(const std::vector<int>& ranks, int rank) {
  return static_cast<std::size_t>(std::lower_bound(ranks.begin(), ranks.end(), rank) - ranks.begin());
}

/// printf into a std::string, for the few numbers the reports format.
template <class... Args>
std::string formatted(const char* pattern, Args... args) {
  char text[64];
  const int n = std::snprintf(text, sizeof text, pattern, args...);
  return std::string(text, n < 0 ? 0 : std::min<std::size_t>(static_cast<std::size_t>(n), sizeof text - 1));
}

} // namespace detail

// ---- implementation ----------------------------------------------------------------------------

inline run_report::run_report(const run_info& info)
    : wall_seconds(info.wall_seconds), tasks(info.tasks.size()), replayed(info.replayed), failures(info.failures),
      retries(info.retries), lost_workers(info.lost_workers) {
  if (info.tasks.empty() && !info.totals.empty()) {
    from_totals(info);
    return;
  }
  // A stream's tasks read back from its journal were never submitted to its job, so they have no
  // record (a run()'s and a job's replayed tasks do): they count here.
  const auto recorded_replays = static_cast<std::size_t>(
      std::count_if(info.tasks.begin(), info.tasks.end(), [](const task_record& t) { return t.replayed; }));
  if (replayed > recorded_replays) tasks += replayed - recorded_replays;
  if (wall_seconds > 0) throughput = static_cast<double>(tasks - replayed) / wall_seconds;
  const std::vector<int> ranks = detail::ranks_of(info);
  for (int r : ranks) {
    worker_report row;
    row.rank = r;
    row.lost = std::find(lost_workers.begin(), lost_workers.end(), r) != lost_workers.end();
    workers.push_back(row);
  }
  double busy = 0.0;
  for (const task_record& t : info.tasks) {
    if (t.worker < 0) continue;
    worker_report& row = workers[detail::row_of(ranks, t.worker)];
    ++row.tasks;
    row.failed += t.failed ? 1 : 0;
    row.busy_seconds += t.seconds;
    busy += t.seconds;
  }
  if (wall_seconds > 0) {
    for (worker_report& row : workers) row.utilization = row.busy_seconds / wall_seconds;
    if (!workers.empty()) utilization = busy / (wall_seconds * static_cast<double>(workers.size()));
  }
}

// A job or stream without per-task records: the rows come from the sums per rank.
inline void run_report::from_totals(const run_info& info) {
  double busy = 0.0;
  for (std::size_t r = 0; r < info.totals.size(); ++r) {
    const worker_totals& t = info.totals[r];
    const bool pool_worker = r >= 1 && static_cast<int>(r) <= info.workers;
    if (!pool_worker && t.tasks == 0) continue; // rank 0 appears only when it ran tasks
    worker_report row;
    row.rank = static_cast<int>(r);
    row.tasks = t.tasks;
    row.failed = t.failed;
    row.busy_seconds = t.busy_seconds;
    row.lost = std::find(lost_workers.begin(), lost_workers.end(), row.rank) != lost_workers.end();
    tasks += t.tasks;
    busy += t.busy_seconds;
    workers.push_back(row);
  }
  tasks += replayed; // a stream's tasks read back from its journal ran on no rank
  if (wall_seconds > 0) {
    throughput = static_cast<double>(tasks - replayed) / wall_seconds;
    for (worker_report& row : workers) row.utilization = row.busy_seconds / wall_seconds;
    if (!workers.empty()) utilization = busy / (wall_seconds * static_cast<double>(workers.size()));
  }
}

inline void run_report::print(std::ostream& out) const {
  std::string lost = lost_workers.empty() ? "none" : "";
  for (int r : lost_workers) lost += (lost.empty() ? "" : ", ") + std::to_string(r);
  out << "foreman run: " << tasks << " tasks in " << detail::formatted("%.3f", wall_seconds) << " s, ";
  if (replayed > 0) out << replayed << " replayed from the checkpoint, ";
  out << detail::formatted("%.1f", throughput) << " tasks/s, " << failures << " failed, " << retries
      << " retried, lost workers: " << lost << '\n';

  // Cells first, then each column right-aligned to its widest cell.
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"worker", "tasks", "failed", "busy(s)", "utilization", ""});
  auto add = [&rows](std::string name, std::size_t n, std::size_t failed, double busy, double use, bool lost) {
    rows.push_back({std::move(name), std::to_string(n), std::to_string(failed), detail::formatted("%.3f", busy),
                    detail::formatted("%.1f%%", use * 100.0), lost ? "lost" : ""});
  };
  std::size_t total_tasks = 0, total_failed = 0;
  double total_busy = 0.0;
  for (const worker_report& w : workers) {
    add(std::to_string(w.rank), w.tasks, w.failed, w.busy_seconds, w.utilization, w.lost);
    total_tasks += w.tasks;
    total_failed += w.failed;
    total_busy += w.busy_seconds;
  }
  add("all", total_tasks, total_failed, total_busy, utilization, false);

  std::vector<std::size_t> width(rows.front().size(), 0);
  for (const auto& row : rows)
    for (std::size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t c = 0; c + 1 < row.size(); ++c) line += std::string(width[c] + 2 - row[c].size(), ' ') + row[c];
    if (!row.back().empty()) line += "  " + row.back();
    out << line << '\n';
  }
}

} // namespace foreman
