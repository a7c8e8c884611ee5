// A downstream program that uses foreman the way a user would: through the installed package
// (find_package) or through add_subdirectory. It runs a few pools and checks every result; the
// verdict of the master is shared so that every rank exits with the same status.
#include <foreman/foreman.hpp>

#include <boost/mpi/collectives.hpp>
#include <boost/mpi/environment.hpp>

#include <cstdlib>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

static_assert(FOREMAN_VERSION_MAJOR == 0, "the consumer expects foreman 0.x");

namespace {

int failures = 0;

void check(bool condition, const std::string& what) {
  if (!condition) {
    ++failures;
    std::cerr << "consumer: FAILED: " << what << '\n';
  }
}

} // namespace

int main(int argc, char* argv[]) {
  boost::mpi::environment env(argc, argv);
  foreman::master_worker<int, long> pool;

  std::vector<int> tasks;
  for (int i = 0; i < 50; ++i) tasks.push_back(i);

  // Dynamic schedule: results in task order.
  std::vector<long> squares = pool.run(tasks, [](int x) { return long(x) * x; });
  if (pool.is_master()) {
    check(squares.size() == tasks.size(), "run() returns one result per task");
    for (std::size_t i = 0; i < squares.size(); ++i)
      check(squares[i] == long(i) * long(i), "square of " + std::to_string(i));
  }

  // Round robin: task i runs on worker 1 + i mod workers (on the master alone without workers).
  foreman::options opt;
  opt.schedule = foreman::schedule::round_robin;
  std::vector<long> negated = pool.run(
      tasks, [](int x) { return -long(x); }, opt);
  if (pool.is_master()) {
    const auto& records = pool.last_run().tasks;
    check(records.size() == tasks.size(), "last_run() has one record per task");
    for (std::size_t i = 0; i < records.size() && i < negated.size(); ++i) {
      check(negated[i] == -long(i), "negation of " + std::to_string(i));
      const int expected = pool.worker_count() == 0 ? 0 : 1 + int(i) % pool.worker_count();
      check(records[i].worker == expected, "placement of task " + std::to_string(i));
    }
  }

  // A failing task reaches the master as foreman::task_error; the other tasks still complete.
  bool thrown = false;
  try {
    pool.run(tasks, [](int x) -> long {
      if (x == 7) throw std::invalid_argument("seven");
      return x;
    });
  } catch (const foreman::task_error& e) {
    thrown = true;
    check(e.failures().size() == 1 && e.failures()[0].index == 7, "task_error names task 7");
    check(e.failures()[0].message == "seven", "task_error carries what()");
  }
  if (pool.is_master()) check(thrown, "run() throws task_error on the master");

  // foreman/serialization.hpp: std::optional travels as a Result on Boost 1.74 too.
  foreman::master_worker<std::string, std::optional<std::size_t>> finder;
  std::vector<std::string> words{"foreman", "mpi", "boost", "xyz"};
  auto found = finder.run(words, [](const std::string& w) -> std::optional<std::size_t> {
    auto pos = w.find('o');
    if (pos == std::string::npos) return std::nullopt;
    return pos;
  });
  if (finder.is_master()) {
    check(found.size() == 4, "optional results: count");
    if (found.size() == 4) {
      check(found[0] == std::optional<std::size_t>(1), "optional result 0");
      check(!found[1].has_value(), "optional result 1");
      check(found[2] == std::optional<std::size_t>(1), "optional result 2");
      check(!found[3].has_value(), "optional result 3");
    }
  }

  int verdict = failures;
  boost::mpi::broadcast(pool.communicator(), verdict, 0);
  if (pool.is_master())
    std::cout << "consumer: foreman " << FOREMAN_VERSION_MAJOR << '.' << FOREMAN_VERSION_MINOR << '.'
              << FOREMAN_VERSION_PATCH << ", " << pool.worker_count() << " workers, "
              << (verdict == 0 ? "OK" : std::to_string(verdict) + " checks failed") << '\n';
  return verdict == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
