// Must not compile: views are refused inside a container too.
#include <foreman/foreman.hpp>

#include <string_view>
#include <vector>

int main(int argc, char* argv[]) {
  boost::mpi::environment env(argc, argv);
  foreman::master_worker<std::vector<std::string_view>, int> pool;
  pool.run(std::vector<std::vector<std::string_view>>{},
           [](const std::vector<std::string_view>& words) { return static_cast<int>(words.size()); });
}
