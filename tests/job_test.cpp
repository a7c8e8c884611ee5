// Jobs (job.hpp): submit while others run, take completions as they arrive, work that creates
// work, priorities, cancellation, RAII, and options::fail_fast for run(). Runs at 1-4 ranks.
#include "catch.hpp"
#include "test_support.hpp"

#include <foreman/foreman.hpp>

#include <boost/mpi/communicator.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace {

bool result_construction_fails = false; // set on the master only

// A Result whose default constructor throws once armed: the master builds one to decode (and drop)
// the answer of a cancelled task, so arming it breaks the job's loop.
struct fragile {
  int value = 0;
  fragile() {
    if (result_construction_fails) throw std::runtime_error("a Result could not be built");
  }
  explicit fragile(int v) : value(v) {}
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar& value;
  }
};

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point start) {
  return std::chrono::duration<double>(clock_type::now() - start).count();
}

// A node of a tree whose children are known only by expanding it: (depth, id). Node (d, i) has
// 1 + mix(i) % 3 children while d < max_depth: the size of the tree is known only by walking it.
struct node {
  int depth = 0;
  std::uint64_t id = 0;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar& depth& id;
  }
};

std::vector<node> children_of(const node& n, int max_depth) {
  std::vector<node> out;
  if (n.depth >= max_depth) return out;
  const std::uint64_t count = 1 + foreman_test::mix(n.id) % 3;
  for (std::uint64_t k = 0; k < count; ++k) out.push_back(node{n.depth + 1, n.id * 4 + k + 1});
  return out;
}

// The serial walk the job must reproduce: nodes and the sum of their ids.
std::pair<std::size_t, std::uint64_t> walk_serially(int max_depth) {
  std::vector<node> stack{node{}};
  std::size_t count = 0;
  std::uint64_t sum = 0;
  while (!stack.empty()) {
    const node n = stack.back();
    stack.pop_back();
    ++count;
    sum += n.id;
    for (const node& c : children_of(n, max_depth)) stack.push_back(c);
  }
  return {count, sum};
}

} // namespace

TEST_CASE("a job returns every submitted task's result under its ticket", "[job]") {
  foreman::master_worker<int, long> pool;
  auto job = pool.start([](int x) { return long(x) * x; });
  if (!job.is_master()) {
    CHECK_FALSE(job.is_open());
    return;
  }
  CHECK(job.is_open());
  std::map<std::uint64_t, int> submitted;
  for (int k = 0; k < 500; ++k) submitted[job.submit(k * 3)] = k * 3;
  CHECK(submitted.size() == 500);
  CHECK(submitted.begin()->first == 0);
  CHECK(submitted.rbegin()->first == 499);
  CHECK(job.pending() == 500);
  std::set<std::uint64_t> seen;
  while (job.pending() > 0) {
    const foreman::completion<long> c = job.next();
    REQUIRE(c.result.ok());
    CHECK(c.result.value() == long(submitted.at(c.ticket)) * submitted.at(c.ticket));
    CHECK(seen.insert(c.ticket).second);
    if (pool.worker_count() > 0)
      CHECK((c.worker >= 1 && c.worker <= pool.worker_count()));
    else
      CHECK(c.worker == 0);
  }
  CHECK(seen.size() == 500);
  CHECK_THROWS_AS(job.next(), foreman::error); // nothing pending
  job.close();
  CHECK_FALSE(job.is_open());
  CHECK_THROWS_AS(job.submit(1), foreman::error);
}

TEST_CASE("work that creates work: a tree walked by submitting each node's children", "[job]") {
  constexpr int max_depth = 9;
  foreman::master_worker<node, std::vector<node>> pool;
  auto job = pool.start([](const node& n) { return children_of(n, max_depth); });
  if (!job.is_master()) return;
  job.submit(node{});
  std::size_t count = 0;
  std::uint64_t sum = 0;
  std::map<std::uint64_t, std::uint64_t> id_of; // ticket -> node id
  id_of[0] = 0;
  while (job.pending() > 0) {
    foreman::completion<std::vector<node>> c = job.next();
    REQUIRE(c.result.ok());
    ++count;
    sum += id_of.at(c.ticket);
    id_of.erase(c.ticket);
    for (const node& child : c.result.value()) id_of[job.submit(child)] = child.id;
  }
  const auto expected = walk_serially(max_depth);
  CHECK(count == expected.first);
  CHECK(sum == expected.second);
  CHECK(count > 1000);
}

TEST_CASE("try_next never waits and, called in a loop, takes every completion", "[job]") {
  foreman::master_worker<int, int> pool;
  auto job = pool.start([](int x) {
    foreman_test::sleep_us(200);
    return x + 1;
  });
  if (!job.is_master()) return;
  CHECK_FALSE(job.try_next().has_value()); // nothing submitted
  for (int k = 0; k < 50; ++k) job.submit(k);
  std::vector<int> got;
  std::size_t empty_polls = 0;
  const auto start = clock_type::now();
  while (got.size() < 50 && seconds_since(start) < 30) {
    const auto before = clock_type::now();
    auto c = job.try_next();
    // One pass, never a wait for a worker (200 µs tasks: far shorter than this bound).
    CHECK(seconds_since(before) < 0.5);
    if (c)
      got.push_back(c->result.value());
    else
      ++empty_polls;
  }
  std::sort(got.begin(), got.end());
  std::vector<int> expected;
  for (int k = 0; k < 50; ++k) expected.push_back(k + 1);
  CHECK(got == expected);
  if (pool.worker_count() > 0) CHECK(empty_polls > 0); // the workers take time: some polls find nothing
}

// The master submitting a long run of tasks slowly (its own work between submissions) moves the
// pool on meanwhile, so that the workers' answers are taken and they get more work, also when
// the run is shorter than the count that triggers a pass (job_core::submissions_per_pass): at
// least every job_core::pass_interval (1 ms), checked every 512 submissions.
TEST_CASE("slow submissions move the pool on meanwhile: completions are filed before the first next()", "[job]") {
  foreman::master_worker<int, int> pool;
  auto job = pool.start([](int x) { return x + 1; });
  if (!job.is_master()) return;
  constexpr int tasks = 2048; // fewer than a pass's count
  const auto start = clock_type::now();
  for (int k = 0; k < tasks; ++k) {
    job.submit(k);
    while (seconds_since(start) < (k + 1) * 150e-6) {
    } // the master's work between submissions: 0.3 s in all
  }
  // The first task left at once (an idle worker waited); its answer is filed only by a pass.
  if (pool.worker_count() > 0) CHECK(job.ready() > 0);
  std::vector<int> got;
  while (job.pending() > 0) got.push_back(job.next().result.value());
  std::sort(got.begin(), got.end());
  CHECK(got.size() == static_cast<std::size_t>(tasks));
  for (int k = 0; k < tasks && k < static_cast<int>(got.size()); ++k) REQUIRE(got[static_cast<std::size_t>(k)] == k + 1);
}

TEST_CASE("a failing task completes with its failure; the others are not touched", "[job]") {
  foreman::master_worker<int, int> pool;
  auto job = pool.start([](int x) -> int {
    if (x % 7 == 3) throw std::invalid_argument("seven-three " + std::to_string(x));
    return -x;
  });
  if (!job.is_master()) return;
  for (int k = 0; k < 100; ++k) job.submit(k);
  int failed = 0;
  while (job.pending() > 0) {
    const auto c = job.next();
    const int x = static_cast<int>(c.ticket);
    if (x % 7 == 3) {
      REQUIRE_FALSE(c.result.ok());
      CHECK(c.result.failure().type == "std::invalid_argument");
      CHECK(c.result.failure().message == "seven-three " + std::to_string(x));
      CHECK(c.result.failure().index == c.ticket);
      ++failed;
    } else {
      CHECK(c.result.value() == -x);
    }
  }
  CHECK(failed == 14);
  job.close();
  CHECK(pool.last_run().failures == 14);
}

TEST_CASE("priorities: a higher priority goes first among unsent tasks", "[job]") {
  boost::mpi::communicator world;
  if (world.size() > 2) return; // the order is exact only with one worker (or none)
  foreman::master_worker<int, int> pool;
  foreman::options opt;
  opt.chunk_size = 1;
  opt.tasks_in_flight = 1;
  auto job = pool.start(
      [](int x) {
        foreman_test::sleep_us(2000);
        return x;
      },
      opt);
  if (!job.is_master()) return;
  job.submit(0);     // ticket 0: with one worker, sent at once
  job.submit(1, 0);  // 1
  job.submit(2, 5);  // 2
  job.submit(3, -1); // 3
  job.submit(4, 5);  // 4
  job.submit(5, 9);  // 5
  std::vector<std::uint64_t> order;
  while (job.pending() > 0) order.push_back(job.next().ticket);
  if (pool.worker_count() == 1)
    CHECK(order == std::vector<std::uint64_t>{0, 5, 2, 4, 1, 3});
  else // the master runs them itself, when asked: nothing was sent before
    CHECK(order == std::vector<std::uint64_t>{5, 2, 4, 0, 1, 3});
}

TEST_CASE("cancel drops what has not completed, frees the workers at once, and the job goes on", "[job]") {
  foreman::master_worker<int, int> pool;
  foreman::options opt;
  opt.chunk_size = 4; // each worker holds chunks of several slow tasks: those are skipped
  auto job = pool.start(
      [](int x) {
        foreman_test::sleep_us(20000);
        return x * 2;
      },
      opt);
  if (!job.is_master()) return;
  for (int k = 0; k < 400; ++k) job.submit(k); // 8 s of work at 1 rank
  const auto first = job.next();
  CHECK(first.result.value() == int(first.ticket) * 2);
  const std::size_t ready = job.ready();
  const auto start = clock_type::now();
  const std::size_t dropped = job.cancel();
  CHECK(dropped + ready + 1 == 400);
  CHECK(job.pending() == ready);
  for (std::size_t k = 0; k < ready; ++k) CHECK(job.next().result.ok());
  CHECK(job.pending() == 0);
  // The job goes on: new tasks run, and their completions come after the workers skipped what
  // they held (at most one 20 ms task each, then the rest of their chunks unrun).
  std::set<std::uint64_t> fresh;
  for (int k = 0; k < 6; ++k) fresh.insert(job.submit(1000 + k));
  CHECK(*fresh.begin() == 400);
  while (job.pending() > 0) {
    const auto c = job.next();
    CHECK(fresh.count(c.ticket) == 1);
    CHECK(c.result.value() == 2 * (1000 + int(c.ticket - 400)));
  }
  job.close();
  // Far less than the 400 tasks' 8 s (/ workers): the held chunks were skipped.
  CHECK(seconds_since(start) < 2.0);
}

TEST_CASE("a job left by an exception ends on the workers; the pool serves the next run", "[job]") {
  foreman::master_worker<int, int> pool;
  try {
    auto job = pool.start([](int x) {
      foreman_test::sleep_us(5000);
      return x + 1;
    });
    if (job.is_master()) {
      for (int k = 0; k < 200; ++k) job.submit(k);
      job.next();
      throw std::runtime_error("the master's own code failed");
    }
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()) == "the master's own code failed");
  }
  // Every rank gets here: the job's destructor ended it on the workers.
  const std::vector<int> results = pool.run(std::vector<int>{1, 2, 3}, [](int x) { return x * 10; });
  if (pool.is_master()) CHECK(results == std::vector<int>{10, 20, 30});
}

TEST_CASE("a job and runs one after another on one pool", "[job]") {
  foreman::master_worker<int, int> pool;
  for (int round = 0; round < 3; ++round) {
    {
      auto job = pool.start([round](int x) { return x + round; });
      if (job.is_master()) {
        for (int k = 0; k < 20; ++k) job.submit(k);
        int sum = 0;
        while (job.pending() > 0) sum += job.next().result.value();
        CHECK(sum == 190 + 20 * round);
      }
    }
    const auto results = pool.run(std::vector<int>{5, 6}, [round](int x) { return x * round; });
    if (pool.is_master()) CHECK(results == std::vector<int>{5 * round, 6 * round});
  }
}

TEST_CASE("run() and start() are refused while a job is open", "[job]") {
  foreman::master_worker<int, int> pool;
  auto job = pool.start([](int x) { return x; });
  if (!job.is_master()) return;
  CHECK_THROWS_AS(pool.run(std::vector<int>{1}, [](int x) { return x; }), foreman::error);
  CHECK_THROWS_AS(pool.start([](int x) { return x; }), foreman::error);
  job.submit(7);
  CHECK(job.next().result.value() == 7);
  job.close();
}

TEST_CASE("fail_fast: the first failure cancels the tasks not yet completed", "[job][fail_fast]") {
  foreman::master_worker<int, int> pool;
  foreman::options opt;
  opt.fail_fast = true;
  std::vector<int> tasks(300);
  for (int k = 0; k < 300; ++k) tasks[static_cast<std::size_t>(k)] = k;
  const auto start = clock_type::now();
  const auto outcomes = pool.run_outcomes(
      tasks,
      [](int x) -> int {
        if (x == 5) throw std::domain_error("five");
        foreman_test::sleep_us(2000);
        return x + 1;
      },
      opt);
  if (pool.is_master()) {
    REQUIRE(outcomes.size() == 300);
    REQUIRE_FALSE(outcomes[5].ok());
    CHECK(outcomes[5].failure().type == "std::domain_error");
    std::size_t cancelled = 0, ran = 0;
    for (std::size_t k = 0; k < outcomes.size(); ++k) {
      if (k == 5) continue;
      if (outcomes[k].ok()) {
        CHECK(outcomes[k].value() == int(k) + 1);
        ++ran;
      } else {
        CHECK(outcomes[k].failure().type == "foreman::cancelled");
        CHECK(outcomes[k].failure().message.find("task 5 failed first") != std::string::npos);
        ++cancelled;
      }
    }
    if (pool.worker_count() == 0) CHECK(ran == 5); // in order: the five before it
    CHECK(cancelled >= 200);                       // far more than the tasks already out
    CHECK(seconds_since(start) < 0.6 * 300 * 0.002);
  }
  // And run() throws task_error listing them, the real failure among them.
  try {
    pool.run(
        tasks,
        [](int x) -> int {
          if (x == 0) throw std::domain_error("zero");
          return x;
        },
        opt);
    if (pool.is_master()) FAIL("run() did not throw");
  } catch (const foreman::task_error& e) {
    CHECK(e.failures().front().index == 0);
    CHECK(e.failures().front().type == "std::domain_error");
  }
  // Without fail_fast every task runs.
  const auto all = pool.run_outcomes(tasks, [](int x) -> int {
    if (x == 5) throw std::domain_error("five");
    return x;
  });
  if (pool.is_master()) {
    std::size_t failed = 0;
    for (const auto& o : all) failed += o.ok() ? 0 : 1;
    CHECK(failed == 1);
  }
}

TEST_CASE("a closed job's report: per-rank sums, failures, and records when a timeline is asked for", "[job]") {
  foreman::master_worker<int, int> pool;
  for (const bool timeline : {false, true}) {
    foreman::options opt;
    const std::string path = "job_test_timeline_" + std::to_string(pool.worker_count()) + ".json";
    if (timeline) opt.timeline_json = path;
    auto job = pool.start(
        [](int x) -> int {
          if (x % 10 == 0) throw std::runtime_error("tenth");
          return x;
        },
        opt);
    if (!job.is_master()) continue;
    for (int k = 0; k < 100; ++k) job.submit(k);
    while (job.pending() > 0) job.next();
    job.close();
    const foreman::run_info& info = pool.last_run();
    CHECK(info.failures == 10);
    CHECK(info.tasks.size() == (timeline ? 100u : 0u));
    const foreman::run_report report = pool.report();
    CHECK(report.tasks == 100);
    std::size_t tasks = 0, failed = 0;
    for (const auto& row : report.workers) {
      tasks += row.tasks;
      failed += row.failed;
      if (pool.worker_count() > 0) CHECK(row.rank >= 1);
    }
    CHECK(tasks == 100);
    CHECK(failed == 10);
    CHECK(report.workers.size() == std::size_t(std::max(1, pool.worker_count())));
    if (timeline) {
      std::ifstream file(path);
      const std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
      CHECK(text.find("traceEvents") != std::string::npos);
      std::remove(path.c_str());
    }
  }
}

TEST_CASE("jobs and runs of two pools one after another", "[job]") {
  foreman::master_worker<int, int> first;
  foreman::master_worker<int, std::string> second;
  for (int round = 0; round < 2; ++round) {
    {
      auto a = first.start([](int x) { return x * 3; });
      if (a.is_master()) {
        for (int k = 0; k < 30; ++k) a.submit(k);
        int sum = 0;
        while (a.pending() > 0) sum += a.next().result.value();
        CHECK(sum == 3 * 435);
      }
    }
    {
      auto b = second.start([](int x) { return std::to_string(x); });
      if (b.is_master()) {
        b.submit(42, 1);
        CHECK(b.next().result.value() == "42");
        b.close();
      }
    }
    const auto r = first.run(std::vector<int>{7}, [](int x) { return x - 1; });
    if (first.is_master()) CHECK(r == std::vector<int>{6});
  }
}

TEST_CASE("after an exception broke a job, next() and try_next() throw instead of waiting forever", "[job]") {
  foreman::master_worker<int, fragile> pool;
  foreman::options opt;
  opt.chunk_size = 4;
  auto job = pool.start(
      [](int x) {
        foreman_test::sleep_us(x >= 1000 ? 300000 : 20000); // a probe answers after the dropped ones
        return fragile(x);
      },
      opt);
  if (!job.is_master() || pool.worker_count() == 0) return;
  // The job breaks when the master must drop the answer of a cancelled task that ran (a worker
  // skips those it had not started): whether one ran depends on timing, so this is tried again.
  bool broke = false;
  for (int attempt = 0; attempt < 20 && !broke; ++attempt) {
    for (int k = 0; k < 40; ++k) job.submit(k);
    CHECK(job.next().result.ok());
    job.cancel();
    while (job.ready() > 0) job.next(); // completions that had arrived stay ready: taken first
    job.submit(1000 + attempt);
    result_construction_fails = true; // dropping a ran task's answer now throws inside the loop
    try {
      const int value = job.next().result.value().value; // nothing to drop came: the job goes on
      CHECK(value == 1000 + attempt);
    } catch (const std::runtime_error& e) {
      CHECK_THAT(e.what(), Catch::Contains("a Result could not be built"));
      broke = true;
    }
    result_construction_fails = false;
  }
  REQUIRE(broke);
  CHECK_FALSE(job.is_open());
  CHECK(job.pending() >= 1);
  CHECK_THROWS_WITH(job.next(), Catch::Contains("they never will"));
  CHECK_THROWS_WITH(job.try_next(), Catch::Contains("they never will"));
}

TEST_CASE("a completion's value taken from a temporary is a value, never a dangling reference", "[job]") {
  static_assert(std::is_same_v<decltype(std::declval<foreman::outcome<std::vector<int>>>().value()), std::vector<int>>,
                "value() on a temporary outcome returns by value");
  foreman::master_worker<int, std::vector<int>> pool;
  auto job = pool.start([](int x) { return std::vector<int>(1000, x); });
  if (!job.is_master()) return;
  job.submit(9);
  const std::vector<int>& v = job.next().result.value(); // lifetime extended: a value
  CHECK(v.size() == 1000);
  CHECK(v.back() == 9);
}

// ---- a job's checkpoint journal (options::checkpoint; detail/job_journal.hpp) -----------------

namespace {
using journal_pool = foreman::master_worker<std::uint64_t, std::uint64_t>;

// A run's function leaves its mark in the low bit, so that a rerun tells a result read back (the
// first run's mark) from one computed again. Task 7 fails in the first run.
std::uint64_t first_job(std::uint64_t x) {
  if (x == 7 * 5) throw std::runtime_error("task 7 fails the first time");
  return foreman_test::mix(x) << 1;
}
std::uint64_t second_job(std::uint64_t x) {
  return foreman_test::mix(x) << 1 | 1;
}

struct taken {
  int worker = -2;
  std::uint64_t value = 0;
  bool ok = false;
};

// Submits the tasks 0, 5, 10, ... (`count` of them; the one of ticket `changed_at` shifted by one)
// and takes every completion; returns them by ticket, and in `ready_at_submit` how many were
// ready before any next() (restored ones are ready at once).
std::map<std::uint64_t, taken> run_job(journal_pool& pool, std::uint64_t (*fn)(std::uint64_t),
                                       const foreman::options& opt, std::uint64_t count,
                                       std::size_t* ready_at_submit = nullptr) {
  std::map<std::uint64_t, taken> got;
  auto job = pool.start(fn, opt);
  if (!job.is_master()) return got;
  for (std::uint64_t k = 0; k < count; ++k) REQUIRE(job.submit(k * 5) == k);
  if (ready_at_submit) *ready_at_submit = job.ready();
  while (job.pending() > 0) {
    auto c = job.next();
    got[c.ticket] = {c.worker, c.result.ok() ? c.result.value() : 0, c.result.ok()};
  }
  job.close();
  return got;
}
} // namespace

TEST_CASE("a job run again with its journal gets every recorded result at submit() without running it",
          "[job][checkpoint]") {
  journal_pool pool;
  foreman_test::cleanup file{foreman_test::temp_path("foreman_job_checkpoint_", "again")};
  foreman::options opt;
  opt.checkpoint = file.path;
  constexpr std::uint64_t n = 60;
  const auto first = run_job(pool, first_job, opt, 40); // 40 of the 60: the job "stopped" there
  if (pool.is_master()) {
    REQUIRE(first.size() == 40);
    REQUIRE_FALSE(first.at(7).ok);
    REQUIRE(pool.last_run().replayed == 0);
  }
  std::size_t ready = 0;
  const auto again = run_job(pool, second_job, opt, n, &ready);
  if (pool.is_master()) {
    REQUIRE(again.size() == n);
    // The 39 results recorded are read back (worker -1, the first run's mark), ready at once;
    // the failed task 7 and the 20 never submitted run now.
    CHECK(ready >= 39);
    CHECK(pool.last_run().replayed == 39);
    for (std::uint64_t t = 0; t < n; ++t) {
      CAPTURE(t);
      REQUIRE(again.at(t).ok);
      if (t < 40 && t != 7) {
        CHECK(again.at(t).worker == -1);
        CHECK(again.at(t).value == first.at(t).value);
        CHECK(again.at(t).value == first_job(t * 5));
      } else {
        CHECK(again.at(t).worker != -1);
        CHECK(again.at(t).value == second_job(t * 5));
      }
    }
  }
  // A third run reads all 60 back, from the journal's two segments.
  const auto third = run_job(pool, second_job, opt, n);
  if (pool.is_master()) {
    REQUIRE(third.size() == n);
    CHECK(pool.last_run().replayed == n);
    for (std::uint64_t t = 0; t < n; ++t) CHECK(third.at(t).worker == -1);
  }
}

TEST_CASE("a job's journal refuses a task submitted under a ticket it holds for another task", "[job][checkpoint]") {
  journal_pool pool;
  foreman_test::cleanup file{foreman_test::temp_path("foreman_job_checkpoint_", "changed")};
  foreman::options opt;
  opt.checkpoint = file.path;
  run_job(pool, second_job, opt, 10);
  auto job = pool.start(second_job, opt);
  if (!job.is_master()) return;
  REQUIRE(job.submit(0) == 0); // as before: read back
  CHECK_THROWS_WITH(job.submit(6), Catch::Contains("not the task the journal recorded under that ticket"));
  CHECK(job.is_open()); // nothing was submitted; the job goes on
  CHECK(job.pending() == 1);
  REQUIRE(job.submit(5) == 1); // the task the journal holds for ticket 1
  CHECK(job.next().worker == -1);
  CHECK(job.next().worker == -1);
  job.close();
}

TEST_CASE("a job's journal with a torn tail runs again only the torn record's task", "[job][checkpoint]") {
  journal_pool pool;
  foreman_test::cleanup file{foreman_test::temp_path("foreman_job_checkpoint_", "torn")};
  foreman::options opt;
  opt.checkpoint = file.path;
  constexpr std::uint64_t n = 30;
  run_job(pool, second_job, opt, n);
  if (pool.is_master()) {
    std::vector<char> bytes = foreman_test::read_file(file.path);
    REQUIRE(bytes.size() > 3);
    bytes.resize(bytes.size() - 3); // the last record's checksum cut
    foreman_test::write_file(file.path, bytes);
  }
  const auto again = run_job(pool, second_job, opt, n);
  if (!pool.is_master()) return;
  REQUIRE(again.size() == n);
  std::size_t computed = 0;
  for (const auto& [t, c] : again) {
    CHECK(c.ok);
    CHECK(c.value == second_job(t * 5));
    computed += c.worker != -1 ? 1 : 0;
  }
  CHECK(computed == 1);
  CHECK(pool.last_run().replayed == n - 1);
  CHECK(pool.last_run().checkpoint_dropped_bytes > 0);
}

TEST_CASE("a job refuses a stream's journal and a run()'s, and the pool goes on", "[job][checkpoint]") {
  journal_pool pool;
  foreman_test::cleanup stream_file{foreman_test::temp_path("foreman_job_checkpoint_", "stream")};
  foreman_test::cleanup run_file{foreman_test::temp_path("foreman_job_checkpoint_", "run")};
  foreman::options opt;
  opt.checkpoint = stream_file.path;
  std::uint64_t next = 0;
  pool.run_stream(
      [&]() -> std::optional<std::uint64_t> { return next < 5 ? std::optional<std::uint64_t>(next++) : std::nullopt; },
      second_job, [](std::uint64_t, int, const std::uint64_t&) {}, opt);
  opt.checkpoint = run_file.path;
  pool.run(std::vector<std::uint64_t>{1, 2, 3}, second_job, opt);
  for (const std::string& path : {stream_file.path, run_file.path}) {
    opt.checkpoint = path;
    bool refused = !pool.is_master(); // start() throws on the master only
    try {
      auto job = pool.start(second_job, opt);
    } catch (const foreman::error& e) {
      refused = std::string(e.what()).find(path == stream_file.path ? "is the journal of a stream"
                                                                    : "is the journal of a run()") != std::string::npos;
      CAPTURE(e.what());
    }
    CHECK(refused);
    // The job was ended on the workers: the pool serves the next run.
    const auto r = pool.run(std::vector<std::uint64_t>{4}, [](std::uint64_t x) { return x + 1; });
    if (pool.is_master()) CHECK(r == std::vector<std::uint64_t>{5});
  }
  // And a job's journal is refused by a stream and by run().
  foreman_test::cleanup job_file{foreman_test::temp_path("foreman_job_checkpoint_", "job")};
  opt.checkpoint = job_file.path;
  run_job(pool, second_job, opt, 3);
  if (pool.is_master()) {
    CHECK_THROWS_WITH(pool.run(std::vector<std::uint64_t>{1}, second_job, opt),
                      Catch::Contains("is the journal of a job"));
  } else {
    pool.run(std::vector<std::uint64_t>{1}, second_job, opt);
  }
}
