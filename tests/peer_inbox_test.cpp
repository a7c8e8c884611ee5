// The worker's inbox of the master's messages (detail/peer_inbox.hpp), with raw MPI messages from
// rank 0 to rank 1: messages in order with their tags, the last one still readable after the next
// receive is posted (double buffering), one receive posted however often post() is called, an
// envelope's message fetched (and the envelope kept when fetching throws), and a posted receive
// withdrawn when the inbox is destroyed. Runs at 2 and 3 ranks (a third rank only waits).
#include "catch.hpp"

#include <foreman/detail/peer_inbox.hpp>

#include <mpi.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <thread>
#include <vector>

namespace {

using foreman::detail::decoder;
using foreman::detail::peer_inbox;
using foreman::detail::posted_capacity;

// Message k: its number, then bytes that depend on it, its length one of a few: under the eager
// limit, past Open MPI's shared-memory one (4 KiB), and the whole posted buffer.
std::vector<char> message_of(std::uint32_t k) {
  static const std::size_t sizes[] = {16, 1500, 5000, posted_capacity};
  std::vector<char> m(sizes[k % 4]);
  std::memcpy(m.data(), &k, sizeof k);
  for (std::size_t i = sizeof k; i < m.size(); ++i) m[i] = static_cast<char>(k * 7 + i * 13);
  return m;
}
int tag_of(std::uint32_t k) {
  return 1 + static_cast<int>(k % 3);
}

// Whether `in` holds exactly `expected`.
bool holds(decoder in, const std::vector<char>& expected) {
  if (in.remaining() != expected.size()) return false;
  for (char c : expected)
    if (in.get<char>() != c) return false;
  return true;
}

// Polls until a message arrives; false after 10 s (a receive that is not posted, or not matched).
bool arrives(peer_inbox& inbox) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!inbox.poll())
    if (std::chrono::steady_clock::now() > give_up) return false;
  return true;
}

// A communicator of the test's own, freed at the end (collective: every rank).
struct own_comm {
  MPI_Comm comm = MPI_COMM_NULL;
  own_comm() { MPI_Comm_dup(MPI_COMM_WORLD, &comm); }
  ~own_comm() { MPI_Comm_free(&comm); }
  int rank() const {
    int r = 0;
    MPI_Comm_rank(comm, &r);
    return r;
  }
  int size() const {
    int s = 0;
    MPI_Comm_size(comm, &s);
    return s;
  }
};

} // namespace

TEST_CASE("messages arrive in order with their tags; the last stays readable after the next post", "[peer_inbox]") {
  own_comm c;
  if (c.size() < 2) return;
  constexpr std::uint32_t count = 24;
  if (c.rank() == 0) {
    // All sent at once: the next message may land in the other buffer while the last is read.
    std::vector<std::vector<char>> sent;
    std::vector<MPI_Request> requests(count);
    for (std::uint32_t k = 0; k < count; ++k) sent.push_back(message_of(k));
    for (std::uint32_t k = 0; k < count; ++k)
      MPI_Isend(sent[k].data(), static_cast<int>(sent[k].size()), MPI_BYTE, 1, tag_of(k), c.comm, &requests[k]);
    MPI_Waitall(static_cast<int>(count), requests.data(), MPI_STATUSES_IGNORE);
  } else if (c.rank() == 1) {
    peer_inbox inbox(c.comm, 0, MPI_ANY_TAG);
    for (std::uint32_t k = 0; k < count; ++k) {
      inbox.post();
      REQUIRE(arrives(inbox));
      CHECK(inbox.message_tag() == tag_of(k));
      CHECK(inbox.announced() == 0);
      CHECK(holds(inbox.message(), message_of(k)));
      // The next receive posted and given time to complete: this message is untouched.
      inbox.post();
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      int flag = 0;
      MPI_Iprobe(0, MPI_ANY_TAG, c.comm, &flag, MPI_STATUS_IGNORE); // moves MPI on
      INFO("message " << k);
      CHECK(holds(inbox.message(), message_of(k)));
    }
  }
  MPI_Barrier(c.comm);
}

TEST_CASE("poll() finds nothing without a posted receive, and post() posts one receive however often called",
          "[peer_inbox]") {
  own_comm c;
  if (c.size() < 2) return;
  const int tag = 5;
  if (c.rank() == 0) {
    MPI_Barrier(c.comm); // rank 1 posted (twice)
    for (std::uint32_t k = 0; k < 2; ++k) {
      const std::vector<char> m = message_of(k);
      MPI_Send(m.data(), static_cast<int>(m.size()), MPI_BYTE, 1, tag, c.comm);
      MPI_Barrier(c.comm); // rank 1 read it
    }
  } else if (c.rank() == 1) {
    peer_inbox inbox(c.comm, 0, tag);
    CHECK_FALSE(inbox.poll()); // nothing posted
    inbox.post();
    inbox.post(); // a second receive here would take message 1 before the first is tested
    MPI_Barrier(c.comm);
    REQUIRE(arrives(inbox));
    CHECK(holds(inbox.message(), message_of(0)));
    CHECK_FALSE(inbox.poll()); // not posted again yet
    MPI_Barrier(c.comm);
    inbox.post();
    REQUIRE(arrives(inbox));
    CHECK(holds(inbox.message(), message_of(1)));
    MPI_Barrier(c.comm);
  } else {
    for (int k = 0; k < 3; ++k) MPI_Barrier(c.comm);
  }
  MPI_Barrier(c.comm);
}

TEST_CASE("an envelope's message is fetched into the inbox; a fetch that throws leaves the envelope", "[peer_inbox]") {
  own_comm c;
  if (c.size() < 2) return;
  const auto envelope_tag = static_cast<int>(foreman::detail::tag::tasks);
  const auto large_tag = static_cast<int>(foreman::detail::tag::tasks_large);
  // A tasks message three posted buffers long: a header, then bytes that depend on their place.
  std::vector<char> large(3 * posted_capacity + 5);
  for (std::size_t i = 0; i < large.size(); ++i) large[i] = static_cast<char>(i * 11 + 3);
  std::vector<char> envelope;
  foreman::detail::put_envelope(envelope, large);
  if (c.rank() == 0) {
    MPI_Send(envelope.data(), static_cast<int>(envelope.size()), MPI_BYTE, 1, envelope_tag, c.comm);
    MPI_Send(large.data(), static_cast<int>(large.size()), MPI_BYTE, 1, large_tag, c.comm);
  } else if (c.rank() == 1) {
    peer_inbox inbox(c.comm, 0, MPI_ANY_TAG);
    inbox.post();
    REQUIRE(arrives(inbox));
    CHECK(inbox.message_tag() == envelope_tag);
    REQUIRE(inbox.announced() == large.size());
    CHECK_THROWS_AS(inbox.fetch_large([](const foreman::detail::body_span&) { throw std::runtime_error("no"); }),
                    std::runtime_error);
    CHECK(holds(inbox.message(), envelope)); // still the envelope
    CHECK(inbox.announced() == large.size());
    inbox.fetch_large([&](const foreman::detail::body_span& into) {
      REQUIRE(into.bytes == large.size());
      MPI_Recv(into.data, static_cast<int>(into.bytes), MPI_BYTE, 0, large_tag, c.comm, MPI_STATUS_IGNORE);
    });
    CHECK(holds(inbox.message(), large));
    CHECK(inbox.announced() == 0); // the message itself announces nothing
  }
  MPI_Barrier(c.comm);
}

TEST_CASE("a receive still posted when the inbox is destroyed is withdrawn", "[peer_inbox]") {
  own_comm c;
  if (c.size() < 2) return;
  const int tag = 9;
  if (c.rank() == 1) {
    peer_inbox inbox(c.comm, 0, tag);
    inbox.post();
  } // withdrawn here: the message below must not be taken by it
  MPI_Barrier(c.comm);
  if (c.rank() == 0) {
    const std::vector<char> m = message_of(3);
    MPI_Send(m.data(), static_cast<int>(m.size()), MPI_BYTE, 1, tag, c.comm);
  } else if (c.rank() == 1) {
    int flag = 0;
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!flag && std::chrono::steady_clock::now() < give_up) MPI_Iprobe(0, tag, c.comm, &flag, MPI_STATUS_IGNORE);
    REQUIRE(flag); // still unmatched: no receive of the destroyed inbox took it
    std::vector<char> into(posted_capacity);
    MPI_Status status;
    MPI_Recv(into.data(), static_cast<int>(into.size()), MPI_BYTE, 0, tag, c.comm, &status);
    int bytes = 0;
    MPI_Get_count(&status, MPI_BYTE, &bytes);
    into.resize(static_cast<std::size_t>(bytes));
    CHECK(into == message_of(3));
  }
  MPI_Barrier(c.comm);
}
