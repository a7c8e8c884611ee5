#pragma once
// Shared by handshake_a.cpp and handshake_b.cpp: builds a pool and expects the handshake to fail.

#include <foreman/foreman.hpp>

#include <boost/mpi/communicator.hpp>
#include <boost/mpi/environment.hpp>

#include <iostream>
#include <sstream>
#include <string>

namespace foreman_test {

template <class Task, class Result>
int expect_handshake_error(int argc, char* argv[], const std::string& task_name, const std::string& result_name) {
  boost::mpi::environment env(argc, argv);
  const int rank = boost::mpi::communicator().rank();
  std::ostringstream line; // one write per rank, so lines of different ranks do not interleave
  int status = 1;
  try {
    foreman::master_worker<Task, Result> pool;
    line << "rank " << rank << ": NOT CAUGHT: the pool was built although the types differ\n";
  } catch (const foreman::handshake_error& e) {
    const std::string what = e.what();
    const bool names_types = what.find("Task = " + task_name + ",") != std::string::npos &&
                             what.find("Result = " + result_name) != std::string::npos;
    const bool prefixed = what.rfind("foreman: ", 0) == 0;
    if (names_types && prefixed) {
      line << "rank " << rank << ": caught foreman::handshake_error: " << what << '\n';
      status = 0;
    } else {
      line << "rank " << rank
           << ": FAILED: the message does not start with \"foreman: \" or does not name Task = " << task_name
           << ", Result = " << result_name << ": " << what << '\n';
    }
  } catch (const std::exception& e) {
    line << "rank " << rank << ": FAILED: wrong exception: " << e.what() << '\n';
  }
  std::cout << line.str() << std::flush;
  return status;
}

} // namespace foreman_test
