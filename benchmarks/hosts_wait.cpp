// Whether the master waits on one worker while the others need it: long tasks with large results
// over TCP between the test hosts of scripts/netns-hosts.sh (scripts/hosts-wait.sh runs it there).
//
//   mpirun -n <N> hosts_wait [--tasks T] [--ms M] [--bytes B] [--chunk C] [--busy]
//                            [--threads single|serialized|multiple] [--send-thread on|off|automatic]
//
// T tasks (default 20 per worker), each M ms long (default 50), each result a std::vector<char> of
// B bytes (default 8 MiB). A task stamps its start, fills its result, then sleeps until M ms after
// its start (--busy: spins instead) and stamps its end. The stamps travel in the result's first
// bytes; they are steady_clock readings, one clock for every rank of the machine, namespaces
// included (the test hosts make no time namespace). The master stamps each result's arrival in
// run()'s on_result callback and checks its header and 17 bytes spread over the rest.
// --chunk C: options::chunk_size (default 0, automatic). --threads: the thread support asked of MPI
// (boost::mpi::environment's mt_level; default: none asked, MPI_Init's). Where foreman has a send
// thread (options::send_thread), its default runs it under MPI_THREAD_MULTIPLE: a worker then
// moves its last reply's sends while a task runs. --send-thread P sets FOREMAN_SEND_THREAD=P in
// every rank's own environment before the pool starts (the hosts' launch agent passes none on):
// `on` runs the thread under MPI_THREAD_SERIALIZED too; a revision without the thread ignores it.
//
// Sleep, not spin, by default: the test hosts share the machine's cores, and 6 workers spinning on
// 2 cores would measure the cores, not the master; asleep, a worker calls no MPI either, which is
// what leaves a transfer unprogressed during a long task.
//
// Uses only what foreman offered before the non-blocking reply reader (commit f3779b6): run() with
// on_result, options::chunk_size; so the same source builds against both sides of it, and against
// both sides of the send thread (the thread level is asked of MPI, not of foreman).
//
// One unmeasured run of 2 tasks per worker first (connections, allocations), then the measured
// run. Prints one JSON line (times in seconds unless named _ms):
//   wall            run() on the master
//   tasks_per_s     T / wall; ideal: workers × 1000 / M (0 when M is 0)
//   busy_share      sum of the tasks' durations / (workers × wall)
//   idle_share      within the steady window (from the last worker's first start to the first
//                   worker's last end: every worker still has tasks), the share of time in which
//                   at least one worker was outside a task
//   gap_ms          per worker, from the end of a task to the start of its next: mean and max
//   latency_ms      from a task's end on its worker to its result's arrival on the master
//   verified        every result's header and sampled bytes right

#include <foreman/foreman.hpp>

#include <boost/mpi/communicator.hpp>
#include <boost/mpi/environment.hpp>
#include <boost/serialization/vector.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now().time_since_epoch()).count();
}

// The result's first bytes: what the master reads back.
struct stamp {
  std::uint64_t index;
  std::int64_t rank;
  std::int64_t start_ns;
  std::int64_t end_ns;
};
constexpr std::size_t header_bytes = sizeof(stamp);

char fill_of(std::uint64_t index) {
  return static_cast<char>(0x5a ^ (index * 131 + 7));
}

struct settings {
  std::size_t tasks = 0;
  double ms = 50.0;
  std::size_t bytes = std::size_t{8} << 20;
  std::size_t chunk = 0;
  bool busy = false;
};

std::vector<char> compute(std::uint64_t index, int rank, const settings& s) {
  const std::int64_t start = now_ns();
  std::vector<char> result(std::max(s.bytes, header_bytes), fill_of(index));
  const auto until = clock_type::time_point(std::chrono::nanoseconds(start)) +
                     std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double, std::milli>(s.ms));
  if (s.busy) {
    while (clock_type::now() < until) {
    }
  } else {
    std::this_thread::sleep_until(until);
  }
  const stamp st{index, rank, start, now_ns()};
  std::memcpy(result.data(), &st, sizeof st);
  return result;
}

bool check(const std::vector<char>& r, std::uint64_t index, const settings& s, stamp& st) {
  if (r.size() != std::max(s.bytes, header_bytes)) return false;
  std::memcpy(&st, r.data(), sizeof st);
  if (st.index != index) return false;
  const std::size_t rest = r.size() - header_bytes;
  for (std::size_t k = 0; k <= 16 && rest > 0; ++k)
    if (r[header_bytes + (rest - 1) * k / 16] != fill_of(index)) return false;
  return true;
}

struct figures {
  double busy_share = 0, idle_share = -1, gap_mean_ms = 0, gap_max_ms = 0;
  double latency_mean_ms = 0, latency_median_ms = 0, latency_max_ms = 0;
};

figures analyse(const std::vector<stamp>& st, const std::vector<std::int64_t>& arrival, int workers, double wall) {
  figures f;
  double busy = 0;
  std::vector<std::vector<std::pair<std::int64_t, std::int64_t>>> per(static_cast<std::size_t>(workers) + 1);
  std::vector<double> latency;
  for (std::size_t i = 0; i < st.size(); ++i) {
    busy += static_cast<double>(st[i].end_ns - st[i].start_ns) * 1e-9;
    if (st[i].rank >= 1 && st[i].rank <= workers)
      per[static_cast<std::size_t>(st[i].rank)].push_back({st[i].start_ns, st[i].end_ns});
    latency.push_back(static_cast<double>(arrival[i] - st[i].end_ns) * 1e-6);
  }
  f.busy_share = busy / (workers * wall);

  std::int64_t window_from = 0, window_to = 0;
  bool every_worker = true;
  std::size_t gaps = 0;
  double gap_sum = 0;
  for (int w = 1; w <= workers; ++w) {
    auto& v = per[static_cast<std::size_t>(w)];
    if (v.empty()) {
      every_worker = false;
      continue;
    }
    std::sort(v.begin(), v.end());
    window_from = w == 1 ? v.front().first : std::max(window_from, v.front().first);
    window_to = w == 1 ? v.back().second : std::min(window_to, v.back().second);
    for (std::size_t k = 1; k < v.size(); ++k) {
      const double gap = static_cast<double>(v[k].first - v[k - 1].second) * 1e-6;
      gap_sum += gap;
      f.gap_max_ms = std::max(f.gap_max_ms, gap);
      ++gaps;
    }
  }
  if (gaps > 0) f.gap_mean_ms = gap_sum / static_cast<double>(gaps);

  // Sweep: +1 at each start, -1 at each end, clipped to the window; time with fewer than
  // `workers` tasks running is time in which some worker was idle.
  if (every_worker && window_to > window_from) {
    std::vector<std::pair<std::int64_t, int>> events;
    for (int w = 1; w <= workers; ++w)
      for (const auto& [a, b] : per[static_cast<std::size_t>(w)]) {
        const std::int64_t from = std::max(a, window_from), to = std::min(b, window_to);
        if (to > from) {
          events.push_back({from, +1});
          events.push_back({to, -1});
        }
      }
    std::sort(events.begin(), events.end());
    int running = 0;
    std::int64_t last = window_from, idle = 0;
    for (const auto& [t, d] : events) {
      if (running < workers) idle += t - last;
      running += d;
      last = t;
    }
    if (running < workers) idle += window_to - last;
    f.idle_share = static_cast<double>(idle) / static_cast<double>(window_to - window_from);
  }

  std::sort(latency.begin(), latency.end());
  if (!latency.empty()) {
    double sum = 0;
    for (double l : latency) sum += l;
    f.latency_mean_ms = sum / static_cast<double>(latency.size());
    f.latency_median_ms = latency[latency.size() / 2];
    f.latency_max_ms = latency.back();
  }
  return f;
}

} // namespace

// The level --threads names (read before MPI starts), if any.
std::optional<boost::mpi::threading::level> thread_level(int argc, char* argv[]) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--threads") != 0) continue;
    const std::string v = argv[i + 1];
    if (v == "single") return boost::mpi::threading::single;
    if (v == "serialized") return boost::mpi::threading::serialized;
    if (v == "multiple") return boost::mpi::threading::multiple;
  }
  return std::nullopt;
}

int main(int argc, char* argv[]) {
  const auto level = thread_level(argc, argv);
  std::optional<boost::mpi::environment> env;
  if (level)
    env.emplace(argc, argv, *level);
  else
    env.emplace(argc, argv);
  boost::mpi::communicator world;
  int provided = MPI_THREAD_SINGLE;
  MPI_Query_thread(&provided);
  settings s;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
    if (v != nullptr && a == "--threads") {
      ++i; // read above
    } else if (v != nullptr && a == "--send-thread") {
      setenv("FOREMAN_SEND_THREAD", v, 1), ++i; // read by foreman when a run starts
    } else if (a == "--busy") {
      s.busy = true;
    } else if (v != nullptr && a == "--tasks") {
      s.tasks = std::strtoull(v, nullptr, 10), ++i;
    } else if (v != nullptr && a == "--ms") {
      s.ms = std::strtod(v, nullptr), ++i;
    } else if (v != nullptr && a == "--bytes") {
      s.bytes = std::strtoull(v, nullptr, 10), ++i;
    } else if (v != nullptr && a == "--chunk") {
      s.chunk = std::strtoull(v, nullptr, 10), ++i;
    } else {
      if (world.rank() == 0)
        std::fprintf(stderr, "usage: hosts_wait [--tasks T] [--ms M] [--bytes B] [--chunk C] [--busy] "
                             "[--threads single|serialized|multiple] [--send-thread on|off|automatic]\n");
      return 2;
    }
  }
  const int workers = world.size() - 1;
  if (workers < 1) {
    std::fprintf(stderr, "hosts_wait: needs 2 ranks or more\n");
    return 2;
  }
  if (s.tasks == 0) s.tasks = 20 * static_cast<std::size_t>(workers);

  foreman::master_worker<std::uint64_t, std::vector<char>> pool(world);
  foreman::options opt;
  opt.chunk_size = s.chunk;
  const int rank = world.rank();
  auto fn = [rank, s](std::uint64_t index) { return compute(index, rank, s); };

  std::vector<std::uint64_t> warm(2 * static_cast<std::size_t>(workers));
  for (std::size_t i = 0; i < warm.size(); ++i) warm[i] = i;
  (void)pool.run(warm, fn, opt);

  std::vector<std::uint64_t> tasks(s.tasks);
  for (std::size_t i = 0; i < tasks.size(); ++i) tasks[i] = i;
  std::vector<std::int64_t> arrival(tasks.size(), 0);
  std::vector<stamp> stamps(tasks.size());
  std::size_t wrong = 0;
  auto on_result = [&](std::size_t index, int, const std::vector<char>& r) {
    arrival[index] = now_ns();
    if (!check(r, index, s, stamps[index])) ++wrong;
  };
  const auto start = clock_type::now();
  const std::vector<std::vector<char>> results = pool.run(tasks, fn, on_result, opt);
  const double wall = std::chrono::duration<double>(clock_type::now() - start).count();
  if (!pool.is_master()) return 0;

  // The callback saw each result as it arrived; the returned copies are checked too.
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    stamp again{};
    if (arrival[i] == 0 || i >= results.size() || !check(results[i], i, s, again)) ++wrong;
  }
  const figures f = analyse(stamps, arrival, workers, wall);
  std::printf("{\"ranks\":%d,\"thread_level\":%d,\"workers\":%d,\"tasks\":%zu,\"ms\":%.1f,\"bytes\":%zu,\"chunk\":%zu,\"busy\":%s,"
              "\"wall\":%.4f,\"tasks_per_s\":%.2f,\"ideal\":%.2f,\"busy_share\":%.4f,\"idle_share\":%.4f,"
              "\"gap_mean_ms\":%.2f,\"gap_max_ms\":%.2f,\"latency_mean_ms\":%.2f,\"latency_median_ms\":%.2f,"
              "\"latency_max_ms\":%.2f,\"verified\":%s}\n",
              world.size(), provided, workers, tasks.size(), s.ms, s.bytes, s.chunk, s.busy ? "true" : "false", wall,
              static_cast<double>(tasks.size()) / wall, s.ms > 0 ? workers * 1000.0 / s.ms : 0.0, f.busy_share,
              f.idle_share, f.gap_mean_ms, f.gap_max_ms, f.latency_mean_ms, f.latency_median_ms, f.latency_max_ms,
              wrong == 0 ? "true" : "false");
  return wrong == 0 ? 0 : 1;
}
