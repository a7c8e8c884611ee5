// Fault injection: one program, the fault chosen by its first argument. Run under
// `mpirun --enable-recovery` for the faults that kill a process. Exit status 0 means every
// assertion held on the master; workers return 0 unless they die.
//
//   crash   worker 2 SIGKILLs itself while running task 4
//   crash_unwatched  as crash, with FOREMAN_WATCH_PROCESSES=0 (as for a worker on another host)
//   hang    worker 2 never returns from task 4
//   late    worker 2 answers task 4 only after the task timeout
//   poison  task 4 kills every worker that runs it; max_attempts = 2 ends it as a failure
//   throw   tasks whose index is divisible by 3 throw
//   crash_big  tasks of 4 MiB each; worker 2 SIGKILLs itself on its first task, so the master's
//              large sends to it can never complete: they must not stall the master
//   crash_shared  a 32 MiB shared value (with_shared); worker 2 SIGKILLs itself before its run, so
//              the master's sends of the value to it never complete: they must not stall the
//              master, in that run or the next
//   late_big   as late, with results longer than the master's posted receives: the late answer's
//              envelope and message arrive during the next run and are dropped
//   death_kill, death_exit, death_abort
//              DEFAULT options (no task_timeout): 200 tasks of 5 ms, rank 2 dies at its 10th task by
//              SIGKILL, exit(1) or abort(); its death must be noticed by watching its process
//   slow_chunk no fault: fixed chunks of 8 tasks of 0.3 s (2.4 s a chunk) with task_timeout 1 s;
//              the progress notes between tasks keep every worker alive
//   body_then_long_task  no fault: worker 1 answers a 20 ms task with a body, then runs a 2 s
//              task; the body must reach the master before that task ends, whatever the MPI's
//              progress (MPICH over UCX moves it only inside the worker's MPI calls)
//   hang_chunk automatic chunks of 10 us tasks, task_timeout 2 s: rank 2 hangs in the middle of a
//              chunk of ~100 tasks and must be noticed within task_timeout + 1 s, not 100 x 2 s
//   lost_in_transfer, alive_in_transfer, failed_in_transfer
//              worker 1's bodies take seconds to come (delayed by a test hook, as a long transfer
//              in pieces would take them): meanwhile worker 2's death must be noticed, worker 2
//              must be served and not lost, and a failed receive from it must make it lost (not
//              end the transfer from worker 1)
//   died_in_transfer
//              worker 1 dies between the two bodies of its first reply: the body that arrived is
//              filed, the receive posted for the other is withdrawn, and only the tasks it had
//              not delivered run again
//
// Detection is judged from the master's own report (run_info::losses: why, and how long after the
// worker's last sign of life), not from the wall time of the run, which a loaded machine
// stretches; a generous wall-time bound stays as a guard against hangs. Every line the master
// announces is captured, and every task the lost workers held must be announced as sent again.

#include "fault_checks.hpp"

#include <foreman/foreman.hpp>

#include <boost/mpi/collectives.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

using fault_checks::check;
using fault_checks::failures;

// The master's standard error while a run goes on, captured (then echoed) so that what foreman
// announces can be checked.
class stderr_capture {
public:
  explicit stderr_capture(bool active) {
    if (!active) return;
    std::fflush(stderr);
    file_ = std::tmpfile();
    saved_ = ::dup(2);
    if (file_ == nullptr || saved_ < 0 || ::dup2(::fileno(file_), 2) < 0) std::abort();
  }
  std::string finish() {
    if (file_ == nullptr) return {};
    std::fflush(stderr);
    ::dup2(saved_, 2);
    ::close(saved_);
    std::string text;
    std::rewind(file_);
    char buffer[4096];
    for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, file_)) > 0;) text.append(buffer, n);
    std::fclose(file_);
    file_ = nullptr;
    std::fputs(text.c_str(), stderr);
    return text;
  }

private:
  std::FILE* file_ = nullptr;
  int saved_ = -1;
};

// Tasks announced as sent again ("foreman: N task(s) sent again, to worker W: 4, 7-9 ..."):
// the sum of their counts; each line's list must hold as many tasks as its count says.
std::size_t announced_resent(const std::string& text) {
  std::istringstream lines(text);
  std::size_t total = 0;
  for (std::string line; std::getline(lines, line);) {
    const std::string marker = " task(s) sent again, to worker ";
    const auto at = line.find(marker);
    if (line.rfind("foreman: ", 0) != 0 || at == std::string::npos) continue;
    const std::size_t count = std::stoul(line.substr(9, at - 9));
    total += count;
    auto list = line.substr(line.find(": ", at) + 2);
    list = list.substr(0, list.find(" ("));
    if (list.find("more") != std::string::npos) continue; // a long list is cut short
    std::size_t listed = 0;
    std::istringstream items(list);
    for (std::string item; std::getline(items, item, ',');) {
      const auto dash = item.find('-');
      listed +=
          dash == std::string::npos ? 1 : std::stoul(item.substr(dash + 1)) - std::stoul(item.substr(0, dash)) + 1;
    }
    check(listed == count, "the line lists as many tasks as it counts: " + line);
  }
  return total;
}

// Checks the report of a run in which `expected` workers were lost, each for `reason`, noticed
// within `silent_min`..`silent_max` s of its last sign of life, and that every task they held was
// announced as sent again (but the `failed_lost` that ended as worker_lost failures).
void check_losses(const foreman::run_info& info, const std::string& announced, std::size_t expected,
                  foreman::loss_reason reason, double silent_min, double silent_max, std::size_t failed_lost = 0) {
  check(info.losses.size() == expected,
        "the report has " + std::to_string(expected) + " loss(es), it has " + std::to_string(info.losses.size()));
  std::size_t held = 0;
  for (const foreman::worker_loss& loss : info.losses) {
    const std::string name = "worker " + std::to_string(loss.worker);
    check(loss.reason == reason,
          name + " lost for the expected reason (" +
              (loss.reason == foreman::loss_reason::process_exited ? "process exited" : "silent") + ")");
    check(loss.silent_for >= silent_min && loss.silent_for <= silent_max,
          name + " noticed " + std::to_string(loss.silent_for) + " s after its last sign of life, expected " +
              std::to_string(silent_min) + " .. " + std::to_string(silent_max) + " s");
    std::fprintf(stderr,
                 "loss: worker %d, %s, noticed %.3f s into the run, %.3f s after its last sign of life, "
                 "holding %zu task(s)\n",
                 loss.worker, loss.reason == foreman::loss_reason::process_exited ? "process exited" : "silent",
                 loss.noticed, loss.silent_for, loss.tasks_held);
    held += loss.tasks_held;
  }
  check(announced_resent(announced) == held - failed_lost,
        "every task a lost worker held is announced as sent again (" + std::to_string(announced_resent(announced)) +
            " announced, " + std::to_string(held - failed_lost) + " held)");
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
  stderr_capture capture(pool.is_master());
  auto results = pool.run(tasks, fn, opt);
  const std::string announced = capture.finish();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!pool.is_master()) return 0;
  for (std::size_t i = 0; i < tasks.size(); ++i)
    check(results[i] == static_cast<long>(i) * static_cast<long>(size), "task " + std::to_string(i) + " correct");
  check(pool.last_run().lost_workers == std::vector<int>{2}, "exactly worker 2 is lost");
  // Its last sign of life is the chunk it was sent: the 4 MiB transfer comes before its death.
  check_losses(pool.last_run(), announced, 1, foreman::loss_reason::process_exited, 0.0, 2.0);
  check(seconds < 2.0 + 30.0, "hang guard: the run ends (took " + std::to_string(seconds) + " s)");
  std::printf("fault crash_big: %d check(s) failed, run took %.2f s, lost workers %zu, retries %zu\n", failures,
              seconds, pool.last_run().lost_workers.size(), pool.last_run().retries);
  return failures == 0 ? 0 : 1;
}

// A large shared value to a worker that died before its run: the sends of the value to it (and
// of its tasks) never complete.
int crash_shared() {
  foreman::master_worker<int, long> pool;
  if (pool.worker_count() < 2) {
    std::printf("fault crash_shared needs at least 2 workers\n");
    return 1;
  }
  std::vector<long> table;
  if (pool.is_master())
    for (long i = 0; i < (4l << 20); ++i) table.push_back(i % 1000 + 1); // 32 MiB
  auto fn = foreman::with_shared(std::cref(table), [](int x, const std::vector<long>& t) {
    return t.at(static_cast<std::size_t>(x) * 1000 + 7) * x;
  });
  std::vector<int> tasks(40);
  for (int i = 0; i < 40; ++i) tasks[static_cast<std::size_t>(i)] = i;
  foreman::options opt;
  opt.schedule = foreman::schedule::round_robin; // worker 2 is sent tasks behind the value at once
  opt.task_timeout = std::chrono::seconds(2);
  if (pool.rank() == 2) std::raise(SIGKILL);
  const auto start = std::chrono::steady_clock::now();
  stderr_capture capture(pool.is_master());
  const auto results = pool.run(tasks, fn, opt);
  const std::string announced = capture.finish();
  const foreman::run_info info = pool.last_run();
  const auto again = pool.run(tasks, fn, opt); // the dead worker is sent nothing
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!pool.is_master()) return 0;
  for (int x : tasks) {
    const long expected = ((x * 1000L + 7) % 1000 + 1) * x;
    check(results[static_cast<std::size_t>(x)] == expected, "task " + std::to_string(x) + " correct");
    check(again[static_cast<std::size_t>(x)] == expected, "task " + std::to_string(x) + " correct in the next run");
  }
  check(info.lost_workers == std::vector<int>{2}, "exactly worker 2 is lost");
  check_losses(info, announced, 1, foreman::loss_reason::process_exited, 0.0, 2.0);
  check(pool.last_run().lost_workers.empty(), "nobody else is lost in the next run");
  check(seconds < 2.0 + 30.0, "hang guard: the runs end (took " + std::to_string(seconds) + " s)");
  std::printf("fault crash_shared: %d check(s) failed, two runs took %.2f s\n", failures, seconds);
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
  static constexpr std::size_t length = foreman::detail::posted_capacity * 2; // an envelope, not a body
  const int target = 1 + 4 % pool.worker_count();                  // round robin: task 4 goes there
  auto text = [](int x, char fill) { return std::to_string(x) + std::string(length, fill); };
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
  stderr_capture capture(pool.is_master());
  auto first = pool.run(tasks, fn, opt);
  const std::string announced = capture.finish();
  if (!pool.is_master()) {
    pool.run(tasks, second_fn);
    return 0;
  }
  const foreman::run_info info = pool.last_run();
  for (std::size_t i = 0; i < tasks.size(); ++i)
    check(first[i] == text(static_cast<int>(i), 'a'), "first run task " + std::to_string(i));
  check(info.lost_workers == std::vector<int>{target}, "exactly the late worker is lost");
  check_losses(info, announced, 1, foreman::loss_reason::silent, 2.0, 3.0);
  const auto start = std::chrono::steady_clock::now();
  auto second = pool.run(tasks, second_fn);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (std::size_t i = 0; i < tasks.size(); ++i)
    check(second[i] == text(static_cast<int>(i), 'b'), "second run task " + std::to_string(i));
  check(pool.last_run().lost_workers.empty(), "no worker lost in the second run");
  std::printf("fault late_big: %d check(s) failed, second run took %.2f s\n", failures, seconds);
  return failures == 0 ? 0 : 1;
}

// DEFAULT options: rank 2 dies at its 10th task (SIGKILL, exit(1) or abort()). Without a
// task_timeout only watching its process can notice it.
int death(const std::string& how) {
  foreman::master_worker<int, long> pool;
  if (pool.worker_count() < 3) {
    std::printf("fault death_%s needs at least 3 workers\n", how.c_str());
    return 1;
  }
  // The dying worker writes the time of its death (steady_clock, shared by the processes of one
  // host) where the master reads it: the delay from death to notice, measured from outside.
  std::string stamp_file = "/tmp/foreman_death_" + std::to_string(::getpid());
  boost::mpi::broadcast(pool.communicator(), stamp_file, 0);
  std::vector<int> tasks(200);
  for (int i = 0; i < 200; ++i) tasks[static_cast<std::size_t>(i)] = i;
  int served = 0;
  auto fn = [&](int x) -> long {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    if (pool.rank() == 2 && ++served == 10) {
      std::ofstream(stamp_file) << std::chrono::steady_clock::now().time_since_epoch().count() << '\n';
      if (how == "kill") std::raise(SIGKILL);
      if (how == "exit") std::exit(1);
      const rlimit no_core{0, 0};
      ::setrlimit(RLIMIT_CORE, &no_core); // abort() without writing a core file
      std::abort();
    }
    return long(x) * x;
  };
  const auto start = std::chrono::steady_clock::now();
  stderr_capture capture(pool.is_master());
  auto results = pool.run(tasks, fn); // default options: no task_timeout
  const std::string announced = capture.finish();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  auto second_fn = [](int x) { return long(x) + 1; };
  if (!pool.is_master()) {
    pool.run(tasks, second_fn);
    return 0;
  }
  const foreman::run_info info = pool.last_run();
  for (std::size_t i = 0; i < tasks.size(); ++i)
    check(results[i] == long(i) * long(i), "task " + std::to_string(i) + " correct");
  check(info.lost_workers == std::vector<int>{2}, "exactly worker 2 is lost");
  check_losses(info, announced, 1, foreman::loss_reason::process_exited, 0.0, 1.0);
  long long died = 0;
  std::ifstream(stamp_file) >> died;
  std::remove(stamp_file.c_str());
  if (died > 0 && !info.losses.empty()) {
    const double noticed = std::chrono::duration<double>(start.time_since_epoch()).count() + info.losses[0].noticed;
    const double death_seconds =
        static_cast<double>(died) * std::chrono::steady_clock::period::num / std::chrono::steady_clock::period::den;
    std::fprintf(stderr, "death to notice: %.3f s (at most; the run's start is taken a little early)\n",
                 noticed - death_seconds);
  }
  check(seconds < 30.0, "hang guard: the run ends (took " + std::to_string(seconds) + " s)");
  auto again = pool.run(tasks, second_fn);
  for (std::size_t i = 0; i < again.size(); ++i) check(again[i] == long(i) + 1, "second run task " + std::to_string(i));
  std::printf("fault death_%s: %d check(s) failed, run took %.2f s, lost workers %zu, retries %zu\n", how.c_str(),
              failures, seconds, info.lost_workers.size(), info.retries);
  return failures == 0 ? 0 : 1;
}

// A worker hangs in the middle of an automatic chunk of ~100 tasks of 10 us: it must be noticed
// within task_timeout + 1 s of its last sign of life, not chunk size x task_timeout.
int hang_chunk() {
  foreman::master_worker<int, long> pool;
  if (pool.worker_count() < 2) {
    std::printf("fault hang_chunk needs at least 2 workers\n");
    return 1;
  }
  const std::size_t count = 100000;
  std::vector<int> tasks(count);
  for (std::size_t i = 0; i < count; ++i) tasks[i] = static_cast<int>(i);
  int served = 0;
  auto fn = [&](int x) -> long {
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(10);
    while (std::chrono::steady_clock::now() < until) {
    }
    if (pool.rank() == 2 && ++served == 3050) // past the first chunks: chunks are ~100 tasks by now
      for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
    return long(x) * 3;
  };
  foreman::options opt;
  opt.task_timeout = std::chrono::seconds(2);
  const auto start = std::chrono::steady_clock::now();
  stderr_capture capture(pool.is_master());
  auto results = pool.run(tasks, fn, opt);
  const std::string announced = capture.finish();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!pool.is_master()) return 0;
  const foreman::run_info& info = pool.last_run();
  for (std::size_t i = 0; i < count; ++i)
    if (results[i] != long(i) * 3) check(false, "task " + std::to_string(i) + " correct");
  check(info.lost_workers == std::vector<int>{2}, "exactly worker 2 is lost");
  check_losses(info, announced, 1, foreman::loss_reason::silent, 2.0, 3.0);
  check(!info.losses.empty() && info.losses[0].tasks_held >= 20,
        "the hung worker held a large chunk (" + std::to_string(info.losses.empty() ? 0 : info.losses[0].tasks_held) +
            " tasks)");
  check(seconds < 2.0 + 30.0, "hang guard: the run ends (took " + std::to_string(seconds) + " s)");
  std::printf("fault hang_chunk: %d check(s) failed, run took %.2f s, %zu messages for %zu tasks, lost workers "
              "%zu, retries %zu\n",
              failures, seconds, info.messages, count, info.lost_workers.size(), info.retries);
  return failures == 0 ? 0 : 1;
}

// While the bodies of worker 1's first reply are on their way, which worker 1 sends late
// (injected_body_delay), as a long transfer in pieces would take them: the master's loop goes on
// with the other worker meanwhile (reply_reader.hpp).
//   lost_in_transfer:  worker 2 dies 0.5 s into the run, during the 3 s worker 1's body takes;
//                      its death must be noticed within about 0.1 s, not once the body has come.
//   alive_in_transfer: worker 2 answers a chunk every 0.6 s during two delays of 1 s (one per body
//                      of a chunk of 2) that last longer than the task timeout of 1.5 s together;
//                      it is served meanwhile, and must not be lost.
//   failed_in_transfer: as alive_in_transfer, and the master's receive from worker 2 fails
//                      (injected) at the loop's first poll while worker 1's transfer is in
//                      progress: worker 2 is lost (loss_reason::mpi_error), worker 1's reply is
//                      still taken whole.
int in_transfer(const std::string& mode) {
  const bool death = mode == "lost";
  foreman::master_worker<int, std::vector<char>> pool;
  if (pool.worker_count() != 2) {
    std::printf("fault %s_in_transfer needs exactly 2 workers\n", mode.c_str());
    return 1;
  }
  if (mode == "failed" && pool.is_master()) foreman::detail::injected_failure_in_transfer() = 2;
  static int delays = 0; // of worker 1's first reply: one body (lost_in_transfer), or two
  static std::chrono::milliseconds delay{0};
  delays = death ? 1 : 2;
  delay = std::chrono::milliseconds(death ? 3000 : 1000);
  if (pool.rank() == 1)
    foreman::detail::injected_body_delay() = [] {
      if (delays-- > 0) std::this_thread::sleep_for(delay);
    };
  auto result = [](int x) { return std::vector<char>(std::size_t{64} << 10, static_cast<char>(x)); }; // a body
  auto fn = [&](int x) {
    if (pool.rank() == 2) {
      std::this_thread::sleep_for(std::chrono::milliseconds(death ? 500 : 300));
      if (death) std::raise(SIGKILL);
    }
    if (x == 0) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    return result(x);
  };
  std::vector<int> tasks(death ? 6 : 24);
  for (std::size_t i = 0; i < tasks.size(); ++i) tasks[i] = static_cast<int>(i);
  foreman::options opt;
  opt.schedule = foreman::schedule::round_robin; // worker 2's first chunk holds task 1, or 2 and 3
  opt.chunk_size = death ? 1 : 2;
  opt.task_timeout = std::chrono::milliseconds(death ? 6000 : 1500); // longer than each wait
  const auto start = std::chrono::steady_clock::now();
  stderr_capture capture(pool.is_master());
  auto results = pool.run(tasks, fn, opt);
  const std::string announced = capture.finish();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!pool.is_master()) return 0;
  for (std::size_t i = 0; i < tasks.size(); ++i)
    check(results[i] == result(static_cast<int>(i)), "task " + std::to_string(i) + " correct");
  const foreman::run_info& info = pool.last_run();
  if (mode == "failed") {
    check(info.lost_workers == std::vector<int>{2}, "exactly worker 2 is lost");
    check(info.losses.size() == 1 && info.losses[0].reason == foreman::loss_reason::mpi_error,
          "worker 2 lost for the receive that failed");
    check(foreman::detail::injected_failure_in_transfer() == -1, "the failure was injected");
  } else if (death) {
    check(info.lost_workers == std::vector<int>{2}, "exactly worker 2 is lost");
    // Noticed about 0.5 s after its last sign of life (the chunk it was sent at the start); after
    // the body, it would be 3.2 s.
    check_losses(info, announced, 1, foreman::loss_reason::process_exited, 0.0, 2.0);
    check(!info.losses.empty() && info.losses[0].noticed < 2.5,
          "worker 2's death noticed during the wait for worker 1's body (" +
              std::to_string(info.losses.empty() ? 0.0 : info.losses[0].noticed) + " s into the run)");
  } else {
    check(info.losses.empty(), "no worker lost: answers that wait unread are signs of life");
  }
  check(seconds >= 2.0, "the bodies were delayed (the run took " + std::to_string(seconds) + " s)");
  check(seconds < 30.0, "hang guard: the run ends (took " + std::to_string(seconds) + " s)");
  std::printf("fault %s_in_transfer: %d check(s) failed, run took %.2f s, lost workers %zu\n", mode.c_str(), failures,
              seconds, info.lost_workers.size());
  return failures == 0 ? 0 : 1;
}

// Worker 1's first reply carries 2 results of 64 KiB as bodies; it sends the first, then dies
// (SIGKILL) 0.3 s later instead of sending the second. Its process is watched: it is lost at once,
// not after the task timeout (10 s). The master's receive for the second body is withdrawn; the
// first result stays filed as worker 1's, and the tasks it had not delivered run on worker 2.
int died_in_transfer() {
  foreman::master_worker<int, std::vector<char>> pool;
  if (pool.worker_count() != 2) {
    std::printf("fault died_in_transfer needs exactly 2 workers\n");
    return 1;
  }
  static int bodies = 0;
  if (pool.rank() == 1)
    foreman::detail::injected_body_delay() = [] {
      if (++bodies < 2) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      std::raise(SIGKILL);
    };
  auto result = [](int x) { return std::vector<char>(std::size_t{64} << 10, static_cast<char>(x)); }; // a body
  auto fn = [&](int x) {
    if (pool.rank() == 2) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    return result(x);
  };
  std::vector<int> tasks(8);
  for (std::size_t i = 0; i < tasks.size(); ++i) tasks[i] = static_cast<int>(i);
  foreman::options opt;
  opt.schedule = foreman::schedule::round_robin; // worker 1's chunks: tasks 0 and 2, then 4 and 6
  opt.chunk_size = 2;
  opt.task_timeout = std::chrono::seconds(10); // not what notices the death
  const auto start = std::chrono::steady_clock::now();
  stderr_capture capture(pool.is_master());
  auto results = pool.run(tasks, fn, opt);
  const std::string announced = capture.finish();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!pool.is_master()) return 0;
  const foreman::run_info& info = pool.last_run();
  for (std::size_t i = 0; i < tasks.size(); ++i)
    check(results[i] == result(static_cast<int>(i)), "task " + std::to_string(i) + " correct");
  check(info.lost_workers == std::vector<int>{1}, "exactly worker 1 is lost");
  check_losses(info, announced, 1, foreman::loss_reason::process_exited, 0.0, 2.0);
  check(!info.losses.empty() && info.losses[0].tasks_held == 3,
        "worker 1 held 3 undelivered tasks: the second of its reply, and its next chunk");
  check(info.tasks[0].worker == 1 && info.tasks[0].attempts == 1, "the body that arrived was filed, not run again");
  check(info.tasks[2].worker == 2 && info.tasks[2].attempts == 2, "the body that never came was run again");
  check(seconds < 30.0, "hang guard: the run ends (took " + std::to_string(seconds) + " s)");
  std::printf("fault died_in_transfer: %d check(s) failed, run took %.2f s, lost workers %zu\n", failures, seconds,
              info.lost_workers.size());
  return failures == 0 ? 0 : 1;
}

// No fault: a chunk takes longer than the task timeout, each of its tasks does not. No worker may
// be declared lost (the workers' progress notes between tasks are their signs of life).
int slow_chunk() {
  foreman::master_worker<int, long> pool;
  std::vector<int> tasks(24);
  for (int i = 0; i < 24; ++i) tasks[static_cast<std::size_t>(i)] = i;
  auto fn = [](int x) -> long {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    return long(x) + 7;
  };
  foreman::options opt;
  opt.chunk_size = 8;
  opt.task_timeout = std::chrono::seconds(1);
  auto results = pool.run_outcomes(tasks, fn, opt);
  if (!pool.is_master()) return 0;
  for (std::size_t i = 0; i < tasks.size(); ++i)
    check(results[i].ok() && results[i].value() == long(i) + 7, "task " + std::to_string(i) + " correct");
  check(pool.last_run().losses.empty(), "no worker lost: a chunk may take longer than the task timeout");
  std::printf("fault slow_chunk: %d check(s) failed, run took %.2f s, lost workers %zu\n", failures,
              pool.last_run().wall_seconds, pool.last_run().lost_workers.size());
  return failures == 0 ? 0 : 1;
}

// No fault: worker 1 answers task 0 (20 ms) with a body, then runs task 2 (2 s) from the chunk
// it already holds. The master, which waits for that body once it has read its message, must get
// it before task 2 ends: worker 2's results (four tasks of 20 ms) are filed meanwhile, not behind
// task 2. Under an MPI that moves a long message only inside its sender's MPI calls (MPICH over
// UCX), this holds only if the worker completes the reply's sends before running a long task.
int body_then_long_task() {
  foreman::master_worker<int, std::vector<char>> pool;
  if (pool.worker_count() != 2) {
    std::printf("fault body_then_long_task needs exactly 2 workers\n");
    return 1;
  }
  auto result = [](int x) { return std::vector<char>(std::size_t{64} << 10, static_cast<char>(x)); }; // a body
  auto fn = [&](int x) {
    std::this_thread::sleep_for(std::chrono::milliseconds(x == 2 ? 2000 : 20));
    return result(x);
  };
  std::vector<int> tasks(8);
  for (int i = 0; i < 8; ++i) tasks[static_cast<std::size_t>(i)] = i;
  foreman::options opt;
  opt.schedule = foreman::schedule::round_robin; // worker 1: 0, 2, 4, 6; worker 2: 1, 3, 5, 7
  opt.chunk_size = 1;
  std::vector<int> order; // of the results filed
  const auto start = std::chrono::steady_clock::now();
  double first = 0.0; // when task 0's result was filed
  auto results = pool.run(
      tasks, fn,
      [&](std::size_t index, int, const std::vector<char>&) {
        if (index == 0) first = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        order.push_back(static_cast<int>(index));
      },
      opt);
  if (!pool.is_master()) return 0;
  for (std::size_t i = 0; i < tasks.size(); ++i)
    check(results[i] == result(static_cast<int>(i)), "task " + std::to_string(i) + " correct");
  auto position = [&](int index) { return std::find(order.begin(), order.end(), index) - order.begin(); };
  for (int index : {0, 1, 3, 5, 7})
    check(position(index) < position(2), "task " + std::to_string(index) + "'s result filed before task 2's");
  check(pool.last_run().losses.empty(), "no worker lost");
  std::printf("fault body_then_long_task: %d check(s) failed, task 0's result filed after %.2f s, run took %.2f s\n",
              failures, first, pool.last_run().wall_seconds);
  return failures == 0 ? 0 : 1;
}

} // namespace

int main(int argc, char** argv) {
  boost::mpi::environment env(argc, argv);
  std::string fault = argc > 1 ? argv[1] : "";
  // crash_unwatched: as crash, with the master's process watching off, as for a worker on
  // another host: only the task timeout can notice the death.
  const bool unwatched = fault == "crash_unwatched";
  if (unwatched) {
    ::setenv("FOREMAN_WATCH_PROCESSES", "0", 1); // read by the master when the pool is built
    fault = "crash";
  }
  if (fault == "crash_big") return crash_big();
  if (fault == "crash_shared") return crash_shared();
  if (fault == "late_big") return late_big();
  if (fault.rfind("death_", 0) == 0) return death(fault.substr(6));
  if (fault == "hang_chunk") return hang_chunk();
  if (fault == "slow_chunk") return slow_chunk();
  if (fault == "body_then_long_task") return body_then_long_task();
  if (fault == "died_in_transfer") return died_in_transfer();
  for (const char* mode : {"lost", "alive", "failed"})
    if (fault == std::string(mode) + "_in_transfer") return in_transfer(mode);
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
  stderr_capture capture(pool.is_master());
  auto outcomes = pool.run_outcomes(tasks, fn, opt);
  const std::string announced = capture.finish();
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
    check_losses(info, announced, 2, foreman::loss_reason::process_exited, 0.0, 1.0, 1);
  } else {
    check(info.lost_workers.size() == 1 && info.lost_workers[0] == target, "exactly the faulty worker is lost");
    check(info.tasks[4].attempts == 2, "task 4 ran a second time");
    check(info.tasks[4].worker != target, "task 4's result came from another worker");
    check(info.retries >= 1, "the retry is counted");
    if (fault == "crash" && !unwatched)
      check_losses(info, announced, 1, foreman::loss_reason::process_exited, 0.0, 1.0);
    else // hang, late, crash_unwatched: silent for the task timeout (2 s), noticed within a second of it
      check_losses(info, announced, 1, foreman::loss_reason::silent, 2.0, 3.0);
    check(seconds < 2.0 + 30.0, "hang guard: the run ends (took " + std::to_string(seconds) + " s)");
  }

  // The same pool serves another run on the workers that are left; nothing from the faulty
  // run leaks into it (a late reply must not be filed here).
  auto again = pool.run(tasks, second_fn);
  for (std::size_t i = 0; i < again.size(); ++i) check(again[i] == long(i) + 1, "second run task " + std::to_string(i));
  for (const auto& record : pool.last_run().tasks)
    for (int lost : info.lost_workers) check(record.worker != lost, "a lost worker gets no more tasks");

  std::printf("fault %s: %d check(s) failed, run took %.2f s, lost workers %zu, retries %zu\n", argc > 1 ? argv[1] : "",
              failures, seconds, info.lost_workers.size(), info.retries);
  return failures == 0 ? 0 : 1;
}
