// run_outcomes(): a per-task value or failure instead of a task_error, and the outcome form
// of the per-result callback, which also sees failures.

#include "catch.hpp"
#include "test_support.hpp"

#include <foreman/foreman.hpp>

#include <cstddef>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using foreman_test::world_size;

std::string describe(int i) {
  if (i % 4 == 1) throw std::domain_error("odd quarter " + std::to_string(i));
  return "ok " + std::to_string(i);
}

} // namespace

TEST_CASE("run_outcomes holds a value or a failure per task and never throws task_error", "[outcome]") {
  foreman::master_worker<int, std::string> pool;
  std::vector<int> tasks;
  for (int i = 0; i < 33; ++i) tasks.push_back(i);
  std::vector<foreman::outcome<std::string>> outcomes;
  REQUIRE_NOTHROW(outcomes = pool.run_outcomes(tasks, describe));
  if (!pool.is_master()) {
    CHECK(outcomes.empty());
  } else {
    REQUIRE(outcomes.size() == tasks.size());
    std::size_t failed = 0;
    for (std::size_t i = 0; i < tasks.size(); ++i) {
      INFO("task " << i);
      const auto& o = outcomes[i];
      if (tasks[i] % 4 == 1) {
        ++failed;
        REQUIRE_FALSE(o.ok());
        CHECK_FALSE(static_cast<bool>(o));
        CHECK(o.failure().index == i);
        CHECK(o.failure().type == "std::domain_error");
        CHECK(o.failure().message == "odd quarter " + std::to_string(tasks[i]));
        CHECK(o.failure().worker == pool.last_run().tasks[i].worker);
        if (world_size() > 1)
          CHECK((o.failure().worker >= 1 && o.failure().worker < world_size()));
        else
          CHECK(o.failure().worker == 0);
        // Asking a failed outcome for its value throws the task's error.
        try {
          (void)o.value();
          FAIL("value() of a failed outcome returned");
        } catch (const foreman::task_error& e) {
          REQUIRE(e.failures().size() == 1);
          CHECK(e.failures().front().index == i);
          CHECK(std::string(e.what()).rfind("foreman: task " + std::to_string(i) + " failed", 0) == 0);
        }
      } else {
        REQUIRE(o.ok());
        CHECK(o.value() == "ok " + std::to_string(tasks[i]));
      }
      CHECK(pool.last_run().tasks[i].failed == !o.ok());
    }
    CHECK(pool.last_run().failures == failed);
    // An rvalue outcome gives its value away.
    auto first = std::move(outcomes[0]).value();
    CHECK(first == "ok 0");
  }
}

TEST_CASE("the outcome callback sees successes and failures, once each", "[outcome]") {
  foreman::master_worker<int, std::string> pool;
  std::vector<int> tasks;
  for (int i = 0; i < 40; ++i) tasks.push_back(i);
  std::map<std::size_t, int> calls;
  std::map<std::size_t, bool> ok;
  bool consistent = true;
  auto on_outcome = [&](std::size_t index, int worker, const foreman::outcome<std::string>& o) {
    ++calls[index];
    ok[index] = o.ok();
    if (o.ok())
      consistent = consistent && o.value() == describe(tasks[index]);
    else
      consistent = consistent && o.failure().index == index && o.failure().worker == worker &&
                   o.failure().type == "std::domain_error";
  };
  const auto outcomes = pool.run_outcomes(tasks, describe, on_outcome);
  if (pool.is_master()) {
    CHECK(consistent);
    REQUIRE(calls.size() == tasks.size());
    for (std::size_t i = 0; i < tasks.size(); ++i) {
      CHECK(calls[i] == 1);
      CHECK(ok[i] == (tasks[i] % 4 != 1));
      CHECK(outcomes[i].ok() == ok[i]);
    }
  } else {
    CHECK(calls.empty());
  }

  // With run(), the outcome callback still sees every task before task_error is thrown.
  calls.clear();
  ok.clear();
  if (pool.is_master()) {
    CHECK_THROWS_AS(pool.run(tasks, describe, on_outcome), foreman::task_error);
    CHECK(calls.size() == tasks.size());
    CHECK(consistent);
  } else {
    CHECK(pool.run(tasks, describe, on_outcome).empty());
  }
}

TEST_CASE("run_outcomes with options and no failures", "[outcome][flat]") {
  foreman::master_worker<int, int> pool;
  foreman::options opt;
  opt.schedule = foreman::schedule::round_robin;
  opt.chunk_size = 4;
  std::vector<int> tasks;
  for (int i = 0; i < 21; ++i) tasks.push_back(i);
  const auto outcomes = pool.run_outcomes(
      tasks, [](int x) { return x * x; }, opt);
  if (pool.is_master()) {
    REQUIRE(outcomes.size() == tasks.size());
    for (std::size_t i = 0; i < tasks.size(); ++i) {
      REQUIRE(outcomes[i].ok());
      CHECK(outcomes[i].value() == tasks[i] * tasks[i]);
      if (pool.worker_count() > 0)
        CHECK(pool.last_run().tasks[i].worker == 1 + static_cast<int>(i) % pool.worker_count());
    }
  }
  CHECK(pool.run_outcomes({}, [](int x) { return x; }).empty());
}

TEST_CASE("an outcome's copies hold failures of their own; it is its value plus a pointer", "[outcome]") {
  const foreman::task_failure failure{7, 2, "std::out_of_range", "vector::at"};
  foreman::outcome<std::string> failed(failure);
  foreman::outcome<std::string> copy(failed);
  REQUIRE_FALSE(copy.ok());
  CHECK(copy.failure().describe() == failure.describe());
  CHECK(&copy.failure() != &failed.failure()); // not shared: each copy owns its failure

  foreman::outcome<std::string> assigned(std::string("value"));
  REQUIRE(assigned.ok());
  assigned = failed; // a value becomes a failure
  REQUIRE_FALSE(assigned.ok());
  CHECK(assigned.failure().message == "vector::at");
  CHECK(&assigned.failure() != &failed.failure());
  assigned = foreman::outcome<std::string>(std::string("again")); // and a value again
  REQUIRE(assigned.ok());
  CHECK(assigned.value() == "again");
  const auto& same = assigned; // through a reference: compilers warn of a plain `x = x`
  assigned = same;              // self-assignment keeps it
  CHECK(assigned.value() == "again");

  foreman::outcome<std::string> moved(std::move(copy));
  REQUIRE_FALSE(moved.ok());
  CHECK(moved.failure().index == 7);
  CHECK_THROWS_AS(std::move(moved).value(), foreman::task_error);
  CHECK(foreman::outcome<std::string>(std::string("x")).value() == "x");

  // run_outcomes() holds one per task: a failure is rare, so it does not make each outcome the
  // size of a task_failure (two strings).
  STATIC_REQUIRE(sizeof(foreman::outcome<double>) == sizeof(double) + sizeof(void*));
}
