// Must not compile: views are refused inside std::optional too.
#include <foreman/foreman.hpp>

#include <optional>
#include <string_view>
#include <vector>

int main(int argc, char* argv[]) {
  boost::mpi::environment env(argc, argv);
  foreman::master_worker<std::optional<std::string_view>, int> pool;
  pool.run(std::vector<std::optional<std::string_view>>{},
           [](const std::optional<std::string_view>& s) { return s ? static_cast<int>(s->size()) : 0; });
}
