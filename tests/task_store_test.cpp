// The job's task store (task_store.hpp, job_store) without MPI: tickets kept in a ring indexed by
// ticket, stragglers moved out of it, arbitrary erasures (cancellations), checked against a
// std::map doing the same; and the ring's size bounded by the tickets kept, not by the window.
#include "catch.hpp"

#include <foreman/detail/task_store.hpp>
#include <foreman/errors.hpp>

#include <cstdint>
#include <iterator>
#include <map>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

using foreman::detail::job_store;
using foreman::detail::ticket;

namespace {

// Every ticket issued so far is kept by `store` exactly when `model` has it, with its task.
template <class Store>
void check_same(Store& store, const std::map<ticket, std::string>& model) {
  REQUIRE(store.kept() == model.size());
  for (ticket t = 0; t < store.issued(); ++t) {
    const auto found = model.find(t);
    ticket named = 0;
    typename Store::item it{};
    const bool kept = store.lookup(t, 1, named, it);
    REQUIRE(named == t);
    REQUIRE(kept == (found != model.end()));
    REQUIRE(store.has(t) == kept);
    if (kept) {
      REQUIRE(store.task(t) == found->second);
      REQUIRE(store.at(t).task == found->second);
      REQUIRE(&**it == &store.at(t)); // the item lookup() gives holds the ticket's entry
      REQUIRE_FALSE(store.done(t));
      REQUIRE_FALSE(store.done(it));
    } else {
      REQUIRE(store.done(t)); // gone counts as done: a late reply naming it is dropped
    }
  }
}

} // namespace

TEST_CASE("job_store: tickets in submission order from 0, each kept until erased", "[task_store]") {
  job_store<std::string, int> store;
  for (int k = 0; k < 10; ++k) CHECK(store.add("task " + std::to_string(k)) == static_cast<ticket>(k));
  CHECK(store.issued() == 10);
  CHECK(store.kept() == 10);
  store.result(3) = 33;
  store.record(3).worker = 2;
  store.finish(3);
  CHECK(store.done(3));
  CHECK(store.finished() == 1);
  CHECK(store.at(3).result == 33);
  CHECK(store.at(3).record.worker == 2);
  store.mark_resent(4);
  CHECK(store.count_attempt(store.item_of(4))); // sent again after a loss: announced once
  CHECK_FALSE(store.count_attempt(store.item_of(4)));
  CHECK(store.at(4).record.attempts == 2);
  CHECK(store.failure(4) == nullptr);
  store.fail(foreman::task_failure{5, 1, "std::runtime_error", "boom"});
  REQUIRE(store.failure(5) != nullptr);
  CHECK(store.failure(5)->message == "boom");
  CHECK(store.failure(6) == nullptr);
  store.fail(foreman::task_failure{6, 2, "std::runtime_error", "bang"});
  const std::optional<foreman::task_failure> taken = store.take_failure(6);
  REQUIRE(taken.has_value());
  CHECK(taken->message == "bang");
  CHECK(store.failure(6) == nullptr); // taken: gone
  CHECK(store.failure(5) != nullptr);
  store.erase(3);
  store.erase(3); // twice: nothing more
  CHECK(store.kept() == 9);
  CHECK_FALSE(store.has(3));
  CHECK_THROWS_AS(store.at(3), foreman::error);
  ticket t = 0;
  job_store<std::string, int>::item it{};
  CHECK_FALSE(store.lookup(3, 1, t, it)); // cancelled or handed out: a reply naming it is dropped
  CHECK(it == nullptr);
  CHECK_THROWS_AS(store.lookup(10, 1, t, it), foreman::error); // never issued: a protocol error
  // A ticket reused by no one: the next one is 10, and it starts afresh.
  CHECK(store.add("task 10") == 10);
  CHECK_FALSE(store.done(10));
  CHECK(store.at(10).result == 0);
  store.erase(5); // its failure goes with it
  CHECK(store.failure(5) == nullptr);
}

TEST_CASE("job_store: random submissions, completions and cancellations agree with a map", "[task_store]") {
  for (unsigned seed : {1u, 2u, 3u, 4u}) {
    std::mt19937 random(seed);
    job_store<std::string, int> store;
    std::map<ticket, std::string> model;
    for (int step = 0; step < 4000; ++step) {
      const unsigned what = random() % 10;
      if (what < 5 || model.empty()) { // submit
        const std::string task = "t" + std::to_string(step);
        model[store.add(task)] = task;
      } else if (what < 8) { // complete the oldest, as a stream mostly does, through its item as next() does
        const ticket t = model.begin()->first;
        store.erase(t, store.item_of(t));
        model.erase(model.begin());
      } else { // any ticket: a completion out of order (its item), a cancellation (its ticket)
        auto it = model.begin();
        std::advance(it, random() % model.size());
        if (random() % 2 == 0)
          store.erase(it->first, store.item_of(it->first));
        else
          store.erase(it->first);
        model.erase(it);
      }
      if (step % 97 == 0) check_same(store, model);
    }
    check_same(store, model);
    // Cancelling everything (job::cancel()) leaves nothing.
    while (!model.empty()) {
      store.erase(model.rbegin()->first);
      model.erase(std::prev(model.end()));
    }
    check_same(store, model);
  }
}

TEST_CASE("job_store: a ticket that stays while many later ones come and go does not grow the segments",
          "[task_store]") {
  job_store<std::uint64_t, std::uint64_t> store;
  const ticket oldest = store.add(7);
  store.result(oldest) = 49;
  // Work that creates work around one long task: a window of 100 tickets moves a million ahead.
  std::vector<ticket> window;
  for (std::uint64_t k = 0; k < 1000000; ++k) {
    window.push_back(store.add(k));
    if (window.size() == 100) {
      for (ticket t : window) store.erase(t);
      window.clear();
    }
  }
  CHECK(store.kept() == 1 + window.size());
  // Segments for at most max(2 segments, 4 x 101) tickets and the front one, and as many spares.
  CHECK(store.capacity() <= 2 * (2 + 1) * job_store<std::uint64_t, std::uint64_t>::segment_slots);
  CHECK(store.stragglers() == 1);
  REQUIRE(store.has(oldest));
  CHECK(store.task(oldest) == 7);
  CHECK(store.at(oldest).result == 49);
  store.finish(oldest);
  CHECK(store.done(oldest));
  store.erase(oldest, store.item_of(oldest)); // a straggler's item: its slot in the hash table
  CHECK_FALSE(store.has(oldest));
  CHECK(store.kept() == window.size());
}

TEST_CASE("job_store: a stream's window (tickets completed in chunks, out of order) stays in the segments",
          "[task_store]") {
  job_store<std::uint64_t, std::uint64_t> store;
  constexpr std::size_t bound = 4096, chunk = 512;
  // Tickets submitted up to the bound, completed a chunk at a time, the second chunk of each pair
  // before the first (two workers), the next ones submitted as they go.
  ticket next_done = 0;
  for (std::size_t k = 0; k < bound; ++k) store.add(k);
  for (int round = 0; round < 200; ++round) {
    for (ticket t = next_done + chunk; t < next_done + 2 * chunk; ++t) store.erase(t);
    for (ticket t = next_done; t < next_done + chunk; ++t) store.erase(t);
    next_done += 2 * chunk;
    for (std::size_t k = 0; k < 2 * chunk; ++k) store.add(k);
    REQUIRE(store.kept() == bound);
  }
  CHECK(store.stragglers() == 0);
  CHECK(store.capacity() <= 2 * bound);
}

namespace {
bool armed = false; // a default-constructed heavy_result throws while set
int default_built = 0;
struct heavy_result {
  std::vector<double> data;
  heavy_result() {
    ++default_built;
    if (armed) throw std::runtime_error("a Result could not be built");
  }
};
} // namespace

// A completion taken (erase()) must not build a Result: a Result whose default constructor
// throws, or allocates, would make next() throw after the job had handed the value over (the
// job then stayed open with the exception, and job_test's "after an exception broke a job" hung).
// And a large result's storage is freed at once, not when its slot is reused.
TEST_CASE("job_store: erasing a ticket never builds a Result, and frees a large one at once", "[task_store]") {
  job_store<int, heavy_result> store;
  for (int k = 0; k < 100; ++k) store.add(k);
  store.result(7).data.assign(1 << 20, 1.0);
  store.finish(7);
  armed = true;
  const int built = default_built;
  for (ticket t = 0; t < 100; ++t) CHECK_NOTHROW(store.erase(t));
  armed = false;
  CHECK(default_built == built);
  CHECK(store.kept() == 0);
}

namespace {
int live_tasks = 0; // counted_task objects alive
struct counted_task {
  explicit counted_task(int v = 0) : value(v) { ++live_tasks; }
  counted_task(const counted_task& o) : value(o.value) { ++live_tasks; }
  counted_task(counted_task&& o) noexcept : value(o.value) { ++live_tasks; }
  counted_task& operator=(const counted_task&) = default;
  ~counted_task() { --live_tasks; }
  int value;
};
} // namespace

// A pool keeps a job's segments for its next job (master_worker's job_segments_): the next job
// takes them instead of fresh memory, and what a job left in them is destroyed when it ends.
TEST_CASE("job_store: a pool's cache hands one job's segments to the next", "[task_store]") {
  using store_type = job_store<counted_task, int>;
  constexpr std::size_t tasks = 10 * store_type::segment_slots; // 10 segments
  store_type::cache cache;
  {
    store_type first(&cache);
    for (std::size_t k = 0; k < tasks; ++k) first.add(counted_task(static_cast<int>(k)));
    for (ticket t = 0; t < tasks / 2; ++t) first.erase(t); // half handed out, half left (cancelled)
    CHECK(live_tasks == static_cast<int>(tasks / 2));
  }
  CHECK(live_tasks == 0);     // the tasks left were destroyed
  CHECK(cache.size() == 10);  // the segments were kept
  {
    store_type second(&cache);
    for (std::size_t k = 0; k < tasks; ++k) second.add(counted_task(static_cast<int>(k) + 1));
    CHECK(cache.size() == 0); // taken back, none allocated
    for (ticket t = 0; t < tasks; ++t) {
      REQUIRE(second.has(t));
      REQUIRE(second.task(t).value == static_cast<int>(t) + 1);
      REQUIRE_FALSE(second.done(t)); // a reused slot starts afresh
      REQUIRE(second.at(t).record.attempts == 0);
    }
  }
  CHECK(live_tasks == 0);
  CHECK(cache.size() == 10);
  // Without a cache, nothing is kept.
  { store_type alone; for (std::size_t k = 0; k < tasks; ++k) alone.add(counted_task(1)); }
  CHECK(cache.size() == 10);
  CHECK(live_tasks == 0);
}

// The slots are touched for every task, and a job that holds many tasks at once keeps them all:
// the store's flags share the record's padding (x86-64, LP64).
TEST_CASE("job_store: a slot of 8-byte tasks and results is 48 bytes", "[task_store]") {
  STATIC_REQUIRE(sizeof(foreman::detail::job_record) == 24);
  STATIC_REQUIRE(sizeof(job_store<std::uint64_t, std::uint64_t>::slot) == 48);
}
