// Must not compile: a std::string_view Task would arrive as an address of the master's memory.
#include <foreman/foreman.hpp>

#include <string_view>
#include <vector>

int main(int argc, char* argv[]) {
  boost::mpi::environment env(argc, argv);
  foreman::master_worker<std::string_view, int> pool;
  pool.run(std::vector<std::string_view>{"a"}, [](std::string_view s) { return static_cast<int>(s.size()); });
}
