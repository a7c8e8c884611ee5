// Must not compile: a plain struct without serialize() travels as its bytes, and this one holds a
// raw pointer: the worker would receive an address of the master's memory. Its own fix: a
// serialize() (as `holder` in serialization_test.cpp has), which then sends the pointee.
#include <foreman/foreman.hpp>

#include <vector>

struct shape {
  double area = 0;
};

struct task {
  const shape* p = nullptr;
  int id = 0;
};

int main(int argc, char* argv[]) {
  boost::mpi::environment env(argc, argv);
  foreman::master_worker<task, double> pool;
  static const shape unit{1.0};
  pool.run(std::vector<task>{task{&unit, 1}}, [](const task& t) { return t.p->area; });
}
