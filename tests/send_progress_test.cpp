// The worker's send thread (detail/send_progress.hpp, options::send_thread): while the user's
// function runs, the previous reply's sends move without the worker's own thread calling MPI, so
// a long task starts while its worker's last large result is still unsent. Run at 1-4 ranks under
// the MPI thread level tests/CMakeLists.txt asks for (--mpi-threads, tests/mpi_main.cpp), and each
// case checks what that level allows: below SERIALIZED, or with the option off, the worker still
// completes its last reply's sends before a long task.
//
// Times taken on two ranks are compared through steady_clock, which the processes of one host
// share (CLOCK_MONOTONIC): these tests run on one host. No assertion is on a duration: each is on
// an order of events around a pause of the master's long enough to be unmistakable.
#include "catch.hpp"
#include "test_support.hpp"

#include <foreman/detail/send_progress.hpp>
#include <foreman/foreman.hpp>

#include <boost/mpi/communicator.hpp>

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;
using bytes = std::vector<char>;
using foreman::send_thread_policy;

int provided_level() {
  int provided = MPI_THREAD_SINGLE;
  MPI_Query_thread(&provided);
  return provided;
}

// Whether the send thread runs under `policy` at this process's thread level, as the options
// document it (not computed with foreman's own function: this is what it must say), the
// environment's FOREMAN_SEND_THREAD overriding the option.
bool thread_expected(send_thread_policy policy) {
  const int provided = provided_level();
  if (const char* env = std::getenv("FOREMAN_SEND_THREAD")) {
    const std::string text = env;
    if (text == "on") policy = send_thread_policy::on;
    if (text == "off") policy = send_thread_policy::off;
    if (text == "automatic" || text == "auto") policy = send_thread_policy::automatic;
  }
  switch (policy) {
  case send_thread_policy::on:
    return provided >= MPI_THREAD_SERIALIZED;
  case send_thread_policy::automatic:
    return provided == MPI_THREAD_MULTIPLE;
  case send_thread_policy::off:
    return false;
  }
  return false;
}

const char* name_of(send_thread_policy policy) {
  static const char* const names[] = {"automatic", "on", "off"}; // in the enum's order
  return names[static_cast<int>(policy)];
}

// A result of `size` bytes for task x: bytes 0..8 the task's index, 8..16 when it started
// (steady_clock ticks), 16..20 the rank that ran it, the rest 8-byte words each a function of
// (x, word's place) (the last one cut short). Filled and checked a word at a time: a byte at a
// time, the sanitizer build spent most of a suite's 48 s here.
constexpr std::size_t header_bytes = 20;
std::uint64_t word_of(int x, std::size_t j) { return foreman_test::mix(std::uint64_t(x) * 7919 + j); }
void fill_words(char* out, std::size_t size, int x) {
  for (std::size_t at = header_bytes, j = 0; at < size; at += 8, ++j) {
    const std::uint64_t w = word_of(x, j);
    std::memcpy(out + at, &w, std::min<std::size_t>(8, size - at));
  }
}
bytes result_of(int x, std::size_t size, clock_type::time_point started) {
  bytes out(std::max(size, header_bytes));
  fill_words(out.data(), size, x);
  const std::int64_t index = x;
  const auto ticks = started.time_since_epoch().count();
  const std::int32_t rank = foreman_test::world_rank();
  std::memcpy(out.data(), &index, sizeof index);
  std::memcpy(out.data() + 8, &ticks, sizeof ticks);
  std::memcpy(out.data() + 16, &rank, sizeof rank);
  out.resize(size);
  return out;
}
bool is_result_of(const bytes& r, int x, std::size_t size) {
  if (r.size() != size || size < sizeof(std::int64_t)) return false;
  std::int64_t index = -1;
  std::memcpy(&index, r.data(), sizeof index);
  if (index != x) return false;
  for (std::size_t at = header_bytes, j = 0; at < size; at += 8, ++j) {
    const std::uint64_t w = word_of(x, j);
    if (std::memcmp(r.data() + at, &w, std::min<std::size_t>(8, size - at)) != 0) return false;
  }
  return true;
}
clock_type::time_point started_at(const bytes& r) {
  clock_type::rep ticks = 0;
  std::memcpy(&ticks, r.data() + 8, sizeof ticks);
  return clock_type::time_point(clock_type::duration(ticks));
}
int rank_of(const bytes& r) {
  std::int32_t rank = -1;
  std::memcpy(&rank, r.data() + 16, sizeof rank);
  return rank;
}

constexpr std::size_t big = std::size_t{8} << 20; // sent as a body, far past any eager limit

// Tasks of 50 ms with 8 MiB results, one a message, every worker sent three messages at the start.
// The master files the first result, then pauses 1 s in on_result without calling MPI (and sends
// nothing: a worker gets its next chunk after its reply is filed): the replies that arrive
// meanwhile are not received, bodies included. The worker whose result was filed first runs its
// second task, and then, with the send thread, its third while the second's body waits
// unreceived; without it, the third starts only once the master, back, receives that body (a
// worker starts at most one task past its last reply received). Returns the most tasks one
// worker started before the master's pause ended.
int most_started_during_pause(foreman::master_worker<int, bytes>& pool, send_thread_policy policy) {
  foreman::options opt;
  opt.chunk_size = 1;
  opt.tasks_in_flight = 3;
  opt.send_thread = policy;
  // Enough that every worker gets its three messages at the start (the scheduler sends one at a
  // time once fewer than workers × tasks_in_flight chunks are left unsent).
  std::vector<int> tasks(static_cast<std::size_t>(8 * std::max(1, pool.worker_count())));
  for (std::size_t k = 0; k < tasks.size(); ++k) tasks[k] = static_cast<int>(k);
  bool paused = false;
  clock_type::time_point resumed{};
  const auto results = pool.run(
      tasks,
      [](int x) {
        const auto start = clock_type::now();
        bytes out = result_of(x, big, start);
        std::this_thread::sleep_until(start + std::chrono::milliseconds(50));
        return out;
      },
      [&](std::size_t, int, const bytes&) {
        if (paused) return;
        paused = true;
        std::this_thread::sleep_for(std::chrono::seconds(1));
        resumed = clock_type::now();
      },
      opt);
  if (!pool.is_master()) return 0;
  std::map<int, int> started; // per worker
  for (std::size_t k = 0; k < results.size(); ++k) {
    CHECK(is_result_of(results[k], tasks[k], big));
    if (started_at(results[k]) < resumed) ++started[rank_of(results[k])];
  }
  int most = 0;
  for (const auto& [worker, count] : started) most = std::max(most, count);
  return most;
}

} // namespace

TEST_CASE("with the send thread a worker's next task starts while its last large result is unsent", "[send_progress]") {
  foreman::master_worker<int, bytes> pool;
  if (pool.worker_count() == 0) return; // nothing is sent
  for (const send_thread_policy policy :
       {send_thread_policy::on, send_thread_policy::off, send_thread_policy::automatic}) {
    const int most = most_started_during_pause(pool, policy);
    if (!pool.is_master()) continue;
    INFO("send_thread " << name_of(policy) << ", MPI thread level " << provided_level()
                        << "; most tasks one worker started before the master's pause ended: " << most);
    if (thread_expected(policy))
      CHECK(most >= 3); // its third ran while its second's body waited for the master
    else
      CHECK(most <= 2); // its third waited for the master to take its second's body
  }
}

TEST_CASE("results are right with the send thread on, off and automatic", "[send_progress]") {
  // Long tasks (2 ms: the worker then hands its last reply to the thread) and short ones, results
  // of 0 bytes to 3 MiB (bodies, inline values, and with --piece-bytes, pieces), in chunks of one
  // and automatic ones, through both forms of the function.
  foreman::master_worker<int, bytes> pool;
  std::vector<int> tasks(61);
  for (std::size_t k = 0; k < tasks.size(); ++k) tasks[k] = static_cast<int>(k);
  auto size_of = [](int x) -> std::size_t {
    switch (x % 4) {
    case 0:
      return std::size_t{3} << 20;
    case 1:
      return 40 * 1024 + std::size_t(x);
    case 2:
      return 100;
    default:
      return 20;
    }
  };
  auto pause_of = [](int x) { return x % 3 == 0 ? 2000 : 0; };
  for (const send_thread_policy policy :
       {send_thread_policy::on, send_thread_policy::off, send_thread_policy::automatic}) {
    for (const std::size_t chunk : {std::size_t{1}, std::size_t{0}}) {
      INFO("send_thread " << name_of(policy) << ", chunk_size " << chunk);
      foreman::options opt;
      opt.send_thread = policy;
      opt.chunk_size = chunk;
      const auto returned = pool.run(
          tasks,
          [&](int x) {
            foreman_test::sleep_us(pause_of(x));
            return result_of(x, size_of(x), clock_type::now());
          },
          opt);
      const auto written = pool.run(
          tasks,
          [&](int x, bytes& into) {
            foreman_test::sleep_us(pause_of(x));
            into = result_of(x, size_of(x), clock_type::now());
          },
          opt);
      if (!pool.is_master()) continue;
      REQUIRE(returned.size() == tasks.size());
      REQUIRE(written.size() == tasks.size());
      for (std::size_t k = 0; k < tasks.size(); ++k) {
        CHECK(is_result_of(returned[k], tasks[k], size_of(tasks[k])));
        CHECK(is_result_of(written[k], tasks[k], size_of(tasks[k])));
      }
    }
  }
}

TEST_CASE("the send thread completes a send while its owner makes no MPI call", "[send_progress]") {
  // Rank 0 posts an 8 MiB send to rank 1 and hands it to the thread, then sleeps without calling
  // MPI while rank 1 receives it. The send's request completes only inside an MPI call of rank 0
  // (the receiver's acknowledgement must be read): once the thread is parked, it has completed.
  boost::mpi::communicator world;
  if (world.size() < 2) return;
  if (provided_level() < MPI_THREAD_SERIALIZED) {
    WARN("MPI gives thread level " << provided_level() << ", below MPI_THREAD_SERIALIZED: not run");
    return;
  }
  boost::mpi::communicator comm(world, boost::mpi::comm_duplicate); // collective: every rank
  const int tag = 3;
  bytes payload = result_of(7, big, clock_type::now());
  if (comm.rank() == 0) {
    foreman::detail::send_slot slot;
    foreman::detail::post_body(foreman::detail::body_span{payload.data(), payload.size()}, 1,
                               static_cast<foreman::detail::tag>(tag), comm, slot);
    REQUIRE_FALSE(slot.idle());
    foreman::detail::send_progress thread;
    thread.drive(slot);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    thread.park();
    CHECK(slot.idle()); // completed by the thread: nothing left for this thread to test
    slot.wait();        // a no-op then; a send left pending would complete here, for the cleanup
  } else if (comm.rank() == 1) {
    bytes into(big);
    const std::size_t piece = foreman::detail::piece_bytes(); // post_body() sends pieces past it
    for (std::size_t at = 0; at < big; at += piece)
      MPI_Recv(into.data() + at, static_cast<int>(std::min(piece, big - at)), MPI_BYTE, 0, tag, comm,
               MPI_STATUS_IGNORE);
    CHECK(is_result_of(into, 7, big));
  }
  comm.barrier();
}
