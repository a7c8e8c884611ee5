// Must not compile: the value given to with_shared() cannot be serialized (a class without
// serialize() that holds a pointer).
#include <foreman/foreman.hpp>

#include <vector>

struct table {
  const double* rows = nullptr;
};

int main(int argc, char* argv[]) {
  boost::mpi::environment env(argc, argv);
  foreman::master_worker<int, int> pool;
  pool.run(std::vector<int>{1}, foreman::with_shared(table{}, [](int x, const table&) { return x; }));
}
