// Shared data and worker set-up (shared.hpp): a value sent to every worker once per run or job,
// never per task, and an initializer run once per worker per run or job, whose failure takes that
// worker out of the run only. Runs at 1-4 ranks (at 1 rank the master uses its own value and runs
// the initializer itself).
//
// tests/CMakeLists.txt runs this program twice: as it is, and with --piece-bytes 9000
// (tests/mpi_main.cpp), so that the large values travel in pieces (a body, and an envelope's
// message); and, with FOREMAN_GROUPED_TESTS, in grouped pools too (but its [flat] cases), where a
// sub-master runs no task and no initializer in a run (it does in a job, which is served flat),
// and passes the master's value on to its group: it decodes it and encodes it again.
#include "catch.hpp"
#include "test_support.hpp"

#include <foreman/foreman.hpp>

#include <boost/mpi/collectives.hpp>
#include <boost/mpi/communicator.hpp>
#include <boost/serialization/split_member.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <numeric>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

// A shared value that counts, in this process, how often it is encoded (saved: on the master)
// and decoded (loaded: on a worker).
struct counted {
  std::vector<std::uint64_t> values;
  static inline int saves = 0;
  static inline int loads = 0;

  template <class Archive>
  void save(Archive& ar, unsigned) const {
    ++saves;
    ar << values;
  }
  template <class Archive>
  void load(Archive& ar, unsigned) {
    ++loads;
    ar >> values;
  }
  BOOST_SERIALIZATION_SPLIT_MEMBER()
};

std::vector<std::uint64_t> values_from(std::uint64_t seed, std::size_t n) {
  std::vector<std::uint64_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = foreman_test::mix(seed * 1000003 + i) % 1000000;
  return v;
}

std::vector<int> first_ints(int n) {
  std::vector<int> v(static_cast<std::size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  return v;
}

// What a task computes from the shared values: the same on every rank.
std::uint64_t look_up(int x, const std::vector<std::uint64_t>& values) {
  return values[static_cast<std::size_t>(x) % values.size()] * 3 + static_cast<std::uint64_t>(x);
}

// Per process: how often an initializer ran, and what it left for the tasks.
int inits = 0;
bool initialized = false;
std::uint64_t init_sum = 0;

// Whether `rank` is a sub-master of `pool` (a grouped pool: foreman::hierarchy).
template <class Pool>
bool is_sub_master(const Pool& pool, int rank) {
  const std::vector<int> subs = pool.sub_masters();
  return std::find(subs.begin(), subs.end(), rank) != subs.end();
}

// The given count on every rank of the world, gathered on rank 0 (empty elsewhere).
std::vector<int> on_every_rank(int count) {
  boost::mpi::communicator world;
  std::vector<int> all;
  boost::mpi::gather(world, count, all, 0);
  return all;
}

} // namespace

TEST_CASE("a shared value reaches every worker once per run, and every task sees the master's", "[shared]") {
  foreman::master_worker<int, std::uint64_t> pool;
  counted::saves = counted::loads = 0;
  // Only the master's value travels: the workers pass another one, which must not be used.
  counted mine;
  mine.values = pool.is_master() ? values_from(1, 1000) : values_from(99, 3);
  const auto fn = foreman::with_shared(mine, [](int x, const counted& c) { return look_up(x, c.values); });
  const std::vector<int> tasks = first_ints(300);
  std::vector<std::uint64_t> expected;
  for (int x : tasks) expected.push_back(look_up(x, values_from(1, 1000)));

  const std::vector<std::uint64_t> by_run = pool.run(tasks, fn);
  const auto outcomes = pool.run_outcomes(tasks, fn);
  // Another value in the next run: the workers receive it afresh.
  counted next;
  next.values = pool.is_master() ? values_from(2, 777) : std::vector<std::uint64_t>{};
  std::vector<std::uint64_t> into;
  pool.run_into(tasks,
                foreman::with_shared(next, [](int x, const counted& c, std::uint64_t& r) { r = look_up(x, c.values); }),
                into);

  const bool workers = pool.worker_count() > 0;
  if (pool.is_master()) {
    CHECK(by_run == expected);
    REQUIRE(outcomes.size() == tasks.size());
    for (std::size_t i = 0; i < tasks.size(); ++i) CHECK(outcomes[i].value() == expected[i]);
    REQUIRE(into.size() == tasks.size());
    for (int x : tasks) CHECK(into[static_cast<std::size_t>(x)] == look_up(x, values_from(2, 777)));
    CHECK(counted::saves == (workers ? 3 : 0)); // encoded once per run, whatever the workers and tasks
    CHECK(counted::loads == 0);
    CHECK(pool.last_run().losses.empty());
  } else {
    CHECK(counted::loads == 3); // received once per run
    CHECK(counted::saves == (is_sub_master(pool, pool.rank()) ? 3 : 0)); // a sub-master passes it on
  }
}

TEST_CASE("a large shared vector arrives intact, ahead of large tasks; a shared reference is not copied", "[shared]") {
  using indices = std::vector<std::uint32_t>; // 40 KB: each task travels as a body too
  foreman::master_worker<indices, std::uint64_t> pool;
  const std::size_t n = (std::size_t{24} << 20) / sizeof(std::uint64_t); // 24 MiB
  std::vector<std::uint64_t> big;
  if (pool.is_master()) big = values_from(5, n);
  std::vector<indices> tasks;
  for (std::uint32_t k = 0; k < 24; ++k) {
    indices t(10000);
    for (std::uint32_t j = 0; j < t.size(); ++j)
      t[j] = static_cast<std::uint32_t>(foreman_test::mix(k * 100000 + j) % n);
    tasks.push_back(std::move(t));
  }
  const std::vector<std::uint64_t>* seen = nullptr;
  auto sum = [&](const indices& t, const std::vector<std::uint64_t>& values) {
    seen = &values;
    if (values.size() != n) throw std::runtime_error("the shared vector has " + std::to_string(values.size()));
    std::uint64_t s = 0;
    for (std::uint32_t j : t) s += values[j];
    return s;
  };
  const auto results = pool.run(tasks, foreman::with_shared(std::cref(big), sum));
  if (pool.is_master()) {
    REQUIRE(results.size() == tasks.size());
    for (std::size_t k = 0; k < tasks.size(); ++k) {
      std::uint64_t s = 0;
      for (std::uint32_t j : tasks[k]) s += big[j];
      CHECK(results[k] == s);
    }
    if (pool.worker_count() == 0) CHECK(seen == &big); // std::cref: the master's own vector, no copy
  }
  // The same size again, other values: a worker receives them into the vector it kept, whole.
  if (pool.is_master())
    for (std::uint64_t& v : big) v = v * 7 + 1;
  const auto again = pool.run(tasks, foreman::with_shared(std::cref(big), sum));
  if (pool.is_master())
    for (std::size_t k = 0; k < tasks.size(); ++k) {
      std::uint64_t s = 0;
      for (std::uint32_t j : tasks[k]) s += big[j];
      CHECK(again[k] == s);
    }
}

namespace {
// A shared value longer than a posted receive that is not a body: archived, sent as an envelope
// and then the message itself.
struct model {
  std::vector<double> weights;
  std::string name;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar& weights& name;
  }
};
} // namespace

TEST_CASE("an archived shared value longer than a posted receive arrives intact", "[shared]") {
  foreman::master_worker<int, double> pool;
  model m;
  if (pool.is_master()) {
    m.name = "model of " + std::to_string(pool.worker_count()) + " workers";
    for (std::size_t i = 0; i < (std::size_t{1} << 17); ++i) m.weights.push_back(static_cast<double>(i) * 0.5);
  }
  auto predict = [](int x, const model& shared) {
    return shared.weights.at(static_cast<std::size_t>(x) * 1000) + static_cast<double>(shared.name.size());
  };
  const auto results = pool.run(first_ints(100), foreman::with_shared(m, predict));
  if (pool.is_master())
    for (int x = 0; x < 100; ++x) CHECK(results[static_cast<std::size_t>(x)] == predict(x, m));
}

TEST_CASE("an initializer runs once on every worker per run, before its first task", "[shared]") {
  foreman::master_worker<int, int> pool;
  inits = 0;
  const auto fn = foreman::with_initializer(
      [] {
        ++inits;
        initialized = true;
      },
      [](int x) {
        if (!initialized) throw std::logic_error("a task ran before the initializer");
        return x * 3;
      });
  for (int run = 0; run < 3; ++run) {
    initialized = false;
    // A run with fewer tasks than workers: a worker that is sent none sets up all the same.
    const std::vector<int> tasks = first_ints(run == 1 ? 1 : 100);
    const auto results = pool.run(tasks, fn);
    if (pool.is_master())
      for (int x : tasks) CHECK(results[static_cast<std::size_t>(x)] == x * 3);
  }
  const std::vector<int> counts = on_every_rank(inits);
  if (pool.is_master()) {
    CHECK(counts[0] == (pool.worker_count() > 0 ? 0 : 3));
    for (std::size_t w = 1; w < counts.size(); ++w) CHECK(counts[w] == (is_sub_master(pool, static_cast<int>(w)) ? 0 : 3));
  }
}

TEST_CASE("the initializer takes the shared value, in either order of the wrappers", "[shared]") {
  foreman::master_worker<int, std::uint64_t> pool;
  const std::vector<std::uint64_t> values = pool.is_master() ? values_from(3, 500) : std::vector<std::uint64_t>{};
  const std::uint64_t master_sum = [] {
    const auto v = values_from(3, 500);
    return std::accumulate(v.begin(), v.end(), std::uint64_t{0});
  }();
  auto init = [](const std::vector<std::uint64_t>& v) {
    ++inits;
    init_sum = std::accumulate(v.begin(), v.end(), std::uint64_t{0});
  };
  auto task = [](int x, const std::vector<std::uint64_t>& v) { return look_up(x, v) + init_sum; };
  inits = 0;
  const auto tasks = first_ints(200);
  const auto a = pool.run(tasks, foreman::with_shared(values, foreman::with_initializer(init, task)));
  init_sum = 0;
  const auto b = pool.run(tasks, foreman::with_initializer(init, foreman::with_shared(values, task)));
  if (pool.is_master()) {
    for (int x : tasks) {
      CHECK(a[static_cast<std::size_t>(x)] == look_up(x, values) + master_sum);
      CHECK(b[static_cast<std::size_t>(x)] == look_up(x, values) + master_sum);
    }
  }
  if (!pool.is_master() || pool.worker_count() == 0) CHECK(inits == (is_sub_master(pool, pool.rank()) ? 0 : 2));
}

// [flat]: round_robin's shares, and the master's line about worker 2 (in a grouped pool its
// sub-master's); hierarchy_test has a grouped pool's workers that fail to set up.
TEST_CASE("a worker whose initializer throws is out of that run only: its tasks run elsewhere, the loss is "
          "reported, and its next run sets up again",
          "[shared][flat]") {
  if (foreman_test::world_size() < 3) return; // needs a worker that sets up (see the next test for none)
  foreman::master_worker<int, int> pool;
  inits = 0;
  bool refuse = true; // on rank 2, the initializer throws while this is set
  const auto fn = foreman::with_initializer(
      [&] {
        ++inits;
        if (refuse && pool.rank() == 2) throw std::runtime_error("no licence on rank 2");
      },
      [](int x) {
        foreman_test::sleep_us(200);
        return x * 5;
      });
  foreman::options opt;
  opt.schedule = foreman::schedule::round_robin; // worker 2 is sent its share at once
  opt.chunk_size = 4;
  const auto tasks = first_ints(120);
  auto check_results = [&](const std::vector<int>& results) {
    REQUIRE(results.size() == tasks.size());
    for (int x : tasks) CHECK(results[static_cast<std::size_t>(x)] == x * 5);
  };

  foreman_test::stderr_capture captured;
  const auto refused = pool.run(tasks, fn, opt);
  const std::string announced = captured.text();
  if (pool.is_master()) {
    check_results(refused);
    const foreman::run_info& info = pool.last_run();
    CHECK(info.lost_workers == std::vector<int>{2});
    REQUIRE(info.losses.size() == 1);
    CHECK(info.losses[0].worker == 2);
    CHECK(info.losses[0].reason == foreman::loss_reason::initializer_failed);
    CHECK(info.losses[0].message == "std::runtime_error: no licence on rank 2");
    CHECK(info.losses[0].tasks_held > 0);
    CHECK(info.retries == 0); // no task had started on it
    for (const foreman::task_record& r : info.tasks) {
      CHECK(r.worker != 2);
      CHECK(r.attempts == 1);
    }
    INFO(announced);
    CHECK(
        announced.find("foreman: worker 2 could not set up for this run (std::runtime_error: no licence on rank 2)") !=
        std::string::npos);
  }

  refuse = false;
  const auto accepted = pool.run(tasks, fn, opt);
  if (pool.is_master()) {
    check_results(accepted);
    CHECK(pool.last_run().losses.empty());
    std::size_t on_two = 0;
    for (const foreman::task_record& r : pool.last_run().tasks) on_two += r.worker == 2 ? 1 : 0;
    CHECK(on_two == tasks.size() / static_cast<std::size_t>(pool.worker_count())); // its round-robin share
  }

  // The same in a job.
  refuse = true;
  {
    auto job = pool.start(fn, opt);
    if (job.is_master()) {
      for (int x : tasks) job.submit(x);
      while (job.pending() > 0) {
        const auto c = job.next();
        CHECK(c.result.value() == static_cast<int>(c.ticket) * 5);
        CHECK(c.worker != 2);
      }
      job.close();
      REQUIRE(pool.last_run().losses.size() == 1);
      CHECK(pool.last_run().losses[0].reason == foreman::loss_reason::initializer_failed);
    }
  }
  CHECK(inits == (pool.is_master() ? 0 : 3)); // once per run or job, the failed ones included
}

namespace {
// A shared value that cannot be loaded on rank 2.
struct picky {
  int value = 0;
  template <class Archive>
  void save(Archive& ar, unsigned) const {
    ar << value;
  }
  template <class Archive>
  void load(Archive& ar, unsigned) {
    ar >> value;
    if (foreman_test::world_rank() == 2) throw std::runtime_error("cannot load here");
  }
  BOOST_SERIALIZATION_SPLIT_MEMBER()
};
} // namespace

TEST_CASE("a worker that cannot decode the shared value is out of that run, as one whose initializer throws",
          "[shared]") {
  if (foreman_test::world_size() < 3) return;
  foreman::master_worker<int, int> pool;
  foreman::options opt;
  opt.announce_faults = false;
  const auto results =
      pool.run(first_ints(60), foreman::with_shared(picky{7}, [](int x, const picky& p) { return x + p.value; }), opt);
  if (pool.is_master()) {
    for (int x = 0; x < 60; ++x) CHECK(results[static_cast<std::size_t>(x)] == x + 7);
    REQUIRE(pool.last_run().losses.size() == 1);
    const foreman::worker_loss& loss = pool.last_run().losses[0];
    CHECK(loss.worker == 2);
    CHECK(loss.reason == foreman::loss_reason::initializer_failed);
    INFO(loss.message);
    CHECK(loss.message.find("foreman::serialization_error: foreman: the shared value could not be decoded on "
                            "worker 2") == 0);
    CHECK(loss.message.find("cannot load here") != std::string::npos);
  }
}

TEST_CASE("when no worker can set up, every task fails with foreman::initializer_error; the pool goes on", "[shared]") {
  foreman::master_worker<int, int> pool;
  const auto fn =
      foreman::with_initializer([] { throw std::runtime_error("no GPU here"); }, [](int x) { return x + 1; });
  foreman::options opt;
  opt.announce_faults = false;
  const auto tasks = first_ints(50);
  auto check_failure = [&](const foreman::task_failure& f) {
    CHECK(f.type == "foreman::initializer_error");
    CHECK(f.type == foreman::initializer_error_type);
    INFO(f.message);
    CHECK(f.message.find("std::runtime_error: no GPU here") != std::string::npos);
  };
  const auto outcomes = pool.run_outcomes(tasks, fn, opt);
  if (pool.is_master()) {
    REQUIRE(outcomes.size() == tasks.size());
    for (const auto& o : outcomes) {
      REQUIRE_FALSE(o.ok());
      check_failure(o.failure());
    }
    const foreman::run_info& info = pool.last_run();
    // Every worker that computes (not a sub-master: it sets up nothing in a run).
    CHECK(info.losses.size() == static_cast<std::size_t>(pool.worker_count()) - pool.sub_masters().size());
    for (const auto& loss : info.losses) {
      CHECK(loss.reason == foreman::loss_reason::initializer_failed);
      CHECK(loss.message == "std::runtime_error: no GPU here");
    }
    CHECK(info.failures == tasks.size());
    CHECK_THROWS_AS(pool.run(tasks, fn, opt), foreman::task_error);
  } else {
    pool.run(tasks, fn, opt);
  }
  // A job: each task completes as that failure.
  {
    auto job = pool.start(fn, opt);
    if (job.is_master()) {
      for (int x = 0; x < 10; ++x) job.submit(x);
      int failed = 0;
      while (job.pending() > 0) {
        const auto c = job.next();
        REQUIRE_FALSE(c.result.ok());
        check_failure(c.result.failure());
        ++failed;
      }
      CHECK(failed == 10);
    }
  }
  // Every worker is still in the pool.
  const auto results = pool.run(tasks, [](int x) { return x + 2; });
  if (pool.is_master()) {
    for (int x : tasks) CHECK(results[static_cast<std::size_t>(x)] == x + 2);
    CHECK(pool.last_run().losses.empty());
  }
}

namespace {
// A shared value whose save throws (on the master, where it is encoded).
struct unsendable {
  int value = 0;
  template <class Archive>
  void save(Archive&, unsigned) const {
    throw std::runtime_error("cannot save this one");
  }
  template <class Archive>
  void load(Archive& ar, unsigned) {
    ar >> value;
  }
  BOOST_SERIALIZATION_SPLIT_MEMBER()
};
} // namespace

TEST_CASE("a shared value that cannot be encoded fails every task as a serialization_error", "[shared]") {
  foreman::master_worker<int, int> pool;
  const auto fn = foreman::with_shared(unsendable{4}, [](int x, const unsendable& u) { return x + u.value; });
  const auto outcomes = pool.run_outcomes(first_ints(30), fn);
  if (pool.is_master()) {
    for (int x = 0; x < 30; ++x) {
      const auto& o = outcomes[static_cast<std::size_t>(x)];
      if (pool.worker_count() == 0) { // nothing is encoded: the master's own value serves
        CHECK(o.value() == x + 4);
        continue;
      }
      REQUIRE_FALSE(o.ok());
      CHECK(o.failure().type == "foreman::serialization_error");
      INFO(o.failure().message);
      CHECK(o.failure().message.find("the shared value could not be encoded on the master") != std::string::npos);
      CHECK(o.failure().message.find("cannot save this one") != std::string::npos);
    }
  }
  {
    auto job = pool.start(fn);
    if (job.is_master()) {
      job.submit(1);
      CHECK(job.next().result.ok() == (pool.worker_count() == 0));
    }
  }
  const auto results = pool.run(first_ints(30), [](int x) { return -x; });
  if (pool.is_master()) CHECK(results[29] == -29);
}

TEST_CASE("jobs, streams and reductions: the value is sent and the initializer run once per job", "[shared]") {
  foreman::master_worker<int, std::uint64_t> pool;
  counted::saves = counted::loads = 0;
  inits = 0;
  counted mine;
  if (pool.is_master()) mine.values = values_from(4, 640);
  const auto fn =
      foreman::with_shared(mine, foreman::with_initializer(
                                     [](const counted& c) {
                                       ++inits;
                                       init_sum = c.values.size();
                                     },
                                     [](int x, const counted& c) { return look_up(x, c.values) + init_sum; }));
  auto expected = [&](int x) { return look_up(x, values_from(4, 640)) + 640; };

  {
    auto job = pool.start(fn);
    if (job.is_master()) {
      for (int x = 0; x < 200; ++x) job.submit(x);
      while (job.pending() > 0) {
        const auto c = job.next();
        CHECK(c.result.value() == expected(static_cast<int>(c.ticket)));
      }
    }
  }
  int next = 0;
  auto source = [&]() -> std::optional<int> {
    if (next == 300) return std::nullopt;
    return next++;
  };
  std::size_t streamed = 0;
  pool.run_stream(source, fn, [&](std::uint64_t index, int, const std::uint64_t& r) {
    CHECK(r == expected(static_cast<int>(index)));
    ++streamed;
  });
  next = 0;
  const std::uint64_t total = pool.reduce(source, fn, std::uint64_t{0}, std::plus<>());
  if (pool.is_master()) {
    CHECK(streamed == 300);
    std::uint64_t sum = 0;
    for (int x = 0; x < 300; ++x) sum += expected(x);
    CHECK(total == sum);
    CHECK(counted::saves == (pool.worker_count() > 0 ? 3 : 0));
    CHECK(inits == (pool.worker_count() > 0 ? 0 : 3));
  } else {
    CHECK(counted::loads == 3);
    CHECK(inits == 3);
  }
}
