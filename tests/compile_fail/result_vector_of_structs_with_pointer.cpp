// Must not compile: a std::vector of plain structs holding a pointer, as Result; each element
// travels as its bytes, so the master would receive addresses of the worker's memory.
#include <foreman/foreman.hpp>

#include <vector>

struct match {
  const char* where = nullptr;
  int line = 0;
};

int main(int argc, char* argv[]) {
  boost::mpi::environment env(argc, argv);
  foreman::master_worker<int, std::vector<match>> pool;
  static const char text[] = "needle";
  pool.run(std::vector<int>{1}, [](int n) { return std::vector<match>(static_cast<std::size_t>(n), match{text, n}); });
}
