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
//   worker_exits, worker_aborts
//                    as worker_dies, by exit(1) and abort(): noticed within 1 s of its last sign of
//                    life by its sub-master, which watches its process (fault_test death_*)
//   worker_late      worker 5 answers its third task 4 s late, with options::task_timeout 2 s: its
//                    sub-master declares it lost after 2-3 s of silence, runs the task on worker
//                    6, and drops the late answer; the next run is right and goes elsewhere
//   worker_hangs_in_chunk
//                    100,000 tasks of 10 us in automatic chunks, task_timeout 2 s: worker 5 hangs
//                    at its 3,050th task, inside a chunk of tens of tasks; it must be lost after
//                    2-3 s of silence (fault_test hang_chunk), not chunk size x 2 s
//   shared_worker_dies
//                    the tasks read a shared value of 32 MiB that the sub-masters relay; worker 5
//                    SIGKILLs itself before the run: its sub-master's sends to it must not stall
//                    the group, in that run or the next (fault_test crash_shared)
//   slow_chunk       no fault: 128 tasks of 0.3 s in chunks of 4 (1.2 s a chunk, and a batch of 8
//                    as long) with task_timeout 1 s: neither a worker nor a sub-master may be lost
//                    (the workers' notes between tasks, the sub-masters' while their group runs)
// After each fault the pool runs again (run_outcomes(): right, and off the ranks lost), then serves
// a job of 40 tasks, flat on every rank left, sub-masters included: every result right, none from
// a rank lost in the faulty run (printed: "the job's tasks by rank: 1:16 4:24" when only the
// sub-masters are left). Judged by the master's summary line ("group fault <fault>: 0 check(s)
// failed").

#include "fault_checks.hpp"

#include <foreman/foreman.hpp>

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
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
  // sub_master_hangs: few tasks, in small batches; worker_hangs_in_chunk: many short ones, in
  // automatic chunks; slow_chunk: enough for batches of 8 (a chunk of 4 on each worker).
  const bool in_chunk = fault == "worker_hangs_in_chunk";
  const int n = fault == "sub_master_hangs" ? 60 : in_chunk ? 100000 : fault == "slow_chunk" ? 128 : 300;
  const auto task_time = std::chrono::microseconds(fault == "sub_master_hangs" ? 50000
                                                   : in_chunk                  ? 10
                                                   : fault == "slow_chunk"     ? 300000
                                                                               : 10000);
  std::vector<int> tasks(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) tasks[static_cast<std::size_t>(i)] = i;
  // worker_dies, worker_exits, worker_aborts: worker 5 ends at its third task, three ways.
  const bool worker_death = fault == "worker_dies" || fault == "worker_exits" || fault == "worker_aborts";
  int done = 0; // tasks this rank ran
  auto compute = [&](int x) -> long {
    if (in_chunk) { // 10 us of work, not a sleep (which takes longer than asked)
      const auto until = std::chrono::steady_clock::now() + task_time;
      while (std::chrono::steady_clock::now() < until) {
      }
    } else {
      std::this_thread::sleep_for(task_time);
    }
    const int r = pool.rank();
    const bool dies = (worker_death && r == 5) || (fault == "group_dies" && (r == 5 || r == 6)) ||
                      (fault == "all_workers_die" && r != 1 && r != 4);
    if (dies && ++done == 3) {
      if (fault == "worker_exits") std::exit(1);
      if (fault == "worker_aborts") {
        const rlimit no_core{0, 0};
        ::setrlimit(RLIMIT_CORE, &no_core); // abort() without writing a core file
        std::abort();
      }
      std::raise(SIGKILL);
    }
    if (fault == "worker_hangs" && r == 5 && ++done == 3)
      for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
    // Past its first chunks: automatic chunks hold ~100 tasks by then.
    if (in_chunk && r == 5 && ++done == 3050)
      for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
    if (fault == "worker_late" && r == 5 && ++done == 3) std::this_thread::sleep_for(std::chrono::seconds(4));
    if (fault == "poison" && x == 299) std::raise(SIGKILL);
    return long(x) * x;
  };
  // shared_worker_dies: the tasks read a shared value of 32 MiB (relayed by the sub-masters),
  // whose first and last elements make x * x; worker 5 SIGKILLs itself before the run, so its
  // sub-master's sends of the value (and of its tasks) to it never complete.
  std::vector<long> table;
  if (fault == "shared_worker_dies" && pool.is_master())
    for (long i = 0; i < (4l << 20); ++i) table.push_back(i);
  auto shared_fn = foreman::with_shared(std::cref(table), [](int x, const std::vector<long>& t) {
    return t.at(static_cast<std::size_t>(x)) * x + (t.back() - ((4l << 20) - 1));
  });
  if (fault == "shared_worker_dies" && pool.rank() == 5) std::raise(SIGKILL);
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
  if (fault == "worker_hangs" || fault == "worker_late" || in_chunk || fault == "shared_worker_dies")
    opt.task_timeout = std::chrono::seconds(2);
  if (fault == "slow_chunk") { // a chunk of 1.2 s, a batch as long: neither its worker nor its sub-master lost
    opt.chunk_size = 4;
    opt.task_timeout = std::chrono::seconds(1);
  }
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
  const auto outcomes =
      fault == "shared_worker_dies" ? pool.run_outcomes(tasks, shared_fn, opt) : pool.run_outcomes(tasks, compute, opt);
  const std::vector<int> lost_first = pool.is_master() ? pool.last_run().lost_workers : std::vector<int>{};
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
    } else if (fault == "worker_hangs" || fault == "worker_late" || in_chunk) {
      check(lost(info, 5), "worker 5 reported lost");
      check(!lost(info, 4) && !lost(info, 6) && !lost(info, 1) && !lost(info, 2) && !lost(info, 3),
            "no other rank lost");
      check(info.losses.size() == 1 && info.losses[0].worker == 5 &&
                info.losses[0].reason == foreman::loss_reason::silent,
            "worker 5's loss: silent past the task timeout");
      // Its sub-master notices it within a second of the task timeout (2 s), as a flat master
      // does (fault_test hang, late, hang_chunk): in a chunk of ~100 tasks, not 100 x 2 s later.
      if (fault != "worker_hangs" && info.losses.size() == 1) {
        const foreman::worker_loss& l = info.losses[0];
        check(l.silent_for >= 2.0 && l.silent_for <= 3.0,
              "worker 5 lost after " + std::to_string(l.silent_for) + " s of silence: 2 .. 3 s expected");
        if (in_chunk)
          check(l.tasks_held >= 20, "worker 5 held a large chunk (" + std::to_string(l.tasks_held) + " tasks)");
      }
    } else if (worker_death || fault == "shared_worker_dies") {
      check(lost(info, 5), "worker 5 reported lost");
      check(!lost(info, 4) && !lost(info, 6) && !lost(info, 1), "no other rank lost");
      check(info.losses.size() == 1 && info.losses[0].worker == 5 &&
                info.losses[0].reason == foreman::loss_reason::process_exited,
            "worker 5's loss: its process exited");
      // Watched by its sub-master: noticed within a second of its last sign of life (the value and
      // tasks it was sent, for shared_worker_dies: 2 s for their transfer).
      if (info.losses.size() == 1)
        check(info.losses[0].silent_for <= (worker_death ? 1.0 : 2.0),
              "worker 5 lost " + std::to_string(info.losses[0].silent_for) + " s after its last sign of life");
      // It died in its third task: at most the two before were answered by it.
      std::size_t by_five = 0;
      for (const auto& r : info.tasks) by_five += r.worker == 5 ? 1 : 0;
      check(by_five <= 2, std::to_string(by_five) + " tasks filed as run by worker 5, which ran 2");
    } else if (fault == "slow_chunk") {
      check(info.losses.empty() && info.lost_workers.empty(),
            "nobody lost: a chunk and a batch may take longer than the task timeout");
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
      check(sub_loss,
            "sub-master 4's loss: " + std::string(fault == "sub_master_hangs" ? "silent" : "its process exited"));
      check(info.retries > 0, "its batches sent again");
    }
  }
  // The shared value's next run: sent to the live workers only (the dead one is sent nothing).
  if (fault == "shared_worker_dies") {
    const auto again = pool.run_outcomes(tasks, shared_fn, opt);
    if (pool.is_master()) {
      std::size_t right = 0;
      for (std::size_t i = 0; i < again.size(); ++i) right += again[i].ok() && again[i].value() == long(i * i);
      check(right == tasks.size(), "the shared value's second run: " + std::to_string(right) + " right");
      check(pool.last_run().losses.empty(), "nobody lost in the shared value's second run");
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
      if ((fault == "worker_hangs" || fault == "worker_late" || in_chunk || worker_death ||
           fault == "shared_worker_dies") &&
          r.worker == 5)
        check(false, "a task of the next run on the lost worker 5");
    }
  }
  // A job on the same pool: served flat by every rank left, sub-masters included (api.md,
  // "Grouped pools"), never by a rank lost in the faulty run.
  auto job = pool.start([](int x) { return long(x) * 2; });
  if (job.is_master()) {
    constexpr int submitted = 40;
    for (int i = 0; i < submitted; ++i) job.submit(i);
    std::size_t right = 0;
    std::vector<int> served(static_cast<std::size_t>(pool.communicator().size()), 0); // tasks per rank
    for (int i = 0; i < submitted; ++i) {
      const foreman::completion<long> c = job.next();
      if (c.worker >= 0 && c.worker < pool.communicator().size()) ++served[static_cast<std::size_t>(c.worker)];
      right += c.result.ok() && c.result.value() == 2 * static_cast<long>(c.ticket);
      if (std::find(lost_first.begin(), lost_first.end(), c.worker) != lost_first.end() || c.worker < 1)
        check(false, "job task " + std::to_string(c.ticket) + " ran on rank " + std::to_string(c.worker) +
                         ", lost before or the master");
    }
    job.close();
    std::string by;
    for (std::size_t r = 0; r < served.size(); ++r)
      if (served[r] > 0) by += " " + std::to_string(r) + ":" + std::to_string(served[r]);
    std::fprintf(stderr, "the job's tasks by rank:%s\n", by.c_str());
    check(right == submitted, "the job: " + std::to_string(right) + " of 40 right");
    std::printf("group fault %s: %d check(s) failed\n", fault.c_str(), failures);
  }
  return failures == 0 ? 0 : 1;
}
