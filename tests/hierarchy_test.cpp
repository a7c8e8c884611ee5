// Grouped pools (foreman::hierarchy): sub-masters that take batches from the master and hand
// them out to their groups. What a flat pool promises must hold: results in task order, each
// task run once on a rank that computes (never the master or a sub-master), failures filed under
// their task with the rank that raised them, the callback once per task, fail_fast, the
// checkpoint journal, shared values, run after run; and the master's messages count batches.
// Jobs of a grouped pool are served flat. Run at 3, 6 and 8 ranks (one group of one worker; two
// groups; two groups, the last of three workers).

#include "catch.hpp"
#include "test_support.hpp"

#include <foreman/foreman.hpp>

#include <boost/mpi/collectives.hpp>
#include <boost/serialization/split_member.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

// Pools that may group their workers (the grouped code is compiled only for these).
template <class Task, class Result>
using grouped_pool = foreman::master_worker<Task, Result, foreman::hierarchical_dispatch>;

namespace {

using foreman_test::world_rank;
using foreman_test::world_size;

struct ran {
  long value = 0;
  int rank = -1; // the world rank that ran the task
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar& value& rank;
  }
};

std::vector<int> iota(int n, int from = 0) {
  std::vector<int> v(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = from + i;
  return v;
}

// The ranks of a pool of `size` built with groups(2), written out: 3 ranks form one group
// (1: 2), 4 ranks one (1: 2 3), 5 one (1: 2 3 4), 6 two (1: 2 3 | 4: 5), 7 two, 8 two (4: 5 6 7).
std::vector<int> expected_sub_masters(int size) {
  if (size < 3) return {};
  if (size < 6) return {1};
  if (size < 9) return {1, 4};
  return {};
}

bool on_sub_master() {
  const std::vector<int> subs = expected_sub_masters(world_size());
  return std::find(subs.begin(), subs.end(), world_rank()) != subs.end();
}

bool on_worker() { return world_rank() != 0 && !on_sub_master(); }

/// A value whose save or load throws where `fault` says: the master saving it (1), a sub-master
/// loading it (2), a sub-master saving it (3), the master loading it (4), a worker saving it (5),
/// a worker loading it (6). A task's result carries the task's `result_fault` as its fault.
struct fragile {
  int n = 0;
  int fault = 0;
  int result_fault = 0;
  template <class Archive>
  void save(Archive& ar, unsigned) const {
    ar << n << fault << result_fault;
    if ((fault == 1 && world_rank() == 0) || (fault == 3 && on_sub_master()) || (fault == 5 && on_worker()))
      throw std::runtime_error("cannot save " + std::to_string(n));
  }
  template <class Archive>
  void load(Archive& ar, unsigned) {
    ar >> n >> fault >> result_fault;
    if ((fault == 2 && on_sub_master()) || (fault == 4 && world_rank() == 0) || (fault == 6 && on_worker()))
      throw std::runtime_error("cannot load " + std::to_string(n));
  }
  BOOST_SERIALIZATION_SPLIT_MEMBER()
};

} // namespace

TEST_CASE("a grouped pool names its sub-masters; below 3 ranks it is flat", "[hierarchy]") {
  grouped_pool<int, long> pool(boost::mpi::communicator(), foreman::hierarchy::groups(2));
  REQUIRE(world_size() <= 8);
  CHECK(pool.sub_masters() == expected_sub_masters(world_size()));
  CHECK(pool.worker_count() == world_size() - 1);
  grouped_pool<int, long> flat(boost::mpi::communicator(), foreman::hierarchy::flat());
  CHECK(flat.sub_masters().empty());
}

TEST_CASE("results come back in task order, each task run once, never on a sub-master", "[hierarchy]") {
  grouped_pool<int, ran> pool(boost::mpi::communicator(), foreman::hierarchy::groups(2));
  const std::vector<int> subs = pool.sub_masters();
  for (int n : {0, 1, 2, 7, 1000, 5003}) {
    INFO(n << " tasks");
    const std::vector<int> tasks = iota(n, -13);
    std::vector<int> calls(static_cast<std::size_t>(n), 0); // on the master: callbacks per task
    auto fn = [](int x) { return ran{long(x) * x - 1, world_rank()}; };
    auto on_result = [&](std::size_t i, int worker, const ran& r) {
      ++calls.at(i);
      CHECK(worker == r.rank);
    };
    const std::vector<ran> r = pool.run(tasks, fn, on_result);
    if (!pool.is_master()) {
      CHECK(r.empty());
      continue;
    }
    REQUIRE(r.size() == tasks.size());
    std::set<int> used;
    for (std::size_t i = 0; i < tasks.size(); ++i) {
      CHECK(r[i].value == long(tasks[i]) * tasks[i] - 1);
      CHECK(calls[i] == 1);
      CHECK(pool.last_run().tasks[i].worker == r[i].rank);
      CHECK(pool.last_run().tasks[i].attempts == 1);
      CHECK_FALSE(pool.last_run().tasks[i].failed);
      used.insert(r[i].rank);
    }
    for (int s : subs) CHECK(used.count(s) == 0);
    if (world_size() > 1) CHECK(used.count(0) == 0);
    CHECK(pool.last_run().sub_masters == subs);
    if (!subs.empty() && n > 0) {
      // one message per batch: at most 16 batches a group's worth of tasks (batch_size)
      CHECK(pool.last_run().messages >= 1);
      CHECK(pool.last_run().messages <= std::max<std::size_t>(1, 8 * subs.size() + 1));
    }
    // The report has a row per rank that computes, none for the sub-masters.
    const foreman::run_report report = pool.report();
    for (const auto& row : report.workers)
      for (int s : subs) CHECK(row.rank != s);
  }
}

TEST_CASE("many tasks: every rank of every group computes", "[hierarchy]") {
  grouped_pool<int, ran> pool(boost::mpi::communicator(), foreman::hierarchy::groups(2));
  const std::vector<int> subs = pool.sub_masters();
  const std::vector<int> tasks = iota(400);
  const std::vector<ran> r = pool.run(tasks, [](int x) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2)); // long enough for each worker to take some
    return ran{x, world_rank()};
  });
  if (!pool.is_master() || subs.empty()) return;
  std::set<int> used;
  for (const ran& x : r) used.insert(x.rank);
  std::set<int> computing;
  for (int rank = 1; rank < world_size(); ++rank)
    if (std::find(subs.begin(), subs.end(), rank) == subs.end()) computing.insert(rank);
  CHECK(used == computing);
}

TEST_CASE("failures are filed under their task with the rank that raised them", "[hierarchy]") {
  grouped_pool<int, long> pool(boost::mpi::communicator(), foreman::hierarchy::groups(2));
  const std::vector<int> tasks = iota(300);
  auto fn = [](int x) -> long {
    if (x % 7 == 3) throw std::out_of_range("seven " + std::to_string(x) + " on " + std::to_string(world_rank()));
    return x;
  };
  // run(): task_error after every task, sorted by index.
  try {
    pool.run(tasks, fn);
    CHECK_FALSE(pool.is_master());
  } catch (const foreman::task_error& e) {
    REQUIRE(pool.is_master());
    REQUIRE(e.failures().size() == 43);
    for (std::size_t k = 0; k < e.failures().size(); ++k) {
      const foreman::task_failure& f = e.failures()[k];
      CHECK(f.index == 7 * k + 3);
      CHECK(f.type == "std::out_of_range");
      CHECK(f.message == "seven " + std::to_string(f.index) + " on " + std::to_string(f.worker));
      CHECK(pool.last_run().tasks[f.index].failed);
      CHECK(pool.last_run().tasks[f.index].worker == f.worker);
    }
    CHECK(pool.last_run().failures == 43);
  }
  // run_outcomes(): the same, per task.
  const auto outcomes = pool.run_outcomes(tasks, fn);
  if (!pool.is_master()) return;
  REQUIRE(outcomes.size() == tasks.size());
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    INFO("task " << i);
    CHECK(outcomes[i].ok() == (i % 7 != 3));
    if (outcomes[i])
      CHECK(outcomes[i].value() == long(i));
    else
      CHECK(outcomes[i].failure().index == i);
  }
}

TEST_CASE("a task or result that cannot travel fails alone, wherever it cannot", "[hierarchy]") {
  grouped_pool<fragile, fragile> pool(boost::mpi::communicator(), foreman::hierarchy::groups(2));
  std::vector<fragile> tasks(300);
  for (int i = 0; i < 300; ++i) tasks[static_cast<std::size_t>(i)].n = i;
  // Task index: where its value cannot be saved or loaded, and the failure's message then.
  struct poisoned {
    std::size_t task;
    bool result; // the result's fault, not the task's
    int fault;
    std::string message; // "{S}": a sub-master's rank, "{W}": a worker's
  };
  const std::vector<poisoned> cases = {
      {10, false, 1, "foreman: task 10 could not be encoded on the master: std::runtime_error: cannot save 10"},
      {150, false, 2, "foreman: task 150 could not be decoded on sub-master {S}: std::runtime_error: cannot load 150"},
      {160, false, 3, "foreman: task 160 could not be encoded on sub-master {S}: std::runtime_error: cannot save 160"},
      {170, false, 6, "foreman: task 170 could not be decoded on worker {W}: std::runtime_error: cannot load 170"},
      {200, true, 3,
       "foreman: the result of task 200 could not be encoded on sub-master {S}: std::runtime_error: cannot save 400"},
      {210, true, 5,
       "foreman: the result of task 210 could not be encoded on worker {W}: std::runtime_error: cannot save 420"},
      {220, true, 2,
       "foreman: the result of task 220 could not be decoded on sub-master {S}: std::runtime_error: cannot load 440"},
      {250, true, 4, "foreman: the result of task 250 could not be decoded on the master: std::runtime_error: cannot "
                     "load 500"}};
  for (const poisoned& p : cases) (p.result ? tasks[p.task].result_fault : tasks[p.task].fault) = p.fault;
  auto fn = [](const fragile& t) { return fragile{2 * t.n, t.result_fault, 0}; };
  for (int round = 0; round < 2; ++round) { // and the pool serves the next run
    INFO("round " << round);
    const auto out = pool.run_outcomes(tasks, fn);
    if (!pool.is_master()) continue;
    REQUIRE(out.size() == tasks.size());
    const std::vector<int> subs = pool.sub_masters();
    std::size_t next = 0;
    for (std::size_t i = 0; i < tasks.size(); ++i) {
      INFO("task " << i);
      if (next == cases.size() || cases[next].task != i) {
        REQUIRE(out[i].ok());
        CHECK(out[i].value().n == 2 * static_cast<int>(i));
        continue;
      }
      const poisoned& p = cases[next++];
      REQUIRE_FALSE(out[i].ok());
      const foreman::task_failure& f = out[i].failure();
      CHECK(f.index == i);
      CHECK(f.type == "foreman::serialization_error");
      CHECK(pool.last_run().tasks[i].failed);
      CHECK(pool.last_run().tasks[i].attempts == 1);
      CHECK(pool.last_run().tasks[i].worker == f.worker);
      // The ranks named, in the whole pool: the sub-master of the group the task went to (the
      // failure's rank is in it: the sub-master when it failed there, else the worker that took
      // it), or the worker that failed to move the value.
      const bool sub = std::find(subs.begin(), subs.end(), f.worker) != subs.end();
      int group_sub = 0;
      for (const int s : subs)
        if (s <= f.worker) group_sub = s;
      std::string expected = p.message;
      if (const auto at = expected.find("{S}"); at != std::string::npos) {
        CHECK(group_sub > 0);
        expected.replace(at, 3, std::to_string(group_sub));
      } else if (const auto w = expected.find("{W}"); w != std::string::npos) {
        CHECK((f.worker > 0 && !sub));
        expected.replace(w, 3, std::to_string(f.worker));
      } else if (p.fault == 1) {
        CHECK(f.worker == 0);
      } else {
        CHECK((f.worker > 0 && !sub)); // the result of task 250 was computed on a worker
      }
      CHECK(f.message == expected);
    }
    CHECK(pool.last_run().failures == cases.size());
  }
}

TEST_CASE("fail_fast: the tasks not run after the first failure are cancelled", "[hierarchy]") {
  grouped_pool<int, long> pool(boost::mpi::communicator(), foreman::hierarchy::groups(2));
  foreman::options opt;
  opt.fail_fast = true;
  const std::vector<int> tasks = iota(2000);
  const auto outcomes = pool.run_outcomes(
      tasks,
      [](int x) -> long {
        if (x == 5) throw std::runtime_error("five");
        // Every other task takes 2 ms, so that what the bound below checks is the cancelling, not
        // a race: with instant tasks a group could run batch after batch while the process that
        // relays task 5's failure waited for a core (MPICH's ranks poll; with 6 of them on 2
        // cores, 1,249 of 2,000 tasks had run when the failure arrived, in CI). Running 1,000
        // tasks now takes at least 2 s of one worker's time, where the failure reaches the master
        // as soon as the chunk that holds task 5 is back (tens of milliseconds).
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        return x;
      },
      opt);
  if (!pool.is_master()) return;
  REQUIRE(outcomes.size() == tasks.size());
  REQUIRE_FALSE(outcomes[5].ok());
  CHECK(outcomes[5].failure().type == "std::runtime_error");
  std::size_t cancelled = 0;
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    if (outcomes[i]) {
      CHECK(outcomes[i].value() == long(i));
    } else if (i != 5) {
      CHECK(outcomes[i].failure().type == "foreman::cancelled");
      CHECK(outcomes[i].failure().message.find("task 5 failed first") != std::string::npos);
      ++cancelled;
    }
  }
  // With groups, the batches not yet sent when task 5 failed are cancelled: most of 2,000.
  if (!pool.sub_masters().empty()) CHECK(cancelled > 1000);
}

TEST_CASE("a group whose workers all fail to set up: its tasks run on the other groups", "[hierarchy]") {
  grouped_pool<int, ran> pool(boost::mpi::communicator(), foreman::hierarchy::groups(2));
  const std::vector<int> subs = pool.sub_masters();
  // The workers of the last group (every worker, with one group) cannot set up for this run.
  const int last = subs.empty() ? 0 : subs.back();
  const std::vector<int> tasks = iota(300);
  const auto outcomes = pool.run_outcomes(
      tasks, foreman::with_initializer(
                 [last] {
                   if (world_rank() > last) throw std::runtime_error("no scratch disk");
                 },
                 [](int x) {
                   std::this_thread::sleep_for(std::chrono::microseconds(300));
                   return ran{x, world_rank()};
                 }));
  const foreman::run_info info = pool.last_run();
  // Out of that run only: the next one runs on every group again (the last group's workers
  // included: 300 tasks of 2 ms reach every group).
  const auto again = pool.run(tasks, [](int x) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    return ran{x, world_rank()};
  });
  if (!pool.is_master()) return;
  REQUIRE(outcomes.size() == tasks.size());
  std::set<int> refused;
  for (const auto& l : info.losses) {
    CHECK(l.reason == foreman::loss_reason::initializer_failed);
    CHECK(l.worker > last);
    CHECK(l.message.find("no scratch disk") != std::string::npos);
    refused.insert(l.worker);
  }
  std::set<int> used;
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    CHECK(again[i].value == long(i));
    used.insert(again[i].rank);
  }
  CHECK(used.count(world_size() - 1) == 1);
  if (subs.size() < 2) {
    // One group, or none: no worker is left to run anything, as in a flat pool.
    for (const auto& o : outcomes) {
      REQUIRE_FALSE(o.ok());
      CHECK(o.failure().type == "foreman::initializer_error");
      CHECK(o.failure().message.find("no scratch disk") != std::string::npos);
    }
    return;
  }
  // Its batches went to the other groups: every task ran there, once, and none failed.
  CHECK(refused.size() == std::size_t(world_size() - 1 - last));
  CHECK(info.failures == 0);
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    INFO("task " << i);
    REQUIRE(outcomes[i].ok());
    CHECK(outcomes[i].value().value == long(i));
    CHECK(outcomes[i].value().rank < last);
    CHECK(info.tasks[i].worker == outcomes[i].value().rank);
    CHECK(info.tasks[i].attempts == 1);
  }
}

TEST_CASE("run_into, shared values and runs of several types in a row", "[hierarchy]") {
  grouped_pool<int, std::vector<double>> pool(boost::mpi::communicator(), foreman::hierarchy::groups(2));
  std::vector<std::vector<double>> into;
  const std::vector<int> tasks = iota(97);
  const std::vector<double> scale{0.5, 2.0, 4.0};
  // Only the master's value may reach the workers (relayed by the sub-masters): the others pass one
  // that would make every result wrong (and index past its end).
  const std::vector<double> given = pool.is_master() ? scale : std::vector<double>{-1.0};
  for (int round = 0; round < 3; ++round) {
    pool.run_into(tasks,
                  foreman::with_shared(given,
                                       [round](int x, const std::vector<double>& s) {
                                         return std::vector<double>(static_cast<std::size_t>(x % 5 + 1),
                                                                    x * s.at(static_cast<std::size_t>(round)));
                                       }),
                  into);
    if (!pool.is_master()) {
      CHECK(into.empty());
      continue;
    }
    REQUIRE(into.size() == tasks.size());
    for (std::size_t i = 0; i < tasks.size(); ++i)
      CHECK(into[i] == std::vector<double>(i % 5 + 1, double(i) * scale[static_cast<std::size_t>(round)]));
  }
}

TEST_CASE("a checkpointed grouped run resumes from its journal without running a task again", "[hierarchy]") {
  const std::string journal = foreman_test::temp_path("foreman-hierarchy", "journal");
  grouped_pool<int, long> pool(boost::mpi::communicator(), foreman::hierarchy::groups(2));
  foreman::options opt;
  opt.checkpoint = journal;
  const std::vector<int> tasks = iota(500);
  // First run: tasks 0-99 fail, so only 400 results are journaled.
  auto first = pool.run_outcomes(
      tasks,
      [](int x) -> long {
        if (x < 100) throw std::runtime_error("later");
        return 3L * x;
      },
      opt);
  if (pool.is_master()) CHECK(pool.last_run().replayed == 0);
  // Second run: the 400 are read back, the 100 run (and would fail if any of the 400 ran).
  const auto second = pool.run(
      tasks,
      [](int x) -> long {
        if (x >= 100) throw std::logic_error("ran again");
        return 3L * x;
      },
      opt);
  if (pool.is_master()) {
    CHECK(pool.last_run().replayed == 400);
    REQUIRE(second.size() == tasks.size());
    for (std::size_t i = 0; i < tasks.size(); ++i) CHECK(second[i] == 3L * long(i));
  }
  // Third run: every result is in the journal, no batch is sent. The sub-masters still end their
  // groups' jobs, which must not take up the workers' copy of the options (it names the journal).
  const auto third = pool.run(
      tasks, [](int) -> long { throw std::logic_error("ran again"); }, opt);
  if (pool.is_master()) {
    CHECK(pool.last_run().replayed == 500);
    REQUIRE(third.size() == tasks.size());
    for (std::size_t i = 0; i < tasks.size(); ++i) CHECK(third[i] == 3L * long(i));
    std::remove(journal.c_str());
  }
}

TEST_CASE("a job of a grouped pool is served flat, sub-masters included", "[hierarchy]") {
  grouped_pool<int, ran> pool(boost::mpi::communicator(), foreman::hierarchy::groups(2));
  {
    auto job = pool.start([](int x) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      return ran{x, world_rank()};
    });
    if (job.is_master()) {
      for (int i = 0; i < 200; ++i) job.submit(i);
      std::set<int> used;
      long sum = 0;
      while (job.pending() > 0) {
        auto c = job.next();
        used.insert(c.result.value().rank);
        sum += c.result.value().value;
      }
      job.close();
      CHECK(sum == 199L * 200 / 2);
      if (world_size() > 1) CHECK(used.count(0) == 0);
    }
  }
  // a grouped run after the job, on every rank: the layers are still in step
  auto r = pool.run(iota(50), [](int x) { return ran{x, world_rank()}; });
  if (pool.is_master())
    for (std::size_t i = 0; i < 50; ++i) CHECK(r[i].value == long(i));
}
