// arithmetic: worker r applies one of * / + - to r*100 and 5; the master prints a table.
//
// The C++ version of the assignment's mpi_success.py (see docs/examples.md); it prints exactly
// what that program prints.
//
//   mpirun -n 4 ./arithmetic
//
// In Python, 100 / 5 is the float 20.0 while 100 + 5 is the int 105, and the master prints
// floats with two decimals. A std::variant<long long, double> result carries the same
// distinction: it holds either an integer or a floating-point number, and says which.
#include <foreman/foreman.hpp>

#include <fmt/core.h>

#include <string>
#include <variant>
#include <vector>

// One task: "a op b". Plain data like this travels without any extra code.
struct operation {
  long long a = 0;
  char op = '+';
  long long b = 0;
};

using number = std::variant<long long, double>;

int main(int argc, char* argv[]) {
  boost::mpi::environment env(argc, argv); // starts MPI on this rank

  foreman::master_worker<operation, number> pool;

  // The master decides the work: worker r gets r*100 op 5, the operator picked by r % 4.
  const char operators[] = {'*', '/', '+', '-'};
  std::vector<operation> tasks;
  for (int r = 1; r <= pool.worker_count(); ++r) tasks.push_back({r * 100LL, operators[r % 4], 5});

  auto compute = [](const operation& t) -> number {
    if (t.op == '+') return t.a + t.b;
    if (t.op == '-') return t.a - t.b;
    if (t.op == '/') return static_cast<double>(t.a) / static_cast<double>(t.b); // true division, as in Python
    return t.a * t.b;
  };

  // Task i goes to worker i+1, so the table lists the workers in order.
  foreman::options opt;
  opt.schedule = foreman::schedule::round_robin;

  if (pool.is_master()) {
    fmt::print("\n{:<15} | {:<20} | {:<15}\n", " WORKER ID ", " OPERATION ", " OUTPUT ");
    fmt::print("{:=<56}\n", "");
  }

  // Every rank calls run(); the master gets the results back in task order.
  std::vector<number> results = pool.run(tasks, compute, opt);

  if (pool.is_master()) {
    for (std::size_t i = 0; i < results.size(); ++i) {
      const std::string p_id = fmt::format("Process {}", pool.last_run().tasks[i].worker);
      const std::string task = fmt::format("{} {} {}", tasks[i].a, tasks[i].op, tasks[i].b);
      const std::string res = std::holds_alternative<double>(results[i])
                                  ? fmt::format("{:.2f}", std::get<double>(results[i]))
                                  : fmt::format("{}", std::get<long long>(results[i]));
      fmt::print("{:<15} | {:<20} | {:<15}\n", p_id, task, res);
    }
    fmt::print("{:=<56}\n", "");
    fmt::print("Master: Received data from {} processes.\n\n", pool.worker_count());
  }
}
