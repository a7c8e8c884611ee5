// across_hosts: foreman::master_worker over TCP between the test hosts of scripts/netns-hosts.sh.
//
//   across_hosts tiny <tasks>             <tasks> tasks of one integer, each result a 64-bit word
//   across_hosts payload <tasks> <bytes>  each result <bytes> long (a pattern of its task's seed)
//   across_hosts slow_link <tasks> <bytes> <task timeout s>
//                                         each task <bytes> long, and a shared value of <bytes>,
//                                         sent over links slower than the timeout allows for
//                                         them (netns-hosts.sh --rate): no worker may be lost,
//                                         for its silence counts from their arrival
//   across_hosts below_floor <tasks> <bytes> <task timeout s>
//                                         a shared value of <bytes>, by value, over links below
//                                         the master's floor of 1 MiB/s: workers are lost while
//                                         they receive it, and must receive it intact after the
//                                         pool is destroyed and its memory written over
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
#include <functional>
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
  const bool timed = mode == "slow_link" || mode == "below_floor";
  if ((mode != "tiny" && mode != "payload" && !timed) || (mode == "payload" && argc < 4) || (timed && argc < 5)) {
    std::fprintf(stderr, "usage: across_hosts tiny <tasks> | payload <tasks> <bytes> | slow_link|below_floor <tasks> "
                         "<bytes> <task timeout s>\n");
    return 2;
  }
  const std::size_t count = std::strtoull(argv[2], nullptr, 10);
  const std::size_t bytes = mode != "tiny" ? std::strtoull(argv[3], nullptr, 10) : 8;
  const double timeout = timed ? std::strtod(argv[4], nullptr) : 0.0;

  // Where each rank runs, for the master's count of hosts that computed tasks.
  boost::mpi::communicator world;
  std::vector<std::string> hosts;
  boost::mpi::gather(world, processor_name(), hosts, 0);
  std::string master_host = processor_name();
  boost::mpi::broadcast(world, master_host, 0);

  std::size_t wrong = 0;
  std::vector<int> workers; // the rank that computed each task
  std::string problems;
  const auto start = std::chrono::steady_clock::now();
  if (mode == "tiny") {
    foreman::master_worker<std::uint64_t, std::uint64_t> pool;
    std::vector<std::uint64_t> tasks(count);
    for (std::size_t i = 0; i < count; ++i) tasks[i] = i;
    const auto results = pool.run(tasks, [](std::uint64_t t) { return mix(t); });
    if (!pool.is_master()) return 0;
    for (std::size_t i = 0; i < count; ++i) wrong += results.size() != count || results[i] != mix(i) ? 1 : 0;
    for (const auto& t : pool.last_run().tasks) workers.push_back(t.worker);
  } else if (mode == "slow_link") {
    // Each result: the xor of the task's words and the shared value's. The workers on hosts 2
    // and 3 receive the shared value and each task (<bytes> each) slower than the task timeout
    // allows for the silence of a worker that waits for nothing.
    auto fold = [](const std::vector<char>& task, const std::vector<char>& shared) {
      std::uint64_t x = 0;
      for (std::size_t k = 0; k + 8 <= task.size() && k + 8 <= shared.size(); k += 8) {
        std::uint64_t a = 0, b = 0;
        std::memcpy(&a, task.data() + k, 8);
        std::memcpy(&b, shared.data() + k, 8);
        x = mix(x ^ a ^ b);
      }
      return x;
    };
    foreman::master_worker<std::vector<char>, std::uint64_t> pool;
    const std::vector<char> shared = pool.is_master() ? pattern(7, bytes) : std::vector<char>{};
    std::vector<std::vector<char>> tasks;
    for (std::size_t i = 0; i < count && pool.is_master(); ++i) tasks.push_back(pattern(mix(2000 + i), bytes));
    foreman::options opt;
    opt.task_timeout = std::chrono::duration<double>(timeout);
    const auto results = pool.run(tasks, foreman::with_shared(std::cref(shared), fold), opt);
    if (!pool.is_master()) return 0;
    for (std::size_t i = 0; i < count; ++i)
      wrong += results.size() != count || results[i] != fold(tasks[i], shared) ? 1 : 0;
    for (const auto& t : pool.last_run().tasks) workers.push_back(t.worker);
    if (!pool.last_run().lost_workers.empty())
      problems += "; " + std::to_string(pool.last_run().lost_workers.size()) + " workers lost";
    if (pool.last_run().retries != 0) problems += "; " + std::to_string(pool.last_run().retries) + " tasks sent again";
  } else if (mode == "below_floor") {
    // The workers on hosts 2 and 3 are lost while they receive the shared value, alive; the run
    // ends on worker 3 (host 1), the pool is destroyed at once and the master writes over the
    // memory it freed. MPI goes on sending the value to the lost workers: from buffers foreman
    // kept (outliving_sends.hpp), or, before session 28, from freed memory (the master aborted in
    // Open MPI's TCP transport, or the workers got garbage). Each worker checks the value it ran
    // its tasks with; a worker on another host must have run some.
    static std::vector<char> expected;
    expected = pattern(7, bytes);
    std::size_t calls = 0, damaged = 0, lost = 0;
    {
      foreman::master_worker<std::uint64_t, std::uint64_t> pool;
      std::vector<std::uint64_t> tasks(count);
      for (std::size_t i = 0; i < count; ++i) tasks[i] = i;
      foreman::options opt;
      opt.task_timeout = std::chrono::duration<double>(timeout);
      auto fn = [&](std::uint64_t t, const std::vector<char>& shared) {
        ++calls;
        damaged += shared != expected ? 1 : 0;
        return mix(t);
      };
      const auto results =
          pool.run(tasks, foreman::with_shared(pool.is_master() ? expected : std::vector<char>{}, fn), opt);
      if (pool.is_master()) {
        for (std::size_t i = 0; i < count; ++i) wrong += results.size() != count || results[i] != mix(i) ? 1 : 0;
        for (const auto& t : pool.last_run().tasks) workers.push_back(t.worker);
        lost = pool.last_run().lost_workers.size();
      }
    }
    std::uint64_t junk_sum = 0; // the freed memory written over, many times
    for (int k = 0; k < 32; ++k) {
      std::vector<char> junk(bytes + static_cast<std::size_t>(k) * 4096, static_cast<char>(0x5a + k));
      junk_sum += static_cast<unsigned char>(junk[junk.size() / 2]);
    }
    if (world.rank() != 0) {
      const bool remote = processor_name() != master_host;
      const bool failed = damaged > 0 || (remote && calls == 0);
      std::fprintf(stderr, "across hosts below_floor: rank %d (%s): %zu tasks run, %zu with a damaged shared value%s\n",
                   world.rank(), remote ? "another host" : "the master's host", calls, damaged,
                   failed ? ": FAILED" : "");
      return failed ? 1 : 0;
    }
    if (junk_sum == 0) problems += "; the junk was not written"; // (keeps the writes)
    if (lost == 0) problems += "; no worker was lost while receiving: the links were not slow enough to test it";
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
  if (timeout > 0 && seconds < 2 * timeout)
    problems += "; the run took less than twice the task timeout: the links were not slow enough to test it";
  if (workers.size() != count) problems += "; " + std::to_string(workers.size()) + " task records";
  if (wrong != 0) problems += "; " + std::to_string(wrong) + " results wrong";
  if (world.size() > 1 && computing.size() != all_hosts.size() && mode != "below_floor")
    problems += "; tasks computed on " + std::to_string(computing.size()) + " of the job's " +
                std::to_string(all_hosts.size()) + " hosts";
  const char* what = mode == "slow_link" ? "tasks and shared value" : mode == "below_floor" ? "shared value" : "results";
  std::printf("across hosts %s: %zu tasks, %zu-byte %s, %zu wrong, computed on %zu hosts in %.2f s: %s%s\n",
              mode.c_str(), count, bytes, what, wrong, computing.size(), seconds, problems.empty() ? "PASSED" : "FAILED",
              problems.c_str());
  return problems.empty() ? 0 : 1;
}
