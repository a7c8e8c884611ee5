// Must not compile: a serialize() that writes a plain struct without serialize() of its own,
// which foreman's archive writes as its bytes; this one holds a std::string_view.
#include <foreman/foreman.hpp>

#include <string_view>
#include <vector>

struct label {
  std::string_view text;
  int weight = 0;
};

struct task {
  label name;
  int n = 0;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar& name& n;
  }
};

int main(int argc, char* argv[]) {
  boost::mpi::environment env(argc, argv);
  foreman::master_worker<task, int> pool;
  pool.run(std::vector<task>{}, [](const task& t) { return t.n + t.name.weight; });
}
