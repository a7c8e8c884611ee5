// Must not compile: the pointer is one level down, in a field that is itself a plain struct
// without serialize(); the whole task still travels as its bytes.
#include <foreman/foreman.hpp>

#include <vector>

struct span_of_doubles {
  const double* first = nullptr;
  int count = 0;
};

struct task {
  int id = 0;
  span_of_doubles values;
};

int main(int argc, char* argv[]) {
  boost::mpi::environment env(argc, argv);
  foreman::master_worker<task, double> pool;
  static const double data[] = {1.0, 2.0};
  pool.run(std::vector<task>{task{1, {data, 2}}}, [](const task& t) { return t.values.first[0]; });
}
