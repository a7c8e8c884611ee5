// Exceptions: a task that throws on a worker reaches the master as a task_error listing index,
// worker rank, demangled type and message, after every other task completed; workers return
// normally; the pool stays usable. Also the exception hierarchy and its "foreman: " prefix.

#include "catch.hpp"
#include "test_support.hpp"

#include <foreman/foreman.hpp>

#include <boost/mpi/collectives.hpp>
#include <boost/mpi/communicator.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <set>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace foreman_test {
// A user-defined exception type, to check the demangled name that reaches the master.
struct parse_failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};
} // namespace foreman_test

namespace {

using foreman_test::world_rank;
using foreman_test::world_size;

bool starts_with(const std::string& text, const std::string& prefix) {
  return text.rfind(prefix, 0) == 0;
}

// Task i fails with std::out_of_range when i % 5 == 3, with parse_failure when i % 7 == 6.
int checked(int i) {
  if (i % 5 == 3) throw std::out_of_range("index " + std::to_string(i) + " is out of range");
  if (i % 7 == 6) throw foreman_test::parse_failure("cannot parse task " + std::to_string(i));
  return i * 10;
}
bool fails(int i) {
  return i % 5 == 3 || i % 7 == 6;
}

void check_worker_rank(int worker) {
  if (world_size() == 1)
    CHECK(worker == 0);
  else
    CHECK((worker >= 1 && worker < world_size()));
}

} // namespace

TEST_CASE("every foreman exception is a foreman::error, a std::runtime_error", "[errors]") {
  STATIC_REQUIRE(std::is_base_of_v<std::runtime_error, foreman::error>);
  STATIC_REQUIRE(std::is_base_of_v<foreman::error, foreman::task_error>);
  STATIC_REQUIRE(std::is_base_of_v<foreman::error, foreman::handshake_error>);
  CHECK(std::string(foreman::error("x").what()) == "foreman: x");
  const foreman::task_error one({foreman::task_failure{7, 2, "std::out_of_range", "vector::at"}});
  CHECK(std::string(one.what()) == "foreman: task 7 failed on worker 2: std::out_of_range: vector::at");
  std::vector<foreman::task_failure> many;
  for (std::size_t i = 0; i < 12; ++i) many.push_back(foreman::task_failure{i, 1, "E", "m"});
  const std::string summary = foreman::task_error(many).what();
  CHECK(starts_with(summary, "foreman: 12 tasks failed: task 0 failed on worker 1: E: m; "));
  CHECK(summary.find("and 2 more") != std::string::npos);
}

TEST_CASE("failed tasks reach the master as one task_error, after all other tasks completed", "[errors]") {
  foreman::master_worker<int, int> pool;
  const int count = 60;
  std::vector<int> tasks;
  for (int i = 0; i < count; ++i) tasks.push_back(i);
  std::set<std::size_t> succeeded;
  bool callback_values_right = true;
  bool threw = false;
  try {
    const auto r = pool.run(tasks, checked, [&](std::size_t index, int, int value) {
      succeeded.insert(index);
      callback_values_right = callback_values_right && value == checked(tasks[index]);
    });
    // Workers return normally with nothing.
    CHECK_FALSE(pool.is_master());
    CHECK(r.empty());
  } catch (const foreman::task_error& e) {
    threw = true;
    REQUIRE(pool.is_master());
    const std::string what = e.what();
    CHECK(starts_with(what, "foreman: "));
    INFO(what);
    const auto& failures = e.failures();
    std::vector<std::size_t> expected;
    for (int i = 0; i < count; ++i)
      if (fails(i)) expected.push_back(static_cast<std::size_t>(i));
    REQUIRE(failures.size() == expected.size());
    for (std::size_t k = 0; k < failures.size(); ++k) {
      const foreman::task_failure& f = failures[k];
      INFO("failure " << k << ": " << f.describe());
      CHECK(f.index == expected[k]); // sorted by index
      check_worker_rank(f.worker);
      CHECK(f.worker == pool.last_run().tasks[f.index].worker);
      const int i = static_cast<int>(f.index);
      if (i % 5 == 3) {
        CHECK(f.type == "std::out_of_range");
        CHECK(f.message == "index " + std::to_string(i) + " is out of range");
      } else {
        CHECK(f.type == "foreman_test::parse_failure");
        CHECK(f.message == "cannot parse task " + std::to_string(i));
      }
      CHECK(f.describe() == "task " + std::to_string(i) + " failed on worker " + std::to_string(f.worker) + ": " +
                                f.type + ": " + f.message);
    }
    // Every other task completed and was reported.
    CHECK(callback_values_right);
    CHECK(succeeded.size() + failures.size() == tasks.size());
    for (int i = 0; i < count; ++i) CHECK(succeeded.count(static_cast<std::size_t>(i)) == (fails(i) ? 0u : 1u));
    // last_run() tells the same story.
    const foreman::run_info& info = pool.last_run();
    REQUIRE(info.tasks.size() == tasks.size());
    CHECK(info.failures == failures.size());
    for (int i = 0; i < count; ++i) {
      CHECK(info.tasks[static_cast<std::size_t>(i)].failed == fails(i));
      check_worker_rank(info.tasks[static_cast<std::size_t>(i)].worker);
    }
  }
  CHECK(threw == pool.is_master());

  // The pool, and the workers that saw exceptions, still work.
  const auto r = pool.run(tasks, [](int x) { return x + 1; });
  if (pool.is_master()) {
    REQUIRE(r.size() == tasks.size());
    for (int i = 0; i < count; ++i) CHECK(r[static_cast<std::size_t>(i)] == i + 1);
    CHECK(pool.last_run().failures == 0);
  }
}

TEST_CASE("a single failure names the task, the worker, the type and the message", "[errors]") {
  foreman::master_worker<int, std::string> pool;
  auto fn = [](int i) -> std::string {
    if (i == 4) return std::vector<std::string>{}.at(static_cast<std::size_t>(i)); // std::out_of_range
    return std::to_string(i);
  };
  std::vector<int> tasks{0, 1, 2, 3, 4, 5, 6};
  if (pool.is_master()) {
    try {
      pool.run(tasks, fn);
      FAIL("run() returned although task 4 threw");
    } catch (const foreman::task_error& e) {
      REQUIRE(e.failures().size() == 1);
      const foreman::task_failure& f = e.failures().front();
      CHECK(f.index == 4);
      CHECK(f.type == "std::out_of_range");
      CHECK_FALSE(f.message.empty());
      CHECK(std::string(e.what()) ==
            "foreman: task 4 failed on worker " + std::to_string(f.worker) + ": std::out_of_range: " + f.message);
      check_worker_rank(f.worker);
    }
  } else {
    CHECK_NOTHROW(pool.run(tasks, fn));
  }
}

TEST_CASE("a task that throws something not derived from std::exception", "[errors]") {
  foreman::master_worker<int, int> pool;
  auto fn = [](int i) -> int {
    if (i == 2) throw 42;
    if (i == 5) throw std::string("a string, not an exception");
    return i;
  };
  const std::vector<int> tasks{0, 1, 2, 3, 4, 5, 6};
  const auto outcomes = pool.run_outcomes(tasks, fn);
  if (pool.is_master()) {
    REQUIRE(outcomes.size() == tasks.size());
    for (std::size_t i = 0; i < tasks.size(); ++i) {
      INFO("task " << i);
      if (i == 2 || i == 5) {
        REQUIRE_FALSE(outcomes[i].ok());
        CHECK(outcomes[i].failure().index == i);
        // the thrown object's type, as the C++ runtime knows it
        CHECK(outcomes[i].failure().type == (i == 2 ? std::string("int") : foreman::detail::type_name<std::string>()));
        CHECK(outcomes[i].failure().message == "an exception not derived from std::exception");
        check_worker_rank(outcomes[i].failure().worker);
      } else {
        REQUIRE(outcomes[i].ok());
        CHECK(outcomes[i].value() == tasks[i]);
      }
    }
  } else {
    CHECK(outcomes.empty());
  }
  // And through run(): a task_error like any other.
  if (pool.is_master())
    CHECK_THROWS_AS(pool.run(tasks, fn), foreman::task_error);
  else
    CHECK(pool.run(tasks, fn).empty());
}

TEST_CASE("every task failing, and an empty what()", "[errors]") {
  foreman::master_worker<int, int> pool;
  const std::vector<int> tasks{0, 1, 2, 3, 4, 5, 6, 7, 8};
  try {
    pool.run(tasks, [](int) -> int { throw std::logic_error(""); });
    CHECK_FALSE(pool.is_master());
  } catch (const foreman::task_error& e) {
    CHECK(pool.is_master());
    REQUIRE(e.failures().size() == tasks.size());
    for (std::size_t i = 0; i < tasks.size(); ++i) {
      CHECK(e.failures()[i].index == i);
      CHECK(e.failures()[i].type == "std::logic_error");
      CHECK(e.failures()[i].message.empty());
    }
  }
}

TEST_CASE("a throwing on_result callback is rethrown on the master after the run completed everywhere", "[errors]") {
  foreman::master_worker<int, int> pool;
  const std::vector<int> tasks{1, 2, 3, 4, 5, 6, 7, 8};
  int callback_calls = 0;
  int local_calls = 0;
  auto fn = [&](int x) {
    ++local_calls;
    return x * 2;
  };
  try {
    pool.run(tasks, fn, [&](std::size_t, int, int) {
      ++callback_calls;
      throw std::invalid_argument("callback refuses");
    });
    CHECK_FALSE(pool.is_master());
  } catch (const std::invalid_argument& e) {
    CHECK(pool.is_master());
    CHECK(std::string(e.what()) == "callback refuses");
    CHECK(callback_calls == 1); // not called again after it threw
  }
  // Every task still ran exactly once.
  int all_calls = 0;
  boost::mpi::all_reduce(boost::mpi::communicator(), local_calls, all_calls, std::plus<int>());
  CHECK(all_calls == static_cast<int>(tasks.size()));
  // The pool goes on.
  const auto r = pool.run(tasks, fn);
  if (pool.is_master()) CHECK(r == std::vector<int>{2, 4, 6, 8, 10, 12, 14, 16});
}

namespace {
const std::string nested_message =
    "foreman: run() called from inside a run or job of this pool (from a task, an on_result callback, or while a job "
    "is open); a pool serves one run or job at a time";

// The pool serves a plain run after the nested attempts.
void check_next_run(foreman::master_worker<int, int>& pool) {
  const std::vector<int> tasks{1, 2, 3, 4, 5, 6, 7};
  const auto r = pool.run(tasks, [](int x) { return x * 3; });
  if (pool.is_master()) CHECK(r == std::vector<int>{3, 6, 9, 12, 15, 18, 21});
}
} // namespace

TEST_CASE("run(), run_outcomes() or run_into() called from a task fails that task with foreman::error",
          "[errors][nested]") {
  foreman::master_worker<int, int> pool;
  const std::vector<int> tasks{0, 1, 2, 3, 4, 5, 6, 7, 8};
  std::vector<int> into;
  auto fn = [&](int x) -> int {
    // On a worker, or on a master without workers that runs tasks itself.
    if (x == 2) pool.run(std::vector<int>{1}, [](int y) { return y; });
    if (x == 5) pool.run_outcomes(std::vector<int>{1}, [](int y) { return y; });
    if (x == 7)
      pool.run_into(
          std::vector<int>{1}, [](int y) { return y; }, into);
    return x * 2;
  };
  const auto out = pool.run_outcomes(tasks, fn);
  if (pool.is_master()) {
    REQUIRE(out.size() == tasks.size());
    for (std::size_t i = 0; i < tasks.size(); ++i) {
      INFO("task " << i);
      if (i == 2 || i == 5 || i == 7) {
        REQUIRE_FALSE(out[i].ok());
        CHECK(out[i].failure().type == "foreman::error");
        CHECK(out[i].failure().message == nested_message);
        check_worker_rank(out[i].failure().worker);
      } else {
        REQUIRE(out[i].ok());
        CHECK(out[i].value() == tasks[i] * 2);
      }
    }
  } else {
    CHECK(out.empty());
  }
  check_next_run(pool);
}

TEST_CASE("run() called from an on_result callback is rethrown once the run has completed everywhere",
          "[errors][nested]") {
  foreman::master_worker<int, int> pool;
  const std::vector<int> tasks{1, 2, 3, 4, 5, 6, 7, 8};
  for (int how = 0; how < 3; ++how) {
    INFO("nested call " << how);
    int calls = 0;
    std::vector<int> into;
    auto callback = [&](std::size_t, int, int) {
      ++calls;
      if (how == 0) pool.run(tasks, [](int x) { return x; });
      if (how == 1) pool.run_outcomes(tasks, [](int x) { return x; });
      if (how == 2)
        pool.run_into(
            tasks, [](int x) { return x; }, into);
    };
    if (pool.is_master()) {
      REQUIRE_THROWS_WITH(pool.run(
                              tasks, [](int x) { return x + 1; }, callback),
                          nested_message);
      CHECK(calls == 1); // not called again after it threw
      CHECK(pool.last_run().tasks.size() == tasks.size());
      CHECK(pool.last_run().failures == 0);
    } else {
      CHECK(pool.run(
                    tasks, [](int x) { return x + 1; }, callback)
                .empty());
    }
  }
  check_next_run(pool);
}

TEST_CASE("an exception that leaves the master's loop ends the run on the workers first; the pool then says it "
          "cannot be used",
          "[errors][broken][flat]") {
  if (world_size() < 2) return; // no loop, no workers: nothing to end
  foreman::master_worker<int, int> pool;
  std::vector<int> tasks;
  for (int i = 0; i < 40; ++i) tasks.push_back(i);
  auto fn = [&](int x) {
    // A reply too short to hold a header, as a broken peer or transport would send: the master's
    // loop throws a protocol error.
    if (x == 5) {
      char junk[4] = {};
      MPI_Send(junk, 4, MPI_BYTE, 0, static_cast<int>(foreman::detail::tag::results), MPI_Comm(pool.communicator()));
    }
    return x;
  };
  const auto start = std::chrono::steady_clock::now();
  if (pool.is_master()) {
    try {
      pool.run(tasks, fn);
      FAIL("run() returned although the master's loop threw");
    } catch (const foreman::task_error&) {
      FAIL("a protocol error was reported as a task's failure");
    } catch (const foreman::error& e) {
      CHECK(starts_with(e.what(), "foreman: truncated message"));
    }
  } else {
    CHECK(pool.run(tasks, fn).empty()); // the master ended the run: the worker returns
  }
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(20));
  // Every rank has left that run: a collective of the world's ranks completes (it would wait
  // forever for a worker still serving it).
  int left = 1, all_left = 0;
  boost::mpi::all_reduce(boost::mpi::communicator(), left, all_left, std::plus<int>());
  CHECK(all_left == world_size());
  // The next run: the master says why the pool cannot serve it, the workers are let go.
  if (pool.is_master()) {
    try {
      pool.run(tasks, fn);
      FAIL("run() on a pool in an unknown state returned");
    } catch (const foreman::error& e) {
      const std::string what = e.what();
      CHECK(starts_with(what, "foreman: this pool can no longer be used: an earlier run ended with an exception "
                              "(truncated message"));
    }
    CHECK_THROWS_WITH(pool.run(tasks, fn), Catch::Contains("this pool can no longer be used")); // and stays so
  } else {
    CHECK(pool.run(tasks, fn).empty());
    CHECK_THROWS_WITH(pool.run(tasks, fn), Catch::Contains("after shutdown()"));
  }
}
