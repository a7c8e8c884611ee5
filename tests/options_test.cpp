// Scheduling options: results stay in task order whatever order tasks complete in, for both
// schedules and any chunk_size / tasks_in_flight; round_robin places task i on worker
// 1 + i % worker_count(); many tiny tasks; wait policies and how oversubscription is judged.

#include "catch.hpp"
#include "test_support.hpp"

#include <foreman/foreman.hpp>

#include <boost/mpi/communicator.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

namespace {

using foreman_test::mix;
using foreman_test::world_rank;
using foreman_test::world_size;

struct job {
  std::int64_t id;
  std::int64_t sleep_us;
};

struct reply {
  std::int64_t value;
  int rank; // world rank of the process that ran the task
};

std::int64_t value_of(const job& j) {
  return j.id * j.id - 7 * j.id + static_cast<std::int64_t>(mix(j.id) % 1000);
}

reply work(const job& j) {
  foreman_test::sleep_us(j.sleep_us);
  return reply{value_of(j), world_rank()};
}

// Durations that make later tasks overtake earlier ones.
std::vector<job> shuffled_jobs(std::size_t count, std::int64_t max_sleep_us) {
  std::vector<job> jobs;
  for (std::size_t i = 0; i < count; ++i)
    jobs.push_back(job{static_cast<std::int64_t>(i), static_cast<std::int64_t>(mix(i + 12345) % max_sleep_us)});
  return jobs;
}

const char* name(foreman::schedule s) {
  return s == foreman::schedule::dynamic ? "dynamic" : "round_robin";
}

} // namespace

TEST_CASE("raw job and reply types travel without an archive", "[options]") {
  STATIC_REQUIRE(foreman::detail::is_bitwise_v<job>);
  STATIC_REQUIRE(foreman::detail::is_bitwise_v<reply>);
}

TEST_CASE("results are in task order whatever the completion order, for every schedule and chunking", "[options][flat]") {
  foreman::master_worker<job, reply> pool;
  const std::vector<job> jobs = shuffled_jobs(41, 1500);
  for (auto sched : {foreman::schedule::dynamic, foreman::schedule::round_robin}) {
    for (std::size_t chunk : {1, 3, 8}) {
      for (std::size_t in_flight : {1, 2, 4}) {
        foreman::options opt;
        opt.schedule = sched;
        opt.chunk_size = chunk;
        opt.tasks_in_flight = in_flight;
        INFO("schedule " << name(sched) << ", chunk_size " << chunk << ", tasks_in_flight " << in_flight);
        const std::vector<reply> replies = pool.run(jobs, work, opt);
        if (!pool.is_master()) {
          CHECK(replies.empty());
          continue;
        }
        REQUIRE(replies.size() == jobs.size());
        REQUIRE(pool.last_run().tasks.size() == jobs.size());
        for (std::size_t i = 0; i < jobs.size(); ++i) {
          INFO("task " << i);
          CHECK(replies[i].value == value_of(jobs[i]));
          const int worker = pool.last_run().tasks[i].worker;
          // The pool is built on the world, so its ranks are world ranks.
          CHECK(replies[i].rank == worker);
          if (pool.worker_count() == 0)
            CHECK(worker == 0);
          else if (sched == foreman::schedule::round_robin)
            CHECK(worker == 1 + static_cast<int>(i % static_cast<std::size_t>(pool.worker_count())));
          else
            CHECK((worker >= 1 && worker < world_size()));
        }
      }
    }
  }
}

TEST_CASE("a slow first task is overtaken, and its result still lands in slot 0", "[options][flat]") {
  foreman::master_worker<job, reply> pool;
  std::vector<job> jobs = shuffled_jobs(24, 300);
  jobs[0].sleep_us = 150'000;
  for (auto sched : {foreman::schedule::dynamic, foreman::schedule::round_robin}) {
    foreman::options opt;
    opt.schedule = sched;
    INFO("schedule " << name(sched));
    std::vector<std::size_t> completion;
    const auto replies = pool.run(
        jobs, work, [&](std::size_t index, int, const reply&) { completion.push_back(index); }, opt);
    if (!pool.is_master()) continue;
    REQUIRE(replies.size() == jobs.size());
    for (std::size_t i = 0; i < jobs.size(); ++i) CHECK(replies[i].value == value_of(jobs[i]));
    REQUIRE(completion.size() == jobs.size());
    if (pool.worker_count() >= 2) {
      // The other workers finish all their short tasks while the worker of task 0 sleeps.
      CHECK(completion.front() != 0);
      const int slow = pool.last_run().tasks[0].worker;
      const auto position_of_0 = std::find(completion.begin(), completion.end(), 0) - completion.begin();
      for (std::size_t i = 1; i < jobs.size(); ++i) {
        if (pool.last_run().tasks[i].worker == slow) continue;
        INFO("task " << i << " ran on worker " << pool.last_run().tasks[i].worker);
        CHECK((std::find(completion.begin(), completion.end(), i) - completion.begin()) < position_of_0);
      }
    } else {
      // One worker (or the master alone) runs tasks in order.
      CHECK(std::is_sorted(completion.begin(), completion.end()));
    }
    CHECK(pool.last_run().tasks[0].seconds >= 0.15);
  }
}

TEST_CASE("round_robin places task i on worker 1 + i % worker_count(), chunked or not", "[options][flat]") {
  foreman::master_worker<int, int> pool;
  std::vector<int> tasks(23);
  for (std::size_t i = 0; i < tasks.size(); ++i) tasks[i] = static_cast<int>(i);
  for (std::size_t chunk : {1, 2, 5, 100}) {
    foreman::options opt;
    opt.schedule = foreman::schedule::round_robin;
    opt.chunk_size = chunk;
    INFO("chunk_size " << chunk);
    const std::vector<int> ranks = pool.run(
        tasks, [](int) { return world_rank(); }, opt);
    if (!pool.is_master()) continue;
    REQUIRE(ranks.size() == tasks.size());
    for (std::size_t i = 0; i < tasks.size(); ++i) {
      INFO("task " << i);
      const int expected =
          pool.worker_count() == 0 ? 0 : 1 + static_cast<int>(i % static_cast<std::size_t>(pool.worker_count()));
      CHECK(pool.last_run().tasks[i].worker == expected);
      CHECK(ranks[i] == expected);
    }
  }
}

TEST_CASE("degenerate option values and fewer tasks than workers", "[options]") {
  foreman::master_worker<int, std::string> pool;
  auto fn = [](int x) { return std::to_string(x) + "!"; };
  for (std::size_t count : {1, 2, 5}) {
    std::vector<int> tasks;
    for (std::size_t i = 0; i < count; ++i) tasks.push_back(static_cast<int>(100 + i));
    for (auto sched : {foreman::schedule::dynamic, foreman::schedule::round_robin}) {
      foreman::options opt;
      opt.schedule = sched;
      opt.chunk_size = 0;      // automatic
      opt.tasks_in_flight = 0; // treated as 1
      INFO(count << " tasks, schedule " << name(sched));
      const auto r = pool.run(tasks, fn, opt);
      opt.chunk_size = 1000;
      opt.tasks_in_flight = 1000;
      const auto big = pool.run(tasks, fn, opt);
      if (!pool.is_master()) continue;
      REQUIRE(r.size() == count);
      REQUIRE(big.size() == count);
      for (std::size_t i = 0; i < count; ++i) {
        CHECK(r[i] == fn(tasks[i]));
        CHECK(big[i] == fn(tasks[i]));
      }
    }
  }
}

TEST_CASE("100000 tiny tasks", "[options]") {
  foreman::master_worker<std::int32_t, std::int64_t> pool;
  std::vector<std::int32_t> tasks(100'000);
  for (std::size_t i = 0; i < tasks.size(); ++i) tasks[i] = static_cast<std::int32_t>(i) - 50'000;
  auto fn = [](std::int32_t x) { return std::int64_t{x} * x * 3 + x; };
  foreman::options chunked;
  chunked.chunk_size = 500;
  foreman::options round_robin;
  round_robin.schedule = foreman::schedule::round_robin;
  round_robin.chunk_size = 64;
  for (const foreman::options& opt : {foreman::options{}, chunked, round_robin}) {
    INFO("chunk_size " << opt.chunk_size << ", schedule " << name(opt.schedule));
    std::size_t calls = 0;
    const auto r = pool.run(
        tasks, fn, [&](std::size_t, int, std::int64_t) { ++calls; }, opt);
    if (!pool.is_master()) continue;
    REQUIRE(r.size() == tasks.size());
    std::size_t wrong = 0;
    for (std::size_t i = 0; i < tasks.size(); ++i) wrong += r[i] != fn(tasks[i]);
    CHECK(wrong == 0);
    CHECK(calls == tasks.size());
  }
}

TEST_CASE("automatic chunks: many tiny tasks per message, one slow task per message", "[options][flat]") {
  foreman::master_worker<int, long> pool;
  std::vector<int> tiny(50'000);
  for (std::size_t i = 0; i < tiny.size(); ++i) tiny[i] = static_cast<int>(i);
  const auto r = pool.run(tiny, [](int x) { return long(x) * 2; });
  if (pool.is_master() && pool.worker_count() > 0) {
    for (std::size_t i = 0; i < tiny.size(); ++i) REQUIRE(r[i] == long(i) * 2);
    INFO(pool.last_run().messages << " messages");
    CHECK(pool.last_run().messages * 20 < tiny.size()); // on average more than 20 tasks a message
  }
  std::vector<int> slow(12);
  pool.run(slow, [](int x) {
    foreman_test::sleep_us(3000); // 3 ms: more than the millisecond a message aims at
    return long(x);
  });
  if (pool.is_master() && pool.worker_count() > 0) CHECK(pool.last_run().messages == slow.size());
  foreman::options fixed;
  fixed.chunk_size = 7;
  pool.run(tiny, [](int x) { return long(x); }, fixed);
  if (pool.is_master() && pool.worker_count() > 0) CHECK(pool.last_run().messages == (tiny.size() + 6) / 7);
}

TEST_CASE("every wait policy gives the same results, and FOREMAN_WAIT overrides the option", "[options]") {
  using foreman::wait_policy;
  foreman::master_worker<job, reply> pool;
  const std::vector<job> jobs = shuffled_jobs(30, 200);
  for (wait_policy policy : {wait_policy::adaptive, wait_policy::busy, wait_policy::sleep}) {
    foreman::options opt;
    opt.wait = policy;
    opt.chunk_size = 1;
    const auto replies = pool.run(jobs, work, opt);
    if (!pool.is_master()) continue;
    REQUIRE(replies.size() == jobs.size());
    for (std::size_t i = 0; i < jobs.size(); ++i) CHECK(replies[i].value == value_of(jobs[i]));
  }
  // The environment wins over the option on the rank that sees it; unknown values are ignored.
  ::setenv("FOREMAN_WAIT", "sleep", 1);
  CHECK(foreman::detail::effective_wait_policy(wait_policy::busy) == wait_policy::sleep);
  ::setenv("FOREMAN_WAIT", "busy", 1);
  CHECK(foreman::detail::effective_wait_policy(wait_policy::adaptive) == wait_policy::busy);
  ::setenv("FOREMAN_WAIT", "adaptive", 1);
  CHECK(foreman::detail::effective_wait_policy(wait_policy::sleep) == wait_policy::adaptive);
  ::setenv("FOREMAN_WAIT", "fast please", 1);
  CHECK(foreman::detail::effective_wait_policy(wait_policy::sleep) == wait_policy::sleep);
  ::unsetenv("FOREMAN_WAIT");
  CHECK(foreman::detail::effective_wait_policy(wait_policy::busy) == wait_policy::busy);
}

TEST_CASE("oversubscription is judged from the ranks of the pool on this host", "[options]") {
  const unsigned processors = std::thread::hardware_concurrency();
  if (processors == 0) return; // unknown: nothing to judge against
  // Rank 1 shares host 7 with as many ranks as there are processors, then with one more.
  std::vector<std::uint64_t> hosts(processors, 7);
  hosts.push_back(9); // another host
  CHECK_FALSE(foreman::detail::host_oversubscribed(hosts, 1));
  CHECK_FALSE(foreman::detail::host_oversubscribed(hosts, static_cast<int>(processors))); // the one on host 9
  hosts.push_back(7);
  CHECK(foreman::detail::host_oversubscribed(hosts, 1));
  CHECK_FALSE(foreman::detail::host_oversubscribed(hosts, static_cast<int>(processors)));
}

TEST_CASE("ranks of one machine count together whatever their host names; other machines apart", "[options]") {
  using foreman::detail::hello;
  hello a{}, b{}, c{};
  a.host = 1; // three host names: namespaces or containers of one machine, and another machine
  b.host = 2;
  c.host = 3;
  a.identity.boot_id[0] = b.identity.boot_id[0] = 0x1234; // one kernel for a and b
  a.identity.boot_id[1] = b.identity.boot_id[1] = 0x5678;
  c.identity.boot_id[0] = 0x1234; // another kernel: another boot id
  c.identity.boot_id[1] = 0x5679;
  CHECK(foreman::detail::machine_of(a) == foreman::detail::machine_of(b));
  CHECK(foreman::detail::machine_of(a) != foreman::detail::machine_of(c));
  // Unknown boot ids (no /proc): the host names decide.
  hello d{}, e{};
  d.host = e.host = 4;
  CHECK(foreman::detail::machine_of(d) == foreman::detail::machine_of(e));
  e.host = 5;
  CHECK(foreman::detail::machine_of(d) != foreman::detail::machine_of(e));

  const unsigned processors = std::thread::hardware_concurrency();
  if (processors == 0) return;
  // As many ranks as processors under one host name, and one more under another on the same
  // machine: oversubscribed (judged by host names alone, it was not).
  std::vector<hello> ranks(processors + 1, a);
  ranks.back() = b;
  std::vector<std::uint64_t> machines;
  for (const hello& r : ranks) machines.push_back(foreman::detail::machine_of(r));
  CHECK(foreman::detail::host_oversubscribed(machines, 0));
  CHECK(foreman::detail::host_oversubscribed(machines, static_cast<int>(processors)));
}
