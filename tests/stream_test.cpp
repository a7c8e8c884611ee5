// Streams (master_worker::run_stream(), reduce()): tasks read lazily within options::buffersize,
// results in task order or completion order, stopping early, failures. Runs at 1-4 ranks.
#include "catch.hpp"
#include "test_support.hpp"

#include <foreman/foreman.hpp>

#include <cstdint>
#include <iterator>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

TEST_CASE("a stream hands every result to the sink in task order, never reading too far ahead", "[stream]") {
  foreman::master_worker<std::uint64_t, std::uint64_t> pool;
  for (std::size_t buffersize : {std::size_t{1}, std::size_t{7}, std::size_t{64}, std::size_t{0}}) {
    foreman::options opt;
    opt.buffersize = buffersize;
    // With a bound of 1 or 7 every few tasks wait for a round trip: on 2 cores shared with two
    // busy processes each took about a scheduler quantum (20,000 tasks at buffersize 1: 60 s,
    // against 0.5 s alone), so those bounds get fewer tasks.
    const std::uint64_t n = buffersize == 0 || buffersize >= 64 ? 20000 : 2000;
    std::uint64_t read = 0, delivered = 0, widest = 0;
    bool in_order = true, right = true;
    pool.run_stream(
        [&]() -> std::optional<std::uint64_t> {
          if (read == n) return std::nullopt;
          widest = std::max(widest, read - delivered);
          return read++;
        },
        [](std::uint64_t x) { return foreman_test::mix(x); },
        [&](std::uint64_t index, int, const std::uint64_t& value) {
          in_order = in_order && index == delivered;
          right = right && value == foreman_test::mix(index);
          ++delivered;
        },
        opt);
    if (!pool.is_master()) continue;
    CHECK(read == n);
    CHECK(delivered == n);
    CHECK(in_order);
    CHECK(right);
    // Tasks read and not yet handed on never exceed the bound (the source is called when fewer are).
    if (buffersize > 0) CHECK(widest < buffersize);
    if (buffersize == 1) CHECK(widest == 0); // one at a time: read, run, handed on, then the next
  }
}

TEST_CASE("a stream of an input range: numbers read from a text stream, folded as they come", "[stream]") {
  foreman::master_worker<long, long> pool;
  std::ostringstream text;
  for (long k = 1; k <= 5000; ++k) text << k << ' ';
  std::istringstream in(text.str()); // read on the master only
  const long sum = pool.reduce(
      [&]() -> std::optional<long> {
        long x = 0;
        if (pool.is_master() && in >> x) return x;
        return std::nullopt;
      },
      [](long x) { return x * x; }, 0L, [](long acc, long r) { return acc + r; });
  if (pool.is_master()) CHECK(sum == 5000L * 5001L * 10001L / 6);

  std::istringstream numbers(text.str());
  const long by_range = pool.reduce(
      std::istream_iterator<long>(numbers), std::istream_iterator<long>(), [](long x) { return x; }, 0L,
      [](long acc, long r) { return acc + r; });
  if (pool.is_master()) CHECK(by_range == 5000L * 5001L / 2);

  std::istringstream again(text.str());
  std::vector<long> squares;
  pool.run_stream(
      std::istream_iterator<long>(again), std::istream_iterator<long>(), [](long x) { return x * x; },
      [&](std::uint64_t, int, const long& r) { squares.push_back(r); });
  if (pool.is_master()) {
    REQUIRE(squares.size() == 5000);
    CHECK(squares.front() == 1);
    CHECK(squares.back() == 25000000);
  }
}

TEST_CASE("reduce folds in task order, so a non-commutative op gives the serial answer", "[stream]") {
  foreman::master_worker<int, std::string> pool;
  int next = 0;
  foreman::options opt;
  opt.buffersize = 32;
  const std::string joined = pool.reduce(
      [&]() -> std::optional<int> {
        if (next == 300) return std::nullopt;
        return next++;
      },
      [](int x) {
        if (x % 17 == 0) foreman_test::sleep_us(300); // some finish late
        return std::to_string(x);
      },
      std::string(), [](std::string acc, const std::string& r) { return acc + r + ","; }, opt);
  std::string expected;
  for (int k = 0; k < 300; ++k) expected += std::to_string(k) + ",";
  if (pool.is_master()) CHECK(joined == expected);
}

TEST_CASE("unordered streams hand each result over once, as it completes", "[stream]") {
  foreman::master_worker<int, int> pool;
  foreman::options opt;
  opt.unordered = true;
  opt.buffersize = 16;
  int next = 0;
  std::multiset<std::uint64_t> seen;
  pool.run_stream(
      [&]() -> std::optional<int> {
        if (next == 2000) return std::nullopt;
        return next++;
      },
      [](int x) { return x + 1; },
      [&](std::uint64_t index, int, const int& r) {
        CHECK(r == int(index) + 1);
        seen.insert(index);
      },
      opt);
  if (pool.is_master()) {
    CHECK(seen.size() == 2000);
    CHECK(std::set<std::uint64_t>(seen.begin(), seen.end()).size() == 2000);
  }
}

TEST_CASE("a sink returning false stops the stream: the source is read no further", "[stream]") {
  foreman::master_worker<int, int> pool;
  foreman::options opt;
  opt.buffersize = 20;
  int read = 0;
  std::uint64_t delivered = 0;
  pool.run_stream([&]() -> std::optional<int> { return read++; }, // endless
                  [](int x) { return 2 * x; },
                  [&](std::uint64_t index, int, const int&) {
                    ++delivered;
                    return index < 100; // the answer was found at 100
                  },
                  opt);
  if (pool.is_master()) {
    CHECK(delivered == 101);
    CHECK(read <= 101 + 20);
  }
  const auto results = pool.run(std::vector<int>{1, 2}, [](int x) { return -x; });
  if (pool.is_master()) CHECK(results == std::vector<int>{-1, -2});
}

TEST_CASE("failures in a stream: a value sink gets task_error at the end, an outcome sink sees them", "[stream]") {
  foreman::master_worker<int, int> pool;
  auto fn = [](int x) -> int {
    if (x % 10 == 9) throw std::out_of_range("nine " + std::to_string(x));
    return x;
  };
  int next = 0;
  auto source = [&]() -> std::optional<int> {
    if (next == 100) return std::nullopt;
    return next++;
  };
  std::size_t values = 0;
  try {
    pool.run_stream(source, fn, [&](std::uint64_t, int, const int&) { ++values; });
    if (pool.is_master()) FAIL("no task_error");
  } catch (const foreman::task_error& e) {
    CHECK(e.failures().size() == 10);
    CHECK(e.failures().front().index == 9);
    CHECK(e.failures().front().type == "std::out_of_range");
  }
  if (pool.is_master()) CHECK(values == 90);

  next = 0;
  std::size_t failed = 0, ok = 0;
  pool.run_stream(source, fn, [&](std::uint64_t index, int, const foreman::outcome<int>& o) {
    if (o.ok()) {
      ++ok;
    } else {
      CHECK(index % 10 == 9);
      ++failed;
    }
  });
  if (pool.is_master()) {
    CHECK(ok == 90);
    CHECK(failed == 10);
  }

  // fail_fast: the first failure stops the stream.
  next = 0;
  foreman::options opt;
  opt.fail_fast = true;
  opt.buffersize = 4;
  std::size_t seen = 0;
  try {
    pool.run_stream(
        source, fn, [&](std::uint64_t, int, const int&) { ++seen; }, opt);
    if (pool.is_master()) FAIL("no task_error");
  } catch (const foreman::task_error& e) {
    CHECK(e.failures().size() == 1);
    CHECK(e.failures().front().index == 9);
  }
  if (pool.is_master()) {
    CHECK(seen == 9);
    CHECK(next <= 9 + 1 + 4);
  }
}

TEST_CASE("a sink that throws ends the stream on every rank; the exception reaches the master", "[stream]") {
  foreman::master_worker<int, int> pool;
  int next = 0;
  try {
    pool.run_stream(
        [&]() -> std::optional<int> {
          if (next == 1000) return std::nullopt;
          return next++;
        },
        [](int x) { return x; },
        [&](std::uint64_t index, int, const int&) {
          if (index == 50) throw std::logic_error("sink gave up");
        });
    if (pool.is_master()) FAIL("no exception");
  } catch (const std::logic_error& e) {
    CHECK(std::string(e.what()) == "sink gave up");
  }
  const auto results = pool.run(std::vector<int>{4}, [](int x) { return x + 1; });
  if (pool.is_master()) CHECK(results == std::vector<int>{5});
}
