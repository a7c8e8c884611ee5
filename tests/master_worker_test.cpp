// The facade: results in task order, several runs in a row, the empty list, the size-1 path,
// callbacks, last_run(), shutdown(), sub-communicators and pools built one after another.

#include "catch.hpp"
#include "test_support.hpp"

#include <foreman/foreman.hpp>

#include <boost/mpi/collectives.hpp>
#include <boost/mpi/communicator.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <time.h>

namespace {

using foreman_test::world_rank;
using foreman_test::world_size;

long square(int x) {
  return static_cast<long>(x) * x;
}

std::vector<int> iota(int count, int first = 0) {
  std::vector<int> v;
  for (int i = 0; i < count; ++i) v.push_back(first + i);
  return v;
}

// A result that tells where it was computed.
struct where {
  int value = 0;
  int rank = -1; // world rank that ran the task
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar& value& rank;
  }
};

} // namespace

TEST_CASE("the pool describes itself", "[master_worker]") {
  foreman::master_worker<int, long> pool;
  CHECK(pool.rank() == world_rank());
  CHECK(pool.is_master() == (world_rank() == 0));
  CHECK(pool.worker_count() == world_size() - 1);
  CHECK(pool.communicator().size() == world_size());
  // Its own duplicate: same group, different communicator.
  CHECK(pool.communicator() != boost::mpi::communicator());
}

TEST_CASE("run returns fn(tasks[i]) in slot i on the master and nothing on workers", "[master_worker]") {
  foreman::master_worker<int, long> pool;
  const std::vector<int> tasks = iota(57, -20);
  // Workers pass no tasks: theirs are ignored anyway.
  const std::vector<long> r = pool.run(pool.is_master() ? tasks : std::vector<int>{}, square);
  if (pool.is_master()) {
    REQUIRE(r.size() == tasks.size());
    for (std::size_t i = 0; i < tasks.size(); ++i) CHECK(r[i] == square(tasks[i]));
  } else {
    CHECK(r.empty());
    CHECK(pool.last_run().tasks.empty());
  }
}

TEST_CASE("tasks passed on a worker are ignored", "[master_worker]") {
  foreman::master_worker<int, int> pool;
  const std::vector<int> tasks = pool.is_master() ? iota(5) : iota(1000, 7);
  const auto r = pool.run(tasks, [](int x) { return x + 1; });
  if (pool.is_master()) {
    REQUIRE(r.size() == 5);
    for (int i = 0; i < 5; ++i) CHECK(r[static_cast<std::size_t>(i)] == i + 1);
  } else {
    CHECK(r.empty());
  }
}

TEST_CASE("several runs in a row with different functions and task lists, an empty one among them", "[master_worker]") {
  foreman::master_worker<int, std::string> pool;
  int local_calls = 0; // per rank: how often this rank's function ran

  // 1. a lambda
  const auto a = pool.run(iota(10), [&](int x) {
    ++local_calls;
    return std::to_string(x);
  });
  // 2. a std::function with captured state
  const std::string prefix = "n=";
  std::function<std::string(const int&)> named = [&](const int& x) {
    ++local_calls;
    return prefix + std::to_string(x * 2);
  };
  const auto b = pool.run(iota(3, 100), named);
  // 3. the empty list: returns at once on every rank, runs nothing
  const int calls_before_empty = local_calls;
  const auto t0 = std::chrono::steady_clock::now();
  const auto empty = pool.run(std::vector<int>{}, [&](int) -> std::string {
    ++local_calls;
    return "never";
  });
  const double empty_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(empty.empty());
  CHECK(local_calls == calls_before_empty);
  CHECK(empty_seconds < 5.0); // "at once": no timeout or polling deadline in the way
  if (pool.is_master()) CHECK(pool.last_run().tasks.empty());
  // 4. a mutable function object, more tasks than before
  struct counter {
    int* calls;
    std::string operator()(int x) {
      ++*calls;
      return std::string(static_cast<std::size_t>(x % 7), 'x');
    }
  };
  const auto c = pool.run(iota(200), counter{&local_calls});
  // 5. two empty runs back to back, then one task
  CHECK(pool.run({}, counter{&local_calls}).empty());
  CHECK(pool.run({}, counter{&local_calls}).empty());
  const auto d = pool.run({41}, [&](int x) {
    ++local_calls;
    return std::to_string(x + 1);
  });

  if (pool.is_master()) {
    REQUIRE(a.size() == 10);
    for (int i = 0; i < 10; ++i) CHECK(a[static_cast<std::size_t>(i)] == std::to_string(i));
    REQUIRE(b.size() == 3);
    CHECK(b == std::vector<std::string>{"n=200", "n=202", "n=204"});
    REQUIRE(c.size() == 200);
    for (int i = 0; i < 200; ++i)
      CHECK(c[static_cast<std::size_t>(i)] == std::string(static_cast<std::size_t>(i % 7), 'x'));
    CHECK(d == std::vector<std::string>{"42"});
    CHECK(pool.last_run().tasks.size() == 1);
  } else {
    CHECK((a.empty() && b.empty() && c.empty() && d.empty()));
  }
  // Every task ran exactly once somewhere.
  int all_calls = 0;
  boost::mpi::all_reduce(boost::mpi::communicator(), local_calls, all_calls, std::plus<int>());
  CHECK(all_calls == 10 + 3 + 200 + 1);
  if (world_size() > 1 && pool.is_master()) CHECK(local_calls == 0); // the master only hands out work
}

TEST_CASE("a communicator of size 1: the master runs every task itself", "[master_worker]") {
  // MPI_COMM_SELF gives every rank its own one-rank pool, whatever the world size.
  boost::mpi::communicator self(MPI_COMM_SELF, boost::mpi::comm_attach);
  foreman::master_worker<int, where> pool(self);
  CHECK(pool.is_master());
  CHECK(pool.rank() == 0);
  CHECK(pool.worker_count() == 0);
  const std::vector<int> tasks = iota(25, 3);
  std::vector<int> seen;
  const auto r = pool.run(
      tasks,
      [](int x) {
        return where{x * 3, world_rank()};
      },
      [&](std::size_t index, int worker, const where& w) {
        CHECK(worker == 0);
        CHECK(w.value == tasks[index] * 3);
        seen.push_back(static_cast<int>(index));
      });
  REQUIRE(r.size() == tasks.size());
  REQUIRE(pool.last_run().tasks.size() == tasks.size());
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    CHECK(r[i].value == tasks[i] * 3);
    CHECK(r[i].rank == world_rank()); // computed right here
    CHECK(pool.last_run().tasks[i].worker == 0);
    CHECK_FALSE(pool.last_run().tasks[i].failed);
  }
  CHECK(seen == iota(25));
  // The empty list and a second run work here too.
  CHECK(pool.run({}, [](int) { return where{}; }).empty());
  CHECK(pool.run({7}, [](int x) { return where{x, 0}; }).at(0).value == 7);
}

TEST_CASE("the per-result callback sees every task once, with its index, worker and value", "[master_worker]") {
  foreman::master_worker<int, where> pool;
  const std::vector<int> tasks = iota(64, 1);
  auto fn = [](int x) {
    foreman_test::sleep_us(static_cast<std::int64_t>(foreman_test::mix(static_cast<std::uint64_t>(x)) % 800));
    return where{x * x, world_rank()};
  };
  std::map<std::size_t, int> calls;
  std::map<std::size_t, int> reported_worker;
  bool values_right = true;
  const auto r = pool.run(tasks, fn, [&](std::size_t index, int worker, const where& w) {
    ++calls[index];
    reported_worker[index] = worker;
    values_right = values_right && index < tasks.size() && w.value == tasks[index] * tasks[index] && w.rank == worker;
  });
  if (!pool.is_master()) {
    CHECK(calls.empty()); // only the master calls it
    return;
  }
  CHECK(values_right);
  REQUIRE(calls.size() == tasks.size());
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    INFO("task " << i);
    CHECK(calls[i] == 1);
    CHECK(reported_worker[i] == pool.last_run().tasks[i].worker);
    CHECK(reported_worker[i] == r[i].rank);
    if (world_size() > 1)
      CHECK((reported_worker[i] >= 1 && reported_worker[i] < world_size()));
    else
      CHECK(reported_worker[i] == 0);
  }
}

namespace {
void check_records(const foreman::run_info& info, const std::vector<int>& tasks, double outside);
}

TEST_CASE("last_run() records the worker, the time and the failed flag of every task", "[master_worker]") {
  foreman::master_worker<int, int> pool;
  // Task i sleeps i milliseconds.
  const std::vector<int> tasks = iota(12);
  const auto t0 = std::chrono::steady_clock::now();
  pool.run(tasks, [](int ms) {
    foreman_test::sleep_us(ms * 1000);
    return ms;
  });
  const double outside = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const foreman::run_info info = pool.last_run();
  // Every rank takes part in the second run at the end, so no early return here.
  if (pool.is_master()) {
    check_records(info, tasks, outside);
  } else {
    CHECK(info.tasks.empty());
  }
  // A new run replaces the record.
  pool.run({1, 2}, [](int x) { return x; });
  CHECK(pool.last_run().tasks.size() == (pool.is_master() ? 2u : 0u));
}

namespace {
void check_records(const foreman::run_info& info, const std::vector<int>& tasks, double outside) {
  REQUIRE(info.tasks.size() == tasks.size());
  CHECK(info.failures == 0);
  double longest = 0, total = 0;
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    INFO("task " << i);
    const foreman::task_record& t = info.tasks[i];
    CHECK(t.seconds >= tasks[i] / 1000.0);
    CHECK(t.seconds < tasks[i] / 1000.0 + 2.0);
    CHECK_FALSE(t.failed);
    if (world_size() > 1)
      CHECK((t.worker >= 1 && t.worker < world_size()));
    else
      CHECK(t.worker == 0);
    longest = std::max(longest, t.seconds);
    total += t.seconds;
  }
  CHECK(info.wall_seconds >= longest);
  CHECK(info.wall_seconds <= outside);
  if (world_size() == 1) CHECK(info.wall_seconds >= total);
}
} // namespace

TEST_CASE("after shutdown() on every rank, run() throws foreman::error", "[master_worker]") {
  foreman::master_worker<int, int> pool;
  CHECK(pool.run(iota(4), [](int x) { return x; }).size() == (pool.is_master() ? 4u : 0u));
  pool.shutdown();
  pool.shutdown(); // idempotent
  CHECK_THROWS_AS(pool.run(iota(4), [](int x) { return x; }), foreman::error);
  try {
    pool.run(iota(4), [](int x) { return x; });
  } catch (const foreman::error& e) {
    CHECK(std::string(e.what()).rfind("foreman: ", 0) == 0);
  }
}

TEST_CASE("a worker waiting in run() returns when the master shuts the pool down", "[master_worker]") {
  foreman::master_worker<int, int> pool;
  if (pool.is_master()) {
    pool.shutdown();
  } else {
    CHECK(pool.run({}, [](int x) { return x; }).empty());
  }
  // Closed on every rank now.
  CHECK_THROWS_AS(pool.run(iota(3), [](int x) { return x; }), foreman::error);
}

TEST_CASE("destroying pools never hangs: unused, used, and destroyed right after construction", "[master_worker]") {
  { foreman::master_worker<int, int> unused; }
  {
    foreman::master_worker<int, int> used;
    used.run(iota(10), [](int x) { return x; });
  }
  {
    foreman::master_worker<std::string, std::string> a;
    foreman::master_worker<double, double> b;
  }
  SUCCEED("all pools destroyed");
}

TEST_CASE("pools built one after another on the same communicator", "[master_worker]") {
  // Each pool's goodbye must reach that pool's workers, never the next pool's.
  for (int round = 0; round < 5; ++round) {
    INFO("round " << round);
    {
      foreman::master_worker<int, int> small;
      const auto r = small.run(iota(3), [](int x) { return x + 1; });
      if (small.is_master()) CHECK(r == std::vector<int>{1, 2, 3});
    }
    foreman::master_worker<int, int> next;
    const std::vector<int> tasks = iota(20000);
    const auto r = next.run(tasks, [round](int x) { return x + round; });
    if (next.is_master()) {
      REQUIRE(r.size() == tasks.size());
      std::size_t wrong = 0;
      for (std::size_t i = 0; i < tasks.size(); ++i) wrong += r[i] != tasks[i] + round;
      CHECK(wrong == 0);
    }
    CHECK(next.run({5}, [](int x) { return x; }).size() == (next.is_master() ? 1u : 0u));
  }
}

TEST_CASE("a pool on a sub-communicator", "[master_worker]") {
  boost::mpi::communicator world;
  // Even and odd world ranks form two groups; each builds its own pool and runs its own work.
  const int color = world.rank() % 2;
  boost::mpi::communicator group = world.split(color);
  foreman::master_worker<int, where> pool(group);
  CHECK(pool.rank() == group.rank());
  CHECK(pool.worker_count() == group.size() - 1);
  const std::vector<int> tasks = iota(30, color * 1000);
  const auto r = pool.run(tasks, [](int x) { return where{x + 1, world_rank()}; });
  if (pool.is_master()) {
    CHECK(world.rank() == color); // world ranks 0 and 1 are the masters
    REQUIRE(r.size() == tasks.size());
    for (std::size_t i = 0; i < tasks.size(); ++i) {
      CHECK(r[i].value == tasks[i] + 1);
      CHECK(r[i].rank % 2 == color); // ran inside this group
      if (group.size() > 1) CHECK(r[i].rank != world.rank());
      // last_run() speaks in the pool's ranks: group rank k is world rank 2k + color.
      CHECK(r[i].rank == 2 * pool.last_run().tasks[i].worker + color);
    }
  } else {
    CHECK(r.empty());
  }
  // A pool on the world still works while the group pools exist.
  foreman::master_worker<int, int> everyone;
  const auto all = everyone.run(iota(9), [](int x) { return -x; });
  if (everyone.is_master())
    for (int i = 0; i < 9; ++i) CHECK(all[static_cast<std::size_t>(i)] == -i);
  // And the group pool again, after the world pool ran.
  const auto again = pool.run({color}, [](int x) { return where{x, world_rank()}; });
  if (pool.is_master()) CHECK(again.at(0).value == color);
}

TEST_CASE("messages longer than a posted receive arrive whole, in both directions", "[master_worker]") {
  // Each side receives into buffers of posted_capacity bytes posted ahead; a longer message
  // follows an envelope. Archived values (not bodies) of sizes around that capacity, alone and
  // several per message, and small ones between them.
  const std::size_t capacity = foreman::detail::posted_capacity;
  std::vector<std::vector<std::string>> tasks;
  for (std::size_t i = 0; i < 60; ++i) {
    const std::size_t bytes = i % 3 == 0 ? 10 : i % 3 == 1 ? capacity - 40 + i : capacity * 2 + i * 97;
    tasks.push_back({std::string(bytes / 2, static_cast<char>('a' + i % 26)), std::string(bytes - bytes / 2, 'z')});
  }
  // The result is as long as the task, so replies cross the capacity where the tasks do not.
  auto fn = [](const std::vector<std::string>& t) {
    std::map<std::size_t, std::string> out;
    for (std::size_t k = 0; k < t.size(); ++k) out[k] = t[k] + "!";
    return out;
  };
  foreman::master_worker<std::vector<std::string>, std::map<std::size_t, std::string>> pool;
  for (std::size_t chunk : {1, 4, 0}) {
    foreman::options opt;
    opt.chunk_size = chunk;
    INFO("chunk_size " << chunk);
    const auto r = pool.run(tasks, fn, opt);
    if (!pool.is_master()) continue;
    REQUIRE(r.size() == tasks.size());
    for (std::size_t i = 0; i < tasks.size(); ++i) {
      INFO("task " << i);
      CHECK(r[i] == fn(tasks[i]));
    }
  }
}

TEST_CASE("a function may write its result into the object it is given", "[master_worker]") {
  foreman::master_worker<int, std::string> pool;
  const std::vector<int> tasks = iota(50, -10);
  // The object may hold an earlier task's result: the function assigns all of it.
  auto fn = [](int x, std::string& out) {
    if (x == 7) throw std::invalid_argument("seven");
    out.assign(static_cast<std::size_t>(x + 11), '#');
    out += std::to_string(x);
  };
  for (std::size_t chunk : {1, 5}) {
    foreman::options opt;
    opt.chunk_size = chunk;
    const auto r = pool.run_outcomes(tasks, fn, opt);
    if (!pool.is_master()) {
      CHECK(r.empty());
      continue;
    }
    REQUIRE(r.size() == tasks.size());
    for (std::size_t i = 0; i < tasks.size(); ++i) {
      const int x = tasks[i];
      INFO("task " << x << ", chunk_size " << chunk);
      if (x == 7) {
        CHECK(r[i].failure().type == "std::invalid_argument");
        continue;
      }
      CHECK(r[i].value() == std::string(static_cast<std::size_t>(x + 11), '#') + std::to_string(x));
    }
  }
}

TEST_CASE("a master waiting for slow tasks gives its core back, tasks with bodies in fixed chunks too", "[master_worker]") {
  // With a fixed chunk size the master encodes the next chunk while it waits; a chunk whose
  // tasks travel as bodies is not kept, and was once encoded again on every idle pass, so that
  // the master never slept (CPU time 97 % of the run, against 3 % after the fix).
  foreman::master_worker<std::vector<char>, int> pool;
  const std::vector<std::vector<char>> tasks(40, std::vector<char>(foreman::detail::body_threshold * 2, 'b'));
  auto fn = [](const std::vector<char>& t) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return static_cast<int>(t.size());
  };
  foreman::options opt;
  opt.chunk_size = 1;
  opt.wait = foreman::wait_policy::sleep;
  auto cpu = [] {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
  };
  const double cpu_before = cpu();
  const auto start = std::chrono::steady_clock::now();
  const auto r = pool.run(tasks, fn, opt);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double used = cpu() - cpu_before;
  if (!pool.is_master()) return;
  REQUIRE(r.size() == tasks.size());
  for (int v : r) CHECK(v == static_cast<int>(tasks[0].size()));
  INFO("master CPU " << used << " s in a run of " << wall << " s");
  CHECK(used < 0.5 * wall);
}
