// The master's account of lost workers without MPI (loss_ledger.hpp): what a loss records in
// run_info, how each kind of loss is announced, the set-up failures quoted when no worker is left,
// and what becomes of the tasks a lost worker held. This program links no MPI: it runs without
// mpirun.
#include "catch.hpp"

#include <foreman/detail/loss_ledger.hpp>

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

using foreman::loss_reason;
using foreman::run_info;
using foreman::detail::held_fate;
using foreman::detail::loss_facts;
using foreman::detail::loss_ledger;

namespace {

loss_facts facts(int worker, loss_reason reason, std::vector<std::size_t> held = {}) {
  loss_facts f;
  f.worker = worker;
  f.peer = "worker " + std::to_string(worker);
  f.reason = reason;
  f.noticed = 2.5;
  f.silent = 1.25;
  f.held = std::move(held);
  return f;
}

} // namespace

TEST_CASE("a loss is recorded in run_info, in the order noticed", "[loss_ledger]") {
  run_info info;
  loss_ledger ledger(info, 1.0, 3, "task(s)", "tasks");
  ledger.lost(facts(3, loss_reason::silent, {7, 8, 9}));
  auto f = facts(1, loss_reason::process_exited);
  f.noticed = 4.0;
  f.silent = 0.01;
  ledger.lost(f);
  REQUIRE(info.lost_workers == std::vector<int>{3, 1});
  REQUIRE(info.losses.size() == 2);
  CHECK(info.losses[0].worker == 3);
  CHECK(info.losses[0].reason == loss_reason::silent);
  CHECK(info.losses[0].noticed == 2.5);
  CHECK(info.losses[0].silent_for == 1.25);
  CHECK(info.losses[0].tasks_held == 3);
  CHECK(info.losses[0].message.empty());
  CHECK(info.losses[1].worker == 1);
  CHECK(info.losses[1].reason == loss_reason::process_exited);
  CHECK(info.losses[1].noticed == 4.0);
  CHECK(info.losses[1].tasks_held == 0);
}

TEST_CASE("each kind of loss says why, what the worker held, and that it gets nothing more", "[loss_ledger]") {
  run_info info;
  loss_ledger ledger(info, 1.5, 3, "task(s)", "tasks");

  auto exited = facts(2, loss_reason::process_exited, {4, 5, 6, 10});
  exited.pid = 4242;
  CHECK(ledger.lost(exited) == "worker 2 lost: its process (pid 4242) has ended; last sign of life 1.25 s ago; it "
                               "held 4 task(s): 4-6, 10; it gets no more tasks");

  auto broken = facts(3, loss_reason::mpi_error);
  broken.detail = std::string(150, 'x');
  CHECK(ledger.lost(broken) == "worker 3 lost: MPI reported a failure on its connection (" + std::string(100, 'x') +
                                   "); it held 0 task(s); it gets no more tasks");

  CHECK(ledger.lost(facts(4, loss_reason::silent, {1})) ==
        "worker 4 lost: nothing heard from it for 1.25 s (task timeout 1.5 s); it held 1 task(s): 1; it gets no "
        "more tasks");

  // A transfer's deadline: the detail says why, not the task timeout.
  auto transfer = facts(5, loss_reason::silent, {2});
  transfer.detail = ledger.transfer_stopped(3.5, 2.3);
  CHECK(ledger.lost(transfer) ==
        "worker 5 lost: the transfer of its reply stopped: nothing of it arrived for 3.50 s (2.30 s allowed: task "
        "timeout 1.5 s + 0.1 s + the piece awaited at 1 MiB/s); it held 1 task(s): 2; it gets no more tasks");

  // Silent from when what it was sent could have arrived (a slow link), delivered or not.
  auto awaited = facts(6, loss_reason::silent, {3});
  awaited.awaited = true;
  awaited.awaited_for = 1.75;
  awaited.awaited_bytes = 1048641;
  CHECK(ledger.lost(awaited) ==
        "worker 6 lost: nothing heard from it for 1.75 s after what it was sent (1048641 bytes, not all of it "
        "delivered) could have arrived at 1 MiB/s (task timeout 1.5 s); it held 1 task(s): 3; it gets no more tasks");
  awaited.worker = 7;
  awaited.peer = "worker 7";
  awaited.delivered = true;
  CHECK(ledger.lost(awaited).find("(1048641 bytes, delivered)") != std::string::npos);
  CHECK(info.lost_workers == std::vector<int>{2, 3, 4, 5, 6, 7});
}

TEST_CASE("the top layer of a grouped pool speaks of sub-masters and batches", "[loss_ledger]") {
  run_info info;
  loss_ledger ledger(info, 2.0, 2, "batch(es)", "batches");
  auto f = facts(4, loss_reason::silent, {0, 1});
  f.peer = "sub-master 4";
  CHECK(ledger.lost(f) == "sub-master 4 lost: nothing heard from it for 1.25 s (task timeout 2 s); it held 2 "
                          "batch(es): 0-1; it gets no more batches");
  CHECK(ledger.resent("sub-master 1", {{0, 2}, {1, 1}}) ==
        "2 batch(es) sent again, to sub-master 1: 0-1 (attempt 2 of 2: 0)");
}

TEST_CASE("a worker that could not set up is quoted, and the first three are named when none is left",
          "[loss_ledger]") {
  run_info info;
  loss_ledger ledger(info, 0.0, 3, "task(s)", "tasks");
  CHECK(ledger.no_worker_left().type == std::string(foreman::detail::worker_lost_type));
  CHECK(ledger.no_worker_left().message == foreman::detail::no_live_worker_message);

  ledger.set_up_failed(2, "worker 2", "std::runtime_error", "no such file");
  CHECK(ledger.lost(facts(2, loss_reason::initializer_failed, {0, 1, 2})) ==
        "worker 2 could not set up for this run (std::runtime_error: no such file); it held 3 task(s): 0-2; it gets "
        "no more tasks in this run, and sets up again in the next");
  CHECK(info.losses.back().message == "std::runtime_error: no such file");
  CHECK(ledger.no_worker_left().type == std::string(foreman::initializer_error_type));
  CHECK(ledger.no_worker_left().message ==
        "not run: no worker is left to run it: the set-up for this run failed on worker 2 (std::runtime_error: no "
        "such file)");

  for (int w = 3; w <= 6; ++w) {
    ledger.set_up_failed(w, "worker " + std::to_string(w), "E", std::string(400, char('a' + w)));
    ledger.lost(facts(w, loss_reason::initializer_failed));
  }
  CHECK(ledger.set_up_failures() == std::vector<int>{2, 3, 4, 5, 6});
  const std::string why = ledger.no_worker_left().message;
  CHECK(why.find("worker 3 (E: " + std::string(297, 'd') + ")") != std::string::npos); // cut at 300
  CHECK(why.find("worker 4 (E: ") != std::string::npos);
  CHECK(why.find("worker 5") == std::string::npos);
  CHECK(why.size() > 9);
  CHECK(why.substr(why.size() - 11) == " and others");
  CHECK(info.losses.back().message.size() == 403); // run_info keeps the whole text

  // The last worker lost went silent: no live worker, not a set-up failure.
  ledger.lost(facts(7, loss_reason::silent));
  CHECK(ledger.no_worker_left().type == std::string(foreman::detail::worker_lost_type));
}

TEST_CASE("a lost worker's tasks: only the oldest chunk's are charged, the last attempt fails", "[loss_ledger]") {
  run_info info;
  loss_ledger ledger(info, 1.0, 3, "task(s)", "tasks");
  CHECK(ledger.fate(false, false, 1) == held_fate::requeued); // queued behind the running one
  CHECK(ledger.fate(false, false, 3) == held_fate::requeued);
  CHECK(ledger.fate(true, true, 3) == held_fate::requeued); // it never set up: ran nothing
  CHECK(info.retries == 0);
  CHECK(ledger.fate(true, false, 1) == held_fate::retried);
  CHECK(ledger.fate(true, false, 2) == held_fate::retried);
  CHECK(info.retries == 2);
  CHECK(ledger.fate(true, false, 3) == held_fate::failed);
  CHECK(info.retries == 2);
  CHECK(ledger.last_attempt_lost("worker 5") == "worker 5 was lost while running this task, the last of 3 attempts");

  loss_ledger once(info, 1.0, 0, "task(s)", "tasks"); // max_attempts 0 counts as 1
  CHECK(once.max_attempts() == 1);
  CHECK(once.fate(true, false, 1) == held_fate::failed);
}

TEST_CASE("tasks sent again are named in ranges, grouped by attempt", "[loss_ledger]") {
  run_info info;
  loss_ledger ledger(info, 1.0, 3, "task(s)", "tasks");
  CHECK(ledger.resent("worker 2", {{5, 2}, {6, 2}, {7, 1}, {9, 3}}) ==
        "4 task(s) sent again, to worker 2: 5-7, 9 (attempt 2 of 3: 5-6; attempt 3 of 3: 9)");
  CHECK(ledger.resent("worker 1", {{8, 1}, {3, 1}}) == "2 task(s) sent again, to worker 1: 3, 8");
}

TEST_CASE("sends that may still read the caller's memory are named", "[loss_ledger]") {
  CHECK(loss_ledger::unfinished_sends("worker 2", false, false).empty());
  CHECK(loss_ledger::unfinished_sends("worker 2", true, false) ==
        "the sending of tasks' bodies to worker 2 had not completed: if it still runs, MPI may read them from their "
        "own memory until that send completes, after the run too: keep them alive and unchanged until the program "
        "ends (docs/reliability.md, \"Lost while receiving\")");
  CHECK(loss_ledger::unfinished_sends("worker 3", true, true)
            .rfind("the sending of tasks' bodies and the shared value given by std::cref to worker 3 had not", 0) == 0);
  CHECK(loss_ledger::unfinished_sends("worker 3", false, true)
            .rfind("the sending of the shared value given by std::cref to worker 3 had not", 0) == 0);
}
