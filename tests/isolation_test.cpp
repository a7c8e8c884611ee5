// Isolation: each pool works on its own duplicate communicator, so two pools used interleaved
// and the caller's own send/recv on the same communicator, with the very tag numbers foreman
// uses internally (1-4), never see each other's messages.

#include "catch.hpp"
#include "test_support.hpp"

#include <foreman/foreman.hpp>

#include <boost/mpi/communicator.hpp>
#include <boost/mpi/request.hpp>
#include <boost/serialization/string.hpp>
#include <boost/serialization/vector.hpp>

#include <cstddef>
#include <string>
#include <vector>

namespace {

// foreman's internal tags are 1 (tasks), 2 (results), 3 (end of run), 4 (shutdown); see
// include/foreman/detail/wire.hpp. The caller uses the same numbers on the world communicator.
constexpr int tags[] = {1, 2, 3, 4};

std::string note(int from, int to, int tag) {
  return "from " + std::to_string(from) + " to " + std::to_string(to) + " tag " + std::to_string(tag);
}

// Rank 0 sends every other rank one message per tag, and every other rank sends rank 0 one,
// without receiving them yet: they wait in MPI's queues while the pools run.
std::vector<boost::mpi::request> post_user_messages(const boost::mpi::communicator& world,
                                                    std::vector<std::string>& storage) {
  std::vector<boost::mpi::request> requests;
  storage.clear();
  storage.reserve(4 * static_cast<std::size_t>(world.size()));
  for (int t : tags) {
    if (world.rank() == 0) {
      for (int r = 1; r < world.size(); ++r) {
        storage.push_back(note(0, r, t));
        requests.push_back(world.isend(r, t, storage.back()));
      }
    } else {
      storage.push_back(note(world.rank(), 0, t));
      requests.push_back(world.isend(0, t, storage.back()));
    }
  }
  return requests;
}

// Receives the messages posted above, in reverse tag order so that matching is by tag.
void receive_user_messages(const boost::mpi::communicator& world) {
  for (int k = 3; k >= 0; --k) {
    const int t = tags[k];
    if (world.rank() == 0) {
      for (int r = world.size() - 1; r >= 1; --r) {
        std::string got;
        world.recv(r, t, got);
        CHECK(got == note(r, 0, t));
      }
    } else {
      std::string got;
      world.recv(0, t, got);
      CHECK(got == note(0, world.rank(), t));
    }
  }
}

std::vector<int> iota(int count) {
  std::vector<int> v;
  for (int i = 0; i < count; ++i) v.push_back(i);
  return v;
}

} // namespace

TEST_CASE("two pools interleaved with the caller's own messages on the same tags", "[isolation]") {
  boost::mpi::communicator world;
  std::vector<std::string> storage;

  // Messages in flight on the world before the pools even exist.
  auto pending = post_user_messages(world, storage);
  foreman::master_worker<int, int> numbers;
  foreman::master_worker<std::string, std::string> words(world);

  const auto a1 = numbers.run(iota(50), [](int x) { return 3 * x; });
  const auto b1 = words.run({"alpha", "beta", "gamma"}, [](const std::string& s) { return s + s; });
  receive_user_messages(world);
  boost::mpi::wait_all(pending.begin(), pending.end());

  // Both pools have runs of their own while the caller's next messages wait.
  pending = post_user_messages(world, storage);
  const auto b2 = words.run({"x", "yy"}, [](const std::string& s) { return std::to_string(s.size()); });
  const auto a2 = numbers.run(iota(30), [](int x) { return x - 1; });
  const auto b3 = words.run({}, [](const std::string& s) { return s; });
  receive_user_messages(world);
  boost::mpi::wait_all(pending.begin(), pending.end());

  // A plain exchange on tag 2 between runs: each rank passes its rank to the next one.
  if (world.size() > 1) {
    const int next = (world.rank() + 1) % world.size();
    const int prev = (world.rank() + world.size() - 1) % world.size();
    int got = -1;
    boost::mpi::request send = world.isend(next, 2, world.rank());
    world.recv(prev, 2, got);
    send.wait();
    CHECK(got == prev);
  }
  const auto a3 = numbers.run(iota(5), [](int x) { return x * x; });

  if (world.rank() == 0) {
    REQUIRE(a1.size() == 50);
    for (int i = 0; i < 50; ++i) CHECK(a1[static_cast<std::size_t>(i)] == 3 * i);
    CHECK(b1 == std::vector<std::string>{"alphaalpha", "betabeta", "gammagamma"});
    CHECK(b2 == std::vector<std::string>{"1", "2"});
    REQUIRE(a2.size() == 30);
    for (int i = 0; i < 30; ++i) CHECK(a2[static_cast<std::size_t>(i)] == i - 1);
    CHECK(b3.empty());
    CHECK(a3 == std::vector<int>{0, 1, 4, 9, 16});
  }
}

TEST_CASE("user messages sent while a pool's run is in progress", "[isolation]") {
  boost::mpi::communicator world;
  foreman::master_worker<int, int> pool;
  // Workers send the master a message on each foreman tag from inside their task function,
  // i.e. while the master is in its scheduling loop probing for results on tag 2.
  std::vector<boost::mpi::request> requests;
  std::vector<int> payloads;
  payloads.reserve(1000);
  int sent = 0;
  const auto r = pool.run(iota(40), [&](int x) {
    if (world.rank() != 0) {
      payloads.push_back(-x);
      requests.push_back(world.isend(0, tags[x % 4], payloads.back()));
      ++sent;
    }
    return x + 100;
  });
  boost::mpi::wait_all(requests.begin(), requests.end());
  // The master collects them now: exactly one per task that ran on a worker.
  if (world.rank() == 0) {
    int received = 0;
    for (int i = 0; i < (world.size() > 1 ? 40 : 0); ++i) {
      int value = 1;
      boost::mpi::status s = world.recv(boost::mpi::any_source, boost::mpi::any_tag, value);
      CHECK(value <= 0);
      CHECK(s.tag() == tags[(-value) % 4]);
      ++received;
    }
    CHECK_FALSE(world.iprobe(boost::mpi::any_source, boost::mpi::any_tag).has_value());
    REQUIRE(r.size() == 40);
    for (int i = 0; i < 40; ++i) CHECK(r[static_cast<std::size_t>(i)] == i + 100);
    CHECK(received == (world.size() > 1 ? 40 : 0));
  } else {
    CHECK(r.empty());
  }
}

TEST_CASE("a pool on the world and pools on a split communicator, used in turns", "[isolation]") {
  boost::mpi::communicator world;
  foreman::master_worker<int, int> all;
  boost::mpi::communicator half = world.split(world.rank() < (world.size() + 1) / 2 ? 0 : 1);
  foreman::master_worker<int, int> part(half);
  for (int round = 0; round < 3; ++round) {
    const auto x = all.run(iota(17), [round](int v) { return v + round; });
    const auto y = part.run(iota(9), [round](int v) { return v * round; });
    if (all.is_master())
      for (int i = 0; i < 17; ++i) CHECK(x[static_cast<std::size_t>(i)] == i + round);
    if (part.is_master()) {
      REQUIRE(y.size() == 9);
      for (int i = 0; i < 9; ++i) CHECK(y[static_cast<std::size_t>(i)] == i * round);
    }
  }
}
