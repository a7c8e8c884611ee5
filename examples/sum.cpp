// sum: every worker adds up its own chunk of ten numbers and the master collects the sums.
//
// The C++ version of the master/worker assignment mpi_master_worker.py (see docs/examples.md);
// it prints exactly what that program prints.
//
//   mpirun -n 4 ./sum
//
// mpirun starts 4 copies of this program, each with its own memory. MPI numbers the copies
// ("ranks") 0 to 3; rank 0 becomes the master and ranks 1 to 3 become the workers.
#include <foreman/foreman.hpp>

#include <fmt/core.h>

#include <vector>

int main(int argc, char* argv[]) {
  // Starts MPI on this rank (and stops it when main returns).
  boost::mpi::environment env(argc, argv);

  // Every rank builds the pool together. A task is a chunk number, a result is a sum.
  foreman::master_worker<int, long long> pool;

  // One chunk per worker: chunk r holds r*10 .. r*10+9. Only the master's list matters.
  std::vector<int> chunks;
  for (int r = 1; r <= pool.worker_count(); ++r) chunks.push_back(r);

  // The work itself. It runs on a worker; foreman ships the chunk number there and the sum back.
  auto sum_chunk = [](int chunk) {
    long long sum = 0;
    for (int x = chunk * 10; x < chunk * 10 + 10; ++x) sum += x;
    return sum;
  };

  // Hand out the chunks in order, one per worker, so that worker r computes chunk r.
  foreman::options opt;
  opt.schedule = foreman::schedule::round_robin;

  if (pool.is_master()) fmt::print("Master process started. Expecting {} worker messages...\n\n", pool.worker_count());

  // Every rank calls run(). The master sends the tasks out and waits for the answers; a worker
  // computes whatever it is sent until the master is done. The master gets the sums in chunk
  // order; the workers get an empty vector.
  std::vector<long long> sums = pool.run(chunks, sum_chunk, opt);

  if (pool.is_master()) {
    for (std::size_t i = 0; i < sums.size(); ++i) {
      const int worker = pool.last_run().tasks[i].worker; // the rank that really computed it
      fmt::print("Received from process {} | Task: Data chunk {} | Result: {}\n", worker, chunks[i], sums[i]);
    }
    fmt::print("\nAll worker results received.\n");
  }
}
