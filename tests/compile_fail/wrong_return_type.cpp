// Must not compile: fn returns a std::string, which does not convert to the Result type int.
#include <foreman/foreman.hpp>

#include <string>
#include <vector>

int main(int argc, char* argv[]) {
  boost::mpi::environment env(argc, argv);
  foreman::master_worker<int, int> pool;
  pool.run(std::vector<int>{1}, [](int x) { return std::to_string(x); });
}
