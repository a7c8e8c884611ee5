#pragma once
/// @file reply_reader.hpp
/// The master's non-blocking receiving of what follows a worker's reply message: the message an
/// envelope announced (tag::results_large), then the bodies of the reply's items
/// (tag::result_body), each in pieces past piece_bytes() (wire.hpp), and the pieces of a reply that
/// is dropped. Per worker a transfer: a queue of receives that the master's loop moves on a piece
/// at a time, from its passes, while it goes on serving every other worker; nothing here waits.
///
/// A transfer's states, per worker: idle; receiving the message an envelope announced (the master
/// then reads it and queues the bodies it announces); receiving bodies, in item order, each into
/// where its item's value lives (the Item the transfer holds keeps it alive); dropping pieces (a
/// stale or damaged reply's bodies, a value that could not be decoded, what a worker lost
/// mid-transfer still sends). Only one receive per transfer is posted at a time: the next piece's,
/// once the one before it has arrived (piece_receiver, transport.hpp). A pass tests the active
/// transfers only, each once: O(active transfers), whatever the number of workers.
///
/// Each transfer has its own deadline (transfer_deadline): the piece awaited must arrive within a
/// quiet time plus what the piece takes at a floor rate, counted from the transfer's last sign of
/// life (its reply's message, the last piece, a progress note from its worker). What to do with a
/// transfer past it (declare its worker lost, or give up dropping) is the master's decision.

#include <foreman/detail/transport.hpp>
#include <foreman/detail/wire.hpp>

#include <mpi.h>

#include <chrono>
#include <cstddef>
#include <deque>
#include <utility>
#include <vector>

namespace foreman {
namespace detail {

/// How long a transfer may go without a piece arriving: `quiet`, plus the time the piece awaited
/// takes at `bytes_per_second` (0: its size adds nothing). A zero `quiet`: no deadline.
struct transfer_deadline {
  clock::duration quiet{};
  double bytes_per_second = 0.0;

  bool none() const { return quiet.count() == 0; }
  /// What a piece of `bytes` bytes (0: not known) is allowed.
  clock::duration allowance(std::size_t bytes) const {
    if (bytes_per_second <= 0.0 || bytes == 0) return quiet;
    return quiet + std::chrono::duration_cast<clock::duration>(
                       std::chrono::duration<double>(static_cast<double>(bytes) / bytes_per_second));
  }
};

/// The transfers of a run, per worker rank.
/// @tparam Item what a body is received for (the master's: its ticket, and the value it lands in
///         when that must not be the task store's); default constructible, movable. An Item given
///         with a body is kept, at a fixed address, until the body has arrived or the transfer is
///         withdrawn: the receive writes into memory it may own.
template <class Item>
class reply_reader {
public:
  /// What a poll found complete.
  enum class arrival {
    message, ///< the message an envelope announced (expect_message())
    body,    ///< a body, into its item's place (expect_body(); take it with item())
    dropped  ///< pieces dropped (expect_drop(), drop_rest())
  };

  /// @param ranks the communicator's size
  reply_reader(MPI_Comm comm, int ranks)
      : comm_(comm), transfers_(static_cast<std::size_t>(ranks)), position_(static_cast<std::size_t>(ranks), 0) {}
  reply_reader(const reply_reader&) = delete;
  reply_reader& operator=(const reply_reader&) = delete;
  /// Withdraws every receive still posted before the memory it writes into goes.
  ~reply_reader() { withdraw_all(); }

  /// Starts (or restarts) worker w's transfer: its deadline, and its last sign of life `now`.
  void open(int w, clock::time_point now, transfer_deadline deadline) {
    transfer& x = at(w);
    x.deadline = deadline;
    x.last_progress = now;
  }

  /// Queues the receive of the message w's last envelope announced, into `into` (which must stay
  /// valid until it has arrived or the transfer is withdrawn: the inbox's large_buffer()).
  void expect_message(int w, body_span into) {
    push(w, arrival::message, piece_receiver(into.data, into.bytes, w, tag::results_large, comm_), Item{});
  }

  /// Queues the receive of a body from w: the item is kept, then where(item) (a body_span) tells
  /// where its bytes go, memory the item owns or memory that lives longer than the transfer.
  template <class Where>
  void expect_body(int w, Item item, Where&& where) {
    target& t = push(w, arrival::body, piece_receiver::dropping(0, 0, w, tag::result_body, comm_), std::move(item));
    const body_span into = where(t.item); // the item is in its place now
    t.pieces = piece_receiver(into.data, into.bytes, w, tag::result_body, comm_);
  }

  /// Queues the taking and dropping of `pieces` body messages from w, which hold `bytes` bytes in
  /// all (0: not known).
  void expect_drop(int w, std::size_t pieces, std::size_t bytes = 0) {
    if (pieces == 0) return;
    push(w, arrival::dropped, piece_receiver::dropping(pieces, bytes, w, tag::result_body, comm_), Item{});
  }

  /// Whether w's transfer has receives queued.
  bool active(int w) const { return position_[static_cast<std::size_t>(w)] != 0; }
  /// Whether any transfer has.
  bool any() const { return !active_.empty(); }

  /// A sign of life from w besides its pieces (a progress note): its deadline counts from `now`.
  void heard_from(int w, clock::time_point now) {
    if (active(w)) at(w).last_progress = now;
  }
  /// When w's transfer last had a sign of life.
  clock::time_point last_progress(int w) const { return transfers_[static_cast<std::size_t>(w)].last_progress; }

  /// Starts a pass: each transfer active now is tested once by the polls that follow.
  void begin_pass() {
    pass_.assign(active_.begin(), active_.end());
    pieces_ = 0;
  }
  /// Whether a piece arrived in this pass (also one that completed nothing).
  bool pieces_arrived() const { return pieces_ > 0; }

  /// Tests the next transfers of the pass (the receive each awaits), until one of them completes
  /// what it was receiving: returns its worker and, in `what`, what completed (for a body, take its
  /// item with item()). -1 once every transfer of the pass was tested. A piece arriving counts as a
  /// sign of life at `now`. Never waits.
  /// @throws mpi_error naming the worker whose receive failed (its transfer is then withdrawn)
  int poll(clock::time_point now, arrival& what) {
    while (!pass_.empty()) {
      const int w = pass_.back();
      pass_.pop_back();
      if (!active(w)) continue; // withdrawn since the pass began
      transfer& x = at(w);
      target& t = x.targets.front();
      const std::size_t left = t.pieces.pieces_left();
      bool done = false;
      try {
        done = t.pieces.test();
      } catch (...) {
        withdraw(w);
        throw;
      }
      if (t.pieces.pieces_left() != left) {
        x.last_progress = now; // a piece is a sign of life
        ++pieces_;
      }
      if (!done) continue;
      what = t.kind;
      x.arrived = std::move(t.item);
      x.targets.pop_front();
      if (x.targets.empty()) deactivate(w);
      return w;
    }
    return -1;
  }

  /// The item of the body poll() last returned for w (valid until w's next poll or withdraw).
  Item& item(int w) { return at(w).arrived; }

  /// The active transfers whose piece awaited is late at `now` (deadline: see
  /// transfer_deadline), with none (none()) never late. Valid until the next call.
  const std::vector<int>& overdue(clock::time_point now) {
    overdue_.clear();
    for (const int w : active_) {
      const transfer& x = transfers_[static_cast<std::size_t>(w)];
      if (x.deadline.none()) continue;
      if (now - x.last_progress > x.deadline.allowance(x.targets.front().pieces.next_piece_bytes()))
        overdue_.push_back(w);
    }
    return overdue_;
  }
  /// What w's piece awaited is allowed (its transfer must be active).
  clock::duration allowance(int w) const {
    const transfer& x = transfers_[static_cast<std::size_t>(w)];
    return x.deadline.allowance(x.targets.front().pieces.next_piece_bytes());
  }

  /// For a worker lost mid-transfer whose process may still be sending: withdraws the receives
  /// into items' values (the items are destroyed) and drops instead what they still awaited;
  /// a message being received goes on (its buffer is the inbox's). `deadline` from `now` on.
  void drop_rest(int w, clock::time_point now, transfer_deadline deadline) {
    if (!active(w)) return;
    transfer& x = at(w);
    open(w, now, deadline);
    for (target& t : x.targets) {
      if (t.kind != arrival::body) continue;
      t.pieces.withdraw();
      const std::size_t left = t.pieces.pieces_left();
      t.pieces = piece_receiver::dropping(left, 0, w, tag::result_body, comm_);
      t.kind = arrival::dropped;
      t.item = Item{};
    }
  }

  /// Withdraws w's receives and forgets its transfer. Never throws.
  void withdraw(int w) noexcept {
    if (!active(w)) return;
    transfer& x = at(w);
    for (target& t : x.targets) t.pieces.withdraw();
    x.targets.clear();
    x.arrived = Item{};
    deactivate(w);
  }
  /// Withdraws every transfer. Never throws.
  void withdraw_all() noexcept {
    while (!active_.empty()) withdraw(active_.back());
  }

private:
  struct target {
    arrival kind;
    piece_receiver pieces;
    Item item;
  };
  struct transfer {
    std::deque<target> targets; // the receives queued, in the order the worker sends; the first is tested
    transfer_deadline deadline;
    clock::time_point last_progress{};
    Item arrived{}; // the item of the body that arrived last
  };

  transfer& at(int w) { return transfers_[static_cast<std::size_t>(w)]; }

  target& push(int w, arrival kind, piece_receiver&& pieces, Item&& item) {
    transfer& x = at(w);
    // A deque keeps its elements in place: an item's value, which a receive may write into, never moves.
    x.targets.push_back(target{kind, std::move(pieces), std::move(item)});
    if (!active(w)) {
      active_.push_back(w);
      position_[static_cast<std::size_t>(w)] = active_.size();
    }
    return x.targets.back();
  }

  void deactivate(int w) {
    std::size_t& p = position_[static_cast<std::size_t>(w)];
    const int last = active_.back();
    active_[p - 1] = last;
    position_[static_cast<std::size_t>(last)] = p;
    active_.pop_back();
    p = 0;
  }

  MPI_Comm comm_;
  std::vector<transfer> transfers_;   // per rank
  std::vector<std::size_t> position_; // per rank: 1 + its index in active_, 0 when idle
  std::vector<int> active_;           // ranks whose transfer has receives queued
  std::vector<int> pass_;             // the active ranks a pass has still to test
  std::vector<int> overdue_;
  std::size_t pieces_ = 0; // arrived in the current pass
};

} // namespace detail
} // namespace foreman
