// across_hosts: foreman::master_worker over TCP between the test hosts of scripts/netns-hosts.sh.
//
//   across_hosts tiny <tasks>             <tasks> tasks of one integer, each result a 64-bit word
//   across_hosts payload <tasks> <bytes>  each result <bytes> long (a pattern of its task's seed)
//
// The master checks every result, in task order, and that the tasks were computed by workers of
// every host the job runs on (their MPI_Get_processor_name), then prints
//   "across hosts <mode>: <tasks> tasks, 0 wrong, computed on 3 hosts: PASSED"
// or what was wrong ("... FAILED ...") and exits 1.

#include "../test_support.hpp"

#include <foreman/foreman.hpp>

#include <boost/mpi/collectives.hpp>
#include <boost/serialization/string.hpp>
#include <boost/serialization/vector.hpp>

#include <mpi.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <vector>

namespace {

using foreman_test::mix;

// The result of payload task `seed`: `bytes` bytes, each 8-byte word mix(seed ^ k).
std::vector<char> pattern(std::uint64_t seed, std::size_t bytes) {
  std::vector<char> v(bytes);
  for (std::size_t k = 0; k + 8 <= bytes; k += 8) {
    const std::uint64_t x = mix(seed ^ k);
    std::memcpy(v.data() + k, &x, 8);
  }
  for (std::size_t k = bytes / 8 * 8; k < bytes; ++k) v[k] = static_cast<char>(mix(seed + k));
  return v;
}

std::string processor_name() {
  char name[MPI_MAX_PROCESSOR_NAME] = {};
  int length = 0;
  MPI_Get_processor_name(name, &length);
  return std::string(name, static_cast<std::size_t>(length));
}

} // namespace

int main(int argc, char* argv[]) {
  boost::mpi::environment env(argc, argv);
  const std::string mode = argc > 2 ? argv[1] : "";
  if ((mode != "tiny" && mode != "payload") || (mode == "payload" && argc < 4)) {
    std::fprintf(stderr, "usage: across_hosts tiny <tasks> | payload <tasks> <bytes>\n");
    return 2;
  }
  const std::size_t count = std::strtoull(argv[2], nullptr, 10);
  const std::size_t bytes = mode == "payload" ? std::strtoull(argv[3], nullptr, 10) : 8;

  // Where each rank runs, for the master's count of hosts that computed tasks.
  boost::mpi::communicator world;
  std::vector<std::string> hosts;
  boost::mpi::gather(world, processor_name(), hosts, 0);

  std::size_t wrong = 0;
  std::vector<int> workers; // the rank that computed each task
  const auto start = std::chrono::steady_clock::now();
  if (mode == "tiny") {
    foreman::master_worker<std::uint64_t, std::uint64_t> pool;
    std::vector<std::uint64_t> tasks(count);
    for (std::size_t i = 0; i < count; ++i) tasks[i] = i;
    const auto results = pool.run(tasks, [](std::uint64_t t) { return mix(t); });
    if (!pool.is_master()) return 0;
    for (std::size_t i = 0; i < count; ++i) wrong += results.size() != count || results[i] != mix(i) ? 1 : 0;
    for (const auto& t : pool.last_run().tasks) workers.push_back(t.worker);
  } else {
    foreman::master_worker<std::uint64_t, std::vector<char>> pool;
    std::vector<std::uint64_t> tasks(count);
    for (std::size_t i = 0; i < count; ++i) tasks[i] = mix(1000 + i);
    const auto results = pool.run(tasks, [bytes](std::uint64_t seed) { return pattern(seed, bytes); });
    if (!pool.is_master()) return 0;
    for (std::size_t i = 0; i < count; ++i)
      wrong += results.size() != count || results[i] != pattern(tasks[i], bytes) ? 1 : 0;
    for (const auto& t : pool.last_run().tasks) workers.push_back(t.worker);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  std::set<std::string> all_hosts(hosts.begin(), hosts.end());
  std::set<std::string> computing; // hosts whose workers computed tasks
  for (int w : workers)
    if (w >= 0 && static_cast<std::size_t>(w) < hosts.size()) computing.insert(hosts[static_cast<std::size_t>(w)]);
  std::string problems;
  if (workers.size() != count) problems += "; " + std::to_string(workers.size()) + " task records";
  if (wrong != 0) problems += "; " + std::to_string(wrong) + " results wrong";
  if (world.size() > 1 && computing.size() != all_hosts.size())
    problems += "; tasks computed on " + std::to_string(computing.size()) + " of the job's " +
                std::to_string(all_hosts.size()) + " hosts";
  std::printf("across hosts %s: %zu tasks of %zu-byte results, %zu wrong, computed on %zu hosts in %.2f s: %s%s\n",
              mode.c_str(), count, bytes, wrong, computing.size(), seconds, problems.empty() ? "PASSED" : "FAILED",
              problems.c_str());
  return problems.empty() ? 0 : 1;
}
