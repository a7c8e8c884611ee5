#pragma once
/// @file scheduler.hpp
/// Which unsent task goes to which worker, and how many tasks go in one message: the master's
/// scheduling decisions, with no MPI and no clock, so that they can be tested without mpirun
/// (tests/scheduler_test.cpp).
///
/// A task is named by its ticket, a number the master gives it when the task becomes known (for
/// run(), its index in the list; for a job, the submission's number). Unsent tickets wait in
/// three places, taken in this order:
///   1. tickets taken back from a lost worker (requeue()): they are the oldest;
///   2. tickets submitted with a priority above 0, highest first (equal priorities: lowest ticket);
///   3. tickets of priority 0, in ticket order: one queue for the dynamic schedule, one per worker
///      for round robin (ticket t belongs to worker 1 + t mod workers);
///   and last, tickets with a priority below 0.

#include <foreman/detail/hot_path.hpp>
#include <foreman/options.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <queue>
#include <utility>
#include <vector>

namespace foreman {
namespace detail {

/// A task's name on the master (see scheduler.hpp).
using ticket = std::uint64_t;

/// Tickets in order, kept as arithmetic runs (first, first + step, ... < end): the tickets of a
/// run (0 .. n-1, or a worker's round-robin share) take one entry whatever their number, and
/// tickets submitted one by one join the run they continue. The run at the front is kept apart
/// from the others, so that taking a ticket (on the master's path for every task) is a few
/// instructions, and so is adding one (a job's completions come one by one).
class ticket_queue {
public:
  ticket_queue() = default;
  ticket_queue(const ticket_queue& other) : head_(other.head_), rest_(other.rest_), size_(other.size_) {
    if (!rest_.empty()) last_ = &rest_.back();
  }
  ticket_queue& operator=(const ticket_queue& other) {
    head_ = other.head_;
    rest_ = other.rest_;
    size_ = other.size_;
    last_ = rest_.empty() ? &head_ : &rest_.back();
    return *this;
  }
  ~ticket_queue() = default;

  bool empty() const { return size_ == 0; }
  std::size_t size() const { return size_; }
  ticket front() const { return head_.first; }

  /// Appends first, first + step, ... below end.
  void push(ticket first, ticket end, ticket step = 1) {
    if (first >= end) return;
    const std::size_t count = static_cast<std::size_t>((end - first + step - 1) / step);
    const run added{first, first + static_cast<ticket>(count - 1) * step + 1, step};
    if (size_ == 0) {
      head_ = added;
    } else {
      // A run's `end` is one past its last ticket: the added tickets continue it when they have
      // its step and the first comes one step after its last (or it holds a single ticket).
      run& last = *last_;
      if (last.step == step && last.end - 1 + step == first)
        last.end = added.end;
      else if (last.first + 1 == last.end && last.first + step == first) // one ticket: any step
        last = run{last.first, added.end, step};
      else {
        rest_.push_back(added);
        last_ = &rest_.back(); // a deque's push_back moves no element
      }
    }
    size_ += count;
  }
  /// Appends ticket t (the common case of one submitted task: no division).
  FOREMAN_DETAIL_INLINE void push(ticket t) {
    if (size_ != 0 && last_->step == 1 && last_->end == t) {
      ++last_->end;
      ++size_;
      return;
    }
    push(t, t + 1, 1);
  }

  FOREMAN_DETAIL_INLINE ticket pop() {
    const ticket t = head_.first;
    head_.first += head_.step;
    --size_;
    if (head_.first >= head_.end) next_head();
    return t;
  }

  /// Appends the first n tickets (fewer if the queue is shorter) to `out`, leaving them queued.
  void peek(std::size_t n, std::vector<ticket>& out) const {
    if (size_ == 0) return;
    auto from = [&](const run& r) {
      for (ticket t = r.first; t < r.end; t += r.step) {
        if (n == 0) return false;
        --n;
        out.push_back(t);
      }
      return true;
    };
    if (!from(head_)) return;
    for (const run& r : rest_)
      if (!from(r)) return;
  }

  /// Calls f(t) on each ticket in order, and empties the queue.
  template <class F>
  void drain(F&& f) {
    while (!empty()) f(pop());
  }

private:
  struct run {
    ticket first, end, step;
  };
  // The front run is used up: the next one takes its place (none: the queue is empty).
  FOREMAN_DETAIL_COLD void next_head() {
    if (rest_.empty()) return;
    head_ = rest_.front();
    rest_.pop_front();
    if (rest_.empty()) last_ = &head_;
  }
  run head_{0, 0, 1}; // the front run, when size_ > 0
  std::deque<run> rest_;
  std::size_t size_ = 0;
  run* last_ = &head_; // the last run: head_, or rest_.back()
};

/// The scheduling policy of one run or job (see the file's comment). Workers are ranks
/// 1 .. workers; a worker's loss is told with lose().
class scheduler {
public:
  struct config {
    foreman::schedule kind = schedule::dynamic;
    std::size_t fixed_chunk = 0;     ///< options::chunk_size; 0: automatic (chunk_size())
    std::size_t in_flight_limit = 2; ///< options::tasks_in_flight, at least 1
    int workers = 1;                 ///< worker ranks, at least 1
  };

  explicit scheduler(const config& c)
      : kind_(c.kind), fixed_chunk_(c.fixed_chunk), in_flight_limit_(std::max<std::size_t>(1, c.in_flight_limit)),
        workers_(std::max(1, c.workers)),
        own_(c.kind == schedule::round_robin ? static_cast<std::size_t>(workers_) + 1 : 1),
        lost_(static_cast<std::size_t>(workers_) + 1, 0) {}

  // ---- work coming in ------------------------------------------------------------------------

  /// Tickets first .. first + count - 1 become sendable, in that order, with priority 0.
  void add_range(ticket first, std::size_t count) {
    if (count == 0) return;
    const ticket end = first + count;
    if (kind_ == schedule::dynamic) {
      own_[0].push(first, end);
    } else {
      const auto n = static_cast<ticket>(workers_);
      for (ticket k = 0; k < n && first + k < end; ++k) {
        const int w = owner(first + k);
        if (lost_[static_cast<std::size_t>(w)])
          requeued_.push(first + k, end, n); // a lost worker's share goes to whoever is free
        else
          own_[static_cast<std::size_t>(w)].push(first + k, end, n);
      }
    }
    unsent_ += count;
  }

  /// Ticket t becomes sendable with `priority`: higher goes first among unsent tickets.
  FOREMAN_DETAIL_INLINE void add(ticket t, int priority) {
    if (priority == 0 && kind_ == schedule::dynamic) { // a job's submission, one at a time
      own_[0].push(t);
      ++unsent_;
      return;
    }
    add_other(t, priority);
  }

  /// A ticket taken back from a lost worker: it goes before every other.
  void requeue(ticket t) {
    requeued_.push(t);
    ++unsent_;
  }

  /// Worker w is lost. Round robin: its share, now and later, goes to whoever is free.
  void lose(int w) {
    if (w < 1 || w > workers_ || lost_[static_cast<std::size_t>(w)]) return;
    lost_[static_cast<std::size_t>(w)] = 1;
    if (kind_ == schedule::round_robin) own_[static_cast<std::size_t>(w)].drain([&](ticket t) { requeued_.push(t); });
  }

  /// Drops every unsent ticket, calling f(t) on each (cancellation).
  template <class F>
  void drop_unsent(F&& f) {
    requeued_.drain(f);
    for (ticket_queue& q : own_) q.drain(f);
    while (!prioritized_.empty()) {
      f(prioritized_.top().t);
      prioritized_.pop();
    }
    unsent_ = 0;
    positive_ = 0;
  }

  // ---- decisions -----------------------------------------------------------------------------

  /// Whether worker w can be given a ticket now.
  bool has_work(int w) const { return !requeued_.empty() || !prioritized_.empty() || !own(w).empty(); }

  /// has_work(w) and take(w) in one: the next ticket for worker w into `t`, or false when it has
  /// none. The common case (nothing requeued, nothing of a higher priority) costs a few
  /// instructions: it is taken for every task a chunk holds.
  FOREMAN_DETAIL_INLINE bool take_next(int w, ticket& t) {
    ticket_queue& q = own(w);
    if (requeued_.empty() && positive_ == 0 && !q.empty()) {
      --unsent_;
      t = q.pop();
      return true;
    }
    return take_other(w, t);
  }

  /// The next ticket for worker w. Requires has_work(w).
  ticket take(int w) {
    --unsent_;
    if (!requeued_.empty()) return requeued_.pop();
    if (positive_ > 0 || own(w).empty()) return take_prioritized();
    return own(w).pop();
  }

  /// Whether the next ticket of the dynamic schedule is the front of its queue of priority 0
  /// (nothing requeued or of a higher priority waits): then a chunk encoded ahead from that
  /// queue (peek_fresh()) is the one take() would build.
  bool fresh_is_next() const {
    return kind_ == schedule::dynamic && requeued_.empty() && positive_ == 0 && !own_[0].empty();
  }
  ticket fresh_front() const { return own_[0].front(); }
  /// The first n tickets of that queue (fewer if it is shorter), appended to `out`, not taken.
  void peek_fresh(std::size_t n, std::vector<ticket>& out) const { own_[0].peek(n, out); }

  /// Tickets sendable now, to any worker.
  std::size_t unsent() const { return unsent_; }

  /// A task's duration measured on a worker (seconds): updates the running estimate that
  /// automatic chunks are sized by (an exponential moving average, weight 0.05).
  void observe(double seconds) {
    task_seconds_ = task_seconds_ == 0.0 ? seconds : task_seconds_ + 0.05 * (seconds - task_seconds_);
  }
  double task_seconds() const { return task_seconds_; }

  /// Tasks in worker w's next message. A fixed chunk_size is used as it is. Automatic sizing:
  /// enough tasks to fill about chunk_work(live_workers) seconds of work by the running estimate of
  /// a task's duration (one task until the first durations arrive), at most max_auto_chunk (so
  /// that the master's send buffers, tasks_in_flight per worker, stay bounded), and guided: at most half of what is left per live worker, so chunks
  /// shrink towards the end and no worker is left with a long tail. (The master also ends a chunk
  /// at chunk_encoder::max_auto_bytes, 1 MiB, chunk_encoder.hpp.)
  std::size_t chunk_size(int w, int live_workers) const {
    if (fixed_chunk_ > 0) return fixed_chunk_;
    std::size_t by_duration = 1;
    if (task_seconds_ > 0) {
      by_duration =
          static_cast<std::size_t>(std::min<double>(max_auto_chunk, chunk_work(live_workers) / task_seconds_));
    }
    std::size_t left = requeued_.size() + prioritized_.size();
    if (kind_ == schedule::dynamic)
      left += own_[0].size() / static_cast<std::size_t>(std::max(1, live_workers));
    else
      left += own(w).size();
    return std::max<std::size_t>(1, std::min(by_duration, left / 2));
  }

  /// Messages worker w may hold at once: tasks_in_flight, but near the end of a dynamic run
  /// (fewer unsent tickets than the live workers could hold) one: a queued task must not wait
  /// behind a busy worker while another is idle.
  std::size_t message_limit(int w, int live_workers) const {
    if (kind_ == schedule::dynamic && in_flight_limit_ > 1 &&
        unsent_ < static_cast<std::size_t>(std::max(0, live_workers)) * in_flight_limit_ * chunk_size(w, live_workers))
      return 1;
    return in_flight_limit_;
  }

  std::size_t in_flight_limit() const { return in_flight_limit_; }
  std::size_t fixed_chunk() const { return fixed_chunk_; }
  foreman::schedule kind() const { return kind_; }

  /// Seconds of work an automatic chunk aims at, with `live_workers` workers: chunk_target, or more
  /// where chunks of chunk_target would have the master spend more than master_share of its time
  /// on messages. Busy workers send the master live_workers / work messages a second, each costing
  /// it about master_message_seconds, so work >= live_workers * master_message_seconds /
  /// master_share: 1 ms up to 62 workers, 4.1 ms at 255, 160 ms at 10,000 (docs/design.md, "Toward
  /// 10,000 workers").
  static double chunk_work(int live_workers) {
    return std::max(chunk_target, std::max(1, live_workers) * master_message_seconds / master_share);
  }

  static constexpr double chunk_target = 1e-3;        ///< seconds of work per automatic chunk, at least
  static constexpr std::size_t max_auto_chunk = 4096; ///< tasks per automatic chunk, at most
  /// The master's CPU per message it takes and answers, rounded up: 0.6-3.4 us measured at 16-256
  /// ranks, one task per message (docs/performance.md, "The master's ceiling").
  static constexpr double master_message_seconds = 4e-6;
  /// The share of the master's time that automatic chunks leave to messages, at most.
  static constexpr double master_share = 0.25;

private:
  struct entry {
    int priority;
    ticket t;
    // std::priority_queue puts the greatest first: the highest priority, then the lowest ticket.
    bool operator<(const entry& other) const {
      return priority != other.priority ? priority < other.priority : t > other.t;
    }
  };

  // add() of a ticket with a priority, or under round robin.
  FOREMAN_DETAIL_COLD void add_other(ticket t, int priority) {
    if (priority == 0) return add_range(t, 1);
    prioritized_.push(entry{priority, t});
    if (priority > 0) ++positive_;
    ++unsent_;
  }

  // take_next() when a requeued or prioritized ticket may go first, or w's queue is empty.
  FOREMAN_DETAIL_COLD bool take_other(int w, ticket& t) {
    if (!has_work(w)) return false;
    t = take(w);
    return true;
  }

  int owner(ticket t) const { return 1 + static_cast<int>(t % static_cast<ticket>(workers_)); }
  ticket_queue& own(int w) { return own_[kind_ == schedule::dynamic ? 0 : static_cast<std::size_t>(w)]; }
  const ticket_queue& own(int w) const { return own_[kind_ == schedule::dynamic ? 0 : static_cast<std::size_t>(w)]; }
  ticket take_prioritized() {
    const entry e = prioritized_.top();
    prioritized_.pop();
    if (e.priority > 0) --positive_;
    return e.t;
  }

  foreman::schedule kind_;
  std::size_t fixed_chunk_;
  std::size_t in_flight_limit_;
  int workers_;
  std::vector<ticket_queue> own_; // priority 0: [0] for dynamic, [w] per worker for round robin
  ticket_queue requeued_;         // taken back from lost workers
  std::priority_queue<entry> prioritized_;
  std::size_t positive_ = 0; // entries of prioritized_ above 0
  std::vector<char> lost_;   // per rank
  std::size_t unsent_ = 0;
  double task_seconds_ = 0.0; // running estimate of one task's duration on a worker
};

} // namespace detail
} // namespace foreman
