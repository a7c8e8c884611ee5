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
#include <vector>

namespace foreman {
namespace detail {

/// One message of tasks sent to a worker and not yet answered.
struct chunk {
  std::vector<ticket> tickets;
  /// When it was sent, or when its send was seen complete if that was later (delivered()).
  std::chrono::steady_clock::time_point sent{};
  /// Bytes of it (its message and its tasks' bodies) whose send the master has not yet seen
  /// complete; 0 once it has.
  std::size_t in_transit = 0;
  /// Which of the worker's send slots carries it (the caller's numbering).
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
  worker_table(int ranks, std::size_t in_flight_limit, clock::time_point start = {})
      : rows_(static_cast<std::size_t>(std::max(1, ranks)), row{chunk_ring(in_flight_limit), {}, 0, 0, {}}),
        start_(start) {}

  int ranks() const { return static_cast<int>(rows_.size()); }
  void start(clock::time_point when) { start_ = when; }
  clock::time_point started() const { return start_; }

  chunk_ring& outstanding(int w) { return rows_[static_cast<std::size_t>(w)].outstanding; }
  const chunk_ring& outstanding(int w) const { return rows_[static_cast<std::size_t>(w)].outstanding; }
  bool holds_tasks(int w) const { return !outstanding(w).empty(); }

  /// Records a chunk sent to w at `when`; fill its tickets (and, while its send is in transit,
  /// in_transit and slot). Requires fewer than capacity outstanding.
  chunk& sent(int w, clock::time_point when) {
    ++rows_[static_cast<std::size_t>(w)].messages;
    chunk& c = outstanding(w).push_back();
    c.sent = when;
    c.in_transit = 0;
    c.slot = 0;
    return c;
  }

  /// w's chunk carried by send slot `slot` (if one still waits for it) was seen delivered at `when`:
  /// the worker can run it from then on (its silence counts from then, if it was idle).
  void delivered(int w, std::size_t slot, clock::time_point when) {
    chunk_ring& ring = outstanding(w);
    for (std::size_t k = 0; k < ring.size(); ++k) {
      chunk& c = ring[k];
      if (c.in_transit == 0 || c.slot != slot) continue;
      c.in_transit = 0;
      c.sent = std::max(c.sent, when);
    }
  }

  /// `bytes` sent to w at `when` that it takes before any chunk of this run (the run's shared
  /// value): until ahead_delivered(), they count as in transit for its first chunk.
  void sent_ahead(int w, std::size_t bytes, clock::time_point when) {
    row& r = rows_[static_cast<std::size_t>(w)];
    r.ahead = bytes;
    r.ahead_done = when;
  }
  /// What sent_ahead() sent was seen delivered at `when`.
  void ahead_delivered(int w, clock::time_point when) {
    row& r = rows_[static_cast<std::size_t>(w)];
    if (r.ahead == 0) return;
    r.ahead = 0;
    r.ahead_done = std::max(r.ahead_done, when);
  }
  /// Bytes the worker must still receive before it can run its oldest chunk, as far as the master
  /// knows: the sends ahead of its chunks, and that chunk's own.
  std::size_t in_transit(int w) const {
    const row& r = rows_[static_cast<std::size_t>(w)];
    return r.ahead + (r.outstanding.empty() ? 0 : r.outstanding.front().in_transit);
  }
  /// Whether the sends ahead of w's chunks are in transit; whether its oldest chunk's send is.
  bool ahead_in_transit(int w) const { return rows_[static_cast<std::size_t>(w)].ahead > 0; }
  bool front_in_transit(int w) const { return holds_tasks(w) && outstanding(w).front().in_transit > 0; }
  /// Tasks messages sent to w in this run (what a cancellation names, wire.hpp).
  std::uint64_t messages_sent(int w) const { return rows_[static_cast<std::size_t>(w)].messages; }

  /// w answered its oldest chunk.
  void answered(int w) {
    chunk_ring& ring = outstanding(w);
    if (!ring.empty()) ring.pop_front();
  }

  /// A reply or a progress note from w arrived at `when`.
  void heard_from(int w, clock::time_point when) { rows_[static_cast<std::size_t>(w)].last_answer = when; }

  /// When the master last had a sign of life from w: its last reply or progress note, or the
  /// sending (the delivery, once seen) of the chunk it is working on if that came later (it was
  /// idle), or of what was sent ahead of it, or the run's start.
  clock::time_point last_sign_of_life(int w) const {
    const row& r = rows_[static_cast<std::size_t>(w)];
    auto last = std::max({r.last_answer, start_, r.ahead_done});
    if (!r.outstanding.empty()) last = std::max(last, r.outstanding.front().sent);
    return last;
  }

  /// How long w may stay silent at most: `allowed`, plus, while sends it must take before it can
  /// run its oldest chunk are in transit (in_transit()), their size at `bytes_per_second`: a
  /// worker receiving sends nothing, and a large send may take long (a slow link, a master that
  /// moves it on only between its own steps).
  clock::duration allowance(int w, clock::duration allowed, double bytes_per_second) const {
    const std::size_t bytes = in_transit(w);
    if (bytes == 0 || bytes_per_second <= 0) return allowed;
    return allowed + std::chrono::duration_cast<clock::duration>(
                         std::chrono::duration<double>(static_cast<double>(bytes) / bytes_per_second));
  }

  /// Calls f(w) for each worker that holds tasks and gave no sign of life for longer than its
  /// allowance(w, allowed, bytes_per_second) at `now`, skipping those for which skip(w) is true
  /// (lost ones, the one whose transfer is being received). First, for each worker whose sends
  /// are in transit, still_sending(w) is asked to test them (and call delivered() or
  /// ahead_delivered() for those that completed): one pass over the workers for both.
  template <class StillSending, class Skip, class F>
  void for_each_silent(clock::time_point now, clock::duration allowed, double bytes_per_second,
                       StillSending&& still_sending, Skip&& skip, F&& f) {
    for (int w = 1; w < ranks(); ++w) {
      if (!holds_tasks(w) || skip(w)) continue;
      if (in_transit(w) > 0) still_sending(w);
      if (now - last_sign_of_life(w) > allowance(w, allowed, bytes_per_second)) f(w);
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
    chunk_ring outstanding;
    clock::time_point last_answer{}; // its last sign of life: a reply or a progress note
    std::uint64_t messages = 0;      // tasks messages sent to it
    std::size_t ahead = 0;           // bytes sent ahead of its chunks still in transit (sent_ahead())
    clock::time_point ahead_done{};  // when they were sent, or seen delivered
  };
  std::vector<row> rows_;
  clock::time_point start_{};
};

} // namespace detail
} // namespace foreman
