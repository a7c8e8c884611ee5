#include <foreman/foreman.hpp>
#include <iostream>
#include <string>
#include <vector>

int main(int argc, char* argv[]) {
  boost::mpi::environment env(argc, argv);
  foreman::master_worker<int, std::string> pool; // every rank builds it; rank 0 is the master

  std::vector<int> tasks{1, 2, 3, 4, 5, 6, 7, 8};
  auto results = pool.run(tasks, [](int n) { // the workers call this, one task at a time
    return std::to_string(n) + " squared is " + std::to_string(n * n);
  });

  if (pool.is_master()) // only the master gets results, in task order
    for (const auto& line : results) std::cout << line << '\n';
}
