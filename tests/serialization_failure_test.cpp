// A task or result that cannot travel: its serialize() throws while saving (on the master for a
// task, on a worker for a result) or loading (on a worker for a task, on the master for a
// result), a polymorphic type is not registered, a load does not match its save, or an
// allocation fails while decoding. Each must fail that task alone, as
// "foreman::serialization_error" with the cause, end the run on every rank, leave the other
// results right, and leave the pool serving the next run. At 1 rank nothing is serialized: the
// same runs must then simply succeed.
//
// tests/CMakeLists.txt runs this program twice: as it is, and with --piece-bytes 9000
// (tests/mpi_main.cpp), so that the bodies and long messages of these cases travel in pieces
// (wire.hpp), and the bodies of failed items are dropped piece by piece.

#include "catch.hpp"
#include "test_support.hpp"

#include <foreman/foreman.hpp>

#include <boost/archive/archive_exception.hpp>
#include <boost/serialization/split_member.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

namespace foreman_test {

/// How a probe's serialize() misbehaves.
enum fault : int {
  none = 0,
  save_throws,       // saving throws after writing part of it
  load_throws,       // loading throws std::runtime_error
  load_unregistered, // loading throws as Boost does for a polymorphic type not registered here
  load_bad_alloc,    // loading runs out of memory
  load_malformed,    // its bytes do not hold what the load expects (a string is missing)
  load_short,        // the load reads fewer bytes than the save wrote
  load_not_std,      // loading throws an int
};

/// A task, and a result: `fault` says how its own serialize() misbehaves, `result_fault` what the
/// result of this task gets.
struct probe {
  int n = 0;
  int fault = none;
  int result_fault = none;
  std::string text;

  template <class Archive>
  void save(Archive& ar, unsigned) const {
    ar << fault << n;
    if (fault == save_throws) throw std::runtime_error("cannot save probe " + std::to_string(n));
    ar << result_fault;
    if (fault != load_malformed) ar << text;
    if (fault == load_short) ar << n;
  }
  template <class Archive>
  void load(Archive& ar, unsigned) {
    ar >> fault >> n >> result_fault;
    switch (fault) {
    case load_throws:
      throw std::runtime_error("cannot load probe " + std::to_string(n));
    case load_unregistered:
      throw boost::archive::archive_exception(boost::archive::archive_exception::unregistered_class, "shape");
    case load_bad_alloc:
      throw std::bad_alloc();
    case load_not_std:
      throw 42;
    default:
      break;
    }
    ar >> text;
  }
  BOOST_SERIALIZATION_SPLIT_MEMBER()
};

inline probe work(const probe& t) {
  probe r;
  r.n = t.n * 10;
  r.fault = t.result_fault;
  r.text = t.text + "!";
  return r;
}

/// Which ranks refuse large allocations through picky_allocator.
enum class refusing { nobody, workers, master };
inline refusing refuse = refusing::nobody;

/// Refuses (std::bad_alloc) allocations of 512 KiB or more on the ranks `refuse` names.
template <class T>
struct picky_allocator {
  using value_type = T;
  picky_allocator() = default;
  template <class U>
  picky_allocator(const picky_allocator<U>&) {}
  T* allocate(std::size_t n) {
    const bool here = refuse == (world_rank() == 0 ? refusing::master : refusing::workers);
    if (here && n * sizeof(T) >= (std::size_t{512} << 10)) throw std::bad_alloc();
    return std::allocator<T>().allocate(n);
  }
  void deallocate(T* p, std::size_t n) { std::allocator<T>().deallocate(p, n); }
  friend bool operator==(const picky_allocator&, const picky_allocator&) { return true; }
  friend bool operator!=(const picky_allocator&, const picky_allocator&) { return false; }
};
using picky_vector = std::vector<double, picky_allocator<double>>;

} // namespace foreman_test

namespace {

using namespace foreman_test;

constexpr std::size_t poisoned = 4; // the task that cannot travel, in the middle of a chunk of 3
constexpr int task_count = 9;

// The sub-masters of the pool under test: empty in a flat pool. When this program is built for
// grouped pools (tests/CMakeLists.txt, foreman_grouped_runs), a task is decoded first on its
// sub-master, and a result last: a value whose load throws fails there.
std::vector<int> sub_masters;

// The sub-master of the group `worker` is in.
int sub_master_of(int worker) {
  int sub = 0;
  for (const int s : sub_masters)
    if (s <= worker) sub = s;
  return sub;
}

// Where a value on its way to or from rank `worker` could not be moved: " on worker 3: ", or, on
// a sub-master, " on sub-master 1: ".
std::string on_worker(int worker) {
  if (std::find(sub_masters.begin(), sub_masters.end(), worker) != sub_masters.end())
    return " on sub-master " + std::to_string(worker) + ": ";
  return " on worker " + std::to_string(worker) + ": ";
}

// Where the result of a task that rank `worker` ran is decoded: " on the master: ", or on the
// sub-master of its group.
std::string on_master(int worker) {
  return sub_masters.empty() ? std::string(" on the master: ")
                             : " on sub-master " + std::to_string(sub_master_of(worker)) + ": ";
}

std::vector<probe> probes(int task_fault, int result_fault) {
  std::vector<probe> tasks(task_count);
  for (int i = 0; i < task_count; ++i) {
    tasks[static_cast<std::size_t>(i)].n = i;
    tasks[static_cast<std::size_t>(i)].text = "probe " + std::to_string(i);
  }
  tasks[poisoned].fault = task_fault;
  tasks[poisoned].result_fault = result_fault;
  return tasks;
}

// Task `poisoned` failed as foreman::serialization_error with the message `expected(worker)`;
// every other task is right.
template <class Expected>
void check_outcomes(const foreman::master_worker<probe, probe>& pool, const std::vector<foreman::outcome<probe>>& out,
                    const std::vector<probe>& tasks, Expected expected) {
  REQUIRE(out.size() == tasks.size());
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    INFO("task " << i);
    if (i == poisoned && world_size() > 1) {
      REQUIRE_FALSE(out[i].ok());
      const foreman::task_failure& f = out[i].failure();
      CHECK(f.index == i);
      CHECK(f.type == "foreman::serialization_error");
      CHECK(f.message == expected(f.worker));
      CHECK(f.worker == pool.last_run().tasks[i].worker);
      CHECK(pool.last_run().tasks[i].failed);
      continue;
    }
    REQUIRE(out[i].ok()); // at 1 rank nothing is serialized: the poisoned task succeeds too
    CHECK(out[i].value().n == tasks[i].n * 10);
    CHECK(out[i].value().text == tasks[i].text + "!");
    CHECK_FALSE(pool.last_run().tasks[i].failed);
  }
}

// The pool serves a clean run after the failing one.
void check_next_run(foreman::master_worker<probe, probe>& pool) {
  const std::vector<probe> clean = probes(none, none);
  const auto r = pool.run(clean, work);
  if (!pool.is_master()) return;
  REQUIRE(r.size() == clean.size());
  for (std::size_t i = 0; i < clean.size(); ++i) {
    CHECK(r[i].n == clean[i].n * 10);
    CHECK(r[i].text == clean[i].text + "!");
  }
  CHECK(pool.last_run().failures == 0);
}

// Runs the poisoned task list with automatic chunks and with chunks of 3, then a clean run.
template <class Expected>
void check_case(int task_fault, int result_fault, Expected expected) {
  foreman::master_worker<probe, probe> pool;
  sub_masters = pool.sub_masters();
  const std::vector<probe> tasks = probes(task_fault, result_fault);
  for (std::size_t chunk : {std::size_t{0}, std::size_t{3}}) {
    INFO("chunk_size " << chunk);
    foreman::options opt;
    opt.chunk_size = chunk;
    const auto out = pool.run_outcomes(tasks, work, opt);
    if (pool.is_master())
      check_outcomes(pool, out, tasks, expected);
    else
      CHECK(out.empty());
    check_next_run(pool);
  }
  // And through run(): one task_error naming it.
  if (pool.is_master() && world_size() > 1) {
    try {
      pool.run(tasks, work);
      FAIL("run() returned although task 4 could not travel");
    } catch (const foreman::task_error& e) {
      REQUIRE(e.failures().size() == 1);
      CHECK(e.failures().front().type == "foreman::serialization_error");
    }
  } else {
    pool.run(tasks, work);
  }
  check_next_run(pool);
}


} // namespace

TEST_CASE("serialization_error is a foreman::error with a stable type name", "[serialization_failure]") {
  STATIC_REQUIRE(std::is_base_of_v<foreman::error, foreman::serialization_error>);
  CHECK(std::string(foreman::serialization_error("x").what()) == "foreman: x");
  CHECK(foreman::detail::type_name<foreman::serialization_error>() == "foreman::serialization_error");
}

TEST_CASE("a result whose serialize() throws while the worker saves it", "[serialization_failure]") {
  check_case(none, save_throws, [](int w) {
    return "foreman: the result of task 4 could not be encoded" + on_worker(w) +
           "std::runtime_error: cannot save probe 40";
  });
}

TEST_CASE("a task whose serialize() throws while the master saves it", "[serialization_failure]") {
  check_case(save_throws, none, [](int) {
    return std::string("foreman: task 4 could not be encoded on the master: std::runtime_error: cannot save probe 4");
  });
}

TEST_CASE("a task whose load throws on the worker", "[serialization_failure]") {
  check_case(load_throws, none, [](int w) {
    return "foreman: task 4 could not be decoded" + on_worker(w) + "std::runtime_error: cannot load probe 4";
  });
}

TEST_CASE("a task of a polymorphic type the worker's binary did not register", "[serialization_failure]") {
  check_case(load_unregistered, none, [](int w) {
    return "foreman: task 4 could not be decoded" + on_worker(w) +
           "boost::archive::archive_exception: unregistered class - shape";
  });
}

TEST_CASE("a task whose load runs out of memory on the worker", "[serialization_failure]") {
  check_case(load_bad_alloc, none, [](int w) {
    return "foreman: task 4 could not be decoded" + on_worker(w) + "std::bad_alloc: std::bad_alloc";
  });
}

TEST_CASE("a task whose bytes are not what its load expects", "[serialization_failure]") {
  check_case(load_malformed, none, [](int w) {
    return "foreman: task 4 could not be decoded" + on_worker(w) +
           "boost::archive::archive_exception: input stream error";
  });
}

TEST_CASE("a task whose load reads fewer bytes than its save wrote", "[serialization_failure]") {
  // Boost's class information (u8 tracking, u32 version), fault, n, result_fault, text (u64
  // length + 7 bytes "probe 4"), and one int more
  check_case(load_short, none, [](int w) {
    return "foreman: task 4 could not be decoded" + on_worker(w) + "its load read 32 of the 36 bytes its save wrote";
  });
}

TEST_CASE("a task whose load throws something not derived from std::exception", "[serialization_failure]") {
  check_case(load_not_std, none, [](int w) {
    return "foreman: task 4 could not be decoded" + on_worker(w) + "int: an exception not derived from std::exception";
  });
}

TEST_CASE("a result whose load throws on the master", "[serialization_failure]") {
  check_case(none, load_throws, [](int w) {
    return "foreman: the result of task 4 could not be decoded" + on_master(w) + "std::runtime_error: cannot load probe 40";
  });
}

TEST_CASE("a result of a polymorphic type the master's binary did not register", "[serialization_failure]") {
  check_case(none, load_unregistered, [](int w) {
    return "foreman: the result of task 4 could not be decoded" + on_master(w) +
           "boost::archive::archive_exception: unregistered class - shape";
  });
}

TEST_CASE("a result whose load runs out of memory on the master", "[serialization_failure]") {
  check_case(none, load_bad_alloc, [](int w) {
    return "foreman: the result of task 4 could not be decoded" + on_master(w) + "std::bad_alloc: std::bad_alloc";
  });
}

TEST_CASE("a result whose bytes are not what its load expects", "[serialization_failure]") {
  check_case(none, load_malformed, [](int w) {
    return "foreman: the result of task 4 could not be decoded" + on_master(w) +
           "boost::archive::archive_exception: input stream error";
  });
}

// [flat]: a grouped pool's batches carry no bodies (docs/api.md, "Grouped pools").
TEST_CASE("a body whose storage cannot be allocated where it arrives", "[serialization_failure][flat]") {
  const std::size_t large = 80000, small = 5000; // 625 KiB and 39 KiB of doubles: both bodies
  {
    // Task 4 cannot be allocated on the workers; task 5's body, right behind it, must still land
    // in task 5.
    foreman::master_worker<picky_vector, double> pool;
    std::vector<picky_vector> tasks;
    for (int i = 0; i < task_count; ++i)
      tasks.emplace_back(i == 4 ? large : small + static_cast<std::size_t>(i), static_cast<double>(i));
    refuse = refusing::workers;
    auto sum = [](const picky_vector& v) {
      double s = 0;
      for (double x : v) s += x;
      return s;
    };
    foreman::options opt;
    opt.chunk_size = 3;
    const auto out = pool.run_outcomes(tasks, sum, opt);
    if (pool.is_master()) {
      REQUIRE(out.size() == tasks.size());
      for (std::size_t i = 0; i < tasks.size(); ++i) {
        INFO("task " << i);
        if (i == poisoned && world_size() > 1) {
          REQUIRE_FALSE(out[i].ok());
          const foreman::task_failure& f = out[i].failure();
          CHECK(f.type == "foreman::serialization_error");
          CHECK(f.message == "foreman: task 4 could not be decoded" + on_worker(f.worker) +
                                 "its 640000 bytes could not be allocated: std::bad_alloc: std::bad_alloc");
        } else {
          REQUIRE(out[i].ok());
          CHECK(out[i].value() == sum(tasks[i]));
        }
      }
    }
    refuse = refusing::nobody;
    const auto again = pool.run(tasks, sum, opt);
    if (pool.is_master())
      for (std::size_t i = 0; i < tasks.size(); ++i) CHECK(again[i] == sum(tasks[i]));
  }
  {
    // The result of task 4 cannot be allocated on the master.
    refuse = refusing::master;
    foreman::master_worker<int, picky_vector> pool;
    auto make = [&](int i) { return picky_vector(i == 4 ? large : small + static_cast<std::size_t>(i), double(i)); };
    std::vector<int> tasks;
    for (int i = 0; i < task_count; ++i) tasks.push_back(i);
    foreman::options opt;
    opt.chunk_size = 3;
    const auto out = pool.run_outcomes(tasks, make, opt);
    if (pool.is_master()) {
      REQUIRE(out.size() == tasks.size());
      for (std::size_t i = 0; i < tasks.size(); ++i) {
        INFO("task " << i);
        if (i == poisoned) {
          REQUIRE_FALSE(out[i].ok());
          const foreman::task_failure& f = out[i].failure();
          if (world_size() > 1) {
            CHECK(f.type == "foreman::serialization_error");
            CHECK(f.message == "foreman: the result of task 4 could not be decoded on the master: its 640000 bytes "
                               "could not be allocated: std::bad_alloc: std::bad_alloc");
          } else {
            CHECK(f.type == "std::bad_alloc"); // one rank: the master's own task could not allocate it
          }
        } else {
          REQUIRE(out[i].ok());
          CHECK(out[i].value() == make(static_cast<int>(i)));
        }
      }
    }
    refuse = refusing::nobody;
    const auto again = pool.run(tasks, make, opt);
    if (pool.is_master())
      for (std::size_t i = 0; i < tasks.size(); ++i) CHECK(again[i] == make(static_cast<int>(i)));
  }
}
// ---- a tasks message whose framing is broken -----------------------------------------------------

namespace {

// Where item k of a tasks message of probes starts: after the header (u64 pool, u32 run), u32
// count and u32 bodies, each item is u64 index, u32 length, then `length` archived bytes.
std::size_t probe_item(const std::vector<char>& message, std::size_t k) {
  std::size_t at = 12 + 4 + 4;
  for (std::size_t j = 0; j < k; ++j) {
    std::uint32_t length = 0;
    std::memcpy(&length, message.data() + at + 8, sizeof length);
    at += 8 + 4 + length;
  }
  return at;
}

// A damage done to worker 1's first tasks message, and what it makes the worker say.
struct damage {
  const char* what;
  std::function<void(std::vector<char>&)> edit;
  std::string why;
};

const std::string truncated =
    "truncated message: the peer sent fewer bytes than its message layout needs"; // decoder::truncated()

// The tasks of worker 1's first message (0, 1, 2: chunks of 3, and worker 1 is sent the first)
// failed as a damaged message, `why`; every other task is right.
template <class Pool, class Outcomes, class Tasks, class Check>
void check_damaged(const Pool& pool, const Outcomes& out, const Tasks& tasks, const std::string& why, Check right) {
  REQUIRE(out.size() == tasks.size());
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    INFO("task " << i);
    if (i < 3) {
      REQUIRE_FALSE(out[i].ok());
      const foreman::task_failure& f = out[i].failure();
      CHECK(f.index == i);
      CHECK(f.worker == 1);
      CHECK(f.type == "foreman::serialization_error");
      CHECK(f.message == "foreman: task " + std::to_string(i) +
                             " could not be decoded on worker 1: the tasks message holding it was damaged: " + why);
      CHECK(pool.last_run().tasks[i].failed);
      CHECK(pool.last_run().tasks[i].worker == 1);
    } else {
      REQUIRE(out[i].ok());
      right(i, out[i].value());
      CHECK_FALSE(pool.last_run().tasks[i].failed);
    }
  }
  CHECK(pool.last_run().failures == 3);
  CHECK(pool.last_run().losses.empty());
}

} // namespace

// [flat] here and below: the damage is injected into the flat transport's tasks messages.
TEST_CASE("a tasks message whose framing is broken fails the tasks of that message; the run and the pool go on",
          "[serialization_failure][damaged][flat]") {
  if (world_size() < 2) return; // no worker, no message
  const std::vector<damage> damages = {
      {"cut inside the first item", [](std::vector<char>& m) { m.resize(probe_item(m, 0) + 8 + 4 + 3); }, truncated},
      {"cut after the second item's index", [](std::vector<char>& m) { m.resize(probe_item(m, 1) + 8); }, truncated},
      {"cut before the last item", [](std::vector<char>& m) { m.resize(probe_item(m, 2)); }, truncated},
      {"the second item's length past the message's end",
       [](std::vector<char>& m) {
         const std::uint32_t length = 0x7FFFFFF0u;
         std::memcpy(m.data() + probe_item(m, 1) + 8, &length, sizeof length);
       },
       truncated},
      {"cut inside the item count", [](std::vector<char>& m) { m.resize(14); }, truncated},
      {"cut inside the header", [](std::vector<char>& m) { m.resize(10); },
       "the message is 10 bytes long, shorter than its header"},
  };
  foreman::master_worker<probe, probe> pool;
  const std::vector<probe> tasks = probes(none, none);
  foreman::options opt;
  opt.chunk_size = 3;
  for (const damage& d : damages) {
    INFO(d.what);
    if (world_rank() == 1) foreman::detail::injected_tasks_damage() = d.edit;
    const auto out = pool.run_outcomes(tasks, work, opt);
    if (pool.is_master())
      check_damaged(pool, out, tasks, d.why, [&](std::size_t i, const probe& r) {
        CHECK(r.n == tasks[i].n * 10);
        CHECK(r.text == tasks[i].text + "!");
      });
    else
      CHECK(foreman::detail::injected_tasks_damage() == nullptr); // rank 1's fired
    check_next_run(pool);
  }
}

TEST_CASE("a broken tasks message that announced bodies: those still to come are taken, and the next message "
          "is read right",
          "[serialization_failure][damaged][flat]") {
  if (world_size() < 2) return;
  // Tasks of 40 KiB of doubles travel as bodies: item = u64 index, u8 kind 1, u64 element count.
  const std::size_t body = 5000;
  std::vector<std::vector<double>> tasks;
  for (int i = 0; i < task_count; ++i) tasks.emplace_back(body + static_cast<std::size_t>(i), 0.5 * i);
  auto sum = [](const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x;
    return s;
  };
  foreman::master_worker<std::vector<double>, double> pool;
  foreman::options opt;
  opt.chunk_size = 3;
  constexpr std::size_t item = 8 + 1 + 8, first = 12 + 4 + 4;
  const std::vector<damage> damages = {
      // Its body is received, the rest cannot be read; the two bodies announced after it are
      // still on their way.
      {"cut after the first item", [](std::vector<char>& m) { m.resize(first + item); }, truncated},
      {"the second item of an unknown kind", [](std::vector<char>& m) { m[first + item + 8] = 7; },
       "malformed message: unknown item kind 7"},
  };
  for (const damage& d : damages) {
    INFO(d.what);
    if (world_rank() == 1) foreman::detail::injected_tasks_damage() = d.edit;
    const auto out = pool.run_outcomes(tasks, sum, opt);
    if (pool.is_master())
      check_damaged(pool, out, tasks, d.why, [&](std::size_t i, double r) { CHECK(r == sum(tasks[i])); });
    const auto again = pool.run(tasks, sum, opt);
    if (pool.is_master()) {
      REQUIRE(again.size() == tasks.size());
      for (std::size_t i = 0; i < tasks.size(); ++i) CHECK(again[i] == sum(tasks[i]));
    }
  }
}
