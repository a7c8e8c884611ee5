// product: every worker multiplies a list of ten numbers and the master prints each product.
//
// The C++ version of the assignment's distributed_program.py (see docs/examples.md); it prints
// exactly what that program prints.
//
//   mpirun -n 4 ./product
//
// Python's integers never overflow; C++'s do. 81 * 82 * ... * 90 (worker 9's list) is about
// 2.1e19, more than a 64-bit integer holds, so the result type is Boost.Multiprecision's
// cpp_int, an integer as large as it needs to be. foreman sends it like any other value: a
// task or a result can be any type Boost.Serialization knows how to save and load.
#include <foreman/foreman.hpp>

#include <boost/multiprecision/cpp_int.hpp>
#include <fmt/core.h>
#include <fmt/ranges.h> // prints a std::vector as [1, 2, 3], like Python prints a list

#include <vector>

using boost::multiprecision::cpp_int;

int main(int argc, char* argv[]) {
  boost::mpi::environment env(argc, argv); // starts MPI on this rank

  // A task is the list of numbers to multiply, a result is their product.
  foreman::master_worker<std::vector<int>, cpp_int> pool;

  // The master prepares one list per worker: the r-th list is (r-1)*10+1 .. (r-1)*10+10.
  std::vector<std::vector<int>> lists;
  for (int r = 1; r <= pool.worker_count(); ++r) {
    std::vector<int> numbers;
    for (int x = (r - 1) * 10 + 1; x <= (r - 1) * 10 + 10; ++x) numbers.push_back(x);
    lists.push_back(numbers);
  }

  auto multiply = [](const std::vector<int>& numbers) {
    cpp_int product = 1;
    for (int x : numbers) product *= x;
    return product;
  };

  // List i goes to worker i+1, as in the Python program where worker r builds the r-th list.
  foreman::options opt;
  opt.schedule = foreman::schedule::round_robin;

  if (pool.is_master()) {
    fmt::print("Master process started.\n\n");
    fmt::print("Total processes: {}\n\n", pool.communicator().size());
  }

  // Every rank calls run(); the master gets the products back in list order.
  std::vector<cpp_int> products = pool.run(lists, multiply, opt);

  if (pool.is_master()) {
    for (std::size_t i = 0; i < products.size(); ++i) {
      fmt::print("Master received processed data from worker process {}:\n", pool.last_run().tasks[i].worker);
      fmt::print("  Input data: {}\n", lists[i]);
      fmt::print("  Calculated product: {}\n\n", products[i].str());
    }
  }
}
