// Chaos: repeated runs of a few thousand tasks in which random workers die or stop at random
// moments, with default options (a task_timeout only in a run where a worker stops). Run under `mpirun
// --enable-recovery --mca async_mpi_finalize 1 -n 5` (or more) with a seed as the first argument: every rank derives
// the same plan from it. Each of the job's runs picks a victim among the workers not yet hit (one worker always stays
// untouched), a moment (its n-th task of that run) and a way: SIGKILL, SIGSTOP (a hang: noticed through task_timeout),
// exit(3) or abort(). Every result must be right and every run must end; the master prints
//   "chaos seed S: 0 check(s) failed, runs R tasks T lost L retries Y killed K stopped P exited E aborted A"

#include <foreman/foreman.hpp>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

namespace {

std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

enum class way { kill, stop, exit, abort };
const char* name_of(way w) {
  switch (w) {
  case way::kill:
    return "SIGKILL";
  case way::stop:
    return "SIGSTOP";
  case way::exit:
    return "exit(3)";
  case way::abort:
    return "abort()";
  }
  return "?";
}

int failures = 0;
void check(bool condition, const std::string& what) {
  if (condition) return;
  std::fprintf(stderr, "CHECK FAILED: %s\n", what.c_str());
  ++failures;
}

} // namespace

int main(int argc, char** argv) {
  boost::mpi::environment env(argc, argv);
  const std::uint64_t seed = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1;
  foreman::master_worker<std::uint64_t, std::uint64_t> pool;
  const int workers = pool.worker_count();
  if (workers < 2) {
    if (pool.is_master()) std::printf("chaos needs at least 2 workers\n");
    return 1;
  }
  constexpr std::size_t task_count = 3000;
  const int runs = 3;
  std::vector<char> hit(static_cast<std::size_t>(workers) + 1, 0);
  int hits = 0;
  std::size_t total_tasks = 0, total_retries = 0, total_lost = 0;
  int counts[4] = {0, 0, 0, 0};

  for (int run = 0; run < runs; ++run) {
    std::uint64_t r = mix(seed * 1000 + static_cast<std::uint64_t>(run));
    // The victim of this run, if a worker may still be hit (one always stays untouched).
    int victim = 0;
    if (hits < workers - 1) {
      int pick = static_cast<int>(r % static_cast<std::uint64_t>(workers - hits));
      for (int w = 1; w <= workers; ++w)
        if (!hit[static_cast<std::size_t>(w)] && pick-- == 0) victim = w;
    }
    r = mix(r);
    const std::size_t moment = 1 + r % (task_count / static_cast<std::size_t>(workers) / 2);
    r = mix(r);
    const way how = static_cast<way>(r % 4);
    if (victim != 0) {
      hit[static_cast<std::size_t>(victim)] = 1;
      ++hits;
      ++counts[static_cast<int>(how)];
    }

    std::size_t served = 0;
    auto fn = [&](std::uint64_t x) -> std::uint64_t {
      // 0 to 200 µs of work: uneven tasks, automatic chunks of many sizes
      const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(mix(x) % 200);
      while (std::chrono::steady_clock::now() < until) {
      }
      if (pool.rank() == victim && ++served == moment) {
        switch (how) {
        case way::kill:
          std::raise(SIGKILL);
          break;
        case way::stop:
          std::raise(SIGSTOP);
          break;
        case way::exit:
          std::exit(3);
        case way::abort:
          std::abort();
        }
      }
      return mix(x ^ 0x5bd1e995u);
    };
    std::vector<std::uint64_t> tasks(task_count);
    for (std::size_t i = 0; i < task_count; ++i)
      tasks[i] = seed * 1000003u + i + static_cast<std::uint64_t>(run) * 7919u;
    foreman::options opt;
    // Default options, except where a worker stops: a stopped process is a hang, which only a
    // timeout can tell. A dead one must be noticed without it.
    if (victim != 0 && how == way::stop) opt.task_timeout = std::chrono::seconds(2);
    opt.announce_faults = false;
    const auto results = pool.run(tasks, fn, opt);
    if (!pool.is_master()) continue;
    const foreman::run_info& info = pool.last_run();
    std::size_t wrong = 0;
    for (std::size_t i = 0; i < task_count; ++i) wrong += results[i] != mix(tasks[i] ^ 0x5bd1e995u) ? 1 : 0;
    check(wrong == 0, "run " + std::to_string(run) + ": " + std::to_string(wrong) + " wrong results");
    check(info.failures == 0, "run " + std::to_string(run) + ": " + std::to_string(info.failures) + " failed tasks");
    for (int lost : info.lost_workers)
      check(lost == victim, "run " + std::to_string(run) + ": worker " + std::to_string(lost) +
                                " lost, but the victim was " + std::to_string(victim));
    std::printf("chaos seed %llu run %d: victim %d by %s at its task %zu; lost %zu, retries %zu\n",
                static_cast<unsigned long long>(seed), run, victim, victim ? name_of(how) : "-", moment,
                info.lost_workers.size(), info.retries);
    total_tasks += task_count;
    total_retries += info.retries;
    total_lost += info.lost_workers.size();
  }
  if (pool.is_master())
    std::printf("chaos seed %llu: %d check(s) failed, runs %d tasks %zu lost %zu retries %zu killed %d stopped %d "
                "exited %d aborted %d\n",
                static_cast<unsigned long long>(seed), failures, runs, total_tasks, total_lost, total_retries,
                counts[0], counts[1], counts[2], counts[3]);
  return failures == 0 ? 0 : 1;
}
