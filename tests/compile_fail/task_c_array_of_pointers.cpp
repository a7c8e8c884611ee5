// Must not compile: a C array of pointers inside a plain struct without serialize().
#include <foreman/foreman.hpp>

#include <vector>

struct task {
  int id = 0;
  const char* names[2] = {};
};

int main(int argc, char* argv[]) {
  boost::mpi::environment env(argc, argv);
  foreman::master_worker<task, int> pool;
  pool.run(std::vector<task>{task{1, {"a", "b"}}}, [](const task& t) { return t.names[0][0] + t.id; });
}
