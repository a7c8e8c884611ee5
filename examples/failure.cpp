// failure: what the master sees when one worker's task goes wrong.
//
// The assignment's mpi_fail.py makes worker 2 exit before it sends its result. Its master asks
// each worker in turn with a blocking comm.recv(source=i), so at worker 2 it waits forever and
// the whole program hangs (see docs/examples.md). foreman's master instead waits for whichever
// answer comes next, and a task that throws sends its exception back as the answer.
//
//   mpirun -n 4 ./failure throw                      # the task for worker 2 throws
//   mpirun -n 4 ./failure none                       # nothing fails
//   mpirun -n 4 --enable-recovery ./failure crash    # worker 2's process dies mid-task
//   mpirun -n 4 --enable-recovery ./failure hang     # worker 2 never answers
//
// With `throw` the master prints every other row, then names the failed task, the worker it
// ran on and the exception's message on stderr, and exits with status 1.
//
// With `crash` and `hang` worker 2 never answers. A dead process on the master's host is noticed
// at once (the master watches it); a hung one when its task's deadline (task_timeout) passes.
// Either way the master declares worker 2 lost (one line on stderr), sends it nothing
// more and runs its task again on another worker. Every row is printed, the re-run one with
// the rank that really computed it. A worker that died takes the whole job down unless
// mpirun is told to keep the survivors going: that is what `--enable-recovery` does (Open MPI).
// Add `--mca async_mpi_finalize 1` too: without it Open MPI 4.1 now and then leaves the survivors
// waiting forever in MPI_Finalize for the dead rank (see docs/reliability.md).
#include <foreman/foreman.hpp>

#include <fmt/core.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>
#include <variant>
#include <vector>

// One task: "a op b", and whether to fail while computing it.
struct operation {
  long long a = 0;
  char op = '+';
  long long b = 0;
  bool fail = false;
};

using number = std::variant<long long, double>;

int main(int argc, char* argv[]) {
  boost::mpi::environment env(argc, argv); // starts MPI on this rank
  const bool is_rank_0 = boost::mpi::communicator().rank() == 0;

  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode != "throw" && mode != "none" && mode != "crash" && mode != "hang") {
    if (is_rank_0) fmt::print(stderr, "usage: mpirun -n 4 {} throw|none|crash|hang\n", argv[0]);
    return 2;
  }
  foreman::master_worker<operation, number> pool;

  // As in mpi_fail.py: worker r computes r*10 op 2, the operator picked by r % 4; the task
  // meant for worker 2 is the one that fails.
  const char operators[] = {'+', '-', '/', '*'};
  std::vector<operation> tasks;
  for (int r = 1; r <= pool.worker_count(); ++r) tasks.push_back({r * 10LL, operators[r % 4], 2, r == 2});

  // The failure belongs to worker 2's process: if its task is run again elsewhere, it succeeds.
  const int my_rank = pool.rank();
  auto compute = [&mode, my_rank](const operation& t) -> number {
    if (t.fail && my_rank == 2) {
      if (mode == "throw")
        throw std::runtime_error(fmt::format("fatal error while computing {} {} {}", t.a, t.op, t.b));
      if (mode == "crash") std::raise(SIGKILL); // the process dies without a word, as when
                                                 // the kernel's OOM killer picks it
      if (mode == "hang")                 // the worker never answers
        for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
    }
    if (t.op == '+') return t.a + t.b;
    if (t.op == '-') return t.a - t.b;
    if (t.op == '/') return static_cast<double>(t.a) / static_cast<double>(t.b);
    return t.a * t.b;
  };

  foreman::options opt;
  opt.schedule = foreman::schedule::round_robin; // task i runs on worker i+1
  opt.task_timeout = std::chrono::seconds(2);    // no answer within 2 s: the worker is lost

  if (pool.is_master()) {
    fmt::print("\n{:#^20} | {:#^20} | {:#^15}\n", " PROCESS ID ", " ASSIGNED TASK ", " RESULT ");
    fmt::print("{:-^61}\n", "");
  }

  // run_outcomes() does not throw when a task fails: element i holds either the result of
  // task i or the failure it raised. Every other task still runs to the end.
  std::vector<foreman::outcome<number>> outcomes = pool.run_outcomes(tasks, compute, opt);
  if (!pool.is_master()) return 0;

  bool any_failed = false;
  for (std::size_t i = 0; i < outcomes.size(); ++i) {
    if (!outcomes[i].ok()) {
      any_failed = true;
      continue;
    }
    const number& result = outcomes[i].value();
    const std::string p_id = fmt::format("Worker {}", pool.last_run().tasks[i].worker);
    const std::string task = fmt::format("{} {} {}", tasks[i].a, tasks[i].op, tasks[i].b);
    const std::string res = std::holds_alternative<double>(result) ? fmt::format("{:.2f}", std::get<double>(result))
                                                                   : fmt::format("{}", std::get<long long>(result));
    fmt::print("{:<20} | {:^20} | {:>15}\n", p_id, task, res);
  }

  std::fflush(stdout); // the rows first, then what went wrong
  // How each lost worker was noticed, as the master measured it (run_info::losses).
  for (const foreman::worker_loss& loss : pool.last_run().losses)
    fmt::print(stderr, "Master: worker {} was lost ({}; noticed {:.2f} s after its last sign of life)\n", loss.worker,
               loss.reason == foreman::loss_reason::process_exited ? "its process ended" : "no answer in time",
               loss.silent_for);

  if (any_failed) {
    for (const auto& o : outcomes)
      if (!o.ok()) fmt::print(stderr, "Master: {}\n", o.failure().describe()); // "task 1 failed on worker 2: ..."
    return 1;
  }
  fmt::print("Master: Operation Complete.\n");
}
