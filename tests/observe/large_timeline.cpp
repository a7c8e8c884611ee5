// large_timeline: writes the HTML timeline of a made-up run far larger than any test can run (by
// default 1,000,000 tasks on 256 workers), without MPI, for check_timeline.py's `large` check.
//
//   large_timeline PREFIX [TASKS [WORKERS]]
//
// writes PREFIX.html (write_timeline_html()) and PREFIX.expect.json, what the page must show: the
// tasks and failures per worker, the lost workers, and where each failed task ran.
//
// The run is what a greedy master makes of it: each task goes to the worker that is free first,
// 50 us after it became free (8 ms for a tenth of the run, from 40 %: a master too slow to keep
// the workers busy), and takes 4 to 16 ms; task i fails when i % 9973 == 17; three workers are
// lost at a quarter, half and three quarters of the run, the task each held sent again (attempt 2)
// to the next worker free.
#include <foreman/timeline.hpp>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <ostream>
#include <queue>
#include <string>
#include <utility>
#include <vector>

namespace {

struct made_up_run {
  foreman::run_info info;
  std::vector<foreman::task_failure> failures;
};

made_up_run make_run(std::size_t tasks, int workers) {
  constexpr double gap = 50e-6, slow_gap = 8e-3, shortest = 4e-3, spread = 12e-3;
  const double expected_wall = static_cast<double>(tasks) * (shortest + spread / 2 + gap) / workers;
  auto gap_at = [&](double t) { return t >= 0.4 * expected_wall && t < 0.5 * expected_wall ? slow_gap : gap; };
  // Who is lost, and when (ranks in increasing order of loss time).
  std::vector<std::pair<int, double>> losses;
  if (workers >= 4)
    for (int k = 1; k <= 3; ++k) losses.emplace_back(workers * k / 4, expected_wall * k / 4);
  auto loss_time = [&](int rank) {
    for (const auto& l : losses)
      if (l.first == rank) return l.second;
    return 1e300;
  };

  made_up_run run;
  foreman::run_info& info = run.info;
  info.workers = workers;
  info.tasks.resize(tasks);
  using slot = std::pair<double, int>; // when a worker is free, and its rank
  std::priority_queue<slot, std::vector<slot>, std::greater<slot>> free;
  for (int r = 1; r <= workers; ++r) free.emplace(0.0, r);
  for (std::size_t i = 0; i < tasks; ++i) {
    foreman::task_record& t = info.tasks[i];
    // Durations spread evenly, in an order that looks random: 7919 is prime to 1000.
    const double seconds = shortest + spread * static_cast<double>(i * 7919 % 1000) / 1000.0;
    for (t.attempts = 1;; ++t.attempts) {
      const auto [at, rank] = free.top();
      free.pop();
      t.worker = rank;
      t.started = at + gap_at(at);
      t.finished = t.started + seconds;
      const double lost_at = loss_time(rank);
      if (t.finished <= lost_at) break;
      // Lost: while it ran this task (sent again: attempt 2), or before it (not an attempt).
      foreman::worker_loss loss;
      loss.worker = rank;
      loss.reason = foreman::loss_reason::process_exited;
      loss.noticed = std::max(lost_at, at);
      loss.tasks_held = t.started < lost_at ? 1 : 0;
      info.losses.push_back(loss);
      info.lost_workers.push_back(rank);
      info.retries += loss.tasks_held;
      if (loss.tasks_held == 0) --t.attempts;
    }
    t.seconds = seconds;
    t.failed = i % 9973 == 17;
    if (t.failed)
      run.failures.push_back({i, t.worker, "std::runtime_error", "task " + std::to_string(i) + " hit a bad input"});
    free.emplace(t.finished, t.worker);
    info.wall_seconds = std::max(info.wall_seconds, t.finished);
  }
  info.wall_seconds += 1e-3;
  info.failures = run.failures.size();
  info.messages = tasks + info.retries;
  return run;
}

// What the page must show, for the checker: JSON, numbers only.
void write_expectation(std::ostream& out, const made_up_run& run) {
  const foreman::run_report report(run.info);
  std::size_t retried = 0; // tasks shown as ok after a lost worker
  for (const foreman::task_record& t : run.info.tasks) retried += !t.failed && t.attempts > 1 ? 1 : 0;
  out << "{\"tasks\":" << run.info.tasks.size() << ",\"workers\":" << run.info.workers
      << ",\"failures\":" << run.failures.size() << ",\"retried\":" << retried << ",\n\"lost\":[";
  for (std::size_t k = 0; k < run.info.lost_workers.size(); ++k) out << (k ? "," : "") << run.info.lost_workers[k];
  out << "],\n\"per_worker\":{";
  for (std::size_t k = 0; k < report.workers.size(); ++k)
    out << (k ? "," : "") << '"' << report.workers[k].rank << "\":[" << report.workers[k].tasks << ','
        << report.workers[k].failed << ']';
  out << "},\n\"failed\":[";
  for (std::size_t k = 0; k < run.failures.size(); ++k) {
    const foreman::task_record& t = run.info.tasks[run.failures[k].index];
    out << (k ? ",\n" : "") << "[" << run.failures[k].index << ',' << t.worker << ','
        << foreman::detail::formatted("%.17g", t.started) << ']';
  }
  out << "]}\n";
}

} // namespace

int main(int argc, char* argv[]) {
  if (argc < 2 || argc > 4) {
    std::cerr << "usage: large_timeline PREFIX [TASKS [WORKERS]]\n";
    return 2;
  }
  const std::string prefix = argv[1];
  const std::size_t tasks = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 1000000;
  const int workers = argc > 3 ? std::atoi(argv[3]) : 256;
  if (tasks == 0 || workers < 1) {
    std::cerr << "large_timeline: TASKS and WORKERS must be positive\n";
    return 2;
  }
  const made_up_run run = make_run(tasks, workers);
  std::ofstream html(prefix + ".html", std::ios::binary), expect(prefix + ".expect.json");
  foreman::write_timeline_html(html, run.info, run.failures);
  write_expectation(expect, run);
  html.close();
  expect.close();
  if (!html || !expect) {
    std::cerr << "large_timeline: cannot write " << prefix << ".html or .expect.json\n";
    return 1;
  }
  return 0;
}
