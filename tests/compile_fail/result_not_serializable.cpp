// Must not compile: the Result type has no serialize().
#include <foreman/foreman.hpp>

#include <string>
#include <vector>

struct result {
  std::string text;
};

int main(int argc, char* argv[]) {
  boost::mpi::environment env(argc, argv);
  foreman::master_worker<int, result> pool;
  pool.run(std::vector<int>{1}, [](int x) { return result{std::to_string(x)}; });
}
