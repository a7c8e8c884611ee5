// Fault injection: one program, the fault chosen by its first argument. Run under
// `mpirun --enable-recovery` for the faults that kill a process. Exit status 0 means every
// assertion held on the master; workers return 0 unless they die.
//
//   crash   worker 2 SIGKILLs itself while running task 4
//   hang    worker 2 never returns from task 4
//   late    worker 2 answers task 4 only after the task timeout
//   poison  task 4 kills every worker that runs it; max_attempts = 2 ends it as a failure
//   throw   tasks whose index is divisible by 3 throw
//   crash_big  tasks of 4 MiB each; worker 2 SIGKILLs itself on its first task, so the master's
//              large sends to it can never complete: they must not stall the master
//   late_big   as late, with results longer than the master's posted receives: the late answer's
//              envelope and message arrive during the next run and are dropped

#include <foreman/foreman.hpp>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

namespace {

int failures = 0;

void check(bool condition, const std::string& what) {
  if (condition) return;
  std::fprintf(stderr, "CHECK FAILED: %s\n", what.c_str());
  ++failures;
}

// Large tasks to a worker that died: the rendezvous sends to it never complete.
int crash_big() {
  foreman::master_worker<std::vector<char>, long> pool;
  if (pool.worker_count() < 2) {
    std::printf("fault crash_big needs at least 2 workers\n");
    return 1;
  }
  constexpr std::size_t size = 4u << 20;
  std::vector<std::vector<char>> tasks;
  for (int i = 0; i < 24; ++i) tasks.emplace_back(size, static_cast<char>(i));
  auto fn = [&pool](const std::vector<char>& t) -> long {
    if (pool.rank() == 2) std::raise(SIGKILL);
    long sum = 0;
    for (char c : t) sum += c;
    return sum;
  };
  foreman::options opt;
  opt.schedule = foreman::schedule::round_robin; // worker 2 is sent tasks (and queued ones) up front
  opt.task_timeout = std::chrono::seconds(2);
  const auto start = std::chrono::steady_clock::now();
  auto results = pool.run(tasks, fn, opt);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!pool.is_master()) return 0;
  for (std::size_t i = 0; i < tasks.size(); ++i)
    check(results[i] == static_cast<long>(i) * static_cast<long>(size), "task " + std::to_string(i) + " correct");
  check(pool.last_run().lost_workers == std::vector<int>{2}, "exactly worker 2 is lost");
  check(seconds < 2.0 + 5.0, "the run ends within task_timeout + 5 s (took " + std::to_string(seconds) + " s)");
  std::printf("fault crash_big: %d check(s) failed, run took %.2f s, lost workers %zu, retries %zu\n", failures,
              seconds, pool.last_run().lost_workers.size(), pool.last_run().retries);
  return failures == 0 ? 0 : 1;
}

// A late answer too long for the master's posted receive: its envelope and its message arrive
// after the worker was declared lost, during the next run, and must be dropped whole.
int late_big() {
  foreman::master_worker<int, std::string> pool;
  if (pool.worker_count() < 2) {
    std::printf("fault late_big needs at least 2 workers\n");
    return 1;
  }
  const std::size_t length = foreman::detail::posted_capacity * 2; // an envelope, not a body
  const int target = 1 + 4 % pool.worker_count(); // round robin: task 4 goes there
  auto text = [length](int x, char fill) { return std::to_string(x) + std::string(length, fill); };
  std::vector<int> tasks(40);
  for (int i = 0; i < 40; ++i) tasks[static_cast<std::size_t>(i)] = i;
  auto fn = [&](int x) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (x == 4 && pool.rank() == target) std::this_thread::sleep_for(std::chrono::seconds(4));
    return text(x, 'a');
  };
  auto second_fn = [&](int x) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100)); // the late answer comes meanwhile
    return text(x, 'b');
  };
  foreman::options opt;
  opt.schedule = foreman::schedule::round_robin;
  opt.task_timeout = std::chrono::seconds(2);
  auto first = pool.run(tasks, fn, opt);
  if (!pool.is_master()) {
    pool.run(tasks, second_fn);
    return 0;
  }
  const foreman::run_info info = pool.last_run();
  for (std::size_t i = 0; i < tasks.size(); ++i)
    check(first[i] == text(static_cast<int>(i), 'a'), "first run task " + std::to_string(i));
  check(info.lost_workers == std::vector<int>{target}, "exactly the late worker is lost");
  const auto start = std::chrono::steady_clock::now();
  auto second = pool.run(tasks, second_fn);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (std::size_t i = 0; i < tasks.size(); ++i)
    check(second[i] == text(static_cast<int>(i), 'b'), "second run task " + std::to_string(i));
  check(pool.last_run().lost_workers.empty(), "no worker lost in the second run");
  std::printf("fault late_big: %d check(s) failed, second run took %.2f s\n", failures, seconds);
  return failures == 0 ? 0 : 1;
}

} // namespace

int main(int argc, char** argv) {
  boost::mpi::environment env(argc, argv);
  const std::string fault = argc > 1 ? argv[1] : "";
  if (fault == "crash_big") return crash_big();
  if (fault == "late_big") return late_big();
  foreman::master_worker<int, long> pool;
  // poison kills two workers and needs one more to finish the run.
  const int needed = fault == "throw" ? 0 : fault == "poison" ? 3 : 2;
  if (pool.worker_count() < needed) {
    std::printf("fault %s needs at least %d workers\n", fault.c_str(), needed);
    return 1;
  }

  foreman::options opt;
  opt.schedule = foreman::schedule::round_robin; // task 4 lands on worker 1 + 4 % W
  opt.task_timeout = std::chrono::seconds(2);
  if (fault == "poison") opt.max_attempts = 2;
  const int target = 1 + 4 % std::max(1, pool.worker_count());

  std::vector<int> tasks(60);
  for (int i = 0; i < 60; ++i) tasks[i] = i;
  auto fn = [&](int x) -> long {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (x == 4 && (fault == "poison" || pool.rank() == target)) {
      if (fault == "crash" || fault == "poison") std::raise(SIGKILL);
      if (fault == "hang")
        for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
      if (fault == "late") std::this_thread::sleep_for(std::chrono::seconds(4));
    }
    if (fault == "throw" && x % 3 == 0) throw std::domain_error("multiple of three: " + std::to_string(x));
    return long(x) * x;
  };

  const auto start = std::chrono::steady_clock::now();
  auto outcomes = pool.run_outcomes(tasks, fn, opt);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  auto second_fn = [](int x) { return long(x) + 1; };
  if (!pool.is_master()) {
    pool.run(tasks, second_fn); // serve the master's second run
    return 0;
  }

  const foreman::run_info info = pool.last_run(); // a copy: the second run below replaces last_run()
  check(outcomes.size() == tasks.size(), "one outcome per task");
  for (std::size_t i = 0; i < outcomes.size(); ++i) {
    const bool should_fail = (fault == "throw" && i % 3 == 0) || (fault == "poison" && i == 4);
    if (should_fail) {
      check(!outcomes[i].ok(), "task " + std::to_string(i) + " failed");
      continue;
    }
    check(outcomes[i].ok() && outcomes[i].value() == long(i) * long(i), "task " + std::to_string(i) + " correct");
    const int worker = info.tasks[i].worker;
    check(pool.worker_count() == 0 ? worker == 0 : worker >= 1 && worker <= pool.worker_count(),
          "task " + std::to_string(i) + " ran on a worker");
  }

  if (fault == "throw") {
    check(info.lost_workers.empty() && info.retries == 0, "no worker lost when tasks only throw");
    check(outcomes[3].failure().type == "std::domain_error", "exception type travels");
    check(outcomes[3].failure().message == "multiple of three: 3", "exception message travels");
  } else if (fault == "poison") {
    check(info.lost_workers.size() == 2, "a poison task with max_attempts 2 takes exactly 2 workers");
    check(outcomes[4].failure().type == "foreman::worker_lost", "the poison task ends as worker_lost");
    check(info.tasks[4].attempts == 2, "the poison task was tried twice");
    check(info.failures == 1, "only the poison task fails: tasks queued behind it are not charged");
  } else {
    check(info.lost_workers.size() == 1 && info.lost_workers[0] == target, "exactly the faulty worker is lost");
    check(info.tasks[4].attempts == 2, "task 4 ran a second time");
    check(info.tasks[4].worker != target, "task 4's result came from another worker");
    check(info.retries >= 1, "the retry is counted");
    check(seconds < 2.0 + 5.0, "the run ends within task_timeout + 5 s (took " + std::to_string(seconds) + " s)");
  }

  // The same pool serves another run on the workers that are left; nothing from the faulty
  // run leaks into it (a late reply must not be filed here).
  auto again = pool.run(tasks, second_fn);
  for (std::size_t i = 0; i < again.size(); ++i) check(again[i] == long(i) + 1, "second run task " + std::to_string(i));
  for (const auto& record : pool.last_run().tasks)
    for (int lost : info.lost_workers) check(record.worker != lost, "a lost worker gets no more tasks");

  std::printf("fault %s: %d check(s) failed, run took %.2f s, lost workers %zu, retries %zu\n", fault.c_str(),
              failures, seconds, info.lost_workers.size(), info.retries);
  return failures == 0 ? 0 : 1;
}
