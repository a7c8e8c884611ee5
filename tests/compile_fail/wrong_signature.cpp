// Must not compile: fn cannot be called with a const Task& (it wants a std::string for an int).
#include <foreman/foreman.hpp>

#include <string>
#include <vector>

int main(int argc, char* argv[]) {
  boost::mpi::environment env(argc, argv);
  foreman::master_worker<int, int> pool;
  pool.run(std::vector<int>{1}, [](const std::string& s) { return static_cast<int>(s.size()); });
}
