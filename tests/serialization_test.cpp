// Values through real pools, one of each way a value travels: a user struct through the archive
// (string, vector, map, optional, variant and cpp_int), a trivially copyable struct as raw bytes,
// 64 MiB tasks and results, bodies mixed with inline values in chunks, results received into the
// caller's storage, and a task that fails among them. Every other type is sent through the wire
// encoder and decoder alone, as a pool's messages carry it (wire_test.cpp): what a pool adds to
// those bytes, their transport, does not depend on the type.

#include "catch.hpp"
#include "serialization_types.hpp"
#include "test_support.hpp"

#include <foreman/foreman.hpp>

#include <boost/mpi/collectives.hpp>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace {
using foreman_test::check_equal;
using foreman_test::cpp_int;
using foreman_test::make_record;
using foreman_test::mix;
using foreman_test::point;
using foreman_test::record;
using foreman_test::transform;
} // namespace

TEST_CASE("a struct of string, vector, map, optional, variant and cpp_int survives the round trip", "[serialization]") {
  foreman::master_worker<record, record> pool;
  std::vector<record> tasks;
  for (unsigned n = 0; n < 40; ++n) tasks.push_back(make_record(n));
  // Both variants of each field occur: empty and full, engaged and not, every alternative.
  const auto same = pool.run(tasks, [](const record& r) { return r; });
  const auto changed = pool.run(tasks, transform);
  if (pool.is_master()) {
    REQUIRE(same.size() == tasks.size());
    REQUIRE(changed.size() == tasks.size());
    for (std::size_t i = 0; i < tasks.size(); ++i) {
      INFO("record " << i);
      check_equal(same[i], tasks[i]);
      check_equal(changed[i], transform(tasks[i]));
    }
    // The factorials are far beyond 64 bits and consistent: n! = n * (n-1)!.
    CHECK(same[39].big >
          cpp_int(std::numeric_limits<std::uint64_t>::max()) * std::numeric_limits<std::uint64_t>::max());
    for (unsigned n = 1; n < 40; ++n) CHECK(same[n].big == same[n - 1].big * n);
    CHECK(changed[39].big == 2 * same[39].big);
  }
}

TEST_CASE("a trivially copyable struct travels as raw bytes", "[serialization]") {
  foreman::master_worker<point, point> pool;
  std::vector<point> tasks;
  for (int i = 0; i < 50; ++i) tasks.push_back(point{i * 0.5, -i * 1e-300, i, static_cast<char>('A' + i % 26)});
  auto fn = [](const point& p) { return point{p.y, p.x, p.id * 2, static_cast<char>(p.tag + 1)}; };
  const auto r = pool.run(tasks, fn);
  if (pool.is_master()) {
    REQUIRE(r.size() == tasks.size());
    for (std::size_t i = 0; i < tasks.size(); ++i) {
      CHECK(r[i].x == tasks[i].y);
      CHECK(r[i].y == tasks[i].x);
      CHECK(r[i].id == tasks[i].id * 2);
      CHECK(r[i].tag == tasks[i].tag + 1);
    }
  }
}

namespace {
constexpr std::size_t mib64 = std::size_t{64} << 20;

// Contents that a truncated, shifted or zero-filled buffer cannot imitate.
char byte_at(std::size_t i, std::uint64_t seed) {
  return static_cast<char>(mix(i / 8 + seed) >> (8 * (i % 8)));
}

std::size_t mismatches(const std::vector<char>& v, std::uint64_t seed) {
  std::size_t bad = 0;
  for (std::size_t i = 0; i < v.size(); ++i) bad += v[i] != byte_at(i, seed);
  return bad;
}
} // namespace

TEST_CASE("a 64 MiB task and a 64 MiB result", "[serialization][large]") {
  foreman::master_worker<std::vector<char>, std::string> pool;
  std::vector<std::vector<char>> tasks;
  if (pool.is_master()) {
    tasks.emplace_back(mib64);
    for (std::size_t i = 0; i < mib64; ++i) tasks[0][i] = byte_at(i, 1);
    tasks.emplace_back(std::vector<char>{'s', 'm', 'a', 'l', 'l'});
  }
  // A worker checks the large task it receives and answers with a large result of its own.
  auto fn = [](const std::vector<char>& in) {
    if (in.size() != mib64) return std::string(in.begin(), in.end());
    std::string out(mib64 + 3, '\0');
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = byte_at(i, 2);
    out[0] = mismatches(in, 1) == 0 ? 'Y' : 'N'; // the worker's verdict on the task's bytes
    return out;
  };
  const auto r = pool.run(tasks, fn);
  if (pool.is_master()) {
    REQUIRE(r.size() == 2);
    REQUIRE(r[0].size() == mib64 + 3);
    CHECK(r[0][0] == 'Y');
    std::size_t bad = 0;
    for (std::size_t i = 1; i < r[0].size(); ++i) bad += r[0][i] != byte_at(i, 2);
    CHECK(bad == 0);
    CHECK(r[1] == "small");
  }
}

// ---- bodies: large contiguous values travel as messages of their own ------------------------------
TEST_CASE("bodies and inline values mixed in chunks, in both directions", "[serialization]") {
  // Sizes on both sides of the 32 KiB threshold, so that one message carries inline values and
  // several bodies, whose messages must be matched to the right items.
  const std::size_t threshold = foreman::detail::body_threshold / sizeof(double);
  std::vector<std::vector<double>> tasks;
  for (std::size_t i = 0; i < 40; ++i) {
    const std::size_t n = i % 4 == 0 ? 0 : i % 4 == 1 ? threshold - 1 : i % 4 == 2 ? threshold : threshold * 3 + i;
    std::vector<double> v(n);
    for (std::size_t k = 0; k < n; ++k) v[k] = static_cast<double>(mix(i * 1000003 + k) % 1000000);
    tasks.push_back(std::move(v));
  }
  // The result is a string whose size depends on the task's, so a body result may follow an
  // inline one and the other way round.
  auto fn = [](const std::vector<double>& v) {
    double sum = 0;
    for (double x : v) sum += x;
    std::string out(v.size() % 3 == 0 ? v.size() * 4 : 16, 'r');
    const std::string head = std::to_string(v.size()) + ":" + std::to_string(static_cast<long long>(sum)) + ";";
    out.replace(0, head.size(), head);
    return out;
  };
  foreman::master_worker<std::vector<double>, std::string> pool;
  for (std::size_t chunk : {1, 3, 8}) {
    foreman::options opt;
    opt.chunk_size = chunk;
    opt.tasks_in_flight = 2;
    INFO("chunk_size " << chunk);
    const auto r = pool.run(tasks, fn, opt);
    if (!pool.is_master()) continue;
    REQUIRE(r.size() == tasks.size());
    for (std::size_t i = 0; i < tasks.size(); ++i) {
      INFO("task " << i << " of " << tasks[i].size() << " doubles");
      CHECK(r[i] == fn(tasks[i]));
    }
  }
}

namespace {
// Counts the allocations of the vectors that use it (in this process).
long g_counted_allocations = 0;
template <class T>
struct counting_allocator {
  using value_type = T;
  counting_allocator() = default;
  template <class U>
  counting_allocator(const counting_allocator<U>&) {}
  T* allocate(std::size_t n) {
    ++g_counted_allocations;
    return std::allocator<T>().allocate(n);
  }
  void deallocate(T* p, std::size_t n) { std::allocator<T>().deallocate(p, n); }
  template <class U>
  bool operator==(const counting_allocator<U>&) const { return true; }
  template <class U>
  bool operator!=(const counting_allocator<U>&) const { return false; }
};
using counted_doubles = std::vector<double, counting_allocator<double>>;
} // namespace

TEST_CASE("run_into receives results into the storage the caller's elements hold", "[serialization][flat]") {
  foreman::master_worker<std::uint64_t, counted_doubles> pool;
  static constexpr std::size_t big = foreman::detail::body_threshold / sizeof(double) * 2; // a body
  std::vector<std::uint64_t> tasks(24);
  for (std::size_t i = 0; i < tasks.size(); ++i) tasks[i] = i;
  auto fn = [](std::uint64_t t) {
    if (t % 100 == 5) throw std::runtime_error("five");
    counted_doubles v(t % 3 == 0 ? 7 : big); // small ones travel inline
    for (std::size_t k = 0; k < v.size(); ++k) v[k] = static_cast<double>(t * 1000 + k);
    return v;
  };
  auto check = [&](const std::vector<counted_doubles>& r, std::uint64_t shift) {
    REQUIRE(r.size() == tasks.size());
    for (std::size_t i = 0; i < tasks.size(); ++i) {
      INFO("task " << i);
      if (i == 5) {
        CHECK(r[i].empty()); // a failed task's element is Result{}, not the previous run's value
        continue;
      }
      REQUIRE(r[i].size() == (i % 3 == 0 ? 7 : big));
      CHECK(r[i].front() == static_cast<double>((i + shift) * 1000));
      CHECK(r[i].back() == static_cast<double>((i + shift) * 1000 + r[i].size() - 1));
    }
  };
  std::vector<counted_doubles> results(tasks.size(), counted_doubles(3, -1.0));
  results[5].assign(big, 42.0); // must not survive the failure
  auto run = [&] { // whether task_error was thrown (on the master only: workers just serve)
    try {
      pool.run_into(tasks, fn, results);
    } catch (const foreman::task_error& e) {
      return e.failures().size() == 1 && e.failures().front().index == 5;
    }
    return false;
  };
  CHECK(run() == pool.is_master());
  if (!pool.is_master()) {
    CHECK(results.empty());
    CHECK_FALSE(run());
    pool.run_outcomes(tasks, fn); // the master's third run
    return;
  }
  check(results, 0);
  // The same sizes again, other values: received where the previous results are, so the master
  // allocates no result storage at all (its workers do, in fn).
  for (auto& t : tasks) t += 300; // keeps t % 3 (the same sizes) and t % 100 (task 5 fails again)
  const long before = g_counted_allocations;
  CHECK(run());
  check(results, 300);
  if (pool.worker_count() == 0) return; // the master runs fn itself
  CHECK(g_counted_allocations == before);
  // Whereas run() builds every result afresh.
  const long before_run = g_counted_allocations;
  const auto fresh = pool.run_outcomes(tasks, fn);
  CHECK(fresh[7].value() == results[7]);
  CHECK(g_counted_allocations - before_run >= static_cast<long>(tasks.size()) - 1);
}

TEST_CASE("a function that writes into the result it is given reuses that object's storage", "[serialization][flat]") {
  foreman::master_worker<std::uint64_t, counted_doubles> pool;
  const std::size_t big = foreman::detail::body_threshold / sizeof(double) * 2; // a body: held while it is sent
  std::vector<std::uint64_t> tasks(200);
  for (std::size_t i = 0; i < tasks.size(); ++i) tasks[i] = i;
  long calls = 0, calls_with_room = 0; // on this rank
  auto fn = [&](std::uint64_t t, counted_doubles& out) {
    ++calls;
    if (t == 5) {
      if (!out.empty()) out[0] = -7.0; // half-written, then thrown: none of it may reach the master
      throw std::runtime_error("five");
    }
    if (out.capacity() >= big) ++calls_with_room;
    out.resize(big);
    for (std::size_t k = 0; k < big; ++k) out[k] = static_cast<double>(t * 1000 + k);
  };
  foreman::options opt;
  opt.chunk_size = 2;
  opt.tasks_in_flight = 2;
  const long allocations_before = g_counted_allocations;
  const auto outcomes = pool.run_outcomes(tasks, fn, opt);
  const long allocations = g_counted_allocations - allocations_before;
  // Per rank: fn's calls, those that found room in their result object, the allocations made.
  std::vector<long> mine{calls, calls_with_room, allocations};
  std::vector<std::vector<long>> all;
  boost::mpi::gather(boost::mpi::communicator(), mine, all, 0);
  if (!pool.is_master()) return;
  REQUIRE(outcomes.size() == tasks.size());
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    INFO("task " << i);
    if (i == 5) {
      CHECK_FALSE(outcomes[i].ok());
      CHECK(outcomes[i].failure().message == "five");
      continue;
    }
    REQUIRE(outcomes[i].ok());
    const counted_doubles& r = outcomes[i].value();
    REQUIRE(r.size() == big);
    CHECK(r.front() == static_cast<double>(i * 1000));
    CHECK(r.back() == static_cast<double>(i * 1000 + big - 1));
  }
  if (pool.worker_count() == 0) return; // the master ran fn itself, into the fresh elements of a new vector
  long total_calls = 0;
  for (int w = 1; w <= pool.worker_count(); ++w) {
    const std::vector<long>& counts = all[static_cast<std::size_t>(w)];
    INFO("worker " << w << ": " << counts[0] << " calls, " << counts[1] << " with room, " << counts[2]
                   << " allocations");
    total_calls += counts[0];
    // A worker holds at most 2 replies x 2 results while they are sent; every other call reuses one.
    CHECK(counts[2] <= 4);
    CHECK(counts[1] >= counts[0] - 4 - 1); // - 1: task 5 may have been the one to find no room
  }
  CHECK(total_calls == static_cast<long>(tasks.size()));
}
