// Must not compile: the Task type has no serialize().
#include <foreman/foreman.hpp>

#include <string>
#include <vector>

struct task {
  std::string text;
};

int main(int argc, char* argv[]) {
  boost::mpi::environment env(argc, argv);
  foreman::master_worker<task, int> pool;
  pool.run(std::vector<task>{}, [](const task& t) { return static_cast<int>(t.text.size()); });
}
