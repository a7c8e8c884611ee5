// sum_range: worker r adds up 1 .. r*10 and the master prints who computed which sum.
//
// The C++ version of the assignment's mpi_program.py (see docs/examples.md); it prints exactly
// what that program prints.
//
//   mpirun -n 4 ./sum_range
#include <foreman/foreman.hpp>

#include <fmt/core.h>

#include <vector>

int main(int argc, char* argv[]) {
  boost::mpi::environment env(argc, argv); // starts MPI on this rank

  // Rank 0 is the master, every other rank a worker. A task is a chunk number r, a result is
  // the sum 1 + 2 + ... + r*10.
  foreman::master_worker<int, long long> pool;

  std::vector<int> chunks; // one per worker: 1, 2, ..., worker_count()
  for (int r = 1; r <= pool.worker_count(); ++r) chunks.push_back(r);

  auto sum_up_to = [](int chunk) {
    long long sum = 0;
    for (int x = 1; x <= chunk * 10; ++x) sum += x;
    return sum;
  };

  // Task i goes to worker i+1: worker r computes chunk r, as in the Python program.
  foreman::options opt;
  opt.schedule = foreman::schedule::round_robin;

  if (pool.is_master()) fmt::print("Master process receiving results...\n\n");

  // Every rank calls run(); the master gets the sums back in chunk order.
  std::vector<long long> sums = pool.run(chunks, sum_up_to, opt);

  if (pool.is_master()) {
    for (std::size_t i = 0; i < sums.size(); ++i) {
      fmt::print("Received from process {}:\n", pool.last_run().tasks[i].worker);
      fmt::print("  Assigned Task: Data Chunk {}\n", chunks[i]);
      fmt::print("  Computed Sum: {}\n\n", sums[i]);
    }
  }
}
