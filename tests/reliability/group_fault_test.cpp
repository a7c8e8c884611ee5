// Faults in a grouped pool (foreman::hierarchy::groups(2) at 7 ranks: sub-masters 1 and 4, each
// with two workers), with default options (no task timeout). Run as `group_fault_test <fault>`
// under `mpirun --enable-recovery`:
//   worker_dies      worker 5 SIGKILLs itself at its third task: its sub-master (4) notices the
//                    death, runs its tasks on worker 6, and the master's report names it lost
//   sub_master_dies  sub-master 4 SIGKILLs itself 0.4 s into the run (a thread of its own: a
//                    sub-master runs no task): the master notices, its batches run on the group of 1 (ranks 1-3),
//                    and 4, 5 and 6 are reported lost (5 and 6 are cut off with it); the next run
//                    goes to the group left; the master's lines name "sub-master 4" and its
//                    "batch(es)" (the top layer's tasks), not a "worker 4" and its "task(s)"
//   group_dies       workers 5 and 6, the whole of sub-master 4's group, SIGKILL themselves at
//                    their third task: the tasks their group could not run go back to the master
//                    and run on ranks 2-3, none fails, and 4 is not lost; the next run goes there
//   all_workers_die  every worker (2, 3, 5, 6) SIGKILLs itself at its third task: the run ends, the
//                    tasks that ran are right and every other one fails as foreman::worker_lost
//                    ("no live worker is left to run it"), as in a flat pool; so does the next run
//   worker_hangs     worker 5 hangs at its third task, with options::task_timeout 2 s: its
//                    sub-master (4) declares it lost when it has been silent that long, runs its
//                    tasks on worker 6, and the master's report names 5 lost (silent), not 4
//                    (which sends the master progress notes meanwhile: keep_alive.hpp); it is
//                    killed at MPI_Finalize
//   sub_master_hangs sub-master 4 stops (SIGSTOP) 0.3 s into a run of 60 tasks of 50 ms, with
//                    options::task_timeout 1 s and max_attempts 2: the master declares it lost
//                    once it has been silent for task_timeout + 0.1 s, as a worker (checked: under
//                    2 s of silence), its batches run on the group of 1, and 4, 5 and 6 are
//                    reported lost; the next run goes to the group left
//   poison           task 299 SIGKILLs the worker that runs it, with options::max_attempts 1: it
//                    alone fails, as foreman::worker_lost, its message and record naming that
//                    worker by its rank in the whole pool (not its rank inside its group), and the
//                    line its sub-master prints names the worker so and the task as 299 (not as
//                    its group's job numbers it: below 299, the other group having had batches)
// Judged by the master's summary line ("group fault <fault>: 0 check(s) failed").

#include "fault_checks.hpp"

#include <foreman/foreman.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

// Pools that may group their workers (the grouped code is compiled only for these).
template <class Task, class Result>
using grouped_pool = foreman::master_worker<Task, Result, foreman::hierarchical_dispatch>;

namespace {

using fault_checks::check;
using fault_checks::failures;

bool lost(const foreman::run_info& info, int rank) {
  for (int r : info.lost_workers)
    if (r == rank) return true;
  return false;
}

} // namespace

int main(int argc, char** argv) {
  boost::mpi::environment env(argc, argv);
  const std::string fault = argc > 1 ? argv[1] : "";
  grouped_pool<int, long> pool(boost::mpi::communicator(), foreman::hierarchy::groups(2));
  if (pool.sub_masters() != std::vector<int>{1, 4}) {
    if (pool.is_master()) std::printf("group fault %s needs 7 ranks (sub-masters 1 and 4)\n", fault.c_str());
    return 1;
  }
  // sub_master_hangs: few tasks, in small batches.
  const int n = fault == "sub_master_hangs" ? 60 : 300;
  const auto task_time = std::chrono::milliseconds(fault == "sub_master_hangs" ? 50 : 10);
  std::vector<int> tasks(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) tasks[static_cast<std::size_t>(i)] = i;
  int done = 0; // tasks this rank ran
  auto fn = [&](int x) -> long {
    std::this_thread::sleep_for(task_time);
    const int r = pool.rank();
    const bool dies = (fault == "worker_dies" && r == 5) || (fault == "group_dies" && (r == 5 || r == 6)) ||
                      (fault == "all_workers_die" && r != 1 && r != 4);
    if (dies && ++done == 3) std::raise(SIGKILL);
    if (fault == "worker_hangs" && r == 5 && ++done == 3)
      for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
    if (fault == "poison" && x == 299) std::raise(SIGKILL);
    return long(x) * x;
  };
  if (fault == "sub_master_dies" && pool.rank() == 4)
    std::thread([] {
      std::this_thread::sleep_for(std::chrono::milliseconds(400));
      std::raise(SIGKILL);
    }).detach();

  if (fault == "sub_master_hangs" && pool.rank() == 4)
    std::thread([] {
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      std::raise(SIGSTOP); // the whole process: silent, not ended
    }).detach();

  foreman::options opt;
  if (fault == "poison") opt.max_attempts = 1;
  if (fault == "worker_hangs") opt.task_timeout = std::chrono::seconds(2);
  if (fault == "sub_master_hangs") {
    opt.task_timeout = std::chrono::seconds(1);
    opt.max_attempts = 2;
  }
  // poison: what a sub-master prints goes to a file, read back after the run; sub_master_dies:
  // what the master prints.
  const bool sub_master = pool.rank() == 1 || pool.rank() == 4;
  const std::string log = "group_fault_" + fault + "." + std::to_string(::getpid()) + ".log";
  int saved_stderr = -1;
  if ((fault == "poison" && sub_master) || (fault == "sub_master_dies" && pool.is_master())) {
    std::fflush(stderr);
    saved_stderr = ::dup(2);
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(fd, 2);
    ::close(fd);
  }
  const auto outcomes = pool.run_outcomes(tasks, fn, opt);
  if (saved_stderr >= 0) {
    std::fflush(stderr);
    ::dup2(saved_stderr, 2);
    ::close(saved_stderr);
    std::ifstream in(log);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::remove(log.c_str());
    std::fputs(text.c_str(), stderr); // as it would have been
    // The master's lines about the top layer name a sub-master as such, and what it held as
    // batches (the top job's tasks), never as "worker 4" and "tasks".
    if (fault == "sub_master_dies") {
      check(text.find("foreman: sub-master 4 lost: its process (pid ") != std::string::npos &&
                text.find(" batch(es)", text.find("foreman: sub-master 4 lost: ")) != std::string::npos,
            "the master names sub-master 4 lost, and what it held as batches: " + text);
      check(text.find(" batch(es) sent again, to sub-master 1: ") != std::string::npos,
            "the master names the batches sent again to sub-master 1: " + text);
      check(text.find("worker 4") == std::string::npos && text.find("task(s)") == std::string::npos,
            "the master calls no sub-master a worker, and no batch a task: " + text);
    }
    // Only the sub-master whose worker ran task 299 lost one.
    const std::size_t at = text.find(" lost: ");
    if (fault == "poison" && at != std::string::npos) {
      const std::size_t line = text.rfind('\n', at) == std::string::npos ? 0 : text.rfind('\n', at) + 1;
      const std::string lost_line = text.substr(line, text.find('\n', at) - line);
      const int w = pool.rank() == 1 ? 2 : 5; // its workers are w and w + 1
      check(lost_line.find("worker " + std::to_string(w) + " lost") != std::string::npos ||
                lost_line.find("worker " + std::to_string(w + 1) + " lost") != std::string::npos,
            "sub-master " + std::to_string(pool.rank()) + " names its lost worker by its rank: " + lost_line);
      const std::size_t held = lost_line.find("it held");
      check(held != std::string::npos && lost_line.find("299", held) != std::string::npos,
            "sub-master " + std::to_string(pool.rank()) + " names the task it lost as 299: " + lost_line);
    }
  }
  if (pool.is_master() && fault == "poison") {
    const foreman::run_info& info = pool.last_run();
    check(outcomes.size() == tasks.size(), "one outcome per task");
    std::size_t right = 0;
    for (std::size_t i = 0; i < outcomes.size(); ++i) right += outcomes[i].ok() && outcomes[i].value() == long(i * i);
    check(right == tasks.size() - 1, std::to_string(right) + " of the 299 other results right");
    check(info.failures == 1, "one task failed");
    if (!outcomes[299].ok()) {
      const foreman::task_failure& f = outcomes[299].failure();
      check(f.type == "foreman::worker_lost", "task 299 failed as foreman::worker_lost, not " + f.type);
      check(f.worker == 2 || f.worker == 3 || f.worker == 5 || f.worker == 6,
            "task 299's failure names worker " + std::to_string(f.worker) + ", not a computing rank");
      check(f.message.find("worker " + std::to_string(f.worker) + " was lost while running this task") !=
                std::string::npos,
            "task 299's message names worker " + std::to_string(f.worker) + ": " + f.message);
      check(info.tasks[299].worker == f.worker, "task 299's record names the same worker");
      check(lost(info, f.worker), "that worker reported lost");
    } else {
      check(false, "task 299 failed");
    }
  } else if (pool.is_master() && fault == "all_workers_die") {
    const foreman::run_info& info = pool.last_run();
    check(outcomes.size() == tasks.size(), "one outcome per task");
    std::size_t right = 0, lost_tasks = 0;
    for (std::size_t i = 0; i < outcomes.size(); ++i) {
      if (outcomes[i].ok()) {
        right += outcomes[i].value() == long(i * i);
        continue;
      }
      const foreman::task_failure& f = outcomes[i].failure();
      lost_tasks += f.type == "foreman::worker_lost" && f.message == "no live worker is left to run it";
    }
    // Each of the 4 workers answered at most its first 2 tasks.
    check(right <= 8, std::to_string(right) + " results, where the workers ran at most 8 tasks");
    check(right + lost_tasks == tasks.size(), std::to_string(right) + " results right and " +
                                                  std::to_string(lost_tasks) + " tasks failed for want of a worker");
    check(info.failures == lost_tasks, "the failures are those tasks");
    for (int w : {2, 3, 5, 6}) check(lost(info, w), "worker " + std::to_string(w) + " reported lost");
    check(!lost(info, 1) && !lost(info, 4), "the sub-masters not lost");
  } else if (pool.is_master()) {
    const foreman::run_info& info = pool.last_run();
    check(outcomes.size() == tasks.size(), "one outcome per task");
    std::size_t right = 0;
    for (std::size_t i = 0; i < outcomes.size(); ++i) right += outcomes[i].ok() && outcomes[i].value() == long(i * i);
    check(right == tasks.size(), std::to_string(right) + " of " + std::to_string(n) + " results right");
    check(info.failures == 0, "no task failed");
    if (fault == "group_dies") {
      check(lost(info, 5) && lost(info, 6), "workers 5 and 6 reported lost");
      check(!lost(info, 4) && !lost(info, 1) && !lost(info, 2) && !lost(info, 3), "no other rank lost");
      for (const auto& l : info.losses)
        check(l.reason == foreman::loss_reason::process_exited,
              "worker " + std::to_string(l.worker) + "'s loss: its process exited");
      for (std::size_t i = 0; i < info.tasks.size(); ++i)
        if (info.tasks[i].worker != 2 && info.tasks[i].worker != 3 && info.tasks[i].worker != 5 &&
            info.tasks[i].worker != 6)
          check(false, "task " + std::to_string(i) + " filed as run by rank " + std::to_string(info.tasks[i].worker));
    } else if (fault == "worker_hangs") {
      check(lost(info, 5), "worker 5 reported lost");
      check(!lost(info, 4) && !lost(info, 6) && !lost(info, 1) && !lost(info, 2) && !lost(info, 3),
            "no other rank lost");
      check(info.losses.size() == 1 && info.losses[0].worker == 5 &&
                info.losses[0].reason == foreman::loss_reason::silent,
            "worker 5's loss: silent past the task timeout");
    } else if (fault == "worker_dies") {
      check(lost(info, 5), "worker 5 reported lost");
      check(!lost(info, 4) && !lost(info, 6) && !lost(info, 1), "no other rank lost");
      check(!info.losses.empty() && info.losses[0].worker == 5 &&
                info.losses[0].reason == foreman::loss_reason::process_exited,
            "worker 5's loss: its process exited");
      // It died in its third task: at most the two before were answered by it.
      std::size_t by_five = 0;
      for (const auto& r : info.tasks) by_five += r.worker == 5 ? 1 : 0;
      check(by_five <= 2, std::to_string(by_five) + " tasks filed as run by worker 5, which ran 2");
    } else {
      check(lost(info, 4) && lost(info, 5) && lost(info, 6), "sub-master 4 and its workers 5, 6 reported lost");
      check(!lost(info, 1) && !lost(info, 2) && !lost(info, 3), "ranks 1-3 not lost");
      // Dead, its process is seen to end; stopped, it is silent past the task timeout.
      const auto reason =
          fault == "sub_master_hangs" ? foreman::loss_reason::silent : foreman::loss_reason::process_exited;
      bool sub_loss = false;
      for (const auto& l : info.losses) {
        if (l.worker != 4 || l.reason != reason) continue;
        sub_loss = true;
        // Stopped, it is lost once silent for task_timeout + 0.1 s, as a worker is: it sent progress
        // notes while its group ran its batch (keep_alive.hpp). (When only its batch's deadline told,
        // task_timeout x max_attempts x (batch / workers + 1), it was silent for 6 s here.)
        if (fault == "sub_master_hangs")
          check(l.silent_for >= 1.1 && l.silent_for < 1.1 + 0.9,
                "sub-master 4 lost after " + std::to_string(l.silent_for) +
                    " s of silence: task_timeout 1 s + 0.1 s expected (0.9 s allowed for a busy machine)");
      }
      check(sub_loss, "sub-master 4's loss: " + std::string(fault == "sub_master_hangs" ? "silent" : "its process exited"));
      check(info.retries > 0, "its batches sent again");
    }
  }
  // The next run: whatever is left serves it.
  const auto again = pool.run_outcomes(tasks, [](int x) { return long(x) + 1; });
  if (pool.is_master()) {
    std::size_t right = 0, lost_tasks = 0;
    for (std::size_t i = 0; i < again.size(); ++i) {
      right += again[i].ok() && again[i].value() == long(i) + 1;
      lost_tasks += !again[i].ok() && again[i].failure().type == "foreman::worker_lost";
    }
    if (fault == "all_workers_die")
      check(lost_tasks == tasks.size(), "the next run: " + std::to_string(lost_tasks) + " failed, worker lost");
    else
      check(right == tasks.size(), "the next run: " + std::to_string(right) + " of " + std::to_string(n) + " right");
    for (const auto& r : pool.last_run().tasks) {
      if ((fault == "sub_master_dies" || fault == "sub_master_hangs" || fault == "group_dies") &&
          (r.worker < 2 || r.worker > 3))
        check(false, "a task of the next run off ranks 2-3");
      if (fault == "worker_hangs" && r.worker == 5) check(false, "a task of the next run on the hung worker 5");
    }
    std::printf("group fault %s: %d check(s) failed\n", fault.c_str(), failures);
  }
  return failures == 0 ? 0 : 1;
}
