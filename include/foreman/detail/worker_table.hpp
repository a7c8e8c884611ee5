#pragma once
/// @file worker_table.hpp
/// What the master knows of each worker during a run: the chunks it was sent and has not answered
/// (oldest first: a worker answers in order), when each was sent, which sends to it are still in
/// transit, and when the worker last gave a sign of life; from these, which workers have been
/// silent too long. No MPI, and time is only what the caller passes in, so that it can be tested
/// with a fake clock (tests/scheduler_test.cpp).

#include <foreman/detail/scheduler.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace foreman {
namespace detail {

/// One message of tasks sent to a worker and not yet answered.
struct chunk {
  std::vector<ticket> tickets;
  /// When it was sent.
  std::chrono::steady_clock::time_point sent{};
  /// When its send was seen complete (delivered()), if it was seen.
  std::chrono::steady_clock::time_point seen{};
  /// Its bytes: its message and its tasks' bodies (set by the sender).
  std::size_t bytes = 0;
  /// Its send has not been seen complete (set by the sender; delivered() clears it).
  bool in_transit = false;
  /// Which of the worker's send slots carries it (the sender's numbering).
  std::size_t slot = 0;
};

/// A worker's unanswered chunks, oldest first: a ring of tasks_in_flight chunks whose ticket lists
/// are kept, so that sending and retiring a chunk moves and allocates nothing.
class chunk_ring {
public:
  explicit chunk_ring(std::size_t capacity = 1) : items_(std::max<std::size_t>(1, capacity)) {}
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  std::size_t capacity() const { return items_.size(); }
  chunk& operator[](std::size_t k) {
    k += first_;
    return items_[k < items_.size() ? k : k - items_.size()];
  }
  const chunk& operator[](std::size_t k) const { return const_cast<chunk_ring&>(*this)[k]; }
  const chunk& front() const { return items_[first_]; }
  /// The chunk after the newest, its ticket list emptied. Requires size() < capacity().
  chunk& push_back() {
    chunk& c = (*this)[size_++];
    c.tickets.clear();
    return c;
  }
  void pop_front() {
    if (++first_ == items_.size()) first_ = 0;
    --size_;
  }
  void clear() { first_ = size_ = 0; }

private:
  std::vector<chunk> items_;
  std::size_t first_ = 0;
  std::size_t size_ = 0;
};

/// Per worker rank 1 .. ranks - 1: unanswered chunks and the last sign of life.
class worker_table {
public:
  using clock = std::chrono::steady_clock;

  /// @param ranks           the communicator's size (rank 0, the master, has an unused row)
  /// @param in_flight_limit chunks a worker may hold at once (options::tasks_in_flight)
  /// @param start           when the run began: a worker never heard from counts from then
  /// @param floor_rate      bytes per second: a worker is given what it is sent at this rate
  ///                        before its silence counts (arrival()); 0: sends take no time
  worker_table(int ranks, std::size_t in_flight_limit, clock::time_point start = {}, double floor_rate = 0)
      : rows_(static_cast<std::size_t>(std::max(1, ranks)), row{chunk_ring(in_flight_limit)}), start_(start),
        floor_rate_(floor_rate) {}

  int ranks() const { return static_cast<int>(rows_.size()); }
  void start(clock::time_point when) { start_ = when; }
  clock::time_point started() const { return start_; }

  chunk_ring& outstanding(int w) { return rows_[static_cast<std::size_t>(w)].outstanding; }
  const chunk_ring& outstanding(int w) const { return rows_[static_cast<std::size_t>(w)].outstanding; }
  bool holds_tasks(int w) const { return !outstanding(w).empty(); }

  /// Records a chunk sent to w at `when`; fill its tickets, and its bytes, in_transit and slot
  /// where its send may not complete at once. Requires fewer than capacity outstanding.
  chunk& sent(int w, clock::time_point when) {
    ++rows_[static_cast<std::size_t>(w)].messages;
    chunk& c = outstanding(w).push_back();
    c.sent = when;
    c.seen = {};
    c.bytes = 0;
    c.in_transit = false;
    c.slot = 0;
    return c;
  }

  /// w's chunk carried by send slot `slot` (if one still waits for it) was seen delivered at `when`
  /// (its send complete): the worker can run it from then on (its silence counts from then at the
  /// earliest, if it was idle).
  void delivered(int w, std::size_t slot, clock::time_point when) {
    chunk_ring& ring = outstanding(w);
    for (std::size_t k = 0; k < ring.size(); ++k) {
      chunk& c = ring[k];
      if (!c.in_transit || c.slot != slot) continue;
      c.in_transit = false;
      c.seen = when;
    }
  }

  /// `bytes` sent to w at `when` that it takes before any chunk of this run (the run's shared
  /// value): its first chunk arrives after them.
  void sent_ahead(int w, std::size_t bytes, clock::time_point when) {
    row& r = rows_[static_cast<std::size_t>(w)];
    r.ahead_bytes = bytes;
    r.ahead_sent = r.ahead_seen = when;
    r.ahead_in_transit = bytes > 0;
  }
  /// What sent_ahead() sent was seen delivered at `when`.
  void ahead_delivered(int w, clock::time_point when) {
    row& r = rows_[static_cast<std::size_t>(w)];
    if (!r.ahead_in_transit) return;
    r.ahead_in_transit = false;
    r.ahead_seen = when;
  }
  /// Whether the sends ahead of w's chunks have not been seen complete; whether its oldest
  /// chunk's send has not.
  bool ahead_in_transit(int w) const { return rows_[static_cast<std::size_t>(w)].ahead_in_transit; }
  bool front_in_transit(int w) const { return holds_tasks(w) && outstanding(w).front().in_transit; }
  /// Bytes w must receive before it can run its oldest chunk whose sends have not been seen
  /// complete: those sent ahead of its chunks, and that chunk's.
  std::size_t in_transit(int w) const {
    const row& r = rows_[static_cast<std::size_t>(w)];
    return (r.ahead_in_transit ? r.ahead_bytes : 0) + (front_in_transit(w) ? r.outstanding.front().bytes : 0);
  }

  /// When what w must receive before it can run its oldest chunk (that chunk, and the sends ahead
  /// of it) has arrived at the latest, over a link at floor_rate: a worker receives a message
  /// whole before it can run a task or send a note, and a send may be seen complete long before
  /// that (Open MPI's TCP transport completes it once the kernel's socket buffer holds it: up to
  /// 4 MiB by default on Linux). The start of the run if it holds nothing.
  clock::time_point arrival(int w) const {
    const row& r = rows_[static_cast<std::size_t>(w)];
    const auto ahead = r.ahead_sent + transfer_time(r.ahead_bytes);
    if (r.outstanding.empty()) return std::max(start_, ahead);
    const chunk& c = r.outstanding.front();
    return std::max(c.sent, ahead) + transfer_time(c.bytes);
  }
  /// Tasks messages sent to w in this run (what a cancellation names, wire.hpp).
  std::uint64_t messages_sent(int w) const { return rows_[static_cast<std::size_t>(w)].messages; }

  /// w answered its oldest chunk.
  void answered(int w) {
    chunk_ring& ring = outstanding(w);
    if (!ring.empty()) ring.pop_front();
  }

  /// A reply or a progress note from w arrived at `when`.
  void heard_from(int w, clock::time_point when) { rows_[static_cast<std::size_t>(w)].last_answer = when; }

  /// The bytes arrival(w) waits for: w's oldest chunk's, and those sent ahead of it if it was
  /// sent before they could have arrived.
  std::size_t awaited_bytes(int w) const {
    const row& r = rows_[static_cast<std::size_t>(w)];
    if (r.outstanding.empty()) return 0;
    const chunk& c = r.outstanding.front();
    return c.bytes + (c.sent <= r.ahead_sent + transfer_time(r.ahead_bytes) ? r.ahead_bytes : 0);
  }

  /// When the master last had a sign of life from w: its last reply or progress note, or the
  /// sending of the chunk it is working on if that came later (it was idle), or the moment that
  /// chunk's send (or the sends ahead of it) was seen complete; or the run's start.
  clock::time_point last_sign_of_life(int w) const {
    const row& r = rows_[static_cast<std::size_t>(w)];
    auto last = std::max({r.last_answer, start_, r.ahead_seen});
    if (!r.outstanding.empty()) last = std::max({last, r.outstanding.front().sent, r.outstanding.front().seen});
    return last;
  }

  /// From when w's silence counts: its last_sign_of_life(), or, if later, the arrival() of what
  /// it must receive first (it was idle, and is receiving).
  clock::time_point silent_since(int w) const { return std::max(last_sign_of_life(w), arrival(w)); }

  /// Calls f(w) for each worker that holds tasks and gave no sign of life for longer than `allowed`
  /// at `now` (silent_since()), skipping those for which skip(w) is true (lost ones, the one
  /// whose transfer is being received). First, for each worker whose sends have not been seen
  /// complete, still_sending(w) is asked to test them (and call delivered() or ahead_delivered()
  /// for those that completed): one pass over the workers for both.
  template <class StillSending, class Skip, class F>
  void for_each_silent(clock::time_point now, clock::duration allowed, StillSending&& still_sending, Skip&& skip,
                       F&& f) {
    for (int w = 1; w < ranks(); ++w) {
      if (!holds_tasks(w) || skip(w)) continue;
      if (ahead_in_transit(w) || front_in_transit(w)) still_sending(w);
      if (now - silent_since(w) > allowed) f(w);
    }
  }

  /// Calls f(t, oldest) for each ticket w holds, oldest chunk first; `oldest`: the ticket is in
  /// the chunk the worker may have started (it runs its chunks in order). Then forgets them.
  template <class F>
  void take_back(int w, F&& f) {
    chunk_ring& ring = outstanding(w);
    for (std::size_t k = 0; k < ring.size(); ++k)
      for (ticket t : ring[k].tickets) f(t, k == 0);
    ring.clear();
  }

  /// Whether any worker for which live(w) holds tasks.
  template <class Live>
  bool any_holding(Live&& live) const {
    for (int w = 1; w < ranks(); ++w)
      if (holds_tasks(w) && live(w)) return true;
    return false;
  }

private:
  struct row {
    explicit row(chunk_ring ring) : outstanding(std::move(ring)) {}
    chunk_ring outstanding;
    clock::time_point last_answer{}; // its last sign of life: a reply or a progress note
    std::uint64_t messages = 0;      // tasks messages sent to it
    std::size_t ahead_bytes = 0;     // sent ahead of its chunks (sent_ahead())
    clock::time_point ahead_sent{};  // when
    clock::time_point ahead_seen{};  // when seen complete (ahead_sent until then)
    bool ahead_in_transit = false;   // not yet seen complete
  };
  clock::duration transfer_time(std::size_t bytes) const {
    if (bytes == 0 || floor_rate_ <= 0) return clock::duration::zero();
    return std::chrono::duration_cast<clock::duration>(
        std::chrono::duration<double>(static_cast<double>(bytes) / floor_rate_));
  }

  std::vector<row> rows_;
  clock::time_point start_{};
  double floor_rate_ = 0;
};

} // namespace detail
} // namespace foreman
