// Chaos: repeated runs of a few thousand tasks in which random workers die or stop at random
// moments, with default options (a task_timeout only in a run where a worker stops). Run under `mpirun
// --enable-recovery --mca async_mpi_finalize 1 -n 5` (or more) with a seed as the first argument: every rank derives
// the same plan from it. Each of the job's runs picks a victim among the workers not yet hit (one worker always stays
// untouched), a moment (its n-th task of that run) and a way: SIGKILL, SIGSTOP (a hang: noticed through task_timeout),
// exit(3) or abort(). Every result must be right and every run must end; the master prints
//   "chaos seed S: 0 check(s) failed, runs R tasks T lost L retries Y killed K stopped P exited E aborted A spared S"
//
// In a grouped pool (built with hierarchical_dispatch as the default, FOREMAN_GROUP_SIZE set: CTest's
// chaos_grouped_seed<S>.7ranks, sub-masters 1 and 4) a victim may also be a sub-master, which runs no
// task: a thread of its own kills, stops, _Exit(3)s or aborts it a random 2-40 ms into the run, if the
// run still goes on then (else it lives: "spared"). Its group is cut off with it, so its workers may be
// reported lost too, and are never picked afterwards; a victim is picked only while a worker outside
// every group hit stays untouched. A stopped sub-master is lost as a stopped worker is, once silent for
// task_timeout + 0.1 s (it sends progress notes while its group runs a batch). The master's first line
// names the pool's layout ("chaos layout: sub-masters 1 4", or "flat").

#include <foreman/foreman.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
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

// Kills or ends this process `delay` after its construction, unless it was destroyed first (the run
// returned): a sub-master's death while it serves its group.
class delayed_death {
public:
  delayed_death(std::chrono::milliseconds delay, way how)
      : thread_([this, delay, how] {
          const auto until = std::chrono::steady_clock::now() + delay;
          while (!stopped_ && std::chrono::steady_clock::now() < until)
            std::this_thread::sleep_for(std::chrono::microseconds(200));
          if (stopped_) return;
          switch (how) {
          case way::kill:
            std::raise(SIGKILL);
            break;
          case way::exit:
            std::_Exit(3); // not exit(): the main thread is inside MPI, static destructors must not run
          case way::stop:
            std::raise(SIGSTOP); // the whole process
            break;
          case way::abort:
            std::abort();
          }
        }) {}
  delayed_death(const delayed_death&) = delete;
  delayed_death& operator=(const delayed_death&) = delete;
  ~delayed_death() {
    stopped_ = true;
    thread_.join();
  }

private:
  std::atomic<bool> stopped_{false};
  std::thread thread_;
};

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
  const std::vector<int> subs = pool.sub_masters(); // groups: [subs[g], subs[g + 1]), the last to the pool's end
  auto is_sub = [&](int r) { return std::find(subs.begin(), subs.end(), r) != subs.end(); };
  auto group_end = [&](int s) { // one past the last worker of sub-master s's group
    const auto next = std::upper_bound(subs.begin(), subs.end(), s);
    return next == subs.end() ? workers + 1 : *next;
  };
  if (pool.is_master()) {
    std::string layout = subs.empty() ? " flat" : " sub-masters";
    for (int s : subs) layout += " " + std::to_string(s);
    std::printf("chaos layout:%s\n", layout.c_str());
  }
  std::vector<char> hit(static_cast<std::size_t>(workers) + 1, 0);
  // Hitting victim v: v, and the group it cuts off if it is a sub-master.
  auto hit_by = [&](int v) {
    std::vector<int> ranks{v};
    if (is_sub(v))
      for (int w = v + 1; w < group_end(v); ++w) ranks.push_back(w);
    return ranks;
  };
  // Ranks that run tasks (not sub-masters) and are not hit.
  auto untouched_runners = [&] {
    int n = 0;
    for (int w = 1; w <= workers; ++w) n += !hit[static_cast<std::size_t>(w)] && !is_sub(w) ? 1 : 0;
    return n;
  };
  std::size_t total_tasks = 0, total_retries = 0, total_lost = 0;
  int counts[4] = {0, 0, 0, 0};
  int spared = 0; // sub-masters picked whose run ended before their death

  for (int run = 0; run < runs; ++run) {
    std::uint64_t r = mix(seed * 1000 + static_cast<std::uint64_t>(run));
    // The victim of this run: among the ranks not yet hit whose hit leaves a task runner untouched.
    std::vector<int> candidates;
    for (int w = 1; w <= workers; ++w) {
      if (hit[static_cast<std::size_t>(w)]) continue;
      int runners_hit = 0;
      for (int h : hit_by(w)) runners_hit += !hit[static_cast<std::size_t>(h)] && !is_sub(h) ? 1 : 0;
      if (untouched_runners() - runners_hit >= 1) candidates.push_back(w);
    }
    const int victim = candidates.empty() ? 0 : candidates[r % candidates.size()];
    r = mix(r);
    const std::size_t moment = 1 + r % (task_count / static_cast<std::size_t>(workers) / 2);
    r = mix(r);
    const way how = static_cast<way>(r % 4);
    const auto delay = std::chrono::milliseconds(2 + static_cast<int>(mix(r) % 39));
    const std::vector<int> cut = victim != 0 ? hit_by(victim) : std::vector<int>{};
    for (int h : cut) hit[static_cast<std::size_t>(h)] = 1;
    if (victim != 0) ++counts[static_cast<int>(how)];

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
    std::optional<delayed_death> death;
    if (pool.rank() == victim && is_sub(victim)) death.emplace(delay, how);
    const auto results = pool.run(tasks, fn, opt);
    death.reset();
    if (!pool.is_master()) continue;
    const foreman::run_info& info = pool.last_run();
    std::size_t wrong = 0;
    for (std::size_t i = 0; i < task_count; ++i) wrong += results[i] != mix(tasks[i] ^ 0x5bd1e995u) ? 1 : 0;
    check(wrong == 0, "run " + std::to_string(run) + ": " + std::to_string(wrong) + " wrong results");
    check(info.failures == 0, "run " + std::to_string(run) + ": " + std::to_string(info.failures) + " failed tasks");
    for (int lost : info.lost_workers)
      check(std::find(cut.begin(), cut.end(), lost) != cut.end(),
            "run " + std::to_string(run) + ": worker " + std::to_string(lost) + " lost, but the victim was " +
                std::to_string(victim));
    const bool sub_victim = victim != 0 && is_sub(victim);
    const bool victim_lost =
        std::find(info.lost_workers.begin(), info.lost_workers.end(), victim) != info.lost_workers.end();
    if (sub_victim && !victim_lost) ++spared;
    if (sub_victim && victim_lost) // its workers, cut off with it, are lost with it (docs/api.md, "Grouped pools")
      for (int w : cut)
        check(std::find(info.lost_workers.begin(), info.lost_workers.end(), w) != info.lost_workers.end(),
              "run " + std::to_string(run) + ": worker " + std::to_string(w) + " of lost sub-master " +
                  std::to_string(victim) + " not reported lost");
    if (sub_victim)
      std::printf("chaos seed %llu run %d: victim sub-master %d by %s %lld ms into the run%s; lost %zu, retries %zu\n",
                  static_cast<unsigned long long>(seed), run, victim, name_of(how),
                  static_cast<long long>(delay.count()), victim_lost ? "" : " (spared: the run had ended)",
                  info.lost_workers.size(), info.retries);
    else
      std::printf("chaos seed %llu run %d: victim %d by %s at its task %zu; lost %zu, retries %zu\n",
                  static_cast<unsigned long long>(seed), run, victim, victim ? name_of(how) : "-", moment,
                  info.lost_workers.size(), info.retries);
    total_tasks += task_count;
    total_retries += info.retries;
    total_lost += info.lost_workers.size();
  }
  if (pool.is_master())
    std::printf("chaos seed %llu: %d check(s) failed, runs %d tasks %zu lost %zu retries %zu killed %d stopped %d "
                "exited %d aborted %d spared %d\n",
                static_cast<unsigned long long>(seed), failures, runs, total_tasks, total_lost, total_retries,
                counts[0], counts[1], counts[2], counts[3], spared);
  return failures == 0 ? 0 : 1;
}
