#pragma once
/// @file reply_inbox.hpp
/// The master's inbox of its workers' reply messages (tag::results, wire.hpp): a few receives from
/// MPI_ANY_SOURCE kept posted at all times, instead of one receive per worker. A poll tests the
/// oldest of them only, whatever the number of workers: O(1) per poll and per message in foreman,
/// where MPI_Testsome over one receive per worker examined every worker's request on each poll
/// (docs/performance.md, "The master's ceiling"). What an MPI does to match a receive from any
/// source is its own: Open MPI's ob1 looks through its per-peer queues of unexpected messages
/// when such a receive is posted (one emptiness check per peer); MPICH keeps one queue.
///
/// Its guarantees are those one receive posted per rank would give:
/// - a rank's messages are handed out in the order it sent them (MPI matches the receives in the
///   order they were posted, and only the oldest is tested: a later one is never taken first);
/// - a rank gets its next message only after post(rank): one that arrives before is held, in
///   order, and handed out after post(), as MPI would hold it for a receive not yet posted;
/// - the last message handed out for a rank stays readable (message()) until its next one is.
///
/// Receives are posted into buffers of posted_capacity bytes; a longer message comes as an envelope
/// and the caller receives the message itself (large_buffer()). The posted receives are withdrawn
/// by withdraw_all() (and the destructor) and posted again by the next post(); buffers are kept.

#include <foreman/detail/mpi_check.hpp>
#include <foreman/detail/transport.hpp>
#include <foreman/detail/wire.hpp>

#include <mpi.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <deque>
#include <utility>
#include <vector>

namespace foreman {
namespace detail {

class reply_inbox {
public:
  /// Receives from any source kept posted at most: more would rarely be filled at once, since the
  /// master takes what arrived on every pass; a message past them waits in MPI, matched later.
  static constexpr int most_posted = 16;

  /// @param ranks the communicator's size: messages come from ranks 1 .. ranks - 1
  /// @param tag   the messages' tag (one tag: bodies and other messages never match these receives)
  reply_inbox(MPI_Comm comm, int ranks, int tag)
      : comm_(comm), tag_(tag), channels_(static_cast<std::size_t>(ranks)),
        ring_(static_cast<std::size_t>(std::max(1, std::min(most_posted, ranks - 1)))) {}
  reply_inbox(const reply_inbox&) = delete;
  reply_inbox& operator=(const reply_inbox&) = delete;
  ~reply_inbox() { withdraw_all(); }

  /// `rank` may be handed its next message: at once if one is held already (the next poll()
  /// returns it), else when it arrives. Posts the receives from any source if they are not.
  void post(int rank) {
    if (!armed_) arm();
    channel& c = at(rank);
    if (c.open) return;
    if (c.held.empty()) {
      c.open = true;
      return;
    }
    hand_out(rank, c.held.front().bytes, c.held.front().size);
    spare_.push_back(std::move(c.held.front().bytes));
    c.held.pop_front();
  }
  /// Whether `rank` waits for its next message (post() was called, nothing handed out since).
  bool posted(int rank) const { return channels_[static_cast<std::size_t>(rank)].open; }

  /// Tests the oldest posted receive; returns the rank of a message handed out (read it with
  /// message()), or -1. The rank gets no other message
  /// until post() is called again. @throws mpi_error naming the source when a receive failed
  FOREMAN_DETAIL_INLINE int poll() {
#ifdef FOREMAN_DETAIL_TEST_HOOKS
    fail_injected();
#endif
    if (arrived_.empty() && armed_) take_arrivals();
    if (arrived_.empty()) return -1;
    const int rank = arrived_.front();
    arrived_.pop_front();
    return rank;
  }

  /// The last message handed out for `rank`.
  decoder message(int rank) const {
    const channel& c = channels_[static_cast<std::size_t>(rank)];
    return decoder(c.last.data(), c.last_size);
  }

  /// If the last message from `rank` is an envelope: how many bytes its message has, else 0.
  std::size_t announced(int rank) const {
    const channel& c = channels_[static_cast<std::size_t>(rank)];
    return envelope_size(c.last.data(), c.last_size);
  }

  /// The buffer the message the last envelope from `rank` announced is to be received into, sized
  /// for it (kept until release_large()). The caller receives it there, without waiting.
  body_span large_buffer(int rank) {
    channel& c = at(rank);
    c.large.resize(announced(rank));
    return body_span{c.large.data(), c.large.size()};
  }

  /// Frees the envelopes' message buffers longer than piece_bytes() (kept otherwise, for the next
  /// one), and the buffers of held messages beyond a few.
  void release_large() noexcept {
    const std::size_t most = piece_bytes();
    for (channel& c : channels_)
      if (c.large.capacity() > most) std::vector<char>().swap(c.large);
    if (spare_.size() > ring_.size()) spare_.resize(ring_.size());
  }

  /// `rank` is handed nothing more until post(): true if a message of its had been handed out and
  /// not yet returned by poll() (read it with message(), as if poll() had returned it).
  bool withdraw(int rank) {
    // Everything that has arrived first (a rank's message may be behind others').
    for (std::size_t k = 0; armed_ && k < ring_.size(); ++k) {
      const std::size_t head = head_;
      take_arrivals();
      if (head_ == head) break; // the oldest had not completed
    }
    channel& c = at(rank);
    c.open = false;
    const auto found = std::find(arrived_.begin(), arrived_.end(), rank);
    if (found == arrived_.end()) return false;
    arrived_.erase(found);
    return true;
  }

  /// Withdraws the posted receives and forgets the messages handed out that poll() has not
  /// returned (what they held is dropped), and every rank's post(). Messages held for a rank stay
  /// held, as they would stay in MPI. Never throws (destructors call it): a receive MPI fails to
  /// withdraw is forgotten.
  void withdraw_all() noexcept {
    if (armed_) {
      // Withdrawn oldest first: one that completed after all is handed out in order, then dropped
      // with the rest below, or held if its rank was not waiting.
      for (std::size_t k = 0; k < ring_.size(); ++k) {
        posted_receive& r = ring_[(head_ + k) % ring_.size()];
        if (r.request == MPI_REQUEST_NULL) continue;
        MPI_Status status;
        if (MPI_Cancel(&r.request) != MPI_SUCCESS || MPI_Wait(&r.request, &status) != MPI_SUCCESS) {
          r.request = MPI_REQUEST_NULL;
          continue;
        }
        int cancelled = 0;
        if (MPI_Test_cancelled(&status, &cancelled) == MPI_SUCCESS && !cancelled) arrive(r, status);
      }
      armed_ = false;
    }
    arrived_.clear();
    for (channel& c : channels_) c.open = false;
  }

private:
  struct posted_receive {
    std::vector<char> bytes;
    MPI_Request request = MPI_REQUEST_NULL;
  };
  struct held_message {
    std::vector<char> bytes;
    std::size_t size = 0;
  };
  struct channel {
    bool open = false;             // waits for its next message (post() called)
    std::vector<char> last;        // the last message handed out
    std::size_t last_size = 0;     // its length (the buffer may be longer)
    std::deque<held_message> held; // arrived before post(), in order
    std::vector<char> large;       // an envelope's message
  };

  channel& at(int rank) {
    if (rank < 1 || rank >= static_cast<int>(channels_.size())) throw error("no worker rank " + std::to_string(rank));
    return channels_[static_cast<std::size_t>(rank)];
  }

  // Posts every receive of the ring, oldest first.
  void arm() {
    head_ = 0;
    for (posted_receive& r : ring_) repost(r);
    armed_ = true;
  }

  void repost(posted_receive& r) {
    r.bytes.resize(posted_capacity);
    check_mpi(
        MPI_Irecv(r.bytes.data(), static_cast<int>(posted_capacity), MPI_BYTE, MPI_ANY_SOURCE, tag_, comm_, &r.request),
        "MPI_Irecv (from any source)");
  }

  // Tests the oldest posted receive once: a message that has arrived in it is handed out or held,
  // and the receive posted again, as the newest. One at a time: the master files a reply (and
  // sends its worker's next tasks) before it tests the next receive, since a test that finds
  // nothing makes progress in MPI, which yields the core on an oversubscribed host (Open MPI's
  // mpi_yield_when_idle): testing on past the replies that have arrived would yield before the
  // workers that sent them get work (16 ranks on 2 cores: 0.65x the rate).
  FOREMAN_DETAIL_INLINE void take_arrivals() {
    posted_receive& r = ring_[head_];
    int done = 0;
    MPI_Status status;
    status.MPI_SOURCE = MPI_ANY_SOURCE; // what a failure names when MPI says nothing
    const int code = MPI_Test(&r.request, &done, &status);
    if (code != MPI_SUCCESS) failed(r, code, status);
    if (!done) return;
    arrive(r, status);
    repost(r);
    head_ = head_ + 1 == ring_.size() ? 0 : head_ + 1;
  }

  // A message arrived in `r`: handed out if its rank waits for one, else held. The receive's
  // buffer goes with it (swapped, not copied); `r` gets another.
  void arrive(posted_receive& r, const MPI_Status& status) {
    const int rank = status.MPI_SOURCE;
    const std::size_t size = received_bytes(status);
    if (rank < 1 || rank >= static_cast<int>(channels_.size())) return; // no worker's: not foreman's
    channel& c = channels_[static_cast<std::size_t>(rank)];
    if (c.open && c.held.empty()) {
      hand_out(rank, r.bytes, size);
    } else {
      c.held.push_back(held_message{std::move(r.bytes), size});
      r.bytes = take_spare();
    }
  }

  // Makes `bytes` (`size` of them meaningful) rank's last message, returned by the next poll();
  // `bytes` gets the buffer the rank's message before it was in.
  void hand_out(int rank, std::vector<char>& bytes, std::size_t size) {
    channel& c = channels_[static_cast<std::size_t>(rank)];
    c.last.swap(bytes);
    c.last_size = size;
    c.open = false;
    arrived_.push_back(rank);
  }

  std::vector<char> take_spare() {
    if (spare_.empty()) return {};
    std::vector<char> b = std::move(spare_.back());
    spare_.pop_back();
    return b;
  }

  // A posted receive completed in error: it is posted again (the others stay posted), and the
  // failure thrown, naming its source when MPI says which it is.
  [[noreturn]] void failed(posted_receive& r, int code, const MPI_Status& status) {
    const int rank = status.MPI_SOURCE;
    r.request = MPI_REQUEST_NULL;
    repost(r);
    head_ = head_ + 1 == ring_.size() ? 0 : head_ + 1;
    const bool named = rank >= 1 && rank < static_cast<int>(channels_.size());
    if (named) channels_[static_cast<std::size_t>(rank)].open = false;
    throw_mpi_error(code, "MPI_Test (a receive from any source)", named ? rank : -1);
  }

#ifdef FOREMAN_DETAIL_TEST_HOOKS
  // Tests only: the rank injected_receive_failure() names (then -1), if it waits for a message,
  // fails as a failed receive from it would: it waits no more, and the failure names it.
  void fail_injected() {
    int& rank = injected_receive_failure();
    if (rank < 1 || rank >= static_cast<int>(channels_.size()) || !posted(rank)) return;
    const int victim = std::exchange(rank, -1);
    channels_[static_cast<std::size_t>(victim)].open = false;
    throw_mpi_error(MPI_ERR_OTHER, "MPI_Test (a posted receive; failure injected by a test)", victim);
  }
#endif

  MPI_Comm comm_;
  int tag_;
  std::vector<channel> channels_;
  std::vector<posted_receive> ring_; // posted from any source; ring_[head_] the oldest
  std::size_t head_ = 0;
  bool armed_ = false;
  std::deque<int> arrived_;              // ranks handed a message poll() has not returned yet
  std::vector<std::vector<char>> spare_; // buffers of held messages that were handed out
};

} // namespace detail
} // namespace foreman
