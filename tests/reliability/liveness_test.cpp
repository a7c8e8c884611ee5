// The mechanism under the dead-worker detection (detail/liveness.hpp), on one rank, with child
// processes standing in for workers: a process is watched only when proven to be the one that
// introduced itself, its end is seen without a timeout, and only it is ever signalled.

#include <foreman/detail/liveness.hpp>
#include <foreman/detail/master_loop.hpp>

#include "../catch.hpp"

#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

using foreman::detail::own_identity;
using foreman::detail::process_identity;
using foreman::detail::process_start_time;
using foreman::detail::process_watch;

namespace {

// A child that waits to be killed, and its identity as it would introduce itself.
struct child {
  pid_t pid = -1;
  process_identity identity;
  child() {
    int ready[2];
    REQUIRE(::pipe(ready) == 0);
    pid = ::fork();
    if (pid == 0) {
      // The handlers the test framework and MPI's runtime installed are inherited: back to the
      // default actions, then tell the parent it may signal.
      for (int signal : {SIGTERM, SIGABRT, SIGINT, SIGSEGV}) ::signal(signal, SIG_DFL);
      sigset_t all;
      sigemptyset(&all);
      ::sigprocmask(SIG_SETMASK, &all, nullptr);
      const char byte = 1;
      if (::write(ready[1], &byte, 1) != 1) ::_exit(1);
      for (;;) ::pause();
    }
    char byte = 0;
    REQUIRE(::read(ready[0], &byte, 1) == 1);
    ::close(ready[0]);
    ::close(ready[1]);
    identity = own_identity(); // same boot and pid namespace as this process
    identity.pid = static_cast<std::uint64_t>(pid);
    identity.start_time = process_start_time(identity.pid);
  }
  ~child() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
  // Kills and reaps it; returns the signal that ended it (0 if it was not signalled).
  int reap() {
    int status = 0;
    ::waitpid(pid, &status, 0);
    pid = -1;
    return WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  }
};

bool exits_within(process_watch& watch, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!watch.exited())
    if (std::chrono::steady_clock::now() > deadline)
      return false;
    else
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return true;
}

} // namespace

TEST_CASE("a process's identity is complete and its own", "[liveness]") {
  const process_identity self = own_identity();
  CHECK(self.complete());
  CHECK(self.pid == static_cast<std::uint64_t>(::getpid()));
  CHECK(self.start_time == process_start_time(self.pid));
  CHECK(self.shares_pids_with(self));
  process_identity elsewhere = self;
  elsewhere.boot_id[0] ^= 1; // another kernel, or the same machine after a reboot
  CHECK_FALSE(self.shares_pids_with(elsewhere));
  elsewhere = self;
  elsewhere.pid_ns += 1; // another pid namespace: its pids name other processes here
  CHECK_FALSE(self.shares_pids_with(elsewhere));
  CHECK(process_start_time(0x7ffffff0) == 0); // no such process
}

TEST_CASE("a watched process's end is seen at once, whatever ends it", "[liveness]") {
  for (const bool pidfd : {true, false})
    for (int signal : {SIGKILL, SIGABRT, SIGTERM}) {
      INFO("signal " << signal << (pidfd ? ", pidfd" : ", pid and start time"));
      child c;
      process_watch watch = process_watch::open(c.identity, own_identity(), pidfd);
      REQUIRE(watch.watching());
      // pidfd_open: Linux >= 5.3, no seccomp filter in the way
      CHECK(std::string(watch.mechanism()) == (pidfd ? "pidfd" : "pid and start time"));
      CHECK_FALSE(watch.exited());
      ::kill(c.pid, signal);
      CHECK(exits_within(watch, std::chrono::milliseconds(2000))); // a zombie has ended too
      CHECK(c.reap() == signal);
      CHECK(watch.exited());
    }
}

TEST_CASE("end() kills the watched process, and only a process proven to be it", "[liveness]") {
  const bool pidfd = GENERATE(true, false);
  INFO((pidfd ? "pidfd" : "pid and start time"));
  child c;
  process_watch watch = process_watch::open(c.identity, own_identity(), pidfd);
  REQUIRE(watch.watching());
  CHECK(watch.end());
  CHECK(exits_within(watch, std::chrono::milliseconds(2000)));
  CHECK(c.reap() == SIGKILL);
  CHECK_FALSE(watch.end()); // gone: nothing is signalled again

  // A process whose start time is not the one introduced (its pid was reused): never signalled.
  child other;
  process_identity stale = other.identity;
  stale.start_time -= 1;
  process_watch wrong = process_watch::open(stale, own_identity(), pidfd);
  CHECK(wrong.exited()); // the process that introduced itself is gone
  CHECK_FALSE(wrong.end());
  CHECK(::kill(other.pid, 0) == 0); // the other process still runs

  // Another pid namespace or kernel: not watched at all.
  process_identity foreign = other.identity;
  foreign.boot_id[1] ^= 1;
  process_watch unwatched = process_watch::open(foreign, own_identity(), pidfd);
  CHECK_FALSE(unwatched.watching());
  CHECK_FALSE(unwatched.exited());
  CHECK_FALSE(unwatched.end());
  CHECK(::kill(other.pid, 0) == 0);
}

TEST_CASE("re-sent tasks are listed as ranges", "[liveness]") {
  using foreman::detail::index_ranges;
  CHECK(index_ranges({12, 4, 8, 7, 9}) == "4, 7-9, 12");
  CHECK(index_ranges({5}) == "5");
  CHECK(index_ranges({1, 3, 5, 7}, 2) == "1, 3, and 2 more ranges");
}
