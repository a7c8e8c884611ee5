// Must not compile: a std::array of pointers inside a plain struct without serialize().
#include <foreman/foreman.hpp>

#include <array>
#include <vector>

struct task {
  std::array<const double*, 3> corners{};
  int id = 0;
};

int main(int argc, char* argv[]) {
  boost::mpi::environment env(argc, argv);
  foreman::master_worker<task, double> pool;
  static const double x = 1.0;
  pool.run(std::vector<task>{task{{&x, &x, &x}, 1}}, [](const task& t) { return *t.corners[0]; });
}
