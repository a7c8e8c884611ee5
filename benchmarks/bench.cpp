// foreman's benchmark: foreman against the master/worker loops people write by hand, with
// identical tasks, in one program so that the ratios come from the same run.
//
//   mpirun -n <N> bench <workload> <implementation>[,<implementation>...] [--reps R] [--tasks T] [--bytes B]
//                       [--sleep-us U] [--seconds S]
//
// workloads        tiny     T uint64 -> uint64 tasks (x*x+1), default T = 200000
//                  struct   T tasks holding a std::string (the archive path), default 200000
//                  compute  64 tasks of ~20 ms CPU each; reports the speedup over serial time,
//                           the serial time measured again at the start of every round
//                  payload  tasks and results of B bytes each (std::vector<char>)
//                  latency  one task at a time (needs -n 2): microseconds per task
// implementations  foreman        default options
//                  foreman_plain  chunk_size 1, tasks_in_flight 1: one task per message, as
//                                 the hand-written loops (also ceiling's one task per message)
//                  raw            MPI C API: self-scheduling, one task per message, one in
//                                 flight per worker, blocking MPI_Recv(MPI_ANY_SOURCE)
//                  raw_poll       the raw loop polling posted receives (MPI_Irecv + MPI_Test) instead
//                                 of blocking in MPI_Recv (tiny, latency): the price of never
//                                 blocking on one rank
//                  boost          the same loop with Boost.MPI and Boost.Serialization
//                  split          (compute) no scheduling: each worker runs a fixed share without
//                                 messages, the master sleeps: the machine's ceiling
//                  foreman_returning  (payload) foreman with a function that returns a fresh
//                                 result each task, instead of writing into the one it is given
//                  pingpong       (payload) raw MPI ping-pong of each task's bytes between ranks 0
//                                 and 1, bouncing one buffer (the bandwidth payloads are compared with)
//                  pingpong_tasks (payload) the same from the tasks' own buffers into distinct
//                                 result buffers, as a payload run moves its data
//                  job            (tiny, struct) foreman's job API, default options: every task
//                                 submitted one by one (job::submit), then every completion taken
//                                 with job::next()
//                  job_window     the same, interleaved: a bounded number of tasks outstanding (the
//                                 default bound of a stream), the next one submitted from the loop
//                                 that takes each completion
//                  stream         run_stream() from a generator (a callable), results to a sink in
//                                 task order
//                  reduce         reduce() from a generator: a fold in task order (it checks each
//                                 result, the fold's value says how many were right)
// stream_memory    T tiny tasks (default 100,000,000) streamed from a counter, never held in any
//                  vector, through one of: stream, reduce. One run, no warm-up; prints the tasks/s
//                  and the master's peak resident memory (VmHWM of /proc/self/status at the end,
//                  and before the stream: "peak_rss_bytes", "rss_before_bytes"). Run it alone in its
//                  processes: VmHWM is the process's high-water mark.
// ceiling          where one master saturates (scripts/ceiling.sh runs it at 16 to 256 ranks): tasks
//                  that sleep U microseconds (--sleep-us, default 1000; 0: no sleep) and return
//                  x*x+1, through foreman and/or foreman_plain, and the same two through a grouped
//                  pool (foreman_groups, foreman_plain_groups: foreman::hierarchy::groups(G), G from
//                  --group-size, default round(sqrt(workers)); the master then sends batches to the
//                  sub-masters). Each implementation is sized first
//                  (runs of growing length until one takes 0.25 s), so that a timed run takes about S
//                  seconds (--seconds, default 3; --tasks T fixes the count instead), then R rounds
//                  (default 2), the order rotating. After each run every rank waits for the others
//                  asleep (MPI_Ibarrier + 1 ms sleeps), so that no rank that finished spins in a
//                  collective while the master still works. Adds per round: "master_cpu_seconds"
//                  (getrusage RUSAGE_SELF user+sys on rank 0 across the run: its MPI library's
//                  threads included), "master_involuntary_switches" (ru_nivcsw: the master
//                  preempted), "messages" (run_info::messages: messages of tasks the master sent),
//                  "busy_share" (run_report::utilization: the workers' time inside the function over
//                  workers x wall), "workers_cpu_seconds" (all workers' getrusage, summed); and
//                  "sleep_us", "workers", and "startup_seconds" (rank 0, from the launch time in
//                  nanoseconds since the epoch that FOREMAN_BENCH_LAUNCH_NS holds, to MPI_Init done).
//                  FOREMAN_BENCH_PERF_CTL=<fifo>: rank 0 writes "enable" to it as each timed run
//                  starts and "disable" as it ends (perf record --control fifo:<fifo> -D -1).
//
// Several implementations (a comma-separated list) run in the same processes: each twice as a warm-up, then R rounds
// (default 5) of one run each, the order rotating from round to round. The master checks every result, then prints one
// JSON line per implementation:
//   {"workload":"tiny","impl":"raw","ranks":2,"tasks":200000,"bytes":0,"run":<id>,"verified":true,
//    "seconds":[...],"allocs_per_task":0.0,"serial_seconds":[...]}
// `seconds` in round order; lines with the same `run` come from the same rounds. `allocs_per_task`:
// heap allocations on the master per task during the timed runs (counted by the global operator
// new of this program). `serial_seconds`: compute's serial time of each round. stream_memory adds
// "peak_rss_bytes" and "rss_before_bytes" (see above).
#include <foreman/foreman.hpp>

#include <boost/mpi/collectives.hpp>
#include <boost/mpi/communicator.hpp>
#include <boost/mpi/environment.hpp>
#include <boost/serialization/string.hpp>
#include <boost/serialization/utility.hpp>
#include <boost/serialization/vector.hpp>

#include <mpi.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <functional>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

// ---- counting allocations --------------------------------------------------------------------
static std::atomic<std::uint64_t> g_allocations{0};
void* operator new(std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size ? size : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace {

namespace mpi = boost::mpi;
using clock_type = std::chrono::steady_clock;

struct config {
  std::string workload;
  std::vector<std::string> impls; // run in alternation (measure())
  int reps = -1;                  // -1: the workload's default (5; ceiling 2)
  std::size_t tasks = 0;
  std::size_t bytes = 0;
  std::uint64_t sleep_us = 1000; // ceiling: each task's sleep
  std::uint64_t group_size = 0;  // ceiling: workers per sub-master of the grouped pool (0: about sqrt(workers))
  double seconds = 3.0;          // ceiling: the length of a timed run, when --tasks does not fix it
};

// ---- the workloads' types and functions --------------------------------------------------------
struct record {
  std::uint64_t id = 0;
  std::string name;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar& id& name;
  }
};
struct record_result {
  std::uint64_t id = 0;
  std::string label;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar& id& label;
  }
};
record make_record(std::uint64_t i) { return {i, "item-" + std::to_string(i * 7919 % 100003)}; }
record_result process(const record& r) { return {r.id * 3 + 1, r.name + "/ok"}; }

std::uint64_t tiny_fn(std::uint64_t x) { return x * x + 1; }

// ~20 ms of CPU per task, calibrated once; the result depends on every iteration.
std::uint64_t spin(std::uint64_t iterations, std::uint64_t seed) {
  std::uint64_t x = seed | 1;
  for (std::uint64_t i = 0; i < iterations; ++i) x = x * 6364136223846793005ull + 1442695040888963407ull;
  return x;
}
double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}
std::uint64_t g_spin_iterations = 0; // set on every rank before a compute run

// A payload's result: as long as the task, zero but for its first and last bytes (the task's + 1).
void payload_into(const std::vector<char>& in, std::vector<char>& out) {
  out.resize(in.size()); // an object reused from an earlier task of the same size: nothing to do
  if (!in.empty()) {
    out.front() = static_cast<char>(in.front() + 1);
    out.back() = static_cast<char>(in.back() + 1);
  }
}
std::vector<char> payload_fn(const std::vector<char>& in) {
  std::vector<char> out;
  payload_into(in, out);
  return out;
}
bool payload_ok(const std::vector<char>& t, const std::vector<char>& r) {
  if (r.size() != t.size()) return false;
  if (t.empty()) return true;
  if (r.front() != static_cast<char>(t.front() + 1) || r.back() != static_cast<char>(t.back() + 1)) return false;
  return r.size() < 3 || std::all_of(r.begin() + 1, r.end() - 1, [](char c) { return c == 0; });
}
// Both forms: foreman calls the one that writes into the result (its storage reused from task to
// task); the hand-written Boost.MPI loop calls the one that returns it.
struct payload_function {
  std::vector<char> operator()(const std::vector<char>& in) const { return payload_fn(in); }
  void operator()(const std::vector<char>& in, std::vector<char>& out) const { payload_into(in, out); }
};

// ---- hand-written loops --------------------------------------------------------------------------
constexpr int tag_task = 1, tag_result = 2, tag_stop = 3;

// Receives one message from `source` with `tag`: blocking MPI_Recv, or (polling) a receive
// posted with MPI_Irecv and tested with MPI_Test until it completes, as a loop must that may
// never block on one peer (the cheapest such wait here: polling with MPI_Improbe instead took
// 0.25-0.6x the blocking loop's rate, see docs/performance.md).
inline void receive(void* data, int bytes, int source, int tag, MPI_Comm comm, MPI_Status* status, bool polling) {
  if (!polling) {
    MPI_Recv(data, bytes, MPI_BYTE, source, tag, comm, status);
    return;
  }
  MPI_Request request;
  MPI_Irecv(data, bytes, MPI_BYTE, source, tag, comm, &request);
  for (int done = 0; !done;) MPI_Test(&request, &done, status);
}

// The raw MPI loop for trivially copyable Task/Result, as a careful C programmer writes it.
// polling (implementation raw_poll): the same loop waiting by polling a posted receive instead of
// a blocking receive: what waiting costs when a loop must never block on one worker.
template <class Task, class Result, class Fn>
void raw_loop(const mpi::communicator& comm, const std::vector<Task>& tasks, std::vector<Result>& results, Fn fn,
              bool polling = false) {
  struct task_msg {
    std::uint64_t index;
    Task task;
  };
  struct result_msg {
    std::uint64_t index;
    Result result;
  };
  const int size = comm.size();
  if (comm.rank() == 0) {
    results.assign(tasks.size(), Result{});
    std::size_t next = 0, done = 0;
    task_msg out{};
    for (int w = 1; w < size; ++w) {
      if (next < tasks.size()) {
        out = {next, tasks[next]};
        ++next;
        MPI_Send(&out, sizeof out, MPI_BYTE, w, tag_task, comm);
      } else {
        MPI_Send(nullptr, 0, MPI_BYTE, w, tag_stop, comm);
      }
    }
    result_msg in{};
    while (done < tasks.size()) {
      MPI_Status status;
      receive(&in, sizeof in, MPI_ANY_SOURCE, tag_result, comm, &status, polling);
      results[in.index] = in.result;
      ++done;
      if (next < tasks.size()) {
        out = {next, tasks[next]};
        ++next;
        MPI_Send(&out, sizeof out, MPI_BYTE, status.MPI_SOURCE, tag_task, comm);
      } else {
        MPI_Send(nullptr, 0, MPI_BYTE, status.MPI_SOURCE, tag_stop, comm);
      }
    }
  } else {
    task_msg in{};
    result_msg out{};
    for (;;) {
      MPI_Status status;
      receive(&in, sizeof in, 0, MPI_ANY_TAG, comm, &status, polling);
      if (status.MPI_TAG == tag_stop) break;
      out = {in.index, fn(in.task)};
      MPI_Send(&out, sizeof out, MPI_BYTE, 0, tag_result, comm);
    }
  }
}

// A raw MPI ping-pong between ranks 0 and 1 over a payload run's tasks, the bandwidth the payload
// runs are compared with: rank 0 sends each task's bytes with MPI_Send and receives as many back
// with MPI_Recv; rank 1 receives them into one buffer and sends that back. `distinct` (pingpong_tasks):
// rank 0 sends from each task's own buffer and receives into each result's, as a payload run
// moves its data; else (pingpong) it bounces one buffer, which stays in the cache up to its size.
// Not a master/worker loop: its results are not checked. A payload longer than foreman's piece
// size (over 2 GiB: MPI counts bytes in an int) goes as foreman sends it, in consecutive pieces.
inline void pingpong_loop(const mpi::communicator& comm, const std::vector<std::vector<char>>& tasks,
                          std::vector<std::vector<char>>& results, bool distinct) {
  if (comm.rank() > 1 || comm.size() < 2) return;
  const std::size_t buffers = comm.rank() == 0 && distinct ? tasks.size() : 1;
  results.resize(buffers); // kept from run to run, like a hand-written program's buffers
  // One message, or consecutive pieces: each(offset, bytes) for each.
  auto pieces = [](std::size_t bytes, auto&& each) {
    std::size_t at = 0;
    do {
      const std::size_t piece = std::min(bytes - at, foreman::detail::piece_bytes());
      each(at, static_cast<int>(piece));
      at += piece;
    } while (at < bytes);
  };
  auto send = [&](const char* data, std::size_t bytes, int dest, int tag) {
    pieces(bytes, [&](std::size_t at, int n) { MPI_Send(data + at, n, MPI_BYTE, dest, tag, comm); });
  };
  auto receive = [&](char* data, std::size_t bytes, int source, int tag) {
    pieces(bytes,
           [&](std::size_t at, int n) { MPI_Recv(data + at, n, MPI_BYTE, source, tag, comm, MPI_STATUS_IGNORE); });
  };
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    std::vector<char>& into = results[buffers == 1 ? 0 : i];
    into.resize(tasks[i].size());
    const std::size_t bytes = tasks[i].size();
    if (comm.rank() == 0) {
      send(distinct ? tasks[i].data() : into.data(), bytes, 1, tag_task);
      receive(into.data(), bytes, 1, tag_result);
    } else {
      receive(into.data(), bytes, 0, tag_task);
      send(into.data(), bytes, 0, tag_result);
    }
  }
}

// The compute workload's ceiling, not a master/worker loop: each worker runs a fixed share (tasks
// w-1, w-1+W, ...) without a message in between and sends its results at the end, while the
// master sleeps. How fast the machine runs the tasks on all its workers at once, in the same run.
template <class Task, class Result, class Fn>
void split_loop(const mpi::communicator& comm, const std::vector<Task>& tasks, std::vector<Result>& results, Fn fn) {
  const std::size_t workers = static_cast<std::size_t>(comm.size() - 1);
  const std::size_t n = tasks.size();
  auto share_of = [&](std::size_t w) { return n > w - 1 ? (n - (w - 1) + workers - 1) / workers : 0; };
  std::vector<Result> share;
  if (comm.rank() == 0) {
    results.assign(n, Result{});
    for (std::size_t w = 1; w <= workers; ++w) {
      share.resize(share_of(w));
      MPI_Request request;
      MPI_Irecv(share.data(), static_cast<int>(share.size() * sizeof(Result)), MPI_BYTE, static_cast<int>(w),
                tag_result, comm, &request);
      for (int done = 0; !done;) {
        MPI_Test(&request, &done, MPI_STATUS_IGNORE);
        if (!done) std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
      for (std::size_t k = 0; k < share.size(); ++k) results[w - 1 + k * workers] = share[k];
    }
  } else {
    for (std::size_t i = static_cast<std::size_t>(comm.rank() - 1); i < n; i += workers) share.push_back(fn(tasks[i]));
    MPI_Send(share.data(), static_cast<int>(share.size() * sizeof(Result)), MPI_BYTE, 0, tag_result, comm);
  }
}

// The same loop with Boost.MPI: (index, task) and (index, result) pairs, serialized as needed.
template <class Task, class Result, class Fn>
void boost_loop(const mpi::communicator& comm, const std::vector<Task>& tasks, std::vector<Result>& results, Fn fn) {
  const int size = comm.size();
  if (comm.rank() == 0) {
    results.assign(tasks.size(), Result{});
    std::size_t next = 0, done = 0;
    auto feed = [&](int w) {
      if (next < tasks.size()) {
        comm.send(w, tag_task, std::make_pair(static_cast<std::uint64_t>(next), tasks[next]));
        ++next;
      } else {
        comm.send(w, tag_stop);
      }
    };
    for (int w = 1; w < size; ++w) feed(w);
    std::pair<std::uint64_t, Result> in;
    while (done < tasks.size()) {
      const mpi::status status = comm.recv(mpi::any_source, tag_result, in);
      results[in.first] = std::move(in.second);
      ++done;
      feed(status.source());
    }
  } else {
    std::pair<std::uint64_t, Task> in;
    for (;;) {
      const mpi::status status = comm.probe(0, mpi::any_tag);
      if (status.tag() == tag_stop) {
        comm.recv(0, tag_stop);
        break;
      }
      comm.recv(0, tag_task, in);
      comm.send(0, tag_result, std::make_pair(in.first, fn(in.second)));
    }
  }
}

// ---- running one implementation --------------------------------------------------------------
struct measurement {
  std::vector<double> seconds;
  std::vector<double> serial_seconds; // compute: the serial time measured at the start of each round
  bool verified = true;
  double allocs_per_task = -1.0;
  long long peak_rss_bytes = -1;   // stream_memory: the master's VmHWM at the end
  long long rss_before_bytes = -1; // and before the stream
  // ceiling, per round (see the file's comment)
  std::vector<double> master_cpu_seconds, workers_cpu_seconds, busy_share, master_involuntary_switches, messages;
  double startup_seconds = -1.0;
  int group_size = 0; // ceiling: workers per sub-master (0: a flat pool)
};

// One implementation's runs in a measure() call.
template <class Result>
struct contender {
  std::string impl;
  foreman::options opt;
  std::vector<Result> results; // kept between its runs (foreman's run_into reuses their storage)
  std::optional<bool> checked; // reduce: the fold checked every result itself (results stay empty)
  measurement m;
};

// Whether an implementation runs on foreman's job API (a job, a stream, a reduction).
bool on_jobs(const std::string& impl) {
  return impl == "job" || impl == "job_window" || impl == "stream" || impl == "reduce";
}

// The jobs' implementations on the master (see the file's comment); workers serve in start(),
// run_stream(), reduce(). `results` gets fn(tasks[i]) at i, but for reduce, whose fold checks each
// result (in task order) with check(task, result) and keeps none: its outcome is returned.
template <class Task, class Result, class Fn, class Check>
std::optional<bool> run_on_jobs(foreman::master_worker<Task, Result>& pool, const std::string& impl,
                                const std::vector<Task>& tasks, Fn& fn, Check& check, std::vector<Result>& results,
                                const foreman::options& opt) {
  const std::size_t n = tasks.size();
  if (pool.is_master() && impl != "reduce") results.resize(n);
  std::size_t read = 0;
  auto source = [&]() -> std::optional<Task> {
    if (read == n) return std::nullopt;
    return tasks[read++];
  };
  if (impl == "stream") {
    pool.run_stream(
        source, fn, [&](std::uint64_t index, int, const Result& r) { results[index] = r; }, opt);
    return std::nullopt;
  }
  if (impl == "reduce") {
    using tally = std::pair<std::size_t, std::size_t>; // results folded, results right
    const tally t = pool.reduce(
        source, fn, tally{0, 0},
        [&](tally acc, const Result& r) {
          acc.second += acc.first < n && check(tasks[acc.first], r) ? 1 : 0;
          ++acc.first;
          return acc;
        },
        opt);
    return t.first == n && t.second == n;
  }
  // job, job_window: tickets are given in submission order from 0, so a ticket is a task's index.
  auto job = pool.start(fn, opt);
  if (!job.is_master()) return std::nullopt;
  const std::size_t window = impl == "job" ? n : foreman::detail::stream_bound(opt, pool.worker_count());
  for (; read < n && read < window; ++read) job.submit(tasks[read]);
  while (job.pending() > 0) {
    foreman::completion<Result> done = job.next();
    results[done.ticket] = std::move(done.result).value();
    if (read < n) job.submit(tasks[read++]);
  }
  job.close();
  return std::nullopt;
}

// Runs every implementation of cfg.impls on `tasks`: each twice as a warm-up, then cfg.reps
// rounds of one run each, in an order that rotates from round to round, so that all of them see
// the machine in the same states (its speed changes within seconds, see docs/performance.md) and
// the ratio of two implementations can be taken round by round. `before_round`, if given, runs
// at the start of each round on every rank and returns what is stored in serial_seconds.
template <class Task, class Result, class Fn, class Check>
std::vector<measurement> measure(const config& cfg, const mpi::communicator& world, const std::vector<Task>& tasks,
                                 Fn fn, Check check, const std::function<double()>& before_round = {}) {
  std::vector<contender<Result>> all(cfg.impls.size());
  std::optional<foreman::master_worker<Task, Result>> pool; // one pool serves every foreman variant
  for (std::size_t k = 0; k < all.size(); ++k) {
    contender<Result>& c = all[k];
    c.impl = cfg.impls[k];
    if (c.impl == "foreman_plain" || cfg.workload == "latency") { // one task per message, one in flight
      c.opt.chunk_size = 1;
      c.opt.tasks_in_flight = 1;
    }
    if ((c.impl.rfind("foreman", 0) == 0 || on_jobs(c.impl)) && !pool) pool.emplace(world);
  }
  // foreman_returning: foreman with the form of fn that returns each result (a fresh object).
  auto returning = [&fn](const Task& task) -> Result { return fn(task); };
  auto once = [&](contender<Result>& c) {
    if (on_jobs(c.impl)) {
      c.checked = run_on_jobs(*pool, c.impl, tasks, fn, check, c.results, c.opt);
    } else if (c.impl == "foreman_returning") {
      pool->run_into(tasks, returning, c.results, c.opt);
    } else if (c.impl.rfind("foreman", 0) == 0) {
      // run_into: large results are received into the storage the previous repetition's hold
      // (for other types it is run(): results assigned afresh).
      pool->run_into(tasks, fn, c.results, c.opt);
    } else if (c.impl == "pingpong" || c.impl == "pingpong_tasks") {
      if constexpr (std::is_same_v<Task, std::vector<char>> && std::is_same_v<Result, std::vector<char>>)
        pingpong_loop(world, tasks, c.results, c.impl == "pingpong_tasks");
    } else if (c.impl == "split") { // no messages: each worker runs its share (compute's ceiling)
      if constexpr (std::is_trivially_copyable_v<Result>) split_loop(world, tasks, c.results, fn);
    } else if constexpr (std::is_trivially_copyable_v<Task> && std::is_trivially_copyable_v<Result>) {
      if (c.impl == "raw" || c.impl == "raw_poll")
        raw_loop(world, tasks, c.results, fn, c.impl == "raw_poll");
      else
        boost_loop(world, tasks, c.results, fn);
    } else {
      boost_loop(world, tasks, c.results, fn);
    }
  };
  // Warm-up, twice: connections, buffers, the automatic chunk estimate; and glibc, which serves
  // the second run's per-run arrays from a heap it grows (page faults) before reusing it from the
  // third on. Without it the first timed run of foreman's tiny workload ran at half speed.
  for (auto& c : all) {
    once(c);
    once(c);
  }
  for (int r = 0; r < cfg.reps; ++r) {
    const double serial = before_round ? before_round() : 0.0;
    for (std::size_t k = 0; k < all.size(); ++k) {
      contender<Result>& c = all[(static_cast<std::size_t>(r) + k) % all.size()];
      world.barrier();
      const std::uint64_t allocs_before = g_allocations.load();
      const auto start = clock_type::now();
      once(c);
      const double s = std::chrono::duration<double>(clock_type::now() - start).count();
      const std::uint64_t allocs = g_allocations.load() - allocs_before;
      if (world.rank() != 0) continue;
      measurement& m = c.m;
      m.seconds.push_back(s);
      if (before_round) m.serial_seconds.push_back(serial);
      if (c.checked) {
        m.verified = m.verified && *c.checked;
      } else if (c.impl.rfind("pingpong", 0) != 0) { // a ping-pong computes nothing to check
        m.verified = m.verified && c.results.size() == tasks.size();
        for (std::size_t i = 0; m.verified && i < tasks.size(); ++i) m.verified = check(tasks[i], c.results[i]);
      }
      const double per_task = static_cast<double>(allocs) / static_cast<double>(std::max<std::size_t>(1, tasks.size()));
      m.allocs_per_task = m.allocs_per_task < 0 ? per_task : std::min(m.allocs_per_task, per_task);
    }
  }
  std::vector<measurement> out;
  for (auto& c : all) out.push_back(std::move(c.m));
  return out;
}

// One JSON line. `run` names the bench process: lines with the same run were measured in the
// same rounds, their seconds in the same order (report.py takes their ratios round by round).
void print(const config& cfg, const std::string& impl, int ranks, std::size_t tasks, const measurement& m) {
  static const long long run = std::chrono::duration_cast<std::chrono::microseconds>(
                                   std::chrono::system_clock::now().time_since_epoch()).count();
  auto list = [](const std::vector<double>& values) {
    for (std::size_t i = 0; i < values.size(); ++i) std::printf("%s%.6f", i ? "," : "", values[i]);
  };
  std::printf("{\"workload\":\"%s\",\"impl\":\"%s\",\"ranks\":%d,\"tasks\":%zu,\"bytes\":%zu,\"run\":%lld,"
              "\"verified\":%s,\"seconds\":[",
              cfg.workload.c_str(), impl.c_str(), ranks, tasks, cfg.bytes, run, m.verified ? "true" : "false");
  list(m.seconds);
  std::printf("],\"allocs_per_task\":%.4f,\"serial_seconds\":[", m.allocs_per_task);
  list(m.serial_seconds);
  std::printf("]");
  if (m.peak_rss_bytes >= 0)
    std::printf(",\"peak_rss_bytes\":%lld,\"rss_before_bytes\":%lld", m.peak_rss_bytes, m.rss_before_bytes);
  if (cfg.workload == "ceiling") {
    std::printf(",\"sleep_us\":%llu,\"workers\":%d,\"startup_seconds\":%.3f,\"group_size\":%d",
                static_cast<unsigned long long>(cfg.sleep_us), ranks - 1, m.startup_seconds, m.group_size);
    const std::pair<const char*, const std::vector<double>*> series[] = {
        {"master_cpu_seconds", &m.master_cpu_seconds},
        {"master_involuntary_switches", &m.master_involuntary_switches},
        {"messages", &m.messages},
        {"busy_share", &m.busy_share},
        {"workers_cpu_seconds", &m.workers_cpu_seconds}};
    for (const auto& [name, values] : series) {
      std::printf(",\"%s\":[", name);
      for (std::size_t i = 0; i < values->size(); ++i) std::printf("%s%.9g", i ? "," : "", (*values)[i]);
      std::printf("]");
    }
  }
  std::printf("}\n");
  std::fflush(stdout);
}
void print_all(const config& cfg, int ranks, std::size_t tasks, const std::vector<measurement>& all) {
  for (std::size_t k = 0; k < all.size(); ++k) print(cfg, cfg.impls[k], ranks, tasks, all[k]);
}

// This process's peak resident memory (VmHWM of /proc/self/status), in bytes; -1 where there is none.
long long peak_resident_bytes() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::atoll(line.c_str() + 6) * 1024; // "VmHWM:  1234 kB"
  return -1;
}

// stream_memory: tiny tasks 0 .. n-1 streamed from a counter through `impl` (stream or reduce),
// each result checked in task order as it comes, none kept; one run of each implementation, in
// turn. The master's peak resident memory is read at the end of each.
std::vector<measurement> stream_memory(const config& cfg, const mpi::communicator& world, std::size_t n) {
  foreman::master_worker<std::uint64_t, std::uint64_t> pool(world);
  std::vector<measurement> out;
  for (const std::string& impl : cfg.impls) {
    measurement m;
    m.rss_before_bytes = peak_resident_bytes();
    std::uint64_t read = 0, right = 0, folded = 0;
    auto source = [&]() -> std::optional<std::uint64_t> {
      if (read == n) return std::nullopt;
      return read++;
    };
    world.barrier();
    const std::uint64_t allocs_before = g_allocations.load();
    const auto start = clock_type::now();
    if (impl == "stream") {
      pool.run_stream(source, tiny_fn, [&](std::uint64_t index, int, std::uint64_t r) {
        right += index == folded && r == tiny_fn(index) ? 1 : 0;
        ++folded;
      });
    } else if (impl == "reduce") {
      right = pool.reduce(source, tiny_fn, std::uint64_t{0},
                          [&](std::uint64_t ok, std::uint64_t r) { return ok + (r == tiny_fn(folded++) ? 1 : 0); });
    } else {
      std::fprintf(stderr, "stream_memory runs stream or reduce, not %s\n", impl.c_str());
      std::exit(2);
    }
    m.seconds.push_back(std::chrono::duration<double>(clock_type::now() - start).count());
    m.allocs_per_task =
        static_cast<double>(g_allocations.load() - allocs_before) / static_cast<double>(std::max<std::size_t>(1, n));
    m.peak_rss_bytes = peak_resident_bytes();
    m.verified = read == n && folded == n && right == n;
    out.push_back(m);
  }
  return out;
}

// A barrier whose waiting ranks sleep (1 ms at a time) instead of spinning in MPI: a rank that
// arrives first leaves the processors to the ranks still at work.
void quiet_barrier(const mpi::communicator& world) {
  MPI_Request quiet;
  MPI_Ibarrier(world, &quiet);
  for (int done = 0; !done;) {
    MPI_Test(&quiet, &done, MPI_STATUS_IGNORE);
    if (!done) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// ---- ceiling: where one master saturates -------------------------------------------------------
std::uint64_t g_sleep_us = 0; // each ceiling task's sleep, the same on every rank

// A ceiling task: the worker sleeps (busy without using a processor), then answers.
std::uint64_t sleeping_fn(std::uint64_t x) {
  if (g_sleep_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(g_sleep_us));
  return tiny_fn(x);
}

// This process's processor time (user + system, all its threads) and involuntary context switches.
std::pair<double, double> own_usage() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + 1e-6 * static_cast<double>(t.tv_usec); };
  return {seconds(u.ru_utime) + seconds(u.ru_stime), static_cast<double>(u.ru_nivcsw)};
}

// Writes `command` to perf record's control fifo, if FOREMAN_BENCH_PERF_CTL names one.
void perf_control(const char* command) {
  if (const char* fifo = std::getenv("FOREMAN_BENCH_PERF_CTL")) std::ofstream(fifo) << command << '\n' << std::flush;
}

// The ceiling workload (see the file's comment). `counts` gets each implementation's task count.
std::vector<measurement> ceiling(const config& cfg, const mpi::communicator& world, std::vector<std::size_t>& counts) {
  double startup = -1.0;
  if (const char* launch = std::getenv("FOREMAN_BENCH_LAUNCH_NS"))
    startup = 1e-9 * static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                             std::chrono::system_clock::now().time_since_epoch())
                                             .count() -
                                         std::atoll(launch));
  g_sleep_us = cfg.sleep_us;
  foreman::master_worker<std::uint64_t, std::uint64_t> flat(world);
  using pool_type = foreman::master_worker<std::uint64_t, std::uint64_t, foreman::hierarchical_dispatch>;
  const bool master = world.rank() == 0;
  const std::size_t workers = static_cast<std::size_t>(world.size() - 1);
  const int group_size = cfg.group_size > 0 ? static_cast<int>(cfg.group_size)
                                            : std::max(1, static_cast<int>(std::lround(std::sqrt(double(workers)))));
  std::unique_ptr<pool_type> grouped; // built only when asked for: a collective on every rank
  for (const std::string& impl : cfg.impls)
    if (!grouped && impl.size() > 7 && impl.compare(impl.size() - 7, 7, "_groups") == 0)
      grouped = std::make_unique<pool_type>(world, foreman::hierarchy::groups(group_size));
  std::vector<pool_type*> pools(cfg.impls.size(), nullptr); // null: the flat pool
  std::vector<foreman::options> opts(cfg.impls.size());
  for (std::size_t k = 0; k < opts.size(); ++k) {
    std::string impl = cfg.impls[k];
    if (impl.size() > 7 && impl.compare(impl.size() - 7, 7, "_groups") == 0) {
      pools[k] = grouped.get();
      impl.resize(impl.size() - 7);
    }
    if (impl == "foreman_plain") {
      opts[k].chunk_size = 1;
      opts[k].tasks_in_flight = 1;
    } else if (impl != "foreman") {
      if (master) std::fprintf(stderr, "ceiling runs foreman or foreman_plain, not %s\n", cfg.impls[k].c_str());
      std::exit(2);
    }
  }
  std::vector<std::uint64_t> tasks, results; // the tasks on the master; workers are given none
  // One run of implementation k on n tasks; on the master: its seconds, and in `m` (if given) the
  // round's figures. Every rank takes part, and ends in quiet_barrier().
  auto once = [&](std::size_t k, std::size_t n, measurement* m) {
    if (master) {
      tasks.resize(n);
      for (std::size_t i = 0; i < n; ++i) tasks[i] = i;
    }
    world.barrier();
    const std::uint64_t allocs_before = g_allocations.load();
    const auto usage_before = own_usage();
    const auto start = clock_type::now();
    if (master && m != nullptr) perf_control("enable");
    if (pools[k] != nullptr)
      pools[k]->run_into(tasks, sleeping_fn, results, opts[k]);
    else
      flat.run_into(tasks, sleeping_fn, results, opts[k]);
    if (master && m != nullptr) perf_control("disable");
    const double seconds = std::chrono::duration<double>(clock_type::now() - start).count();
    const auto usage_after = own_usage();
    const std::uint64_t allocs = g_allocations.load() - allocs_before;
    quiet_barrier(world);
    double workers_cpu = 0.0;
    mpi::reduce(world, master ? 0.0 : usage_after.first - usage_before.first, workers_cpu, std::plus<double>(), 0);
    if (!master || m == nullptr) return seconds;
    bool right = results.size() == n;
    for (std::size_t i = 0; right && i < n; ++i) right = results[i] == tiny_fn(i);
    m->verified = m->verified && right;
    m->seconds.push_back(seconds);
    m->master_cpu_seconds.push_back(usage_after.first - usage_before.first);
    m->master_involuntary_switches.push_back(usage_after.second - usage_before.second);
    const foreman::run_info& info = pools[k] != nullptr ? pools[k]->last_run() : flat.last_run();
    m->messages.push_back(static_cast<double>(info.messages));
    m->group_size = info.sub_masters.empty() ? 0 : group_size;
    m->busy_share.push_back(foreman::run_report(info).utilization);
    m->workers_cpu_seconds.push_back(workers_cpu);
    const double per_task = static_cast<double>(allocs) / static_cast<double>(std::max<std::size_t>(1, n));
    m->allocs_per_task = m->allocs_per_task < 0 ? per_task : std::min(m->allocs_per_task, per_task);
    return seconds;
  };
  // Sizing, per implementation: runs of growing length until one takes 0.25 s (also the warm-up:
  // connections, buffers, the automatic chunk estimate), then the count for cfg.seconds; one
  // warm-up run only when --tasks fixes the count.
  counts.assign(cfg.impls.size(), cfg.tasks);
  for (std::size_t k = 0; k < cfg.impls.size(); ++k) {
    std::size_t n = std::max<std::size_t>(64, 8 * workers);
    for (;;) {
      const double seconds = once(k, n, nullptr);
      std::size_t next = 0; // 0: sized
      if (master && cfg.tasks == 0 && seconds < 0.25 && n < (std::size_t{1} << 30))
        next = static_cast<std::size_t>(static_cast<double>(n) * std::clamp(0.5 / std::max(seconds, 1e-6), 2.0, 16.0));
      else if (master && cfg.tasks == 0)
        counts[k] = std::max<std::size_t>(
            4 * workers, static_cast<std::size_t>(cfg.seconds * static_cast<double>(n) / std::max(seconds, 1e-6)));
      mpi::broadcast(world, next, 0);
      if (next == 0) break;
      n = next;
    }
  }
  std::vector<measurement> all(cfg.impls.size());
  for (auto& m : all) m.startup_seconds = startup;
  for (int r = 0; r < cfg.reps; ++r)
    for (std::size_t j = 0; j < all.size(); ++j) {
      const std::size_t k = (static_cast<std::size_t>(r) + j) % all.size();
      once(k, counts[k], &all[k]);
    }
  return all;
}

int usage() {
  std::fprintf(stderr, "usage: bench tiny|struct|compute|payload|latency "
                       "foreman|foreman_plain|foreman_returning|raw|raw_poll|boost|split|pingpong|pingpong_tasks|"
                       "job|job_window|stream|reduce[,...] [--reps R] [--tasks T] [--bytes B]\n"
                       "       bench stream_memory stream|reduce[,...] [--tasks T]\n"
                       "       bench ceiling foreman|foreman_plain|foreman_groups|foreman_plain_groups[,...] "
                       "[--sleep-us U] [--seconds S] [--reps R] [--tasks T] [--group-size G]\n");
  return 2;
}

} // namespace

int main(int argc, char** argv) {
  mpi::environment env(argc, argv);
  mpi::communicator world;
  if (argc < 3) return usage();
  config cfg;
  cfg.workload = argv[1];
  for (std::string list = argv[2]; !list.empty();) {
    const std::size_t comma = list.find(',');
    cfg.impls.push_back(list.substr(0, comma));
    list = comma == std::string::npos ? "" : list.substr(comma + 1);
  }
  if (cfg.impls.empty()) return usage();
  for (int i = 3; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const auto value = std::strtoull(argv[i + 1], nullptr, 10);
    if (flag == "--reps") cfg.reps = static_cast<int>(value);
    else if (flag == "--tasks") cfg.tasks = value;
    else if (flag == "--bytes") cfg.bytes = value;
    else if (flag == "--sleep-us")
      cfg.sleep_us = value;
    else if (flag == "--group-size")
      cfg.group_size = value;
    else if (flag == "--seconds")
      cfg.seconds = std::strtod(argv[i + 1], nullptr);
    else return usage();
  }
  if (cfg.reps < 0) cfg.reps = cfg.workload == "ceiling" ? 2 : 5;
  const int ranks = world.size();

  if (cfg.workload == "tiny" || cfg.workload == "latency") {
    const std::size_t n = cfg.tasks ? cfg.tasks : (cfg.workload == "tiny" ? 200000 : 20000);
    std::vector<std::uint64_t> tasks(n);
    for (std::size_t i = 0; i < n; ++i) tasks[i] = i;
    auto m = measure<std::uint64_t, std::uint64_t>(cfg, world, tasks, tiny_fn,
                                                   [](std::uint64_t t, std::uint64_t r) { return r == tiny_fn(t); });
    if (world.rank() == 0) print_all(cfg, ranks, n, m);
  } else if (cfg.workload == "struct") {
    const std::size_t n = cfg.tasks ? cfg.tasks : 200000;
    std::vector<record> tasks;
    for (std::size_t i = 0; i < n; ++i) tasks.push_back(make_record(i));
    auto m = measure<record, record_result>(cfg, world, tasks, process, [](const record& t, const record_result& r) {
      const record_result want = process(t);
      return r.id == want.id && r.label == want.label;
    });
    if (world.rank() == 0) print_all(cfg, ranks, n, m);
  } else if (cfg.workload == "compute") {
    // Calibrate on the master: iterations for 20 ms of CPU; every rank uses the same count.
    std::uint64_t iterations = 0;
    if (world.rank() == 0) {
      iterations = 1'000'000;
      for (;;) {
        const double t0 = cpu_seconds();
        volatile std::uint64_t sink = spin(iterations, 1); // used, so that the loop is not optimised away
        (void)sink;
        const double t = cpu_seconds() - t0;
        if (t > 0.005) {
          iterations = static_cast<std::uint64_t>(static_cast<double>(iterations) * 0.020 / t);
          break;
        }
        iterations *= 4;
      }
    }
    mpi::broadcast(world, iterations, 0);
    g_spin_iterations = iterations;
    const std::size_t n = cfg.tasks ? cfg.tasks : 64;
    std::vector<std::uint64_t> tasks(n);
    for (std::size_t i = 0; i < n; ++i) tasks[i] = i + 1;
    auto fn = [](std::uint64_t seed) { return spin(g_spin_iterations, seed); };
    // Serial time: the same tasks one after another on the master, at the start of every round
    // (the speedup is taken round by round: the machine's speed drifts), while the other ranks
    // sleep (a rank spinning in an MPI call would slow the master down and flatter the speedup).
    std::vector<std::uint64_t> expected(n);
    auto serial = [&] {
      double seconds = 0;
      if (world.rank() == 0) {
        const auto start = clock_type::now();
        for (std::size_t i = 0; i < n; ++i) expected[i] = fn(tasks[i]);
        seconds = std::chrono::duration<double>(clock_type::now() - start).count();
      }
      quiet_barrier(world);
      return seconds;
    };
    serial(); // also the results every run is checked against
    mpi::broadcast(world, expected, 0);
    auto m = measure<std::uint64_t, std::uint64_t>(
        cfg, world, tasks, fn, [&](std::uint64_t t, std::uint64_t r) { return r == expected[t - 1]; }, serial);
    if (world.rank() == 0) print_all(cfg, ranks, n, m);
  } else if (cfg.workload == "payload") {
    const std::size_t bytes = cfg.bytes ? cfg.bytes : 1 << 20;
    cfg.bytes = bytes;
    const std::size_t n = cfg.tasks ? cfg.tasks : std::max<std::size_t>(8, std::min<std::size_t>(2000, (256u << 20) / bytes));
    std::vector<std::vector<char>> tasks;
    for (std::size_t i = 0; i < n; ++i) tasks.emplace_back(bytes, static_cast<char>(i));
    auto m = measure<std::vector<char>, std::vector<char>>(cfg, world, tasks, payload_function{}, payload_ok);
    if (world.rank() == 0) print_all(cfg, ranks, n, m);
  } else if (cfg.workload == "ceiling") {
    std::vector<std::size_t> counts;
    const auto m = ceiling(cfg, world, counts);
    if (world.rank() == 0)
      for (std::size_t k = 0; k < m.size(); ++k) print(cfg, cfg.impls[k], ranks, counts[k], m[k]);
  } else if (cfg.workload == "stream_memory") {
    const std::size_t n = cfg.tasks ? cfg.tasks : 100'000'000;
    const auto m = stream_memory(cfg, world, n);
    if (world.rank() == 0) print_all(cfg, ranks, n, m);
  } else {
    return usage();
  }
  return 0;
}
