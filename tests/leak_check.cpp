// What the leak check of scripts/test.sh's sanitized tests reports (its suppressions,
// scripts/sanitizers/lsan-openmpi.supp, and what it preloads, sanitizer-preload.so): a pool's run,
// then two leaks of this program on its last rank (one report: the ranks' would interleave), one of
// them a string from asprintf(), which Open MPI's kept strings come from too. Test leak_check
// (tests/CMakeLists.txt) passes only if both are reported, the asprintf one with this program's
// frame on its stack, and no leak of Open MPI's is, on any rank.
// A suppression by a C library function's name (glibc's __vasprintf_internal, until session 26)
// hid the second: its stack ended in the C library.
#include <foreman/foreman.hpp>

#include <boost/mpi/environment.hpp>

#include <cstdio>
#include <iostream>
#include <vector>

namespace {
int* volatile kept = nullptr; // volatile: no allocation optimized away
char* volatile text = nullptr;
} // namespace

int main(int argc, char* argv[]) {
  boost::mpi::environment env(argc, argv);
  foreman::master_worker<int, int> pool;
  const std::vector<int> results = pool.run(std::vector<int>{1, 2, 3, 4}, [](const int& x) { return x * x; });
  if (pool.is_master()) {
    std::cout << "sum of squares: " << results[0] + results[1] + results[2] + results[3] << '\n';
  }
  if (pool.rank() == pool.worker_count()) { // the last rank
    kept = new int[10]; // 40 bytes
    char* formatted = nullptr;
    if (asprintf(&formatted, "%s", "leaked on purpose") < 0) { // 18 bytes
      return 2;
    }
    text = formatted;
    kept = nullptr; // no pointer left to either: direct leaks
    text = nullptr;
  }
  return 0;
}
