#pragma once
/// @file transport.hpp
/// The MPI calls that move foreman's messages (wire.hpp): non-blocking sends that keep their
/// buffers alive, envelopes for messages longer than a posted receive, receives of bodies and
/// pieces, and bounded waits. The receives posted before their messages arrive are the inboxes':
/// the worker's (peer_inbox.hpp) and the master's (reply_inbox.hpp). Neither loop ever blocks on
/// one peer without a limit except where the protocol guarantees the message is on its way.

#include <foreman/detail/idle.hpp>
#include <foreman/detail/mpi_check.hpp>
#include <foreman/detail/wire.hpp>
#include <foreman/errors.hpp>

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace foreman {
namespace detail {

using clock = std::chrono::steady_clock;

/// A posted non-blocking send and the buffer it reads from, and the sends that follow it (an
/// envelope's message, the message's bodies), which read from their own buffers or the values.
struct send_slot {
  std::vector<char> bytes;
  std::vector<char> envelope; // sent in place of `bytes` when they exceed posted_capacity
  MPI_Request request = MPI_REQUEST_NULL;
  std::vector<MPI_Request> bodies; // and the envelope's message, if any
  int peer = -1;                   // where the sends go: named by a failure (mpi_error::peer())
  /// Values the bodies' sends read from, handed over by their owner, which lets them go before
  /// these sends are over (a job's tasks sent to a worker that was lost, or cancelled: the
  /// master's keep_bodies()); a value's heap buffer keeps its address when moved here. Freed when
  /// the sends complete, or with the slot (outliving_sends.hpp keeps an abandoned one).
  std::vector<std::shared_ptr<const void>> kept;

  bool idle() const { return request == MPI_REQUEST_NULL && bodies.empty(); }
  /// Tests the sends; true when all have completed. @throws mpi_error naming `peer`
  bool test() {
    int done = 1;
    if (request != MPI_REQUEST_NULL) check_mpi(MPI_Test(&request, &done, MPI_STATUS_IGNORE), "MPI_Test (a send)", peer);
    if (!done) return false;
    if (!bodies.empty()) {
      check_mpi(MPI_Testall(static_cast<int>(bodies.size()), bodies.data(), &done, MPI_STATUSES_IGNORE),
                "MPI_Testall (a message's bodies)", peer);
      if (!done) return false;
      bodies.clear();
    }
    kept.clear();
    return true;
  }
  /// Whether the sends are over: complete, or failed (MPI cannot reach `peer`). Never throws.
  bool over() noexcept {
    try {
      return idle() || test();
    } catch (const mpi_error&) {
      return true;
    }
  }
  /// Completes the sends by testing them, pausing between two tests as `idle` says (unlike
  /// wait(), which may hold a core in MPI until they complete). @throws mpi_error naming `peer`
  void complete(idle_backoff idle) {
    while (!test()) idle.pause();
  }
  /// @throws mpi_error naming `peer`
  void wait() {
    if (request != MPI_REQUEST_NULL) check_mpi(MPI_Wait(&request, MPI_STATUS_IGNORE), "MPI_Wait (a send)", peer);
    for (MPI_Request& r : bodies) check_mpi(MPI_Wait(&r, MPI_STATUS_IGNORE), "MPI_Wait (a body's send)", peer);
    bodies.clear();
    kept.clear();
  }
};

/// A backstop: what is sent as one message (short messages, envelopes) is far below piece_bytes(),
/// and longer bytes go as pieces (post_pieces); a message reaching this is foreman's own error.
[[noreturn]] FOREMAN_DETAIL_COLD inline void too_long_for_one_message(std::size_t bytes) {
  throw error("a message of " + std::to_string(bytes) + " bytes was to be sent whole; messages over " +
              std::to_string(piece_bytes()) + " bytes travel in pieces");
}

/// The length of a message received as MPI_BYTE, from its status. Open MPI keeps it in a field of
/// its public status struct; reading it there spares both loops a call of MPI_Get_count, with its
/// argument checks, on every message. Elsewhere: MPI_Get_count.
inline std::size_t received_bytes(const MPI_Status& status) {
#if defined(OPEN_MPI) && OPEN_MPI
  return status._ucount;
#else
  int count = 0;
  check_mpi(MPI_Get_count(&status, MPI_BYTE, &count), "MPI_Get_count");
  return static_cast<std::size_t>(count);
#endif
}

/// Sends a byte buffer of at most piece_bytes() as one message without blocking.
inline MPI_Request post_send(const std::vector<char>& bytes, int dest, tag t, MPI_Comm comm) {
  if (bytes.size() > piece_bytes()) too_long_for_one_message(bytes.size());
  MPI_Request request = MPI_REQUEST_NULL;
  check_mpi(
      MPI_Isend(bytes.data(), static_cast<int>(bytes.size()), MPI_BYTE, dest, static_cast<int>(t), comm, &request),
      "MPI_Isend", dest);
  return request;
}

/// A message of at most this many bytes goes out eagerly on MPI's transports (Open MPI's shared
/// memory up to 4 KiB, its network transports further): a blocking send of one returns as soon as
/// its bytes are copied out, without waiting for the receiver.
inline constexpr std::size_t eager_bytes = 1024;

/// Sends a message of at most eager_bytes on tag `t` to a receiver that keeps a receive posted for
/// it (the master: reply_inbox.hpp), with a blocking send: no request to complete afterwards.
/// Where an MPI waits for the matching receive, it waits until the receiver has handled its last
/// message from this rank and posted the next receive, which the master's loop does without
/// blocking on anyone.
inline void send_short(const std::vector<char>& bytes, int dest, tag t, MPI_Comm comm) {
  check_mpi(MPI_Send(bytes.data(), static_cast<int>(bytes.size()), MPI_BYTE, dest, static_cast<int>(t), comm),
            "MPI_Send", dest);
}

/// Sends `bytes` bytes from `data` on tag `t` without blocking: as one message up to piece_bytes(),
/// else as its pieces (wire.hpp). The requests go to slot.bodies. @throws mpi_error naming `dest`
inline void post_pieces(const void* data, std::size_t bytes, int dest, tag t, MPI_Comm comm, send_slot& slot,
                        const char* call) {
  slot.peer = dest;
  const char* from = static_cast<const char*>(data);
  const std::size_t most = piece_bytes();
  do {
    const std::size_t piece = std::min(bytes, most);
    slot.bodies.push_back(MPI_REQUEST_NULL);
    check_mpi(MPI_Isend(from, static_cast<int>(piece), MPI_BYTE, dest, static_cast<int>(t), comm, &slot.bodies.back()),
              call, dest);
    from += piece;
    bytes -= piece;
  } while (bytes > 0);
}

/// Sends slot.bytes, a message on tag `t` whose receiver posts its receive ahead (peer_inbox.hpp,
/// reply_inbox.hpp): as it is when it fits posted_capacity, else as an envelope on `t` followed by
/// the message on large_tag(t), in pieces past piece_bytes(). The slot holds the requests.
#ifdef FOREMAN_DETAIL_TEST_HOOKS
/// Tests only: the rank to which the next tasks message posted (post_message()) fails as MPI
/// would fail its MPI_Isend, MPI_ERR_OTHER (then -1 again). No fault found here makes MPI refuse a
/// send (Open MPI 4.1 reports no error for a dead peer), but an MPI may, on a broken connection.
inline int& injected_send_failure() {
  static int rank = -1;
  return rank;
}
#endif

inline void post_message(send_slot& slot, int dest, tag t, MPI_Comm comm) {
  slot.peer = dest;
#ifdef FOREMAN_DETAIL_TEST_HOOKS
  if (t == tag::tasks && dest == injected_send_failure()) {
    injected_send_failure() = -1;
    check_mpi(MPI_ERR_OTHER, "MPI_Isend", dest);
  }
#endif
  if (slot.bytes.size() <= posted_capacity) {
    slot.request = post_send(slot.bytes, dest, t, comm);
    return;
  }
  slot.envelope.clear();
  put_envelope(slot.envelope, slot.bytes);
  slot.request = post_send(slot.envelope, dest, t, comm);
  post_pieces(slot.bytes.data(), slot.bytes.size(), dest, large_tag(t), comm, slot, "MPI_Isend (a large message)");
}

/// Sends a body (a value's own bytes, see wire.hpp) without blocking, in pieces past piece_bytes();
/// its requests go to `slot`.
inline void post_body(const body_span& body, int dest, tag t, MPI_Comm comm, send_slot& slot) {
  post_pieces(body.data, body.bytes, dest, t, comm, slot, "MPI_Isend (a body)");
}

/// Receives the message a matched probe found, into `into` (resized to fit).
inline void receive_matched(MPI_Message& message, const MPI_Status& status, std::vector<char>& into) {
  into.resize(received_bytes(status));
  check_mpi(MPI_Mrecv(into.data(), static_cast<int>(into.size()), MPI_BYTE, &message, MPI_STATUS_IGNORE), "MPI_Mrecv",
            status.MPI_SOURCE);
}

/// Receives and drops the next message from `source` with tag `t`, which is known to be coming.
inline void drop_message(MPI_Comm comm, int source, tag t, std::vector<char>& sink) {
  MPI_Message message;
  MPI_Status status;
  check_mpi(MPI_Mprobe(source, static_cast<int>(t), comm, &message, &status), "MPI_Mprobe", source);
  receive_matched(message, status, sink);
}

/// Receives and drops the `bytes` bytes (one message, or their pieces) that `source` sends next
/// on tag `t`, which are known to be coming; `sink` holds a piece at most.
inline void drop_pieces(MPI_Comm comm, int source, tag t, std::size_t bytes, std::vector<char>& sink) {
  for (std::size_t k = pieces_of(bytes); k > 0; --k) drop_message(comm, source, t, sink);
}

/// Receives and drops every message already waiting on `comm`, so none outlives it.
inline void discard_pending(MPI_Comm comm) {
  std::vector<char> sink;
  for (;;) {
    int found = 0;
    MPI_Message message;
    MPI_Status status;
    check_mpi(MPI_Improbe(MPI_ANY_SOURCE, MPI_ANY_TAG, comm, &found, &message, &status), "MPI_Improbe");
    if (!found) return;
    receive_matched(message, status, sink);
  }
}

/// Receives, without blocking, what `source` sends next on tag `t`: `bytes` bytes (one message, or
/// their pieces: wire.hpp) straight into `data`; or, made by dropping(), a number of messages
/// (pieces counted) that are taken and dropped into a sink of its own. The receive of each piece
/// is posted once the one before it has arrived: no MPI call moves more than a piece (receives
/// posted together let Open MPI move several in one test, docs/performance.md), and the receiver
/// can be tested, or waited for, a piece at a time, with other work in between. A receive still
/// posted when the receiver is destroyed is withdrawn. Movable: the request moves with it, and
/// the memory it receives into does not move (`data`, or the sink's heap block).
class piece_receiver {
public:
  piece_receiver(void* data, std::size_t bytes, int source, tag t, MPI_Comm comm)
      : data_(static_cast<char*>(data)), bytes_(bytes), source_(source), tag_(t), comm_(comm),
        pieces_left_(pieces_of(bytes)) {}
  /// Takes and drops the next `pieces` messages from `source` on tag `t`; `bytes` (0: not known)
  /// is what they hold in all, for next_piece_bytes().
  static piece_receiver dropping(std::size_t pieces, std::size_t bytes, int source, tag t, MPI_Comm comm) {
    piece_receiver out(nullptr, bytes, source, t, comm);
    out.pieces_left_ = pieces;
    return out;
  }
  piece_receiver(piece_receiver&& other) noexcept
      : data_(other.data_), bytes_(other.bytes_), source_(other.source_), tag_(other.tag_), comm_(other.comm_),
        pieces_left_(other.pieces_left_), request_(std::exchange(other.request_, MPI_REQUEST_NULL)),
        received_(other.received_), posted_(other.posted_), sink_(std::move(other.sink_)) {
    other.pieces_left_ = 0;
  }
  /// Withdraws this receiver's posted receive, then takes over `other`'s.
  piece_receiver& operator=(piece_receiver&& other) noexcept {
    if (this == &other) return *this;
    withdraw();
    data_ = other.data_;
    bytes_ = other.bytes_;
    source_ = other.source_;
    tag_ = other.tag_;
    comm_ = other.comm_;
    pieces_left_ = std::exchange(other.pieces_left_, 0);
    request_ = std::exchange(other.request_, MPI_REQUEST_NULL);
    received_ = other.received_;
    posted_ = other.posted_;
    sink_ = std::move(other.sink_);
    return *this;
  }
  piece_receiver(const piece_receiver&) = delete;
  piece_receiver& operator=(const piece_receiver&) = delete;
  ~piece_receiver() { withdraw(); }

  /// Tests the receive of the piece awaited once (posting it first if it is not posted yet);
  /// when it has arrived, posts the next one. True once every piece has arrived. Never waits.
  /// @throws mpi_error naming the source
  bool test() {
    if (pieces_left_ == 0) return true;
    if (request_ == MPI_REQUEST_NULL && !post()) return false;
    int done = 0;
    const int code = MPI_Test(&request_, &done, MPI_STATUS_IGNORE);
    if (code != MPI_SUCCESS) {
      request_ = MPI_REQUEST_NULL; // completed in error: MPI has freed it
      throw_mpi_error(code, "MPI_Test (a receive)", source_);
    }
    if (!done) return false;
    arrived();
    if (pieces_left_ == 0) {
      if (sink_.capacity() > posted_capacity) std::vector<char>().swap(sink_); // no piece kept after the last
      return true;
    }
    post();
    return false;
  }

  /// Waits at most `limit` (zero: no limit) for the pieces still missing; true once all have
  /// arrived. After false the receive of the next piece stays posted: call again to go on.
  /// @throws mpi_error naming the source
  bool wait_for(clock::duration limit, idle_backoff idle) {
    const auto deadline = clock::now() + limit;
    for (;;) {
      const std::size_t left = pieces_left_;
      if (test()) return true;
      if (pieces_left_ != left) {
        idle.reset();
        continue;
      }
      if (limit.count() > 0 && clock::now() >= deadline) return false;
      idle.pause();
    }
  }

  /// Waits for the pieces still missing as long as they keep coming: false, the receive of the
  /// next piece still posted, once no piece has arrived for `quiet`.
  bool wait_while_coming(clock::duration quiet, idle_backoff idle) {
    for (;;) {
      const std::size_t before = pieces_left_;
      if (wait_for(quiet, idle)) return true;
      if (pieces_left_ == before) return false;
    }
  }

  /// Bytes arrived so far (whole pieces).
  std::size_t received() const { return received_; }
  /// Pieces still to arrive.
  std::size_t pieces_left() const { return pieces_left_; }
  /// The size of the piece awaited: piece_bytes() or what is left, 0 when not known (dropping
  /// messages of unknown size) or when none is left.
  std::size_t next_piece_bytes() const {
    if (pieces_left_ == 0 || bytes_ <= received_) return 0;
    return std::min(bytes_ - received_, piece_bytes());
  }

  /// Withdraws the receive posted, if any: MPI_Cancel, then MPI_Wait, which a cancelled request
  /// makes local (the MPI standard, on MPI_Cancel). A piece that had arrived all the same counts
  /// as received. Never throws (the destructor calls it): a receive MPI fails to withdraw is
  /// forgotten.
  void withdraw() noexcept {
    if (request_ == MPI_REQUEST_NULL) return;
    try {
      check_mpi(MPI_Cancel(&request_), "MPI_Cancel (a receive)", source_);
      MPI_Status status;
      check_mpi(MPI_Wait(&request_, &status), "MPI_Wait (a cancelled receive)", source_);
      int cancelled = 0;
      check_mpi(MPI_Test_cancelled(&status, &cancelled), "MPI_Test_cancelled", source_);
      if (!cancelled) arrived();
    } catch (...) {
      request_ = MPI_REQUEST_NULL;
    }
  }

private:
  // Posts the receive of the next piece; when dropping, once a probe finds it (false: not yet),
  // into the sink sized to fit it.
  bool post() {
    if (data_ != nullptr) {
      posted_ = std::min(bytes_ - received_, piece_bytes());
      check_mpi(MPI_Irecv(data_ + received_, static_cast<int>(posted_), MPI_BYTE, source_, static_cast<int>(tag_),
                          comm_, &request_),
                "MPI_Irecv", source_);
      return true;
    }
    int found = 0;
    MPI_Message message;
    MPI_Status status;
    check_mpi(MPI_Improbe(source_, static_cast<int>(tag_), comm_, &found, &message, &status),
              "MPI_Improbe (a message to drop)", source_);
    if (!found) return false;
    posted_ = received_bytes(status);
    sink_.resize(std::max<std::size_t>(posted_, 1));
    check_mpi(MPI_Imrecv(sink_.data(), static_cast<int>(posted_), MPI_BYTE, &message, &request_),
              "MPI_Imrecv (a message to drop)", source_);
    return true;
  }

  void arrived() {
    --pieces_left_;
    received_ += posted_;
  }

  char* data_; // null: dropping
  std::size_t bytes_;
  int source_;
  tag tag_;
  MPI_Comm comm_;
  std::size_t pieces_left_;
  MPI_Request request_ = MPI_REQUEST_NULL; // the receive of the next piece, once posted
  std::size_t received_ = 0;               // bytes of the pieces arrived
  std::size_t posted_ = 0;                 // bytes of the piece posted last
  std::vector<char> sink_;                 // dropping: the piece being dropped
};

/// Receives, with blocking receives, `bytes` bytes that `source` sends on tag `t` right away
/// (one message, or their pieces) straight into `data`; calls `between()` between two pieces.
/// @throws mpi_error naming `call` and the source
template <class Between>
void receive_pieces(void* data, std::size_t bytes, int source, tag t, MPI_Comm comm, const char* call,
                    Between&& between) {
  char* into = static_cast<char*>(data);
  const std::size_t most = piece_bytes();
  for (;;) {
    const std::size_t piece = std::min(bytes, most);
    check_mpi(MPI_Recv(into, static_cast<int>(piece), MPI_BYTE, source, static_cast<int>(t), comm, MPI_STATUS_IGNORE),
              call, source);
    into += piece;
    bytes -= piece;
    if (bytes == 0) return;
    between();
  }
}

#ifdef FOREMAN_DETAIL_TEST_HOOKS
/// Tests only: the worker whose receive the master's next reply_inbox::poll() fails as MPI would
/// fail it (then -1 again). No real fault does that: Open MPI 4.1 reports no error for a dead
/// peer, and a receive truncated by a longer message, the one error a peer can cause, overwrites
/// memory past the buffer (measured with its shared-memory transport).
inline int& injected_receive_failure() {
  static int rank = -1;
  return rank;
}

/// Tests only: the same for the first poll of the master's loop made while another worker's reply
/// is being transferred (reply_reader.hpp).
inline int& injected_failure_in_transfer() {
  static int rank = -1;
  return rank;
}

/// Tests only: called by a worker before it sends each body of a reply, to make the master wait
/// for them, as for a long transfer, while it must still judge the other workers rightly. The
/// delay stands for time spent outside MPI: the worker completes what it posted before it.
inline void (*&injected_body_delay())() {
  static void (*hook)() = nullptr;
  return hook;
}
#endif

} // namespace detail
} // namespace foreman
