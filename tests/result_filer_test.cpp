// The master's filing of outcomes without mpirun (detail/result_filer.hpp): replies' items as a
// worker writes them (wire.hpp), read into a run's store (dense_store) and a job's (job_store):
// results and failures under their tasks, each handed on once; answers for tasks filed already
// read and dropped without losing the items after them; results that cannot be decoded failed as
// foreman::serialization_error; bodies awaited in the right place, or dropped; a damaged tasks
// message's tasks failed; the master's own failures and options::fail_fast's cancellations. The
// program links MPI through foreman's headers and calls none of it.
#include "catch.hpp"

#include <foreman/detail/result_filer.hpp>
#include <foreman/detail/task_store.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

using foreman::schedule;
using foreman::task_failure;
using foreman::task_record;
using foreman::detail::body_span;
using foreman::detail::body_threshold;
using foreman::detail::decoder;
using foreman::detail::dense_store;
using foreman::detail::encoder;
using foreman::detail::item_status;
using foreman::detail::job_store;
using foreman::detail::pool_state;
using foreman::detail::result_filer;
using foreman::detail::scheduler;
using foreman::detail::ticket;
using clock_type = std::chrono::steady_clock;

namespace {

/// A result whose load throws when it was saved with `refuse` set (its save never does).
struct picky {
  int n = 0;
  bool refuse = false;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar& n& refuse;
    if (Archive::is_loading::value && refuse) throw std::runtime_error("cannot load picky " + std::to_string(n));
  }
};

/// A pool of 4 ranks, its id 9 (pool_state is not copyable).
struct test_pool : pool_state {
  test_pool() {
    id = 9;
    lost.assign(4, 0);
  }
};

/// What OnDone was handed: each ticket, with the time given.
struct done_log {
  std::vector<ticket> tickets;
  std::vector<clock_type::time_point> times;
  template <class Item>
  void operator()(ticket t, const Item&, clock_type::time_point when) {
    tickets.push_back(t);
    times.push_back(when);
  }
};

/// The bodies a reply announces, as read_items() hands them on.
template <class Result>
struct body_log {
  struct awaited {
    ticket t;
    double seconds;
    Result* into;
    body_span body;
  };
  std::vector<awaited> awaits;
  std::vector<std::size_t> drops; // bytes
  void await(ticket t, double seconds, Result& into, const body_span& body) {
    awaits.push_back({t, seconds, &into, body});
  }
  void drop(std::size_t bytes) { drops.push_back(bytes); }
};

/// A reply's items as a worker writes them (worker_loop.hpp), read back from the start.
struct reply {
  std::vector<char> bytes;
  std::uint32_t count = 0;
  template <class Result>
  reply& ok(std::uint64_t name, double seconds, const Result& value) {
    encoder out(bytes);
    out.put(name);
    out.put(item_status::ok);
    out.put(seconds);
    foreman::detail::put_item(out, value);
    ++count;
    return *this;
  }
  reply& failed(std::uint64_t name, double seconds, const std::string& type, const std::string& message) {
    encoder out(bytes);
    foreman::detail::put_failed_result(out, name, seconds, type, message);
    ++count;
    return *this;
  }
  /// An item announcing a body of `elements` elements (as put_item() writes one).
  reply& body_of(std::uint64_t name, std::uint64_t elements) {
    encoder out(bytes);
    out.put(name);
    out.put(item_status::ok);
    out.put(0.5);
    out.put(std::uint8_t{1});
    out.put(elements);
    ++count;
    return *this;
  }
  decoder read() const { return decoder(bytes.data(), bytes.size()); }
};

/// A run's tasks with what dense_store refers to, and a filer over them.
template <class Result>
struct run_of {
  std::vector<int> tasks;
  std::vector<Result> results;
  std::vector<task_record> records;
  std::vector<task_failure> failures;
  dense_store<int, Result> store;
  test_pool pool;
  scheduler sched{scheduler::config{schedule::dynamic, 0, 2, 3}};
  done_log done;
  result_filer<Result, dense_store<int, Result>, done_log> filer{store, sched, pool, done};
  explicit run_of(std::size_t n) : tasks(n), results(n), records(n), store(tasks, results, records, failures) {}
  /// Reads `r` as a reply from `worker`, arrived at `when`; true if every byte was read.
  bool read(const reply& r, int worker, clock_type::time_point when, body_log<Result>& bodies) {
    decoder in = r.read();
    filer.read_items(worker, when, in, r.count, bodies);
    return in.exhausted();
  }
};

} // namespace

TEST_CASE("a reply's results and failures are filed under their tasks, each handed on once", "[result_filer]") {
  run_of<std::string> run(5);
  body_log<std::string> bodies;
  const auto when = clock_type::now();
  reply r;
  r.ok(2, 0.5, std::string("two")).failed(0, 0.25, "std::domain_error", "bad zero").ok(4, 1.5, std::string("four"));
  CHECK(run.read(r, 3, when, bodies));
  CHECK(run.results[2] == "two");
  CHECK(run.results[4] == "four");
  CHECK(run.results[0].empty());
  REQUIRE(run.failures.size() == 1);
  CHECK(run.failures[0].index == 0);
  CHECK(run.failures[0].worker == 3);
  CHECK(run.failures[0].type == "std::domain_error");
  CHECK(run.failures[0].message == "bad zero");
  CHECK(run.records[2].worker == 3);
  CHECK(run.records[2].seconds == 0.5);
  CHECK_FALSE(run.records[2].failed);
  CHECK(run.records[0].failed);
  CHECK(run.records[0].seconds == 0.25);
  CHECK(run.done.tickets == std::vector<ticket>{2, 0, 4});
  CHECK(run.done.times == std::vector<clock_type::time_point>(3, when));
  CHECK(run.store.finished() == 3);
  CHECK(run.filer.any_failed());
  CHECK(bodies.awaits.empty());
  CHECK(bodies.drops.empty());
}

TEST_CASE("an answer for a task filed already is dropped, and the items after it are read", "[result_filer]") {
  run_of<std::string> run(4);
  body_log<std::string> bodies;
  reply first;
  first.ok(1, 0.1, std::string("first answer"));
  CHECK(run.read(first, 1, clock_type::now(), bodies));
  // A lost worker's late answer for task 1, then a failure for it, then a new result.
  reply late;
  late.ok(1, 0.2, std::string("late answer")).failed(1, 0.3, "std::logic_error", "late failure");
  late.ok(3, 0.4, std::string("three"));
  CHECK(run.read(late, 2, clock_type::now(), bodies));
  CHECK(run.results[1] == "first answer");
  CHECK(run.records[1].worker == 1);
  CHECK(run.records[1].seconds == 0.1);
  CHECK(run.failures.empty());
  CHECK_FALSE(run.filer.any_failed());
  CHECK(run.results[3] == "three");
  CHECK(run.done.tickets == std::vector<ticket>{1, 3});
  CHECK(run.store.finished() == 2);
}

TEST_CASE("a result that cannot be decoded fails as serialization_error, naming the task and the master",
          "[result_filer]") {
  run_of<picky> run(3);
  body_log<picky> bodies;
  reply r;
  r.ok(0, 0.1, picky{5, false}).ok(1, 0.1, picky{6, true}).ok(2, 0.1, picky{7, false});
  CHECK(run.read(r, 2, clock_type::now(), bodies)); // `in` is past the item whatever its load did
  CHECK(run.results[0].n == 5);
  CHECK(run.results[2].n == 7);
  CHECK(run.results[1].n == 0); // not what the failed load left behind
  REQUIRE(run.failures.size() == 1);
  CHECK(run.failures[0].index == 1);
  CHECK(run.failures[0].worker == 2);
  CHECK(run.failures[0].type == foreman::serialization_error_type);
  CHECK(run.failures[0].message.find("the result of task 1 could not be decoded on the master") != std::string::npos);
  CHECK(run.failures[0].message.find("cannot load picky 6") != std::string::npos);
  CHECK(run.records[1].failed);
  CHECK(run.done.tickets == std::vector<ticket>{0, 1, 2});

  // A group of a grouped pool names the task by its index in the whole run, and itself as a
  // sub-master.
  run_of<picky> group(2);
  const std::vector<std::uint64_t> shown{40, 41};
  group.pool.shown_tasks = &shown;
  group.pool.shown = {4, 5, 6, 7};
  reply bad;
  bad.ok(1, 0.1, picky{8, true});
  CHECK(group.read(bad, 1, clock_type::now(), bodies));
  REQUIRE(group.failures.size() == 1);
  CHECK(group.failures[0].message.find("the result of task 41 could not be decoded on sub-master 4") !=
        std::string::npos);
}

TEST_CASE("a result's body is awaited in the run's element and filed when it has come; other bodies are dropped",
          "[result_filer]") {
  using bytes = std::vector<char>;
  run_of<bytes> run(4);
  body_log<bytes> bodies;
  const bytes large(2 * body_threshold, 'L');
  reply r;
  r.ok(0, 0.75, large).ok(1, 0.1, bytes{'s'});
  CHECK(run.read(r, 2, clock_type::now(), bodies));
  REQUIRE(bodies.awaits.size() == 1);
  CHECK(bodies.awaits[0].t == 0);
  CHECK(bodies.awaits[0].seconds == 0.75);
  CHECK(bodies.awaits[0].into == &run.results[0]); // run()'s results stay put: received in place
  CHECK(run.results[0].size() == large.size());
  CHECK(bodies.awaits[0].body.data == static_cast<void*>(run.results[0].data()));
  CHECK(bodies.awaits[0].body.bytes == large.size());
  CHECK_FALSE(run.store.done(ticket{0})); // not before its body
  CHECK(run.done.tickets == std::vector<ticket>{1});

  std::memcpy(bodies.awaits[0].body.data, large.data(), large.size()); // the body arrives
  bytes unused;
  const auto arrival = clock_type::now();
  run.filer.file_body(0, 2, 0.75, unused, arrival);
  CHECK(run.store.done(ticket{0}));
  CHECK(run.results[0] == large);
  CHECK(run.records[0].worker == 2);
  CHECK(run.records[0].seconds == 0.75);
  CHECK(run.done.tickets == std::vector<ticket>{1, 0});
  CHECK(run.done.times.back() == arrival);

  // A late answer with a body for task 0, filed already: its body is dropped, not received.
  // A body announced that cannot be allocated (2^63 bytes, past what a std::vector<char> may hold: it
  // throws before allocating, also under AddressSanitizer): dropped, its task failed.
  reply more;
  more.ok(0, 0.5, large).body_of(2, std::uint64_t{1} << 63).ok(3, 0.1, bytes{'t'});
  CHECK(run.read(more, 3, clock_type::now(), bodies));
  CHECK(bodies.awaits.size() == 1);
  CHECK(bodies.drops == std::vector<std::size_t>{large.size(), std::size_t{1} << 63});
  CHECK(run.results[0] == large);
  REQUIRE(run.failures.size() == 1);
  CHECK(run.failures[0].index == 2);
  CHECK(run.failures[0].type == foreman::serialization_error_type);
  CHECK(run.failures[0].message.find("could not be allocated") != std::string::npos);
  CHECK(run.results[3] == bytes{'t'});
  CHECK(run.done.tickets == std::vector<ticket>{1, 0, 2, 3});
}

TEST_CASE("a body of a task cancelled while it arrived is dropped; the run's element is emptied", "[result_filer]") {
  using bytes = std::vector<char>;
  run_of<bytes> run(2);
  body_log<bytes> bodies;
  reply r;
  r.ok(1, 0.5, bytes(body_threshold, 'c'));
  CHECK(run.read(r, 1, clock_type::now(), bodies));
  REQUIRE(bodies.awaits.size() == 1);
  run.filer.cancel(1); // options::fail_fast, while the body arrives
  bytes unused;
  run.filer.file_body(1, 1, 0.5, unused, clock_type::now());
  CHECK(run.results[1].empty()); // a failure's result
  REQUIRE(run.failures.size() == 1);
  CHECK(run.failures[0].type == foreman::detail::cancelled_type);
  CHECK(run.done.tickets == std::vector<ticket>{1}); // once, as cancelled
}

TEST_CASE("a job's body waits outside its entry, which takes it when it has come, unless erased meanwhile",
          "[result_filer]") {
  using bytes = std::vector<char>;
  using store_type = job_store<int, bytes>;
  store_type store;
  for (int k = 0; k < 3; ++k) store.add(k);
  test_pool pool;
  scheduler sched(scheduler::config{schedule::dynamic, 0, 2, 3});
  done_log done;
  result_filer<bytes, store_type, done_log> filer(store, sched, pool, done);
  body_log<bytes> bodies;
  const bytes large(body_threshold + 1, 'j');
  reply r;
  r.ok(0, 0.5, large).ok(2, 0.25, large);
  decoder in = r.read();
  filer.read_items(1, clock_type::now(), in, r.count, bodies);
  CHECK(in.exhausted());
  REQUIRE(bodies.awaits.size() == 2);
  CHECK(bodies.awaits[0].into == &store.result(ticket{0})); // sized there; master_loop moves it out
  CHECK(store.result(ticket{0}).size() == large.size());
  // As master_loop does: the values move into the transfer, the entries may go meanwhile.
  bytes first = std::move(store.result(ticket{0}));
  bytes third = std::move(store.result(ticket{2}));
  std::memcpy(first.data(), large.data(), large.size());
  std::memcpy(third.data(), large.data(), large.size());
  store.erase(ticket{2}); // job::cancel() forgot it
  filer.file_body(0, 1, 0.5, first, clock_type::now());
  filer.file_body(2, 1, 0.25, third, clock_type::now());
  CHECK(store.result(ticket{0}) == large);
  CHECK(store.done(ticket{0}));
  CHECK(store.record(ticket{0}).worker == 1);
  CHECK(done.tickets == std::vector<ticket>{0});
}

TEST_CASE("a damaged tasks message fails each of its tasks not filed yet, naming its worker and why",
          "[result_filer]") {
  run_of<std::string> run(4);
  body_log<std::string> bodies;
  reply r;
  r.ok(1, 0.1, std::string("one"));
  CHECK(run.read(r, 2, clock_type::now(), bodies));
  const auto when = clock_type::now();
  run.filer.file_damaged(2, when, std::vector<ticket>{0, 1, 3}, "a length past the message's end");
  REQUIRE(run.failures.size() == 2);
  CHECK(run.failures[0].index == 0);
  CHECK(run.failures[1].index == 3);
  CHECK(run.failures[0].type == foreman::serialization_error_type);
  CHECK(run.failures[0].message.find("task 0 could not be decoded on worker 2: the tasks message holding it was "
                                     "damaged: a length past the message's end") != std::string::npos);
  CHECK(run.results[1] == "one");
  CHECK(run.records[3].worker == 2);
  CHECK(run.records[3].failed);
  CHECK(run.done.tickets == std::vector<ticket>{1, 0, 3});
  CHECK(run.done.times.back() == when);
}

TEST_CASE("the master's own failures; options::fail_fast's cancellations name the first task that failed",
          "[result_filer]") {
  run_of<std::string> run(6);
  CHECK_FALSE(run.filer.any_failed());
  run.filer.cancel(5); // a cancellation is no failure of its own
  CHECK_FALSE(run.filer.any_failed());
  run.filer.fail(3, 2, "worker 2 was lost while running this task");
  run.filer.fail(1, 0, "no live worker is left to run it");
  run.filer.cancel(4);
  CHECK(run.filer.any_failed());
  REQUIRE(run.failures.size() == 4);
  CHECK(run.failures[1].type == foreman::detail::worker_lost_type);
  CHECK(run.failures[1].worker == 2);
  CHECK(run.records[3].worker == 2);
  CHECK(run.records[3].failed);
  CHECK(run.failures[3].type == foreman::detail::cancelled_type);
  CHECK(run.failures[3].message ==
        "not run: task 3 failed first, and options::fail_fast stops the run at the first failure");
  CHECK(run.done.tickets == std::vector<ticket>{5, 3, 1, 4});
  CHECK(run.store.finished() == 4);
}

TEST_CASE("a reply naming a task that was never one of the run's is an error", "[result_filer]") {
  run_of<std::string> run(3);
  body_log<std::string> bodies;
  reply r;
  r.ok(7, 0.1, std::string("stray"));
  CHECK_THROWS_AS(run.read(r, 1, clock_type::now(), bodies), foreman::error);
  CHECK(run.done.tickets.empty());
}
