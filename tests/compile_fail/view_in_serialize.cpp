// Must not compile: a serialize() that writes a std::string_view member; foreman's archive
// refuses it by name instead of failing deep inside Boost.
#include <foreman/foreman.hpp>

#include <string_view>
#include <vector>

struct task {
  std::string_view name;
  int n = 0;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar& name& n;
  }
};

int main(int argc, char* argv[]) {
  boost::mpi::environment env(argc, argv);
  foreman::master_worker<task, int> pool;
  pool.run(std::vector<task>{}, [](const task& t) { return t.n; });
}
