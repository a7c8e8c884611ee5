// The whole job killed mid-run, then resumed from its checkpoint journal. Driven by
// checkpoint_kill.sh, which runs it three times:
//
//   checkpoint_kill <dir> first    with options::checkpoint = <dir>/journal; killed part-way
//   checkpoint_kill <dir> resume   the same run again: reads the journal back, computes the rest
//   checkpoint_kill <dir> plain    the same tasks without a journal, never interrupted
//
// With a third argument `stream`, the tasks come from a stream (run_stream()) instead of a list,
// at most 16 read ahead of the sink: its journal is a stream's.
//
// Every rank that computes a task appends its index to <dir>/log-<phase>.<rank> before returning it,
// so the driver can tell which finished tasks were computed twice. The master prints the run's
// figures and a digest of all the results:
//   "phase resume: tasks 400 replayed 183 computed 217 digest 1234..."

#include <foreman/foreman.hpp>

#include <boost/crc.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

unsigned long long value_of(int task) {
  unsigned long long x = static_cast<unsigned long long>(task) * 0x9e3779b97f4a7c15ull;
  x ^= x >> 29;
  return x * 0xbf58476d1ce4e5b9ull;
}

} // namespace

int main(int argc, char** argv) {
  boost::mpi::environment env(argc, argv);
  if (argc < 3) {
    std::fprintf(stderr, "usage: checkpoint_kill <dir> first|resume|plain [stream]\n");
    return 2;
  }
  const std::string dir = argv[1];
  const std::string phase = argv[2];
  const bool stream = argc > 3 && std::string(argv[3]) == "stream";
  foreman::master_worker<int, unsigned long long> pool;

  const std::string log = dir + "/log-" + phase + "." + std::to_string(pool.rank());
  const int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    std::perror(log.c_str());
    return 2;
  }

  std::vector<int> tasks(400);
  for (int i = 0; i < 400; ++i) tasks[static_cast<std::size_t>(i)] = i;
  auto fn = [&](int task) {
    std::this_thread::sleep_for(std::chrono::milliseconds(15));
    const std::string line = std::to_string(task) + "\n";
    if (::write(log_fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) std::perror("log");
    return value_of(task);
  };

  foreman::options opt;
  opt.chunk_size = 1; // one task per message, so that workers x tasks_in_flight bounds what is in flight
  if (phase != "plain") opt.checkpoint = dir + "/journal";
  std::vector<unsigned long long> results;
  std::size_t in_flight = opt.tasks_in_flight * opt.chunk_size; // what a kill may lose, per worker
  if (stream) {
    opt.buffersize = 16; // records are written in task order: a kill loses at most what is read ahead
    in_flight = opt.buffersize;
    std::size_t next = 0;
    results.resize(tasks.size());
    pool.run_stream(
        [&]() -> std::optional<int> { return next < tasks.size() ? std::optional<int>(tasks[next++]) : std::nullopt; },
        fn, [&](std::uint64_t index, int, const unsigned long long& r) { results[index] = r; }, opt);
  } else {
    results = pool.run(tasks, fn, opt);
  }
  ::close(log_fd);

  if (pool.is_master()) {
    int wrong = 0;
    for (std::size_t i = 0; i < tasks.size(); ++i) wrong += results[i] != value_of(tasks[i]) ? 1 : 0;
    boost::crc_32_type digest;
    digest.process_bytes(results.data(), results.size() * sizeof results[0]);
    std::printf("phase %s: tasks %zu replayed %zu computed %zu wrong %d digest %u workers %d in_flight %zu\n",
                phase.c_str(), tasks.size(), pool.last_run().replayed, tasks.size() - pool.last_run().replayed, wrong,
                static_cast<unsigned>(digest.checksum()), pool.worker_count(), in_flight);
  }
  return 0;
}
