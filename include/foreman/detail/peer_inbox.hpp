#pragma once
/// @file peer_inbox.hpp
/// The worker's inbox of the master's messages (wire.hpp): one receive from the master, with any
/// tag, posted before its message arrives. The master receives its workers' replies through
/// reply_inbox (reply_inbox.hpp).

#include <foreman/detail/mpi_check.hpp>
#include <foreman/detail/transport.hpp>
#include <foreman/detail/wire.hpp>

#include <mpi.h>

#include <array>
#include <cstddef>
#include <vector>

namespace foreman {
namespace detail {

/// The worker's receiver of the master's messages: the messages of one peer (`source`) on one tag
/// or MPI_ANY_TAG, received through one receive posted at a time, before its message arrives.
/// Open MPI then copies an arriving message straight into the posted buffer, where a probe first
/// queues it as unexpected and copies it again, and MPI_Test costs a flag check where MPI_Improbe
/// allocates a request per call: a loop polling a posted receive answers about as fast as one
/// blocking in MPI_Recv (docs/performance.md).
///
/// Double-buffered: two buffers of posted_capacity bytes, and each receive is posted into the one
/// that does not hold the last message, which stays readable (message()) after the next post().
/// A longer message comes as an envelope; fetch_large() then receives the message itself. The
/// buffers are allocated when first posted into, and kept. A receive still posted when the inbox
/// is destroyed is withdrawn.
class peer_inbox {
public:
  /// @param source the rank the messages come from
  /// @param tag    their tag, or MPI_ANY_TAG
  peer_inbox(MPI_Comm comm, int source, int tag) : comm_(comm), source_(source), tag_(tag) {}
  peer_inbox(const peer_inbox&) = delete;
  peer_inbox& operator=(const peer_inbox&) = delete;
  ~peer_inbox() { withdraw(); }

  /// Posts the receive of the next message, into the buffer that does not hold the last message
  /// (nothing to do if it is posted already). @throws mpi_error naming the source
  void post() {
    if (request_ != MPI_REQUEST_NULL) return;
    posted_ = 1 - ready_;
    std::vector<char>& buffer = buffers_[posted_];
    buffer.resize(posted_capacity);
    check_mpi(MPI_Irecv(buffer.data(), static_cast<int>(posted_capacity), MPI_BYTE, source_, tag_, comm_, &request_),
              "MPI_Irecv", source_);
  }

  /// Tests the posted receive once (MPI_Test; false if none is posted): true when its message has
  /// arrived (read it with message()). The next receive is not posted until post() is called.
  /// @throws mpi_error naming the source when the receive completed in error (it is gone then)
  bool poll() {
    if (request_ == MPI_REQUEST_NULL) return false;
    int done = 0;
    MPI_Status status;
    const int code = MPI_Test(&request_, &done, &status);
    if (code != MPI_SUCCESS) {
      request_ = MPI_REQUEST_NULL; // completed in error: MPI has freed it
      throw_mpi_error(code, "MPI_Test (a posted receive)", source_);
    }
    if (!done) return false;
    ready_ = posted_;
    ready_bytes_ = received_bytes(status);
    ready_tag_ = status.MPI_TAG;
    large_ready_ = false;
    return true;
  }

  /// The tag of the last message (useful with MPI_ANY_TAG).
  int message_tag() const { return ready_tag_; }

  /// The last message (or, after fetch_large(), the message its envelope announced).
  decoder message() const {
    if (large_ready_) return decoder(large_.data(), large_.size());
    return decoder(buffers_[ready_].data(), ready_bytes_);
  }

  /// If the last message is an envelope: how many bytes its message has, else 0.
  std::size_t announced() const { return large_ready_ ? 0 : envelope_size(buffers_[ready_].data(), ready_bytes_); }

  /// Receives the message the last envelope announced: sizes its buffer and calls
  /// `receive(into)` (a body_span), which receives the message into it; message() then returns
  /// it. If `receive` throws, message() still returns the envelope.
  template <class Receive>
  void fetch_large(Receive&& receive) {
    large_.resize(announced());
    receive(body_span{large_.data(), large_.size()});
    large_ready_ = true;
  }

private:
  // Withdraws the posted receive, if any: MPI_Cancel, then MPI_Wait, which a cancelled request
  // makes local (the MPI standard, on MPI_Cancel); a message it had matched after all is dropped.
  // Never throws (the destructor calls it): a receive MPI fails to withdraw is forgotten.
  void withdraw() noexcept {
    if (request_ == MPI_REQUEST_NULL) return;
    if (MPI_Cancel(&request_) == MPI_SUCCESS) MPI_Wait(&request_, MPI_STATUS_IGNORE);
    request_ = MPI_REQUEST_NULL;
  }

  MPI_Comm comm_;
  int source_;
  int tag_;
  std::array<std::vector<char>, 2> buffers_;
  MPI_Request request_ = MPI_REQUEST_NULL; // the posted receive, or MPI_REQUEST_NULL
  std::size_t posted_ = 0;                 // the buffer the posted receive fills
  std::size_t ready_ = 1;                  // the buffer holding the last message (none yet: empty)
  std::size_t ready_bytes_ = 0;            // its length (the buffer is posted_capacity long)
  int ready_tag_ = 0;
  std::vector<char> large_; // an envelope's message
  bool large_ready_ = false;
};

} // namespace detail
} // namespace foreman
