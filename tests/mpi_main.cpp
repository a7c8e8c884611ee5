// The main of every Catch2 test program, for running under mpirun: every rank runs the same
// test cases in the same order (each pool is built and run collectively inside a test case),
// and a failure on any rank makes every rank exit non-zero, so mpirun and CTest see it.
#define CATCH_CONFIG_RUNNER // Catch2 v2: we provide main()
#include "catch.hpp"

#include <boost/mpi/collectives.hpp>
#include <boost/mpi/communicator.hpp>
#include <boost/mpi/environment.hpp>

#include <functional>
#include <iostream>

int main(int argc, char* argv[]) {
  boost::mpi::environment env(argc, argv);
  boost::mpi::communicator world;

  Catch::Session session;
  const int parse_status = session.applyCommandLine(argc, argv);
  // Every rank parses the same arguments, so every rank agrees on this.
  if (parse_status != 0) return parse_status;

    // Test cases are collective: all ranks must enter them in the same order. Catch2 v3 shuffles
    // by default (with a per-process seed), which would pair different test cases across ranks.
#if FOREMAN_TEST_CATCH2_V3
  session.configData().runOrder = Catch::TestRunOrder::Declared;
#else
  session.configData().runOrder = Catch::RunTests::InDeclarationOrder;
#endif

  const int local_failures = session.run();
  int failures = 0;
  boost::mpi::all_reduce(world, local_failures, failures, std::plus<int>());
  if (failures != 0 && local_failures == 0 && world.rank() == 0)
    std::cerr << "foreman tests: assertions failed on other ranks (" << failures << " failed test cases in total)\n";
  // Catch2 reports the number of failed test cases as the exit code, capped at 255.
  return failures == 0 ? 0 : 1;
}
