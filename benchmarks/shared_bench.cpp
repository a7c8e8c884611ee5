// The cost of a read-only value that every task needs (foreman::with_shared): sent once per run
// to each worker, against sending it inside every task, and against broadcasting it by hand
// before run(), in one program so that the ratios come from the same rounds.
//
//   mpirun -n <N> shared_bench [--bytes B] [--tasks T] [--reps R]
//
// The value: a std::vector<std::uint64_t> of B bytes (default 32 MiB). T tasks per run (default 4
// per worker); each sums 4096 elements of the value from an offset of its own, and the master
// checks every sum. Implementations, each once as a warm-up, then R rounds (default 5) of one run
// each, the order rotating from round to round:
//   shared    pool.run(offsets, foreman::with_shared(std::cref(value), fn)): the value travels
//             once per run to each worker, as a body (from and into the vectors' own memory)
//   bcast     by hand: MPI_Bcast of the value on every rank (collective; each worker receives it
//             into a vector it keeps between runs, as with_shared does), then
//             pool.run(offsets, fn) with the value captured
//   per_task  without with_shared: each task is the value with its offset in front (a
//             std::vector<std::uint64_t> of B + 8 bytes, which foreman sends as a body: its
//             fastest path); the master holds T copies
// Prints one JSON line per implementation, as bench does:
//   {"workload":"shared","impl":"shared","ranks":4,"tasks":12,"bytes":33554432,"run":<id>,
//    "verified":true,"seconds":[...]}

#include <foreman/foreman.hpp>

#include <boost/mpi/communicator.hpp>
#include <boost/mpi/environment.hpp>

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;
constexpr std::size_t span = 4096; // elements each task sums

std::uint64_t mix(std::uint64_t x) { // splitmix64
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

std::uint64_t sum_from(const std::uint64_t* values, std::size_t n, std::uint64_t offset) {
  std::uint64_t s = 0;
  for (std::size_t j = 0; j < span; ++j) s += values[(offset + j) % n];
  return s;
}

struct measurement {
  std::vector<double> seconds;
  bool verified = true;
};

} // namespace

int main(int argc, char** argv) {
  boost::mpi::environment env(argc, argv);
  boost::mpi::communicator world;
  std::size_t bytes = std::size_t{32} << 20, tasks_per_run = 0;
  int reps = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const auto value = std::strtoull(argv[i + 1], nullptr, 10);
    if (flag == "--bytes")
      bytes = value;
    else if (flag == "--tasks")
      tasks_per_run = value;
    else if (flag == "--reps")
      reps = static_cast<int>(value);
    else {
      std::fprintf(stderr, "usage: shared_bench [--bytes B] [--tasks T] [--reps R]\n");
      return 2;
    }
  }
  const std::size_t n = std::max<std::size_t>(span, bytes / sizeof(std::uint64_t));
  bytes = n * sizeof(std::uint64_t);
  const int workers = world.size() - 1;
  if (tasks_per_run == 0) tasks_per_run = 4 * static_cast<std::size_t>(std::max(1, workers));

  std::vector<std::uint64_t> value; // the master's
  std::vector<std::uint64_t> offsets(tasks_per_run), expected(tasks_per_run);
  std::vector<std::vector<std::uint64_t>> with_value; // per_task's tasks: offset, then the value
  if (world.rank() == 0) {
    value.resize(n);
    for (std::size_t i = 0; i < n; ++i) value[i] = mix(i) % 1000003;
    for (std::size_t k = 0; k < tasks_per_run; ++k) {
      offsets[k] = (k * 7919 * span) % n;
      expected[k] = sum_from(value.data(), n, offsets[k]);
      with_value.emplace_back(n + 1);
      with_value.back()[0] = offsets[k];
      std::copy(value.begin(), value.end(), with_value.back().begin() + 1);
    }
  }

  // A pool each: a worker keeps the last shared value's storage only until a run of its pool shares
  // none (shared.hpp), and each implementation is measured in its steady state, run after run.
  foreman::master_worker<std::uint64_t, std::uint64_t> shared_pool(world), bcast_pool(world);
  foreman::master_worker<std::vector<std::uint64_t>, std::uint64_t> per_task_pool(world);
  const std::vector<std::string> impls{"shared", "bcast", "per_task"};
  std::vector<measurement> all(impls.size());

  std::vector<std::uint64_t> received; // bcast: a worker's copy, kept between runs
  if (world.rank() != 0) received.resize(n);
  auto once = [&](const std::string& impl) {
    std::vector<std::uint64_t> results;
    if (impl == "shared") {
      results =
          shared_pool.run(offsets, foreman::with_shared(std::cref(value),
                                                        [](std::uint64_t offset, const std::vector<std::uint64_t>& v) {
                                                          return sum_from(v.data(), v.size(), offset);
                                                        }));
    } else if (impl == "bcast") {
      std::uint64_t* data = world.rank() == 0 ? value.data() : received.data();
      for (std::size_t at = 0; at < n;) { // MPI counts in an int
        const std::size_t count = std::min<std::size_t>(n - at, std::size_t{1} << 27);
        MPI_Bcast(data + at, static_cast<int>(count), MPI_UINT64_T, 0, world);
        at += count;
      }
      results = bcast_pool.run(offsets, [&](std::uint64_t offset) { return sum_from(data, n, offset); });
    } else {
      results = per_task_pool.run(
          with_value, [](const std::vector<std::uint64_t>& t) { return sum_from(t.data() + 1, t.size() - 1, t[0]); });
    }
    return results;
  };

  for (const std::string& impl : impls) once(impl); // warm-up: connections, buffers
  for (int r = 0; r < reps; ++r) {
    for (std::size_t k = 0; k < impls.size(); ++k) {
      const std::size_t which = (static_cast<std::size_t>(r) + k) % impls.size();
      world.barrier();
      const auto start = clock_type::now();
      const std::vector<std::uint64_t> results = once(impls[which]);
      const double seconds = std::chrono::duration<double>(clock_type::now() - start).count();
      if (world.rank() != 0) continue;
      all[which].seconds.push_back(seconds);
      all[which].verified = all[which].verified && results == expected;
    }
  }
  if (world.rank() != 0) return 0;
  const long long run =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  for (std::size_t k = 0; k < impls.size(); ++k) {
    std::printf("{\"workload\":\"shared\",\"impl\":\"%s\",\"ranks\":%d,\"tasks\":%zu,\"bytes\":%zu,\"run\":%lld,"
                "\"verified\":%s,\"seconds\":[",
                impls[k].c_str(), world.size(), tasks_per_run, bytes, run, all[k].verified ? "true" : "false");
    for (std::size_t i = 0; i < all[k].seconds.size(); ++i) std::printf("%s%.6f", i ? "," : "", all[k].seconds[i]);
    std::printf("]}\n");
  }
  return 0;
}
