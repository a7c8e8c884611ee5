// Must not compile: views are refused inside std::pair (and std::tuple, std::variant) too.
#include <foreman/foreman.hpp>

#include <string_view>
#include <utility>
#include <vector>

int main(int argc, char* argv[]) {
  boost::mpi::environment env(argc, argv);
  foreman::master_worker<int, std::pair<int, std::string_view>> pool;
  pool.run(std::vector<int>{1}, [](int i) { return std::pair<int, std::string_view>{i, "name"}; });
}
