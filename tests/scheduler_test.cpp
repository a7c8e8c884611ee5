// The master's scheduling decisions without MPI (scheduler.hpp, worker_table.hpp): which ticket
// goes to which worker, chunk sizes, priorities, re-queues after a loss, and silent workers, driven
// by fake workers on a fake clock. This program links no MPI: it runs without mpirun.
#include "catch.hpp"

#include <foreman/detail/scheduler.hpp>
#include <foreman/detail/worker_table.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <numeric>
#include <set>
#include <vector>

using foreman::schedule;
using foreman::detail::chunk_ring;
using foreman::detail::scheduler;
using foreman::detail::ticket;
using foreman::detail::ticket_queue;
using foreman::detail::chunk;
using foreman::detail::worker_table;
using namespace std::chrono_literals;

namespace {

scheduler make(schedule kind, int workers, std::size_t fixed_chunk = 0, std::size_t in_flight = 2) {
  return scheduler(scheduler::config{kind, fixed_chunk, in_flight, workers});
}

std::vector<ticket> take_all(scheduler& s, int w) {
  std::vector<ticket> out;
  while (s.has_work(w)) out.push_back(s.take(w));
  return out;
}

std::vector<ticket> iota(ticket first, ticket end, ticket step = 1) {
  std::vector<ticket> out;
  for (ticket t = first; t < end; t += step) out.push_back(t);
  return out;
}

} // namespace

TEST_CASE("ticket_queue keeps tickets in order as arithmetic runs", "[scheduler]") {
  ticket_queue q;
  CHECK(q.empty());
  for (ticket t = 0; t < 1000; ++t) q.push(t); // one by one: they join one run
  q.push(1000, 2000);
  q.push(5000, 5010, 3); // 5000, 5003, 5006, 5009
  CHECK(q.size() == 2004);
  std::vector<ticket> head;
  q.peek(3, head);
  CHECK(head == std::vector<ticket>{0, 1, 2});
  CHECK(q.size() == 2004); // peeking takes nothing
  std::vector<ticket> all;
  q.drain([&](ticket t) { all.push_back(t); });
  std::vector<ticket> expected = iota(0, 2000);
  for (ticket t : {5000, 5003, 5006, 5009}) expected.push_back(t);
  CHECK(all == expected);
  CHECK(q.empty());
}

TEST_CASE("ticket_queue: tickets join a run only where they continue it by its step", "[scheduler]") {
  ticket_queue q;
  q.push(1, 3, 3);   // 1
  q.push(2, 3, 3);   // 2: not 1 + 3, a run of its own
  q.push(5, 12, 3);  // 5, 8, 11: continues 2 by its step
  q.push(12);        // 12
  q.push(13);        // 13: continues 12
  q.push(20, 21, 7); // 20
  CHECK(q.size() == 8);
  std::vector<ticket> all;
  q.drain([&](ticket t) { all.push_back(t); });
  CHECK(all == std::vector<ticket>{1, 2, 5, 8, 11, 12, 13, 20});
  CHECK(q.empty());
  q.push(3); // empty again: starts afresh
  CHECK(q.front() == 3);
  CHECK(q.pop() == 3);
  CHECK(q.empty());
}

// The queue remembers its last run (where a pushed ticket may join): it must be the copy's own
// after a copy, and the front run again once the others are taken.
TEST_CASE("ticket_queue: tickets pushed after a copy, or after the other runs were taken, join the right run",
          "[scheduler]") {
  ticket_queue q;
  q.push(0, 4);   // 0..3
  q.push(10, 12); // 10, 11: a run of its own
  ticket_queue copy(q);
  ticket_queue assigned;
  assigned.push(99);
  assigned = q;
  copy.push(12); // continues 10, 11 in the copy only (a copy sharing q's last run would grow q's)
  copy.push(13);
  assigned.push(12); // the same in the assigned one
  q.push(12);
  // Every run, whatever size() says (a run grown through another queue would show here), then
  // the tickets taken one by one.
  auto drained = [](ticket_queue& from) {
    std::vector<ticket> runs, out;
    from.peek(1000, runs);
    from.drain([&](ticket t) { out.push_back(t); });
    CHECK(runs == out);
    return out;
  };
  CHECK(drained(q) == std::vector<ticket>{0, 1, 2, 3, 10, 11, 12});
  CHECK(drained(copy) == std::vector<ticket>{0, 1, 2, 3, 10, 11, 12, 13});
  CHECK(drained(assigned) == std::vector<ticket>{0, 1, 2, 3, 10, 11, 12});
  // The front run taken, the last one becomes the front: a ticket continues it.
  q.push(0, 2);
  q.push(5, 7);
  CHECK(q.pop() == 0);
  CHECK(q.pop() == 1); // 5, 6 is the front run now, and the last
  q.push(7);
  q.push(9);
  CHECK(drained(q) == std::vector<ticket>{5, 6, 7, 9});
}

TEST_CASE("round robin: the shares of lost workers, a ticket each, all go to the live one", "[scheduler]") {
  // Two lost workers of three, three tickets: each lost share holds a single ticket (1 and 2),
  // requeued one after the other; both must reach worker 1.
  scheduler s = make(schedule::round_robin, 3);
  s.lose(2);
  s.lose(3);
  s.add_range(0, 3);
  CHECK(s.unsent() == 3);
  std::vector<ticket> taken = take_all(s, 1);
  std::sort(taken.begin(), taken.end());
  CHECK(taken == iota(0, 3));
  CHECK(s.unsent() == 0);
}

TEST_CASE("take_next() takes what has_work() and take() would", "[scheduler]") {
  for (schedule kind : {schedule::dynamic, schedule::round_robin}) {
    scheduler a = make(kind, 2), b = make(kind, 2);
    for (scheduler* s : {&a, &b}) {
      s->add_range(0, 10);
      s->add(10, 5);
      s->add(11, -1);
      s->add(12, 0);
      s->requeue(3);
    }
    for (int k = 0; k < 40; ++k) {
      const int w = 1 + k % 2;
      ticket t = 0;
      const bool got = a.take_next(w, t);
      REQUIRE(got == b.has_work(w));
      if (got) CHECK(t == b.take(w));
    }
    CHECK(a.unsent() == b.unsent());
  }
}

TEST_CASE("dynamic: every worker takes the next ticket in order", "[scheduler]") {
  scheduler s = make(schedule::dynamic, 3);
  s.add_range(0, 10);
  CHECK(s.unsent() == 10);
  std::vector<ticket> order;
  for (int k = 0; k < 10; ++k) {
    const int w = 1 + k % 3;
    REQUIRE(s.has_work(w));
    order.push_back(s.take(w));
  }
  CHECK(order == iota(0, 10));
  CHECK(s.unsent() == 0);
  CHECK_FALSE(s.has_work(1));
}

TEST_CASE("round robin: ticket t goes to worker 1 + t mod workers; a lost worker's share to anyone", "[scheduler]") {
  scheduler s = make(schedule::round_robin, 3);
  s.add_range(0, 12);
  CHECK(take_all(s, 2) == std::vector<ticket>{1, 4, 7, 10});
  s.lose(3); // its share, 2 5 8 11, goes first to whoever asks
  CHECK(take_all(s, 1) == std::vector<ticket>{2, 5, 8, 11, 0, 3, 6, 9});
  // Tickets added later: the lost worker's share goes to others as well.
  s.add_range(12, 6); // 12..17: owners 1 2 3 1 2 3
  CHECK(take_all(s, 2) == std::vector<ticket>{14, 17, 13, 16});
  CHECK(take_all(s, 1) == std::vector<ticket>{12, 15});
  CHECK(s.unsent() == 0);
}

TEST_CASE("priorities: re-queued first, then higher priority, then ticket order, negatives last", "[scheduler]") {
  for (schedule kind : {schedule::dynamic, schedule::round_robin}) {
    scheduler s = make(kind, 1);
    s.add(0, 0);
    s.add(1, 0);
    s.add(2, 5);
    s.add(3, -1);
    s.add(4, 5);
    s.add(5, 9);
    s.requeue(42);
    CHECK(s.unsent() == 7);
    CHECK(take_all(s, 1) == std::vector<ticket>{42, 5, 2, 4, 0, 1, 3});
  }
}

TEST_CASE("drop_unsent hands every unsent ticket over once", "[scheduler]") {
  scheduler s = make(schedule::round_robin, 2);
  s.add_range(0, 10);
  s.add(10, 3);
  s.add(11, 2);
  s.requeue(99);
  CHECK(s.take(1) == 99);
  std::multiset<ticket> dropped;
  s.drop_unsent([&](ticket t) { dropped.insert(t); });
  std::multiset<ticket> expected{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
  CHECK(dropped == expected);
  CHECK(s.unsent() == 0);
  CHECK_FALSE(s.has_work(1));
  CHECK_FALSE(s.has_work(2));
}

TEST_CASE("automatic chunks: one task until durations are known, then ~1 ms of work, guided", "[scheduler]") {
  scheduler s = make(schedule::dynamic, 4);
  s.add_range(0, 1000000);
  CHECK(s.chunk_size(1, 4) == 1);
  s.observe(1e-6); // 1 µs tasks: 1000 of them fill 1 ms
  CHECK(s.chunk_size(1, 4) == 1000);
  s.observe(1e-6);
  CHECK(s.task_seconds() == Approx(1e-6));
  scheduler tiny = make(schedule::dynamic, 4);
  tiny.add_range(0, 1000000);
  tiny.observe(1e-9); // capped
  CHECK(tiny.chunk_size(1, 4) == scheduler::max_auto_chunk);
  // Guided: never more than half of what is left per live worker.
  scheduler tail = make(schedule::dynamic, 4);
  tail.add_range(0, 400);
  tail.observe(1e-6);
  CHECK(tail.chunk_size(1, 4) == 50); // 400 / 4 / 2
  CHECK(tail.chunk_size(1, 2) == 100);
  // A fixed chunk_size is used as it is.
  scheduler fixed = make(schedule::dynamic, 4, 7);
  fixed.add_range(0, 3);
  CHECK(fixed.chunk_size(1, 4) == 7);
}

TEST_CASE("automatic chunks grow with the worker count, so the master's load per message stays bounded",
          "[scheduler]") {
  // Up to 62 workers a chunk holds ~1 ms of work; past that, live_workers * 16 us, so that busy
  // workers send at most a quarter of what the master can take (4 us a message).
  CHECK(scheduler::chunk_work(1) == Approx(1e-3));
  CHECK(scheduler::chunk_work(62) == Approx(1e-3));
  CHECK(scheduler::chunk_work(255) == Approx(255 * 16e-6));
  CHECK(scheduler::chunk_work(10000) == Approx(0.16));
  scheduler s = make(schedule::dynamic, 4);
  s.add_range(0, 100000000);
  s.observe(10e-6);
  CHECK(s.chunk_size(1, 16) == 100);
  CHECK(s.chunk_size(1, 1000) == 1600); // 16 ms of 10 us tasks
  scheduler tiny = make(schedule::dynamic, 4);
  tiny.add_range(0, 100000000);
  tiny.observe(1e-6);
  CHECK(tiny.chunk_size(1, 1000) == scheduler::max_auto_chunk); // the cap stays: the send buffers
  scheduler slow = make(schedule::dynamic, 4);
  slow.add_range(0, 100000000);
  slow.observe(10e-3); // 10 ms tasks: one per message, but for many workers
  CHECK(slow.chunk_size(1, 255) == 1);
  CHECK(slow.chunk_size(1, 10000) == 16);
  // Guided still: at most half of what is left per live worker.
  scheduler tail = make(schedule::dynamic, 4);
  tail.add_range(0, 1000000);
  tail.observe(1e-6);
  CHECK(tail.chunk_size(1, 1000) == 500); // 1,000,000 / 1000 / 2
}

TEST_CASE("near the end of a dynamic run a worker holds one message", "[scheduler]") {
  scheduler s = make(schedule::dynamic, 4, 1, 2);
  s.add_range(0, 100);
  CHECK(s.message_limit(1, 4) == 2);
  while (s.unsent() >= 8) s.take(1);
  CHECK(s.message_limit(1, 4) == 1); // 7 unsent < 4 workers x 2 messages x 1 task
  scheduler rr = make(schedule::round_robin, 4, 1, 2);
  rr.add_range(0, 3);
  CHECK(rr.message_limit(1, 4) == 2); // round robin: placement is fixed, the limit too
}

TEST_CASE("worker_table: a worker is silent only while it holds tasks and nothing came", "[scheduler]") {
  using clock = worker_table::clock;
  const clock::time_point t0{}; // the fake clock's origin
  worker_table table(4, 2, t0);
  auto silent_at = [&](clock::time_point now) {
    std::vector<int> out;
    table.for_each_silent(
        now, 2s, [](int) {}, [](int) { return false; }, [&](int w) { out.push_back(w); });
    return out;
  };
  CHECK(silent_at(t0 + 10s).empty()); // nobody holds tasks
  table.sent(1, t0 + 1s).tickets = {0, 1};
  table.sent(2, t0 + 1s).tickets = {2};
  table.sent(2, t0 + 1500ms).tickets = {3};
  CHECK(table.messages_sent(2) == 2);
  CHECK(silent_at(t0 + 2900ms).empty());
  CHECK(silent_at(t0 + 3100ms) == std::vector<int>{1, 2});
  table.heard_from(1, t0 + 3s); // a progress note
  CHECK(silent_at(t0 + 4900ms) == std::vector<int>{2});
  table.answered(2); // answers its oldest chunk: the next counts from when it was sent
  CHECK(table.outstanding(2).size() == 1);
  CHECK(table.last_sign_of_life(2) == t0 + 1500ms);
  table.heard_from(2, t0 + 5s);
  CHECK(silent_at(t0 + 6s) == std::vector<int>{1}); // 3 s since its note
  // Skipped workers are never reported.
  std::vector<int> reported;
  table.for_each_silent(
      t0 + 60s, 2s, [](int) {}, [](int w) { return w == 1; }, [&](int w) { reported.push_back(w); });
  CHECK(reported == std::vector<int>{2});
}

// A worker takes a large chunk (or the run's shared value) whole before it can run anything or
// send a note; its silence counts from when that could have arrived over a link at the floor rate
// (1 MiB/s), or from when the master saw the send complete if later. Before session 28 it counted
// from the sending: with a task timeout of 1 s, a worker whose 3 MiB chunk took 2 s to cross a
// slow link was declared lost while it received it (multihost.slow_link).
TEST_CASE("worker_table: silence counts from the arrival of what a worker must receive first", "[scheduler]") {
  using clock = worker_table::clock;
  const clock::time_point t0{};
  constexpr double mib_per_s = 1 << 20;
  worker_table table(3, 2, t0, mib_per_s);
  std::vector<int> testing; // the workers whose sends the table asked to test
  bool complete = false;    // what such a test finds
  auto silent_at = [&](clock::time_point now) {
    std::vector<int> out;
    testing.clear();
    table.for_each_silent(
        now, 1100ms,
        [&](int w) {
          testing.push_back(w);
          if (complete) table.delivered(w, table.outstanding(w).front().slot, now);
        },
        [](int) { return false; }, [&](int w) { out.push_back(w); });
    return out;
  };
  chunk& big = table.sent(1, t0);
  big.tickets = {0};
  big.bytes = std::size_t{8} << 20; // 8 MiB: arrives by 8 s at the floor rate
  big.in_transit = true;
  big.slot = 1;
  chunk& small = table.sent(2, t0);
  small.tickets = {1};
  small.bytes = 1024;
  CHECK(table.in_transit(1) == std::size_t{8} << 20);
  CHECK(table.in_transit(2) == 0); // its send was never marked in transit
  CHECK(table.arrival(1) == t0 + 8s);
  CHECK(table.awaited_bytes(1) == std::size_t{8} << 20);
  // Worker 2 is judged by the task timeout alone (1 KiB: ~1 ms); worker 1 from its chunk's arrival.
  CHECK(silent_at(t0 + 2s) == std::vector<int>{2});
  CHECK(testing == std::vector<int>{1}); // only sends not seen complete are tested
  CHECK(silent_at(t0 + 9s) == std::vector<int>{2});
  CHECK(silent_at(t0 + 9200ms) == std::vector<int>{1, 2}); // arrived by 8 s at the latest: 1.2 s of silence
  // Seen delivered at 5 s (a fast link): its silence still counts from the floor's arrival, since
  // a send completes once the sender's kernel holds it.
  table.delivered(1, 0, t0 + 5s); // another slot: not this chunk's
  CHECK(table.in_transit(1) > 0);
  table.delivered(1, 1, t0 + 5s);
  CHECK(table.in_transit(1) == 0);
  CHECK(table.last_sign_of_life(1) == t0 + 5s); // a sign of life (the report says so)
  CHECK(table.silent_since(1) == t0 + 8s);
  // Seen delivered after the floor's arrival (a link slower than the floor that delivers): from then.
  chunk& next = table.sent(1, t0 + 10s);
  next.tickets = {2};
  next.bytes = std::size_t{1} << 20; // arrives by 11 s
  next.in_transit = true;
  next.slot = 0;
  table.answered(1); // the first chunk answered at 10 s
  table.heard_from(1, t0 + 10s);
  CHECK(table.silent_since(1) == t0 + 11s);
  CHECK(silent_at(t0 + 12s) == std::vector<int>{2});
  complete = true;
  CHECK(silent_at(t0 + 12s) == std::vector<int>{2}); // seen complete now, at 12 s
  CHECK(testing == std::vector<int>{1});
  CHECK(table.in_transit(1) == 0);
  CHECK(table.last_sign_of_life(1) == t0 + 12s);
  CHECK(table.silent_since(1) == t0 + 12s);
  CHECK(silent_at(t0 + 13s) == std::vector<int>{2});
  CHECK(silent_at(t0 + 13200ms) == std::vector<int>{1, 2});
}

TEST_CASE("worker_table: a first chunk arrives after what was sent ahead of it", "[scheduler]") {
  using clock = worker_table::clock;
  const clock::time_point t0{};
  constexpr double mib_per_s = 1 << 20;
  worker_table table(2, 2, t0, mib_per_s);
  table.sent_ahead(1, std::size_t{4} << 20, t0); // a shared value of 4 MiB
  chunk& first = table.sent(1, t0);
  first.tickets = {0};
  first.bytes = std::size_t{1} << 20;
  CHECK(table.ahead_in_transit(1));
  CHECK(!table.front_in_transit(1));
  CHECK(table.in_transit(1) == std::size_t{4} << 20);
  CHECK(table.arrival(1) == t0 + 5s); // 4 MiB, then 1 MiB
  CHECK(table.awaited_bytes(1) == std::size_t{5} << 20);
  CHECK(table.last_sign_of_life(1) == t0);
  CHECK(table.silent_since(1) == t0 + 5s);
  table.ahead_delivered(1, t0 + 7s); // a slower link, still delivering
  CHECK(!table.ahead_in_transit(1));
  CHECK(table.silent_since(1) == t0 + 7s);
  table.ahead_delivered(1, t0 + 9s); // once only
  CHECK(table.silent_since(1) == t0 + 7s);
  // A chunk sent long after: the value's bytes no longer count for it.
  table.answered(1);
  table.heard_from(1, t0 + 20s);
  chunk& later = table.sent(1, t0 + 20s);
  later.tickets = {1};
  later.bytes = std::size_t{1} << 20;
  CHECK(table.arrival(1) == t0 + 21s);
  CHECK(table.awaited_bytes(1) == std::size_t{1} << 20);
  // Without a floor rate (the table's default) sends take no time.
  worker_table plain(2, 2, t0);
  plain.sent(1, t0 + 1s).bytes = std::size_t{8} << 20;
  CHECK(plain.arrival(1) == t0 + 1s);
}

TEST_CASE("worker_table::take_back marks the oldest chunk, the one a worker may have started", "[scheduler]") {
  worker_table table(2, 3);
  table.sent(1, {}).tickets = {10, 11};
  table.sent(1, {}).tickets = {12};
  table.sent(1, {}).tickets = {13, 14};
  std::vector<std::pair<ticket, bool>> back;
  table.take_back(1, [&](ticket t, bool oldest) { back.emplace_back(t, oldest); });
  CHECK(back == std::vector<std::pair<ticket, bool>>{{10, true}, {11, true}, {12, false}, {13, false}, {14, false}});
  CHECK_FALSE(table.holds_tasks(1));
}

TEST_CASE("chunk_ring wraps around without losing order", "[scheduler]") {
  chunk_ring ring(3);
  for (ticket round = 0; round < 10; ++round) {
    ring.push_back().tickets = {round};
    if (ring.size() == 3) ring.pop_front();
  }
  REQUIRE(ring.size() == 2);
  CHECK(ring[0].tickets == std::vector<ticket>{8});
  CHECK(ring[1].tickets == std::vector<ticket>{9});
}

// A whole run with fake workers on a fake clock: workers take the scheduler's chunks, run each
// task for its duration, answer in order; one worker dies mid-run and its tickets are re-queued as
// the master does (the oldest chunk charged, the others not). Every ticket completes exactly once,
// and no live worker is ever idle while tickets wait.
TEST_CASE("a simulated run with a lost worker completes every ticket exactly once", "[scheduler]") {
  using clock = worker_table::clock;
  for (schedule kind : {schedule::dynamic, schedule::round_robin}) {
    constexpr int workers = 4;
    constexpr ticket tasks = 2000;
    scheduler s = make(kind, workers, 0, 2);
    worker_table table(workers + 1, 2, clock::time_point{});
    s.add_range(0, tasks);
    std::vector<char> lost(workers + 1, 0);
    std::map<ticket, int> completed; // ticket -> times
    std::vector<clock::time_point> busy_until(workers + 1);
    clock::time_point now{};
    auto duration = [](ticket t) { return std::chrono::microseconds(5 + static_cast<int>(t % 7) * 3); };
    auto live = [&] { return static_cast<int>(std::count(lost.begin() + 1, lost.end(), 0)); };
    auto refill = [&](int w) {
      while (!lost[static_cast<std::size_t>(w)] && table.outstanding(w).size() < s.message_limit(w, live()) &&
             s.has_work(w)) {
        auto& c = table.sent(w, now);
        const std::size_t n = s.chunk_size(w, live());
        for (std::size_t k = 0; k < n && s.has_work(w); ++k) c.tickets.push_back(s.take(w));
      }
    };
    for (int w = 1; w <= workers; ++w) refill(w);
    std::size_t steps = 0;
    while (completed.size() < tasks) {
      REQUIRE(++steps < 100000);
      // The worker whose oldest chunk ends first answers it.
      int next = -1;
      clock::time_point when = clock::time_point::max();
      for (int w = 1; w <= workers; ++w) {
        if (lost[static_cast<std::size_t>(w)] || !table.holds_tasks(w)) continue;
        auto end = std::max(busy_until[static_cast<std::size_t>(w)], table.outstanding(w)[0].sent);
        for (ticket t : table.outstanding(w)[0].tickets) end += duration(t);
        if (end < when) {
          when = end;
          next = w;
        }
      }
      REQUIRE(next > 0); // some live worker holds work while tickets are incomplete
      now = when;
      if (next == 3 && completed.size() > tasks / 3 && !lost[3]) { // worker 3 dies instead of answering
        lost[3] = 1;
        table.take_back(3, [&](ticket t, bool) { s.requeue(t); });
        s.lose(3);
        for (int w = 1; w <= workers; ++w) refill(w);
        continue;
      }
      busy_until[static_cast<std::size_t>(next)] = now;
      for (ticket t : table.outstanding(next)[0].tickets) {
        ++completed[t];
        s.observe(std::chrono::duration<double>(duration(t)).count());
      }
      table.answered(next);
      table.heard_from(next, now);
      refill(next);
      // Dynamic: no live worker without a message while tickets wait (the master refills on every
      // answer). Round robin keeps its placement instead: a worker whose share is done may idle.
      if (kind == schedule::dynamic)
        for (int w = 1; w <= workers; ++w)
          if (!lost[static_cast<std::size_t>(w)] && s.unsent() > 0) CHECK(table.holds_tasks(w));
    }
    CHECK(completed.size() == tasks);
    CHECK(std::all_of(completed.begin(), completed.end(), [](const auto& kv) { return kv.second == 1; }));
    CHECK(lost[3] == 1);
  }
}
