// The master's inbox of replies (detail/reply_inbox.hpp), with raw MPI messages: each rank's
// messages handed out in the order it sent them, one held until the rank is posted for, and a poll
// that tests one request whatever the number of ranks. Runs at 2-4 ranks.
#include "catch.hpp"

#include <foreman/detail/reply_inbox.hpp>

#include <mpi.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <vector>

namespace {

// Requests examined by MPI's test calls in this program (MPI's profiling interface: these replace
// the library's calls, which they call as PMPI_...).
long long examined = 0;

} // namespace

extern "C" int MPI_Test(MPI_Request* request, int* flag, MPI_Status* status) {
  ++examined;
  return PMPI_Test(request, flag, status);
}
extern "C" int MPI_Testsome(int count, MPI_Request requests[], int* outcount, int indices[], MPI_Status statuses[]) {
  examined += count;
  return PMPI_Testsome(count, requests, outcount, indices, statuses);
}
extern "C" int MPI_Testany(int count, MPI_Request requests[], int* index, int* flag, MPI_Status* status) {
  examined += count;
  return PMPI_Testany(count, requests, index, flag, status);
}

namespace {

constexpr int message_tag = 77;
constexpr int go_tag = 78;
constexpr std::uint32_t per_rank = 40;

// Message k of a rank: its number, then bytes that depend on both, its length one of a few: under
// the eager limit, past Open MPI's shared-memory one (4 KiB), and the whole posted buffer.
std::vector<char> message_of(int rank, std::uint32_t k) {
  static const std::size_t sizes[] = {16, 1500, 5000, foreman::detail::posted_capacity};
  std::vector<char> m(sizes[k % 4]);
  std::memcpy(m.data(), &k, sizeof k);
  for (std::size_t i = sizeof k; i < m.size(); ++i) m[i] = static_cast<char>(rank * 31 + k * 7 + i);
  return m;
}

// The number of the message the inbox holds for `rank`, checked against its bytes (-1: wrong).
long number_in(const foreman::detail::reply_inbox& inbox, int rank) {
  foreman::detail::decoder in = inbox.message(rank);
  const auto k = in.get<std::uint32_t>();
  const std::vector<char> expected = message_of(rank, k);
  if (in.remaining() + sizeof k != expected.size()) return -1;
  for (std::size_t i = sizeof k; i < expected.size(); ++i)
    if (in.get<char>() != expected[i]) return -1;
  return static_cast<long>(k);
}

// A communicator of the test case's own (a duplicate of the world's), this rank in it and its size.
struct comm_dup {
  MPI_Comm comm = MPI_COMM_NULL;
  int rank = 0;
  int size = 0;
  comm_dup() {
    MPI_Comm_dup(MPI_COMM_WORLD, &comm);
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
  }
  ~comm_dup() { MPI_Comm_free(&comm); }
};

using steady = std::chrono::steady_clock;

} // namespace

TEST_CASE("each rank's replies come in the order sent; a rank not posted for gets none until it is", "[inbox]") {
  comm_dup d;
  const int rank = d.rank, size = d.size;
  if (size < 2) return;
  if (rank != 0) {
    if (rank == 1) MPI_Recv(nullptr, 0, MPI_BYTE, 0, go_tag, d.comm, MPI_STATUS_IGNORE); // after the others
    for (std::uint32_t k = 0; k < per_rank; ++k) {
      const std::vector<char> m = message_of(rank, k);
      MPI_Send(m.data(), static_cast<int>(m.size()), MPI_BYTE, 0, message_tag, d.comm);
    }
    MPI_Barrier(d.comm);
    return;
  }
  {
    foreman::detail::reply_inbox inbox(d.comm, size, message_tag);
    std::vector<long> next(static_cast<std::size_t>(size), 0);
    const auto deadline = steady::now() + std::chrono::seconds(30);
    // Rank 1 is not posted for: it sends once told to, after the others have sent everything.
    for (int r = 2; r < size; ++r) inbox.post(r);
    long left = static_cast<long>(per_rank) * (size - 2);
    while (left > 0 && steady::now() < deadline) {
      const int from = inbox.poll();
      if (from < 0) continue;
      REQUIRE(from >= 2);
      REQUIRE(number_in(inbox, from) == next[static_cast<std::size_t>(from)]); // in order, intact
      ++next[static_cast<std::size_t>(from)];
      --left;
      inbox.post(from);
    }
    REQUIRE(left == 0);
    MPI_Send(nullptr, 0, MPI_BYTE, 1, go_tag, d.comm);
    // Everything rank 1 sends is taken from MPI by the inbox, and held: nothing of it comes out.
    int came = 0;
    for (const auto until = steady::now() + std::chrono::milliseconds(300); steady::now() < until;)
      if (inbox.poll() >= 0) ++came;
    REQUIRE(came == 0);
    inbox.post(1);
    while (next[1] < static_cast<long>(per_rank) && steady::now() < deadline) {
      const int from = inbox.poll();
      if (from < 0) continue;
      REQUIRE(from == 1);
      REQUIRE(number_in(inbox, 1) == next[1]);
      ++next[1];
      inbox.post(1);
    }
    REQUIRE(next[1] == static_cast<long>(per_rank));

    // A poll with nothing to take tests one request, whatever the number of ranks posted for
    // (MPI_Testsome over one receive per rank tested size - 1).
    for (int r = 1; r < size; ++r) inbox.post(r);
    const long long before = examined;
    came = 0;
    for (int k = 0; k < 1000; ++k) came += inbox.poll() >= 0 ? 1 : 0;
    REQUIRE(came == 0);
    CHECK(examined - before == 1000);
  }
  MPI_Barrier(d.comm);
}

TEST_CASE("withdraw() returns a reply handed out but not yet polled; one after it waits for post()", "[inbox]") {
  comm_dup d;
  const int rank = d.rank, size = d.size;
  if (size < 2) return;
  if (rank == 1) {
    for (std::uint32_t k = 0; k < 2; ++k) {
      MPI_Recv(nullptr, 0, MPI_BYTE, 0, go_tag, d.comm, MPI_STATUS_IGNORE);
      const std::vector<char> m = message_of(rank, k);
      MPI_Send(m.data(), static_cast<int>(m.size()), MPI_BYTE, 0, message_tag, d.comm);
    }
  }
  if (rank == 0) {
    foreman::detail::reply_inbox inbox(d.comm, size, message_tag);
    const auto deadline = steady::now() + std::chrono::seconds(30);
    inbox.post(1);
    MPI_Send(nullptr, 0, MPI_BYTE, 1, go_tag, d.comm);
    bool got = false;
    while (!got && steady::now() < deadline) {
      got = inbox.withdraw(1); // takes what arrived first: message 0, once it is here
      if (!got) inbox.post(1);
    }
    REQUIRE(got);
    CHECK(number_in(inbox, 1) == 0);
    CHECK(inbox.poll() < 0); // withdraw() took it: poll() does not return it again
    // Withdrawn: message 1 is held when it comes, until post().
    MPI_Send(nullptr, 0, MPI_BYTE, 1, go_tag, d.comm);
    int came = 0;
    for (const auto until = steady::now() + std::chrono::milliseconds(300); steady::now() < until;)
      if (inbox.poll() >= 0) ++came;
    REQUIRE(came == 0);
    CHECK(number_in(inbox, 1) == 0); // the last one handed out stays readable
    inbox.post(1);
    int from = -1;
    while (from < 0 && steady::now() < deadline) from = inbox.poll();
    REQUIRE(from == 1);
    CHECK(number_in(inbox, 1) == 1);
  }
  MPI_Barrier(d.comm);
}
