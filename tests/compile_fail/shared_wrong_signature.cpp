// Must not compile: a function given a value by with_shared() must take it as its second
// argument; this one takes the task only.
#include <foreman/foreman.hpp>

#include <vector>

int main(int argc, char* argv[]) {
  boost::mpi::environment env(argc, argv);
  foreman::master_worker<int, int> pool;
  pool.run(std::vector<int>{1}, foreman::with_shared(std::vector<double>{1.0}, [](int x) { return x; }));
}
