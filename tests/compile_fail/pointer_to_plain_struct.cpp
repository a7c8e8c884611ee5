// Must not compile: a serialize() that writes a pointer to a plain struct without serialize().
// Such a struct travels as its bytes by value, but Boost.Serialization needs a serialize() to
// send it through a pointer; foreman says so instead of failing deep inside Boost.
#include <foreman/foreman.hpp>

#include <vector>

struct point {
  double x = 0, y = 0;
};

struct task {
  point* where = nullptr;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar& where;
  }
};

int main(int argc, char* argv[]) {
  boost::mpi::environment env(argc, argv);
  foreman::master_worker<task, double> pool;
  pool.run(std::vector<task>{}, [](const task& t) { return t.where ? t.where->x : 0.0; });
}
