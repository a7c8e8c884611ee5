// Must not compile: an initializer takes nothing, or the shared value; this one wants a string.
#include <foreman/foreman.hpp>

#include <string>
#include <vector>

int main(int argc, char* argv[]) {
  boost::mpi::environment env(argc, argv);
  foreman::master_worker<int, int> pool;
  pool.run(std::vector<int>{1}, foreman::with_initializer([](const std::string&) {}, [](int x) { return x; }));
}
