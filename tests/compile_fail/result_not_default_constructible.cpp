// Must not compile: the Result type has no default constructor.
#include <foreman/foreman.hpp>

#include <vector>

struct result {
  explicit result(int v) : value(v) {}
  int value;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar& value;
  }
};

int main(int argc, char* argv[]) {
  boost::mpi::environment env(argc, argv);
  foreman::master_worker<int, result> pool;
  pool.run(std::vector<int>{1}, [](int x) { return result{x}; });
}
