// Must not compile: the on_result callback takes neither (index, worker, const Result&) nor
// (index, worker, const outcome<Result>&).
#include <foreman/foreman.hpp>

#include <string>
#include <vector>

int main(int argc, char* argv[]) {
  boost::mpi::environment env(argc, argv);
  foreman::master_worker<int, int> pool;
  pool.run(
      std::vector<int>{1}, [](int x) { return x; }, [](const std::string&) {});
}
