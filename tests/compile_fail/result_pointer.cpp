// Must not compile: a raw pointer Result would carry an address of the worker's memory.
#include <foreman/foreman.hpp>

#include <vector>

int main(int argc, char* argv[]) {
  boost::mpi::environment env(argc, argv);
  foreman::master_worker<int, const double*> pool;
  static const double table[] = {1.0, 2.0};
  pool.run(std::vector<int>{0, 1}, [](int i) { return &table[i]; });
}
