// The master's tasks messages without mpirun (detail/chunk_encoder.hpp): what a chunk's message
// holds and in which order, which tasks travel as bodies read from the tasks themselves, where an
// automatic chunk stops, what goes to the worker in place of a task whose serialize() throws, and
// when a chunk encoded ahead (prepare()) is the one to send. The message is read back as a worker
// reads it (wire.hpp). The program links MPI through foreman's headers and calls none of it.
#include "catch.hpp"

#include <foreman/detail/chunk_encoder.hpp>
#include <foreman/detail/task_store.hpp>

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

using foreman::schedule;
using foreman::task_failure;
using foreman::task_record;
using foreman::detail::body_span;
using foreman::detail::body_threshold;
using foreman::detail::chunk_encoder;
using foreman::detail::decoder;
using foreman::detail::dense_store;
using foreman::detail::failed_task_item;
using foreman::detail::header;
using foreman::detail::pool_state;
using foreman::detail::scheduler;
using foreman::detail::ticket;

namespace {

/// A task whose save throws when `refuse` is set.
struct fragile {
  int n = 0;
  bool refuse = false;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    if (refuse) throw std::runtime_error("cannot save fragile " + std::to_string(n));
    ar& n& refuse;
  }
};

/// One item of a tasks message as a worker reads it.
struct read_item {
  std::uint64_t name = 0;
  bool failed = false;
  std::string type, message; // failed: the task's failure
  std::size_t body_bytes = 0;
};

/// A tasks message as a worker reads it: its header, its counts, and each item (its value into
/// `values` when Task is given).
template <class Task>
struct read_message {
  header stamp;
  std::uint32_t count = 0, bodies = 0;
  std::vector<read_item> items;
  std::vector<Task> values;

  explicit read_message(const std::vector<char>& bytes) {
    decoder in(bytes.data(), bytes.size());
    stamp = in.get<header>();
    count = in.get<std::uint32_t>();
    bodies = in.get<std::uint32_t>();
    for (std::uint32_t k = 0; k < count; ++k) {
      read_item item;
      item.name = in.get<std::uint64_t>();
      if (item.name & failed_task_item) {
        item.name &= ~failed_task_item;
        item.failed = true;
        in.get(item.type);
        in.get(item.message);
      } else {
        values.emplace_back();
        foreman::detail::get_item(in, values.back(), item.body_bytes);
      }
      items.push_back(item);
    }
    REQUIRE(in.exhausted());
  }
};

/// A run's tasks with what dense_store refers to.
template <class Task>
struct run_of {
  std::vector<Task> tasks;
  std::vector<int> results;
  std::vector<task_record> records;
  std::vector<task_failure> failures;
  dense_store<Task, int> store;
  explicit run_of(std::vector<Task> t)
      : tasks(std::move(t)), results(tasks.size()), records(tasks.size()), store(tasks, results, records, failures) {}
};

/// A pool of 3 ranks, its id 77 (pool_state is not copyable).
struct test_pool : pool_state {
  test_pool() {
    id = 77;
    lost.assign(3, 0);
  }
};

/// Tickets first, first + 1, ... up to `end` (exclusive), for encode()'s next().
struct counting {
  ticket next_ticket, end;
  bool operator()(ticket& t) {
    if (next_ticket == end) return false;
    t = next_ticket++;
    return true;
  }
};

} // namespace

TEST_CASE("a chunk's message: header, count, then each task under its name, in order", "[chunk_encoder]") {
  run_of<std::string> run({"alpha", "beta", "gamma", "delta"});
  const test_pool pool;
  chunk_encoder<dense_store<std::string, int>> chunks(run.store, pool, 5);
  std::vector<char> bytes;
  std::vector<ticket> put;
  const std::size_t count = chunks.encode(bytes, 3, false, counting{1, 4}, [&](ticket t, ticket item) {
    CHECK(item == t);
    put.push_back(t);
  });
  CHECK(count == 3);
  CHECK(put == std::vector<ticket>{1, 2, 3});
  CHECK(chunks.bodies().empty());
  const read_message<std::string> m(bytes);
  CHECK(m.stamp.pool == 77);
  CHECK(m.stamp.run == 5);
  CHECK(m.count == 3);
  CHECK(m.bodies == 0);
  CHECK(m.values == std::vector<std::string>{"beta", "gamma", "delta"});
  CHECK(m.items[0].name == 1);
  CHECK(m.items[2].name == 3);

  // The buffer is reused: a shorter message leaves no bytes of the longer one behind.
  CHECK(chunks.encode(bytes, 1, false, counting{0, 4}) == 1);
  const read_message<std::string> again(bytes);
  CHECK(again.values == std::vector<std::string>{"alpha"});
}

TEST_CASE("large tasks travel as bodies read from the tasks themselves", "[chunk_encoder]") {
  run_of<std::string> run({"small", std::string(body_threshold, 'x'), "tiny", std::string(3 * body_threshold, 'y')});
  const test_pool pool;
  chunk_encoder<dense_store<std::string, int>> chunks(run.store, pool, 1);
  std::vector<char> bytes;
  CHECK(chunks.encode(bytes, 10, false, counting{0, 4}) == 4);
  REQUIRE(chunks.bodies().size() == 2);
  // Where MPI reads them: the tasks' own memory, not a copy.
  CHECK(chunks.bodies()[0].data == static_cast<const void*>(run.tasks[1].data()));
  CHECK(chunks.bodies()[0].bytes == body_threshold);
  CHECK(chunks.bodies()[1].data == static_cast<const void*>(run.tasks[3].data()));
  CHECK(chunks.bodies()[1].bytes == 3 * body_threshold);
  const read_message<std::string> m(bytes);
  CHECK(m.bodies == foreman::detail::body_messages(chunks.bodies()));
  CHECK(m.items[0].body_bytes == 0);
  CHECK(m.items[1].body_bytes == body_threshold);
  CHECK(m.items[3].body_bytes == 3 * body_threshold);
  CHECK(m.values[0] == "small");
  CHECK(m.values[2] == "tiny");
  // The next message forgets them.
  CHECK(chunks.encode(bytes, 1, false, counting{0, 1}) == 1);
  CHECK(chunks.bodies().empty());
}

TEST_CASE("an automatic chunk stops once its tasks fill 1 MiB, bodies included; a fixed one does not",
          "[chunk_encoder]") {
  constexpr std::size_t kib = 1024;
  std::vector<std::string> tasks(10, std::string(300 * kib, 'z'));
  tasks[0] = "first";
  run_of<std::string> run(tasks);
  const test_pool pool;
  chunk_encoder<dense_store<std::string, int>> chunks(run.store, pool, 1);
  std::vector<char> bytes;
  // 300 KiB each after the first: the fourth large one passes 1 MiB.
  CHECK(chunks.encode(bytes, 10, true, counting{0, 10}) == 5);
  CHECK(chunks.bodies().size() == 4);
  CHECK(read_message<std::string>(bytes).count == 5);
  CHECK(chunks.encode(bytes, 10, false, counting{0, 10}) == 10);
  CHECK(chunks.bodies().size() == 9);

  // Small tasks: the message itself reaches the bound.
  run_of<std::string> small(std::vector<std::string>(20000, std::string(100, 's')));
  chunk_encoder<dense_store<std::string, int>> small_chunks(small.store, pool, 1);
  const std::size_t n = small_chunks.encode(bytes, 20000, true, counting{0, 20000});
  CHECK(n < 20000);
  CHECK(bytes.size() >= chunk_encoder<dense_store<std::string, int>>::max_auto_bytes);
  CHECK(bytes.size() < chunk_encoder<dense_store<std::string, int>>::max_auto_bytes + 200);
}

TEST_CASE("a task whose serialize() throws goes to the worker as its failure, the others as they are",
          "[chunk_encoder]") {
  run_of<fragile> run({fragile{10, false}, fragile{11, true}, fragile{12, false}});
  test_pool pool;
  chunk_encoder<dense_store<fragile, int>> chunks(run.store, pool, 2);
  std::vector<char> bytes;
  CHECK(chunks.encode(bytes, 3, false, counting{0, 3}) == 3);
  const read_message<fragile> m(bytes);
  REQUIRE(m.items.size() == 3);
  CHECK_FALSE(m.items[0].failed);
  CHECK(m.items[1].failed);
  CHECK(m.items[1].name == 1);
  CHECK(m.items[1].type == foreman::serialization_error_type);
  CHECK(m.items[1].message.find("task 1 could not be encoded on the master") != std::string::npos);
  CHECK(m.items[1].message.find("cannot save fragile 11") != std::string::npos);
  CHECK_FALSE(m.items[2].failed);
  REQUIRE(m.values.size() == 2);
  CHECK(m.values[0].n == 10);
  CHECK(m.values[1].n == 12);

  // A group of a grouped pool names the task by its index in the whole run, and itself as a
  // sub-master.
  const std::vector<std::uint64_t> shown{100, 101, 102};
  pool.shown_tasks = &shown;
  pool.shown = {4, 5, 6};
  CHECK(chunks.encode(bytes, 3, false, counting{0, 3}) == 3);
  CHECK(read_message<fragile>(bytes).items[1].message.find("task 101 could not be encoded on sub-master 4") !=
        std::string::npos);
}

TEST_CASE("a chunk encoded ahead is sent only while it is the one the scheduler hands out next", "[chunk_encoder]") {
  std::vector<std::string> tasks;
  for (int k = 0; k < 10; ++k) tasks.push_back("task " + std::to_string(k));
  run_of<std::string> run(tasks);
  const test_pool pool;
  chunk_encoder<dense_store<std::string, int>> chunks(run.store, pool, 3);
  scheduler s(scheduler::config{schedule::dynamic, 2, 2, 2});
  s.add_range(0, 10);

  CHECK(chunks.prepare(s));
  CHECK_FALSE(chunks.prepare(s)); // the same first ticket: kept, not encoded again
  REQUIRE(chunks.prepared_is_next(s));
  std::vector<char> bytes;
  CHECK(chunks.take_prepared(bytes) == 2);
  CHECK_FALSE(chunks.prepared_is_next(s)); // taken
  CHECK(read_message<std::string>(bytes).values == std::vector<std::string>{"task 0", "task 1"});
  CHECK(s.take(1) == 0);
  CHECK(s.take(1) == 1);

  // The scheduler moved on: the next one starts at ticket 2.
  CHECK(chunks.prepare(s));
  CHECK(chunks.prepared_is_next(s));
  // Taken by another path (refill() encoding a chunk itself): no longer next, prepared again.
  CHECK(s.take(2) == 2);
  CHECK_FALSE(chunks.prepared_is_next(s));
  CHECK(chunks.prepare(s));
  CHECK(chunks.take_prepared(bytes) == 2);
  CHECK(read_message<std::string>(bytes).values == std::vector<std::string>{"task 3", "task 4"});
  CHECK(s.take(1) == 3);
  CHECK(s.take(1) == 4);

  // A ticket taken back from a lost worker goes first: the prepared chunk waits.
  CHECK(chunks.prepare(s));
  s.requeue(1);
  CHECK_FALSE(chunks.prepared_is_next(s));
  CHECK(s.take(1) == 1);
  CHECK(chunks.prepared_is_next(s)); // still starts at ticket 5, which is next again

  // Cancelled: forgotten.
  chunks.drop_prepared();
  CHECK_FALSE(chunks.prepared_is_next(s));
}

TEST_CASE("automatic chunks and chunks with bodies are not sent from ahead", "[chunk_encoder]") {
  run_of<std::string> run({"a", std::string(body_threshold, 'b'), "c", "d"});
  const test_pool pool;
  chunk_encoder<dense_store<std::string, int>> chunks(run.store, pool, 1);
  scheduler automatic(scheduler::config{schedule::dynamic, 0, 2, 2});
  automatic.add_range(0, 4);
  CHECK_FALSE(chunks.prepare(automatic));
  CHECK_FALSE(chunks.prepared_is_next(automatic));

  scheduler fixed(scheduler::config{schedule::dynamic, 2, 2, 2});
  fixed.add_range(0, 4);
  CHECK(chunks.prepare(fixed)); // tickets 0-1: a body among them
  CHECK_FALSE(chunks.prepared_is_next(fixed));
  CHECK_FALSE(chunks.prepare(fixed)); // marked, not encoded on every idle pass
  CHECK(fixed.take(1) == 0);
  CHECK(fixed.take(1) == 1);
  CHECK(chunks.prepare(fixed)); // tickets 2-3: none
  CHECK(chunks.prepared_is_next(fixed));
}
