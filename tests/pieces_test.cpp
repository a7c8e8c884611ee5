// Values and messages longer than a piece (wire.hpp): MPI counts a message's bytes in an int, so
// a body or a message longer than piece_bytes() travels as several messages of piece_bytes(). The
// piece size is lowered here to a few KiB, so that small values cross every boundary quickly: a
// body of exactly one piece, one byte more or less, many pieces; several bodies in one message;
// archived values whose messages go in pieces; tasks and results alike, at every rank count, and
// the pool serving the next run. tests/large_messages_test.cpp moves 2.5 GiB for real.
//
// tests/CMakeLists.txt runs this program with --piece-bytes 10000 (tests/mpi_main.cpp): not a power
// of two, so the last piece of most values is a short one (and at least posted_capacity, 8 KiB: a
// message that fits a posted receive is sent whole, so a piece holds one).

#include "catch.hpp"
#include "test_support.hpp"

#include <foreman/foreman.hpp>

#include <boost/mpi/communicator.hpp>
#include <boost/serialization/string.hpp>
#include <boost/serialization/vector.hpp>

#include <chrono>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace {

using foreman::detail::piece_bytes;
using foreman_test::mix;
using foreman_test::world_size;

// A body's size in bytes for task i: around the piece boundaries, and far past them.
std::size_t body_bytes_of(std::size_t i) {
  const std::size_t threshold = foreman::detail::body_threshold; // the least a body has
  const std::size_t piece = piece_bytes();
  const std::size_t k = threshold / piece + 1; // pieces of a body just past it
  const std::size_t sizes[] = {
      threshold, k * piece, k * piece + 1, (k + 1) * piece - 1, std::size_t{1} << 20, threshold + 4 * i + 4};
  return sizes[i % (sizeof sizes / sizeof sizes[0])];
}

using bytes = std::vector<std::uint8_t>;

// n bytes of a pattern that differs for every seed.
bytes pattern(std::uint64_t seed, std::size_t n) {
  bytes v(n);
  for (std::size_t k = 0; k < n; ++k) v[k] = static_cast<std::uint8_t>(mix(seed * 1000003 + k));
  return v;
}

// A result of another length than its task, computed from every byte of it.
bytes transform(const bytes& task) {
  bytes out(task.size() + 7);
  for (std::size_t k = 0; k < out.size(); ++k) out[k] = static_cast<std::uint8_t>(task[k % task.size()] ^ k);
  return out;
}

// An archived value (it has a serialize()): its message goes as an envelope, then in pieces.
struct bundle {
  std::uint64_t id = 0;
  std::vector<std::string> words;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar& id& words;
  }
  friend bool operator==(const bundle& a, const bundle& b) { return a.id == b.id && a.words == b.words; }
};

bundle make_bundle(std::uint64_t id, std::size_t bytes) {
  bundle b;
  b.id = id;
  for (std::size_t made = 0, k = 0; made < bytes; ++k) {
    std::string w(1 + mix(id + k) % 700, 'a');
    for (std::size_t c = 0; c < w.size(); ++c) w[c] = static_cast<char>('a' + mix(id * 31 + k * 7 + c) % 26);
    made += w.size() + 8;
    b.words.push_back(std::move(w));
  }
  return b;
}

bundle answer(const bundle& t) {
  bundle r;
  r.id = t.id * 3;
  for (auto it = t.words.rbegin(); it != t.words.rend(); ++it) r.words.push_back(*it + "!");
  return r;
}

// The option sets every case runs with: automatic chunks, one task per message, chunks of 3
// (several bodies, or several archived values, in one message) with two messages in flight.
std::vector<foreman::options> option_sets() {
  std::vector<foreman::options> all(3);
  all[1].chunk_size = 1;
  all[2].chunk_size = 3;
  all[2].tasks_in_flight = 2;
  return all;
}

} // namespace

TEST_CASE("pieces: the program runs with pieces of 10000 bytes (--piece-bytes 10000)", "[pieces]") {
  REQUIRE(piece_bytes() == 10000);
}

TEST_CASE("pieces: how many messages a body or a message travels in", "[pieces]") {
  using foreman::detail::pieces_of;
  CHECK(pieces_of(0) == 1);
  CHECK(pieces_of(1) == 1);
  CHECK(pieces_of(piece_bytes()) == 1);
  CHECK(pieces_of(piece_bytes() + 1) == 2);
  CHECK(pieces_of(2 * piece_bytes()) == 2);
  CHECK(pieces_of(2 * piece_bytes() + 1) == 3);
  std::vector<foreman::detail::body_span> bodies;
  CHECK(foreman::detail::body_messages(bodies) == 0);
  char dummy = 0;
  bodies.push_back({&dummy, 131000}); // 14 pieces: 13 of 10000 and one of 1000
  bodies.push_back({&dummy, 10000});
  bodies.push_back({&dummy, 10001});
  CHECK(foreman::detail::body_messages(bodies) == 14 + 1 + 2);
}

TEST_CASE("pieces: an archived value's length past a u32 is written as long_length and a u64", "[pieces]") {
  using namespace foreman::detail;
  const std::vector<std::string> first{"alpha", "beta"}, second{"gamma"};
  std::vector<char> bytes;
  {
    encoder out(bytes);
    out.put(std::uint32_t{7});
    // The first value as put_item() writes one of 4 GiB or more (put_length's threshold lowered
    // to 0), the second as usual.
    const std::size_t at = out.size();
    out.put(std::uint32_t{0});
    out.put(first);
    put_length(out, at, 0);
    put_item(out, second);
    out.put(std::uint32_t{9});
  }
  decoder in(bytes.data(), bytes.size());
  CHECK(in.get<std::uint32_t>() == 7);
  decoder peek = in;
  CHECK(peek.get<std::uint32_t>() == long_length);
  std::vector<std::string> a, b;
  std::size_t body = 1;
  get_item(in, a, body);
  CHECK(body == 0);
  CHECK(a == first);
  get_item(in, b, body);
  CHECK(b == second);
  CHECK(in.get<std::uint32_t>() == 9);
  CHECK(in.exhausted());
}

TEST_CASE("pieces: a receive that stops between pieces goes on where it stopped", "[pieces]") {
  // Rank 1 sends 10 pieces and a short last one to rank 0, which first waits for them before
  // they are sent (nothing arrives, the receive stays posted), then takes them.
  boost::mpi::communicator world;
  if (world.size() < 2 || world.rank() > 1) {
    world.barrier();
    world.barrier();
    return;
  }
  using namespace foreman::detail;
  const std::size_t bytes = 10 * piece_bytes() + 123;
  std::vector<char> data(bytes);
  for (std::size_t k = 0; k < bytes; ++k) data[k] = static_cast<char>(mix(k));
  if (world.rank() == 0) {
    std::vector<char> into(bytes, 0);
    piece_receiver in(into.data(), bytes, 1, tag::task_body, world);
    CHECK_FALSE(in.wait_for(std::chrono::milliseconds(5), idle_backoff()));
    CHECK(in.received() == 0);
    CHECK_FALSE(in.wait_while_coming(std::chrono::milliseconds(5), idle_backoff()));
    world.barrier(); // rank 1 sends now
    CHECK(in.wait_for(std::chrono::seconds(0), idle_backoff()));
    CHECK(in.received() == bytes);
    CHECK(into == data);
    world.barrier();
  } else {
    world.barrier();
    send_slot slot;
    post_body(body_span{data.data(), bytes}, 0, tag::task_body, world, slot);
    CHECK(slot.bodies.size() == 11);
    slot.wait();
    world.barrier();
  }
}

TEST_CASE("pieces: sends still running when their pool is destroyed keep their buffers until they complete",
          "[pieces]") {
  // Rank 0 sends rank 1 a body of 1 MiB (in pieces, each past the eager limit: none completes
  // before rank 1 receives it) from a send slot it leaves in a pool's abandoned sends, as the
  // master leaves a send to a lost worker; the pool is destroyed, its memory written over, and only
  // then does rank 1 receive. The slot's buffer must have outlived the pool (outliving_sends.hpp):
  // freed with it, rank 1 would read unmapped or overwritten memory.
  boost::mpi::communicator world;
  if (world.size() < 2) return;
  using namespace foreman::detail;
  const std::size_t bytes = std::size_t{1} << 20;
  std::vector<char> expected(bytes);
  for (std::size_t k = 0; k < bytes; ++k) expected[k] = static_cast<char>(mix(k ^ 0x5eed));
  if (world.rank() == 0) {
    const std::size_t kept = outliving_sends::instance().size();
    {
      pool_state pool;
      send_slot slot;
      slot.bytes = expected;
      post_body(body_span{slot.bytes.data(), bytes}, 1, tag::task_body, world, slot);
      CHECK_FALSE(slot.test());
      pool.abandoned.push_back(std::move(slot));
    }
    CHECK(outliving_sends::instance().size() == kept + 1);
    std::vector<char> junk(4 * bytes, static_cast<char>(0x5a)); // over what the pool freed
    CHECK(junk[bytes] == 0x5a);
    world.barrier(); // rank 1 receives now
    world.barrier(); // and has received
    // Complete now, or within a few tests (MPICH completes a rendezvous send only as the sender
    // makes progress): then forgotten.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (outliving_sends::instance().size() > kept && std::chrono::steady_clock::now() < deadline)
      idle_backoff().pause();
    CHECK(outliving_sends::instance().size() == kept);
  } else if (world.rank() == 1) {
    world.barrier();
    std::vector<char> into(bytes, 0);
    piece_receiver in(into.data(), bytes, 0, tag::task_body, world);
    CHECK(in.wait_for(std::chrono::seconds(30), idle_backoff()));
    CHECK(into == expected);
    world.barrier();
  } else {
    world.barrier();
    world.barrier();
  }
}

TEST_CASE("pieces: bodies longer than a piece, tasks and results, arrive whole", "[pieces]") {
  foreman::master_worker<bytes, bytes> pool;
  std::vector<bytes> tasks;
  for (std::size_t i = 0; i < 13; ++i) tasks.push_back(pattern(i, body_bytes_of(i)));
  for (const foreman::options& opt : option_sets()) {
    INFO("chunk_size " << opt.chunk_size << ", tasks_in_flight " << opt.tasks_in_flight);
    const auto out = pool.run(tasks, transform, opt);
    if (!pool.is_master()) continue;
    REQUIRE(out.size() == tasks.size());
    for (std::size_t i = 0; i < tasks.size(); ++i) {
      INFO("task " << i << ", " << tasks[i].size() << " bytes");
      CHECK(out[i] == transform(tasks[i]));
    }
    if (world_size() > 1) CHECK(pool.last_run().failures == 0);
  }
  // The pool serves a run of small values (no body, no piece) after them.
  const std::vector<bytes> small{{1, 2, 3}, {4}};
  const auto out = pool.run(small, transform);
  if (pool.is_master()) CHECK(out == std::vector<bytes>{transform(small[0]), transform(small[1])});
}

TEST_CASE("pieces: archived values whose messages are longer than a piece arrive whole", "[pieces]") {
  foreman::master_worker<bundle, bundle> pool;
  std::vector<bundle> tasks;
  for (std::size_t i = 0; i < 10; ++i) tasks.push_back(make_bundle(i, i % 3 == 0 ? 100 : 7000 * i));
  for (const foreman::options& opt : option_sets()) {
    INFO("chunk_size " << opt.chunk_size << ", tasks_in_flight " << opt.tasks_in_flight);
    const auto out = pool.run(tasks, answer, opt);
    if (!pool.is_master()) continue;
    REQUIRE(out.size() == tasks.size());
    for (std::size_t i = 0; i < tasks.size(); ++i) {
      INFO("task " << i);
      CHECK(out[i] == answer(tasks[i]));
    }
  }
  const auto out = pool.run(std::vector<bundle>{make_bundle(99, 10)}, answer);
  if (pool.is_master()) CHECK(out == std::vector<bundle>{answer(make_bundle(99, 10))});
}

TEST_CASE("pieces: strings inline and as bodies in one message, the message itself in pieces", "[pieces]") {
  // Strings under body_threshold go through the archive inside the message, longer ones as
  // bodies: a chunk of both makes a message of several pieces followed by bodies of several.
  foreman::master_worker<std::string, std::string> pool;
  std::vector<std::string> tasks;
  for (std::size_t i = 0; i < 12; ++i) {
    std::string s(i % 2 == 0 ? 20000 + i : 40000 + 3 * i, ' ');
    for (std::size_t c = 0; c < s.size(); ++c) s[c] = static_cast<char>(mix(i * 77 + c));
    tasks.push_back(std::move(s));
  }
  auto reverse = [](const std::string& s) { return std::string(s.rbegin(), s.rend()); };
  for (const foreman::options& opt : option_sets()) {
    INFO("chunk_size " << opt.chunk_size << ", tasks_in_flight " << opt.tasks_in_flight);
    const auto out = pool.run(tasks, reverse, opt);
    if (!pool.is_master()) continue;
    REQUIRE(out.size() == tasks.size());
    for (std::size_t i = 0; i < tasks.size(); ++i) CHECK(out[i] == reverse(tasks[i]));
  }
  const auto out = pool.run(std::vector<std::string>{"ab", "c"}, reverse);
  if (pool.is_master()) CHECK(out == std::vector<std::string>{"ba", "c"});
}

TEST_CASE("pieces: the piece size is set within its bounds, before the first pool", "[pieces]") {
  using foreman::detail::posted_capacity;
  using foreman::detail::set_piece_bytes;
  CHECK_THROWS_WITH(set_piece_bytes(posted_capacity - 1), Catch::Contains("so a piece must hold one"));
  CHECK_THROWS_WITH(set_piece_bytes(std::size_t{INT_MAX} + 1), Catch::Contains("in an int"));
  foreman::master_worker<int, int> pool; // the pools above were built with 10000 bytes, and so is this one
  CHECK_THROWS_WITH(set_piece_bytes(20000), Catch::Contains("has built a pool with pieces of 10000 bytes"));
  CHECK_NOTHROW(set_piece_bytes(10000)); // no change
  CHECK(piece_bytes() == 10000);
}
