// Must not compile (built as C++20): a std::span Task would arrive as an address of the master's memory.
#include <foreman/foreman.hpp>

#include <span>
#include <vector>

int main(int argc, char* argv[]) {
  boost::mpi::environment env(argc, argv);
  foreman::master_worker<std::span<const double>, double> pool;
  static const double data[] = {1.0, 2.0, 3.0};
  pool.run(std::vector<std::span<const double>>{std::span<const double>(data)}, [](std::span<const double> s) {
    double sum = 0;
    for (double d : s) sum += d;
    return sum;
  });
}
