// The master's reply reader (detail/reply_reader.hpp): what follows a reply message (its bodies,
// an envelope's message) is received without the master's loop ever waiting for it. The workers
// hold their bodies back with a test hook (injected_body_delay: a sleep before each body is sent),
// as a slow network or a busy sender would. Runs at 2-4 ranks (at 1 rank nothing is transferred).
//
// Times taken on two ranks are compared through steady_clock, which the processes of one host
// share (CLOCK_MONOTONIC): these tests run on one host.
#include "catch.hpp"
#include "test_support.hpp"

#include <foreman/foreman.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;
using bytes = std::vector<char>;

double seconds_between(clock_type::time_point from, clock_type::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

// Worker side: the next `count` bodies this process sends are each held back `delay` (the hook is
// a plain function pointer, hence the statics); cleared at the end of the test case.
int held_bodies = 0;
std::chrono::milliseconds body_delay{0};
void hold_body() {
  if (held_bodies <= 0) return;
  --held_bodies;
  std::this_thread::sleep_for(body_delay);
}
struct held_back {
  held_back(int count, std::chrono::milliseconds delay) {
    held_bodies = count;
    body_delay = delay;
    foreman::detail::injected_body_delay() = &hold_body;
  }
  ~held_back() { foreman::detail::injected_body_delay() = nullptr; }
};

// A result of `size` bytes for task x, every byte checked on arrival; bytes 8..16 carry the time
// the worker finished it (steady_clock ticks).
bytes result_of(int x, std::size_t size) {
  bytes out(size);
  for (std::size_t k = 0; k < size; ++k) out[k] = static_cast<char>(foreman_test::mix(std::uint64_t(x) * 7919 + k));
  const auto now = clock_type::now().time_since_epoch().count();
  std::memcpy(out.data() + 8, &now, sizeof now);
  return out;
}
bool is_result_of(const bytes& r, int x, std::size_t size) {
  if (r.size() != size) return false;
  for (std::size_t k = 0; k < size; ++k)
    if ((k < 8 || k >= 16) && r[k] != static_cast<char>(foreman_test::mix(std::uint64_t(x) * 7919 + k))) return false;
  return true;
}
clock_type::time_point finished_at(const bytes& r) {
  clock_type::rep ticks = 0;
  std::memcpy(&ticks, r.data() + 8, sizeof ticks);
  return clock_type::time_point(clock_type::duration(ticks));
}

constexpr std::size_t big = std::size_t{8} << 20; // a body
constexpr std::size_t small = 64;                 // inline in its reply

} // namespace

TEST_CASE("while one worker's result is held back, the other workers get and answer tasks", "[reply_reader]") {
  foreman::master_worker<int, bytes> pool;
  if (pool.worker_count() < 2) return;                // nobody else to serve
  held_back hold(1, std::chrono::milliseconds(2000)); // the 8 MiB body of task 0
  foreman::options opt;
  opt.chunk_size = 1;
  auto job = pool.start(
      [](int x) {
        if (x == 0) return result_of(0, big);
        foreman_test::sleep_us(5000);
        return result_of(x, small);
      },
      opt);
  if (!job.is_master()) return;
  job.submit(0); // to the first idle worker
  int next = 1;
  for (int k = 0; k < 2 * pool.worker_count(); ++k) job.submit(next++);
  struct seen {
    clock_type::time_point when;
    int worker;
  };
  std::vector<seen> others;
  clock_type::time_point filed{};
  bytes held;
  int sender = -1;
  while (sender < 0) {
    auto c = job.next();
    REQUIRE(c.result.ok());
    if (c.ticket == 0) {
      filed = clock_type::now();
      sender = c.worker;
      held = std::move(c.result.value());
      break;
    }
    CHECK(is_result_of(c.result.value(), int(c.ticket), small));
    others.push_back(seen{clock_type::now(), c.worker});
    job.submit(next++); // keeps every worker supplied
  }
  CHECK(is_result_of(held, 0, big));
  const auto finished = finished_at(held);
  // Its reply's message left at `finished`, its body 2 s later: the window in which the master
  // had a transfer in progress (less a margin for the message to arrive).
  CHECK(seconds_between(finished, filed) >= 1.9);
  std::size_t during = 0;
  for (const seen& s : others)
    if (s.worker != sender && s.when > finished + std::chrono::milliseconds(200) && s.when < filed) ++during;
  INFO("tasks of the other workers filed while the body was held back: " << during);
  CHECK(during > 0);
  job.cancel();
  job.close();
}

TEST_CASE("a job cancelled while a result of 8 MiB arrives drops it, and the job goes on", "[reply_reader]") {
  foreman::master_worker<int, bytes> pool;
  if (pool.worker_count() < 1) return;
  held_back hold(1, std::chrono::milliseconds(1500)); // task 0's body arrives 1.5 s after its message
  auto job = pool.start([](int x) { return result_of(x, big); });
  if (!job.is_master()) return;
  job.submit(0);
  const auto start = clock_type::now();
  // Meanwhile the reply's message arrives and its body is on its way; try_next never waits for it.
  while (seconds_between(start, clock_type::now()) < 0.5) {
    CHECK_FALSE(job.try_next());
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  CHECK(seconds_between(start, clock_type::now()) < 1.0);
  // The body still arriving: its task is dropped, and the memory its job kept for it with it.
  CHECK(job.cancel() == 1);
  CHECK(job.pending() == 0);
  // The dropped body lands meanwhile, not in memory the job has freed: the next results, from the
  // same worker too, arrive whole.
  for (int x = 1; x <= 2 * pool.worker_count(); ++x) job.submit(x);
  while (job.pending() > 0) {
    const auto c = job.next();
    REQUIRE(c.result.ok());
    CHECK(c.ticket != 0);
    CHECK(is_result_of(c.result.value(), int(c.ticket), big));
  }
  job.close();
}

TEST_CASE("a transfer slower than the task timeout but progressing keeps its worker; one that stops does not",
          "[reply_reader]") {
  foreman::master_worker<int, bytes> pool;
  if (pool.worker_count() < 1) return;
  static constexpr std::size_t mib = std::size_t{1} << 20;
  foreman::options opt;
  opt.task_timeout = std::chrono::milliseconds(500);
  {
    // Each worker's first reply: 3 bodies of 1 MiB, each held back 0.8 s: 2.4 s in all, each gap
    // longer than the task timeout, and a piece of 1 MiB has 1 s more (docs/reliability.md).
    held_back hold(3, std::chrono::milliseconds(800));
    opt.chunk_size = 3;
    std::vector<int> tasks(std::size_t(6 * pool.worker_count()));
    for (std::size_t i = 0; i < tasks.size(); ++i) tasks[i] = int(i);
    const auto outcomes = pool.run_outcomes(
        tasks, [](int x) { return result_of(x, mib); }, opt);
    if (pool.is_master()) {
      for (std::size_t i = 0; i < tasks.size(); ++i) {
        INFO("task " << i);
        CHECK((outcomes[i].ok() && is_result_of(outcomes[i].value(), int(i), mib)));
      }
      CHECK(pool.last_run().losses.empty());
      CHECK(pool.last_run().wall_seconds >= 2.4);
    }
  }
  {
    // Worker 1's body of 64 KiB is held back 1 s: past its allowance (0.5 s + 0.1 s + 64 KiB at
    // 1 MiB/s), it is lost for silence; the body that comes later is taken and dropped, so that
    // the worker, still running, follows the pool's next run.
    held_back hold(foreman_test::world_rank() == 1 ? 1 : 0, std::chrono::milliseconds(1000));
    opt.chunk_size = 1;
    opt.schedule = foreman::schedule::round_robin; // task 0 to worker 1
    std::vector<int> tasks(std::size_t(pool.worker_count()));
    for (std::size_t i = 0; i < tasks.size(); ++i) tasks[i] = int(i);
    static constexpr std::size_t size = std::size_t{64} << 10;
    const auto outcomes = pool.run_outcomes(
        tasks, [](int x) { return result_of(x, size); }, opt);
    if (pool.is_master()) {
      const foreman::run_info& info = pool.last_run();
      REQUIRE(info.losses.size() == 1);
      CHECK(info.losses[0].worker == 1);
      CHECK(info.losses[0].reason == foreman::loss_reason::silent);
      INFO("silent for " << info.losses[0].silent_for << " s");
      CHECK(info.losses[0].silent_for >= 0.6);
      CHECK(info.losses[0].silent_for < 1.0);
      if (pool.worker_count() > 1)
        CHECK((outcomes[0].ok() && is_result_of(outcomes[0].value(), 0, size))); // run again elsewhere
      else
        CHECK((!outcomes[0].ok() && outcomes[0].failure().type == "foreman::worker_lost"));
    }
    // The next run: every rank takes part, the lost worker without tasks.
    std::vector<int> more{1, 2, 3};
    const auto again = pool.run_outcomes(more, [](int x) { return result_of(x, small); });
    if (pool.is_master() && pool.worker_count() > 1)
      for (std::size_t i = 0; i < more.size(); ++i)
        CHECK((again[i].ok() && is_result_of(again[i].value(), more[i], small)));
  }
}
