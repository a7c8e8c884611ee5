// MPI errors (detail/mpi_check.hpp): the pool's communicator returns errors whatever handler the
// communicator it was built on had; a failing call becomes foreman::mpi_error naming the call,
// the peer and MPI's error class; a failure on one worker's connection makes that worker lost,
// and the run still ends with every result right.

#include "catch.hpp"
#include "test_support.hpp"

#include <foreman/foreman.hpp>

#include <boost/mpi/communicator.hpp>

#include <mpi.h>

#include <string>
#include <vector>

namespace {

using foreman_test::world_size;

TEST_CASE("the pool's communicator returns MPI errors, even when the one it was built on would abort", "[mpi]") {
  MPI_Errhandler before = MPI_ERRHANDLER_NULL;
  MPI_Comm_get_errhandler(MPI_COMM_WORLD, &before);
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_ARE_FATAL);
  {
    foreman::master_worker<int, int> pool;
    MPI_Errhandler handler = MPI_ERRHANDLER_NULL;
    MPI_Comm_get_errhandler(pool.communicator(), &handler);
    CHECK(handler == MPI_ERRORS_RETURN);
    if (handler != MPI_ERRHANDLER_NULL) MPI_Errhandler_free(&handler);
    // and the pool works
    const auto squares = pool.run(std::vector<int>{1, 2, 3}, [](int x) { return x * x; });
    if (pool.is_master()) CHECK(squares == std::vector<int>{1, 4, 9});
  }
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, before);
  MPI_Errhandler_free(&before);
}

TEST_CASE("a failing MPI call is a foreman::mpi_error with the call, the peer and the error class", "[mpi]") {
  foreman::master_worker<int, int> pool;
  const int nowhere = pool.communicator().size(); // one past the last rank
  const std::vector<char> bytes(4, 'x');
  try {
    foreman::detail::post_send(bytes, nowhere, foreman::detail::tag::tasks, pool.communicator());
    FAIL("a send to rank " << nowhere << " of " << nowhere << " succeeded");
  } catch (const foreman::mpi_error& e) {
    CHECK(e.error_class() == MPI_ERR_RANK);
    CHECK(e.peer() == nowhere);
    const std::string what = e.what();
    CHECK(what.rfind("foreman: MPI_Isend failed (peer rank " + std::to_string(nowhere) + "): ", 0) == 0);
  }
  // The statuses of a call on several requests name the peer of the first that failed.
  MPI_Status statuses[3] = {};
  statuses[0].MPI_ERROR = MPI_SUCCESS;
  statuses[1].MPI_ERROR = MPI_ERR_TRUNCATE;
  statuses[1].MPI_SOURCE = 5;
  statuses[2].MPI_ERROR = MPI_ERR_PENDING;
  try {
    foreman::detail::check_mpi_statuses(MPI_ERR_IN_STATUS, "MPI_Testsome", statuses, 3);
    FAIL("no exception");
  } catch (const foreman::mpi_error& e) {
    CHECK(e.error_class() == MPI_ERR_TRUNCATE);
    CHECK(e.peer() == 5);
  }
  CHECK_NOTHROW(foreman::detail::check_mpi(MPI_SUCCESS, "MPI_Barrier"));
}

// [flat]: the failure is injected into the master's receive from rank 2, from which a grouped
// pool's master receives nothing (rank 2 is a worker of sub-master 1's group).
TEST_CASE("an MPI failure on one worker's connection makes that worker lost, and the run ends right", "[mpi][flat]") {
  if (world_size() < 3) return; // needs a worker to lose and one to finish the run
  foreman::master_worker<int, long> pool;
  const int culprit = 2;
  // The master's receive from the culprit fails (injected: see injected_receive_failure() in
  // transport.hpp for why no real fault can be used here) once task 5's result is in.
  auto fn = [](int x) -> long {
    foreman_test::sleep_us(2000);
    return long(x) * 10;
  };
  auto on_result = [&](std::size_t index, int, const long&) {
    if (index == 5) foreman::detail::injected_receive_failure() = culprit;
  };
  std::vector<int> tasks(60);
  for (int i = 0; i < 60; ++i) tasks[static_cast<std::size_t>(i)] = i;
  foreman::options opt;
  opt.chunk_size = 1;
  opt.announce_faults = false;
  const auto results = pool.run(tasks, fn, on_result, opt);
  if (!pool.is_master()) {
    pool.run(tasks, fn, opt); // the second run below
    return;
  }
  for (int i = 0; i < 60; ++i) CHECK(results[static_cast<std::size_t>(i)] == long(i) * 10);
  const foreman::run_info info = pool.last_run();
  REQUIRE(info.losses.size() == 1);
  CHECK(info.losses[0].worker == culprit);
  CHECK(info.losses[0].reason == foreman::loss_reason::mpi_error);
  CHECK(info.failures == 0);
  CHECK(foreman::detail::injected_receive_failure() == -1); // it did fire
  // The pool goes on without it.
  const auto again = pool.run(tasks, fn, opt);
  for (int i = 0; i < 60; ++i) CHECK(again[static_cast<std::size_t>(i)] == long(i) * 10);
  for (const auto& record : pool.last_run().tasks) CHECK(record.worker != culprit);
}

} // namespace
