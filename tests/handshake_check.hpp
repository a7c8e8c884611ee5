#pragma once
// Shared by handshake_a.cpp, handshake_b.cpp and handshake_layout.cpp: builds a pool and expects
// the handshake to fail. Their options: --piece-bytes N (this rank's piece size, as in
// piece_bytes_option.hpp) and --reason TEXT (what the message must name, instead of the
// program's own expectation).

#include "piece_bytes_option.hpp"

#include <foreman/foreman.hpp>

#include <boost/mpi/communicator.hpp>
#include <boost/mpi/environment.hpp>

#include <iostream>
#include <sstream>
#include <string>

namespace foreman_test {

/// Exits 0 only if building the pool throws foreman::handshake_error naming the types and, if
/// given (`reason`, or --reason on the command line), containing why the ranks disagree.
template <class Task, class Result>
int expect_handshake_error(int argc, char* argv[], const std::string& task_name, const std::string& result_name,
                           std::string reason = "") {
  boost::mpi::environment env(argc, argv);
  const int rank = boost::mpi::communicator().rank();
  std::ostringstream line; // one write per rank, so lines of different ranks do not interleave
  int status = 1;
  try {
    foreman_test::apply_piece_bytes_option(argc, argv);
    for (int i = 1; i + 1 < argc; ++i)
      if (std::string(argv[i]) == "--reason") reason = argv[i + 1];
    foreman::master_worker<Task, Result> pool;
    line << "rank " << rank << ": NOT CAUGHT: the pool was built although the ranks differ\n";
  } catch (const foreman::handshake_error& e) {
    const std::string what = e.what();
    const bool names_types = what.find("Task = " + task_name + ",") != std::string::npos &&
                             what.find("Result = " + result_name) != std::string::npos;
    const bool prefixed = what.rfind("foreman: ", 0) == 0;
    const bool names_reason = what.find(reason) != std::string::npos;
    if (names_types && prefixed && names_reason) {
      line << "rank " << rank << ": caught foreman::handshake_error: " << what << '\n';
      status = 0;
    } else {
      line << "rank " << rank
           << ": FAILED: the message does not start with \"foreman: \" or does not name Task = " << task_name
           << ", Result = " << result_name << " and \"" << reason << "\": " << what << '\n';
    }
  } catch (const std::exception& e) {
    line << "rank " << rank << ": FAILED: wrong exception: " << e.what() << '\n';
  }
  std::cout << line.str() << std::flush;
  return status;
}

} // namespace foreman_test
