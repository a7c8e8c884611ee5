// Values over 2 GiB, for real: MPI counts a message's bytes in an int, so foreman sends them in
// pieces (wire.hpp). A 2.5 GiB result and a 2.5 GiB task, as bodies (std::vector<char>), and a
// 2.5 GiB archived result (a struct with serialize(): its reply message goes in pieces), each with
// its contents checked, next to small values in the same run; then a run of small values on the
// same pool. Run at 2 ranks, labelled `large` (tests/CMakeLists.txt): a few GiB of memory and
// seconds per case, compiled as users compile it, without the sanitizers. pieces_test.cpp covers
// the same paths with small values at every rank count, under them.

#include "catch.hpp"
#include "test_support.hpp"

#include <foreman/foreman.hpp>

#include <boost/serialization/vector.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace {

using foreman_test::mix;

constexpr std::size_t big = (std::size_t{5} << 29) + 13; // 2.5 GiB and a few bytes: the last piece is short

// The byte at `position` of the pattern `seed`: every 8-byte word differs from its neighbours
// and from the same word of another seed, so a piece landing in the wrong place is seen.
void fill(std::vector<char>& v, std::uint64_t seed) {
  const std::size_t words = v.size() / 8;
  for (std::size_t k = 0; k < words; ++k) {
    const std::uint64_t x = mix(seed ^ k);
    std::memcpy(v.data() + 8 * k, &x, 8);
  }
  for (std::size_t k = 8 * words; k < v.size(); ++k) v[k] = static_cast<char>(mix(seed + k));
}

std::vector<char> made(std::size_t bytes, std::uint64_t seed) {
  std::vector<char> v(bytes);
  fill(v, seed);
  return v;
}

// Where `v` differs from the pattern `seed` (its size if nowhere).
std::size_t first_difference(const std::vector<char>& v, std::uint64_t seed) {
  const std::size_t words = v.size() / 8;
  for (std::size_t k = 0; k < words; ++k) {
    const std::uint64_t x = mix(seed ^ k);
    if (std::memcmp(v.data() + 8 * k, &x, 8) != 0) return 8 * k;
  }
  for (std::size_t k = 8 * words; k < v.size(); ++k)
    if (v[k] != static_cast<char>(mix(seed + k))) return k;
  return v.size();
}

// A task: what to make, as bytes (size, seed), or, for a big task, its own bytes.
std::vector<char> order(std::uint64_t bytes, std::uint64_t seed) {
  std::vector<char> v(16);
  std::memcpy(v.data(), &bytes, 8);
  std::memcpy(v.data() + 8, &seed, 8);
  return v;
}

struct archived_bytes { // travels through serialize(), not as a body
  std::vector<char> data;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar& data;
  }
};

} // namespace

TEST_CASE("a 2.5 GiB result arrives whole, among small ones", "[large]") {
  foreman::master_worker<std::vector<char>, std::vector<char>> pool;
  const std::vector<std::vector<char>> tasks{order(100, 1), order(big, 2), order(40000, 3), order(7, 4)};
  auto make = [](const std::vector<char>& t) {
    std::uint64_t bytes = 0, seed = 0;
    std::memcpy(&bytes, t.data(), 8);
    std::memcpy(&seed, t.data() + 8, 8);
    return made(bytes, seed);
  };
  {
    const auto out = pool.run(tasks, make);
    if (pool.is_master()) {
      REQUIRE(out.size() == tasks.size());
      const std::size_t sizes[] = {100, big, 40000, 7};
      for (std::size_t i = 0; i < out.size(); ++i) {
        INFO("task " << i);
        REQUIRE(out[i].size() == sizes[i]);
        CHECK(first_difference(out[i], i + 1) == sizes[i]);
      }
    }
  }
  const auto again = pool.run(std::vector<std::vector<char>>{order(5, 9), order(50000, 10)}, make);
  if (pool.is_master()) CHECK(again == std::vector<std::vector<char>>{made(5, 9), made(50000, 10)});
}

TEST_CASE("a 2.5 GiB task arrives whole, among small ones", "[large]") {
  foreman::master_worker<std::vector<char>, std::vector<char>> pool;
  // The worker answers with the task's size and where it differs from its pattern, whose seed is
  // the task's size.
  auto check = [](const std::vector<char>& t) {
    const std::uint64_t bytes = t.size(), wrong = first_difference(t, t.size());
    std::vector<char> answer(16);
    std::memcpy(answer.data(), &bytes, 8);
    std::memcpy(answer.data() + 8, &wrong, 8);
    return answer;
  };
  std::vector<std::vector<char>> tasks;
  if (pool.is_master())
    for (std::size_t bytes : {std::size_t{64}, big, std::size_t{70000}}) tasks.push_back(made(bytes, bytes));
  {
    const auto out = pool.run(tasks, check);
    if (pool.is_master()) {
      REQUIRE(out.size() == tasks.size());
      for (std::size_t i = 0; i < out.size(); ++i) {
        INFO("task " << i);
        CHECK(out[i] == order(tasks[i].size(), tasks[i].size())); // its size, and no difference
      }
    }
  }
  tasks.clear();
  const auto again = pool.run(std::vector<std::vector<char>>{made(3, 3), made(40000, 40000)}, check);
  if (pool.is_master()) CHECK(again == std::vector<std::vector<char>>{order(3, 3), order(40000, 40000)});
}

TEST_CASE("a 2.5 GiB archived result arrives whole: its reply message goes in pieces", "[large]") {
  foreman::master_worker<std::uint64_t, archived_bytes> pool;
  auto make = [](std::uint64_t bytes) { return archived_bytes{made(bytes, bytes)}; };
  {
    const auto out = pool.run(std::vector<std::uint64_t>{big, 1000}, make);
    if (pool.is_master()) {
      REQUIRE(out.size() == 2);
      REQUIRE(out[0].data.size() == big);
      CHECK(first_difference(out[0].data, big) == big);
      CHECK(out[1].data == made(1000, 1000));
    }
  }
  const auto again = pool.run(std::vector<std::uint64_t>{10, 20}, make);
  if (pool.is_master()) {
    REQUIRE(again.size() == 2);
    CHECK(again[0].data == made(10, 10));
    CHECK(again[1].data == made(20, 20));
  }
}
