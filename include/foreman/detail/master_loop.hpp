#pragma once
/// @file master_loop.hpp
/// The master's scheduling loop: keeps every live worker supplied with up to
/// `tasks_in_flight` chunks, files each reply into its task's slot, declares a worker lost when
/// its process ends (watched where it can be, liveness.hpp) or when it stays silent past the task
/// timeout, and sends its tasks to other workers. It never blocks on any single worker: all sends
/// and receives are non-blocking, and idle time backs off to sleeping.

#include <foreman/detail/idle.hpp>
#include <foreman/detail/liveness.hpp>
#include <foreman/detail/transport.hpp>
#include <foreman/detail/wire.hpp>
#include <foreman/errors.hpp>
#include <foreman/options.hpp>
#include <foreman/outcome.hpp>

#include <mpi.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace foreman {
namespace detail {

/// What a pool remembers between runs about its workers.
struct pool_state {
  std::uint64_t id = 0;               ///< the pool's id, first field of every message header
  std::vector<char> lost;             ///< per rank: declared lost, never sent anything again
  std::vector<send_slot> abandoned;   ///< sends to lost workers that may never complete
  bool oversubscribed = true;         ///< more of the pool's ranks on this host than processors
  std::unique_ptr<inbox> replies;     ///< the workers' replies: receive buffers kept between runs
  std::vector<process_watch> watches; ///< per rank: its process, where the master can watch it
  std::vector<std::uint64_t> pids;    ///< per rank: its pid (in its own pid namespace), for messages
  bool watching = false;              ///< some worker's process is watched
  int lost_count = 0;                 ///< ranks marked in `lost`
  /// Counted, not recounted: the master's loop asks on every pass.
  int live_workers() const { return static_cast<int>(lost.size()) - 1 - lost_count; }
  void mark_lost(int w) {
    char& flag = lost[static_cast<std::size_t>(w)];
    lost_count += flag ? 0 : 1;
    flag = 1;
  }
  /// Whether worker w's process is known to have ended (only a watched one can be).
  bool exited(int w) {
    return static_cast<std::size_t>(w) < watches.size() && watches[static_cast<std::size_t>(w)].exited();
  }
};

/// Sends a control message (end_run or shutdown) to every worker whose process is not known to
/// have ended, lost ones too (a lost worker that is only slow then leaves its run, and the pool,
/// as the others do), and waits at most 2 s for the sends to complete: the live workers' sends,
/// and for the goodbye (shutdown) the lost workers' too. A send that does not complete is kept in
/// `pool.abandoned`.
inline void broadcast_control(MPI_Comm comm, pool_state& pool, tag t, std::uint32_t run) {
  const int size = static_cast<int>(pool.lost.size());
  std::vector<send_slot> slots(static_cast<std::size_t>(size));
  for (int w = 1; w < size; ++w) {
    if (pool.exited(w)) continue;
    send_slot& slot = slots[static_cast<std::size_t>(w)];
    encoder(slot.bytes).put(header{pool.id, run});
    try {
      slot.request = post_send(slot.bytes, w, t, comm);
    } catch (const mpi_error&) {
      pool.mark_lost(w); // MPI cannot reach it: it gets nothing more
    }
  }
  // A send MPI fails is over: the worker it was for is lost (as above), its slot idle.
  auto completed = [&](int w) {
    send_slot& slot = slots[static_cast<std::size_t>(w)];
    try {
      return slot.test();
    } catch (const mpi_error&) {
      pool.mark_lost(w);
      slot.request = MPI_REQUEST_NULL;
      slot.bodies.clear();
      return true;
    }
  };
  // Control messages are tiny and go out eagerly: this returns at once on a working transport.
  const auto deadline = clock::now() + std::chrono::seconds(2);
  idle_backoff idle;
  for (;;) {
    bool pending = false;
    for (int w = 1; w < size; ++w) {
      send_slot& slot = slots[static_cast<std::size_t>(w)];
      if (!slot.idle() && !completed(w) && (t == tag::shutdown || !pool.lost[static_cast<std::size_t>(w)]))
        pending = true;
    }
    if (!pending || clock::now() >= deadline) break;
    idle.pause();
  }
  for (int w = 1; w < size; ++w) {
    send_slot& slot = slots[static_cast<std::size_t>(w)];
    if (!slot.idle() && !completed(w)) pool.abandoned.push_back(std::move(slot));
  }
}

/// After the shutdown broadcast: receives each worker's goodbye (its answer to shutdown), waiting
/// at most `limit` for those still missing; returns, per rank, whether it answered. A worker whose
/// process is known to have ended is not waited for. Receives still open at the limit are
/// withdrawn. Live workers answer at once, so the wait is long only for a lost one that hangs.
inline std::vector<char> collect_goodbyes(MPI_Comm comm, pool_state& pool, clock::duration limit) {
  const int size = static_cast<int>(pool.lost.size());
  std::vector<char> answered(static_cast<std::size_t>(size), 0);
  std::vector<MPI_Request> requests(static_cast<std::size_t>(size), MPI_REQUEST_NULL);
  std::vector<std::array<char, header_bytes>> buffers(static_cast<std::size_t>(size));
  for (int w = 1; w < size; ++w) {
    if (pool.exited(w)) continue;
    try {
      check_mpi(MPI_Irecv(buffers[static_cast<std::size_t>(w)].data(), static_cast<int>(header_bytes), MPI_BYTE, w,
                          static_cast<int>(tag::goodbye), comm, &requests[static_cast<std::size_t>(w)]),
                "MPI_Irecv (a goodbye)", w);
    } catch (const mpi_error&) {
      requests[static_cast<std::size_t>(w)] = MPI_REQUEST_NULL;
    }
  }
  const auto deadline = clock::now() + limit;
  idle_backoff idle;
  for (;;) {
    bool pending = false;
    for (int w = 1; w < size; ++w) {
      MPI_Request& request = requests[static_cast<std::size_t>(w)];
      if (request == MPI_REQUEST_NULL) continue;
      int done = 0;
      if (MPI_Test(&request, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS) {
        request = MPI_REQUEST_NULL; // MPI cannot reach it: not answered
        continue;
      }
      if (done)
        answered[static_cast<std::size_t>(w)] = 1;
      else if (!pool.exited(w))
        pending = true;
    }
    if (!pending || clock::now() >= deadline) break;
    idle.pause();
  }
  for (MPI_Request& request : requests) {
    if (request == MPI_REQUEST_NULL) continue;
    MPI_Cancel(&request);
    MPI_Wait(&request, MPI_STATUS_IGNORE);
  }
  return answered;
}

inline void announce(const std::string& line) {
  const std::string text = "foreman: " + line + "\n";
  std::fputs(text.c_str(), stderr); // one call: lines from several ranks do not interleave
}

/// Task indices as ranges, "4, 7-9, 12", at most `limit` ranges ("..., and 5 more ranges").
inline std::string index_ranges(std::vector<std::size_t> indices, std::size_t limit = 16) {
  std::sort(indices.begin(), indices.end());
  std::string text;
  std::size_t ranges = 0;
  for (std::size_t k = 0; k < indices.size();) {
    std::size_t last = k;
    while (last + 1 < indices.size() && indices[last + 1] == indices[last] + 1) ++last;
    if (ranges++ < limit) {
      text += (text.empty() ? "" : ", ") + std::to_string(indices[k]);
      if (last > k) text += "-" + std::to_string(indices[last]);
    }
    k = last + 1;
  }
  if (ranges > limit) text += ", and " + std::to_string(ranges - limit) + " more ranges";
  return text;
}

template <class Task, class Result, class OnDone>
class master_loop {
public:
  /// @param on_done called as on_done(index, time) once a task's result or failure is filed;
  ///                time: when its message arrived
  /// @param names   names[k]: task k's index in the list the user passed, which the messages and
  ///                what they say use (a resumed run is given only the tasks its journal lacks,
  ///                master_worker::compute_missing()); ascending. Null: k itself.
  master_loop(MPI_Comm comm, std::uint32_t run, const std::vector<Task>& tasks, const options& opt, pool_state& pool,
              std::vector<Result>& results, run_info& info, std::vector<task_failure>& failures, OnDone& on_done,
              const std::vector<std::size_t>* names = nullptr)
      : comm_(comm), run_(run), tasks_(tasks), opt_(opt), pool_(pool), results_(results), info_(info),
        failures_(failures), on_done_(on_done), names_(names), fixed_chunk_(opt.chunk_size),
        in_flight_limit_(std::max<std::size_t>(1, opt.tasks_in_flight)), max_attempts_(std::max(1u, opt.max_attempts)),
        timeout_(std::chrono::duration_cast<clock::duration>(opt.task_timeout)),
        waiting_(effective_wait_policy(opt.wait), pool.oversubscribed), inbox_(replies_of(pool, comm)) {
    check_mpi(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
    workers_.resize(static_cast<std::size_t>(size_));
    for (auto& w : workers_) {
      w.slots.resize(in_flight_limit_);
      w.outstanding = chunk_ring(in_flight_limit_);
    }
    done_.assign(tasks_.size(), 0);
    resent_.assign(tasks_.size(), 0);
    // Tasks a lost worker would have had under round robin go to whoever is free.
    if (opt_.schedule == schedule::round_robin)
      for (int w = 1; w < size_; ++w)
        if (is_lost(w)) orphan_round_robin_tasks(w);
  }

  /// Runs until every task has a result or a failure, then ends the run on every live worker.
  void run() {
    idle_backoff idle = waiting_;
    // Every worker's next reply has a receive waiting for it, lost ones' too (a late reply is
    // taken and dropped).
    for (int w = 1; w < size_; ++w) inbox_.post(w);
    start_ = clock::now();
    for (int w = 1; w < size_; ++w) {
      try {
        refill(w, start_);
      } catch (const mpi_error& e) {
        if (!lose_peer(e)) throw;
      }
    }
    last_check_ = last_watch_ = start_;
    // A worker that died before this run is lost before it is sent anything.
    if (pool_.watching) check_processes(start_);
    const bool watch = timeout_.count() > 0 || pool_.watching;
    unsigned polls = 0;
    while (finished_ < tasks_.size()) {
      bool progressed = false, refilled = false;
      try {
        progressed = poll_results();
        refilled = !starved_.empty() && retry_starved();
      } catch (const mpi_error& e) {
        // A failure on one worker's connection makes that worker lost, not the run; any other
        // MPI failure leaves the loop (and the run ends on the workers, see end_early()).
        if (!lose_peer(e)) throw;
        continue;
      }
      // The clock is read every 16th poll only: a reading costs as much as a poll. Timeouts are
      // checked at most every millisecond, the workers' processes every process_check_interval
      // (one poll() of a pidfd each): never per message.
      if (watch && ++polls % 16 == 0) check_liveness(clock::now());
      if (pool_.live_workers() == 0) fail_unfinished("no live worker is left to run it");
      if (progressed || refilled)
        idle.reset();
      else if (starved_.empty() && !prepare()) // a starved worker has answered: its sends complete any moment
        idle.pause();
    }
    for (int w = 1; w < size_; ++w) {
      for (auto& slot : workers_[static_cast<std::size_t>(w)].slots) {
        if (slot.idle()) continue;
        if (is_lost(w))
          pool_.abandoned.push_back(std::move(slot)); // may never complete: keep its buffer alive
        else
          slot.wait(); // answered, hence matched (bodies included: a worker takes them first): completes
      }
    }
    // Live workers have answered everything: only a lost worker's late reply can still come.
    for (int w = 1; w < size_; ++w)
      if (inbox_.withdraw(w)) take_reply(w, clock::now());
    ended_ = true;
    broadcast_control(comm_, pool_, tag::end_run, run_);
  }

  /// For an exception that left run(): ends the run on every live worker before it reaches the
  /// caller, so that none serves this run forever. Sends end_run (it arrives behind the chunks a
  /// worker holds, which it still answers), takes and drops their answers, so that no worker
  /// waits for the master to receive one, for at most max(task timeout, 2 s), and keeps the
  /// buffers of sends that did not complete alive in the pool.
  void end_early() noexcept {
    try {
      if (!ended_) {
        ended_ = true;
        broadcast_control(comm_, pool_, tag::end_run, run_);
      }
      const auto deadline = clock::now() + std::max<clock::duration>(timeout_, std::chrono::seconds(2));
      for (int w = 1; w < size_; ++w) inbox_.post(w);
      idle_backoff idle = waiting_;
      while (answers_pending() && clock::now() < deadline) {
        const int worker = inbox_.poll();
        if (worker < 0) {
          idle.pause();
          continue;
        }
        drop_reply(worker);
        inbox_.post(worker);
      }
      for (int w = 1; w < size_; ++w)
        for (auto& slot : workers_[static_cast<std::size_t>(w)].slots)
          if (!slot.idle() && !slot.test()) pool_.abandoned.push_back(std::move(slot));
    } catch (...) {
      // Best effort: the exception that ended the run is the one to report.
    }
  }

  master_loop(const master_loop&) = delete;
  master_loop& operator=(const master_loop&) = delete;
  /// A run that ended early (an exception) leaves no receive posted into the pool's buffers.
  ~master_loop() {
    inbox_.withdraw_all();
    inbox_.release_large();
  }

private:
  static inbox& replies_of(pool_state& pool, MPI_Comm comm) {
    if (!pool.replies)
      pool.replies = std::make_unique<inbox>(comm, static_cast<int>(pool.lost.size()), static_cast<int>(tag::results));
    return *pool.replies;
  }

  struct chunk {
    std::vector<std::size_t> indices;
    clock::time_point sent;
  };
  // A worker's chunks sent and not yet answered, oldest first (a worker answers in order): a ring
  // of tasks_in_flight chunks whose index lists are kept, so that sending and retiring a chunk
  // moves and allocates nothing.
  class chunk_ring {
  public:
    explicit chunk_ring(std::size_t capacity = 1) : items_(capacity) {}
    std::size_t size() const { return size_; }
    bool empty() const { return size_ == 0; }
    chunk& operator[](std::size_t k) {
      k += first_;
      return items_[k < items_.size() ? k : k - items_.size()];
    }
    const chunk& front() const { return items_[first_]; }
    /// The chunk after the newest, its index list emptied. Requires size() < capacity.
    chunk& push_back() {
      chunk& c = (*this)[size_++];
      c.indices.clear();
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
  struct worker_state {
    std::vector<send_slot> slots;
    chunk_ring outstanding;
    clock::time_point last_answer{}; // its last sign of life: a reply or a progress note
    std::size_t next_round = 0;      // round robin: how many of this worker's own tasks were sent
  };

  bool is_lost(int w) const { return pool_.lost[static_cast<std::size_t>(w)] != 0; }
  std::size_t worker_count() const { return static_cast<std::size_t>(size_ - 1); }

  // A task's name, its index in the user's list (see names_): on the wire and in every message.
  std::uint64_t name_of(std::size_t k) const { return names_ ? (*names_)[k] : k; }
  std::vector<std::size_t> names_of(const std::vector<std::size_t>& ks) const {
    if (!names_) return ks;
    std::vector<std::size_t> out;
    out.reserve(ks.size());
    for (std::size_t k : ks) out.push_back((*names_)[k]);
    return out;
  }
  // The task a worker's reply names; throws if no task of this run has that name.
  std::size_t task_named(std::uint64_t name, int worker) const {
    std::size_t k = static_cast<std::size_t>(name);
    if (names_) {
      const auto at = std::lower_bound(names_->begin(), names_->end(), name);
      k = at != names_->end() && *at == name ? static_cast<std::size_t>(at - names_->begin()) : tasks_.size();
    }
    if (name >= std::uint64_t{1} << 63 || k >= tasks_.size())
      throw error("protocol error: worker " + std::to_string(worker) + " answered task " + std::to_string(name) +
                  ", which is not one of the " + std::to_string(tasks_.size()) + " tasks of this run");
    return k;
  }

  // The next task of worker w's own share, or tasks_.size() when none is left.
  std::size_t own_next(int w) const {
    if (opt_.schedule == schedule::dynamic) return next_;
    return static_cast<std::size_t>(w - 1) + workers_[static_cast<std::size_t>(w)].next_round * worker_count();
  }
  // Round robin: tasks of worker w's own share not yet sent.
  std::size_t own_left(int w) const {
    const std::size_t own = own_next(w);
    return own < tasks_.size() ? (tasks_.size() - own + worker_count() - 1) / worker_count() : 0;
  }
  bool has_work(int w) const { return !reassigned_.empty() || own_next(w) < tasks_.size(); }
  std::size_t take_task(int w) {
    if (!reassigned_.empty()) {
      const std::size_t index = reassigned_.front();
      reassigned_.pop_front();
      return index;
    }
    const std::size_t index = own_next(w);
    if (opt_.schedule == schedule::dynamic)
      ++next_;
    else
      ++workers_[static_cast<std::size_t>(w)].next_round;
    return index;
  }

  send_slot* free_slot(worker_state& w) {
    for (auto& slot : w.slots)
      if (slot.idle() || slot.test()) return &slot;
    return nullptr;
  }

  // How often the workers' processes are checked (where they are watched, liveness.hpp).
  static constexpr std::chrono::milliseconds process_check_interval{100};

  // An automatic chunk's tasks stop once they fill this many bytes (bodies included).
  static constexpr std::size_t max_auto_chunk_bytes = std::size_t{1} << 20;

  // Tasks in worker w's next message. Automatic sizing (chunk_size 0): enough tasks to fill
  // about chunk_target of work by the running estimate of a task's duration (one task until the
  // first answers arrive), at most max_auto_chunk, and guided: at most half of what is left per
  // live worker, so chunks shrink towards the end and no worker is left with a long tail;
  // refill() stops a chunk at max_auto_chunk_bytes.
  std::size_t chunk_for(int w) const {
    if (fixed_chunk_ > 0) return fixed_chunk_;
    constexpr double chunk_target = 1e-3; // seconds of work per message
    constexpr std::size_t max_auto_chunk = 4096;
    std::size_t by_duration = 1;
    if (task_seconds_ > 0)
      by_duration = static_cast<std::size_t>(std::min<double>(max_auto_chunk, chunk_target / task_seconds_));
    std::size_t left = reassigned_.size();
    if (opt_.schedule == schedule::dynamic)
      left += (tasks_.size() - next_) / static_cast<std::size_t>(std::max(1, pool_.live_workers()));
    else
      left += own_left(w);
    return std::max<std::size_t>(1, std::min(by_duration, left / 2));
  }

  // Dynamic schedule: tasks not yet sent to any worker.
  std::size_t unsent() const { return reassigned_.size() + (tasks_.size() - next_); }

  // Writes into `bytes` a tasks message of at most `size` tasks, each index asked from
  // next(index) (false: no task left); an automatic chunk stops at max_auto_chunk_bytes, as
  // larger ones save no time and the worker would hold all of their results at once. bodies_
  // gets the bodies to send after the message. Returns the number of tasks written.
  template <class Next>
  std::size_t encode_chunk(std::vector<char>& bytes, std::size_t size, Next&& next) {
    encoder out(bytes, 0);
    out.put(header{pool_.id, run_});
    const std::size_t count_at = out.size();
    out.put(std::uint32_t{0}); // count and bodies: patched below
    out.put(std::uint32_t{0});
    bodies_.clear();
    std::size_t count = 0, body_bytes = 0, i = 0;
    while (count < size && next(i)) {
      ++count;
      const std::size_t item_at = out.size();
      try {
        out.put(name_of(i));
        const body_span body = put_item(out, tasks_[i]);
        if (body) {
          bodies_.push_back(body);
          body_bytes += body.bytes;
        }
      } catch (...) {
        // Its serialize() threw: the item is taken back, and the worker is sent the task's
        // failure instead, which it answers like any other.
        out.rollback(item_at);
        put_failed_task(
            out, name_of(i), serialization_error_type,
            serialization_failure("task " + std::to_string(name_of(i)) + " could not be encoded on the master"));
      }
      if (fixed_chunk_ == 0 && out.size() + body_bytes >= max_auto_chunk_bytes) break;
    }
    out.patch(count_at, static_cast<std::uint32_t>(count));
    out.patch(count_at + sizeof(std::uint32_t), body_messages(bodies_));
    out.finish();
    return count;
  }

  // The tasks of a chunk just sent to worker w: counts their attempts, and announces in one line
  // those a lost worker had held (every one of them, with the attempt of those it had started).
  void count_attempts(const std::vector<std::size_t>& indices, int w) {
    resending_.clear();
    for (std::size_t i : indices) {
      ++info_.tasks[i].attempts;
      if (resent_[i]) {
        resent_[i] = 0;
        resending_.push_back(i);
      }
    }
    if (resending_.empty() || !opt_.announce_faults) return;
    std::string line = std::to_string(resending_.size()) + " task(s) sent again, to worker " + std::to_string(w) +
                       ": " + index_ranges(names_of(resending_));
    // Grouped by attempt: a task queued behind the one a lost worker was running is not charged.
    std::string attempts;
    for (unsigned a = 2; a <= max_attempts_; ++a) {
      std::vector<std::size_t> at;
      for (std::size_t i : resending_)
        if (info_.tasks[i].attempts == a) at.push_back(i);
      if (!at.empty())
        attempts += std::string(attempts.empty() ? "" : "; ") + "attempt " + std::to_string(a) + " of " +
                    std::to_string(max_attempts_) + ": " + index_ranges(names_of(at));
    }
    announce(line + (attempts.empty() ? "" : " (" + attempts + ")"));
  }

  // Dynamic schedule, fixed chunk size: encodes the next chunk while the master has nothing
  // else to do, so that the next reply is answered by sending it (refill() uses it when
  // prepared_is_next()). Only chunks without bodies are prepared; a chunk with bodies is encoded
  // once and marked, not again on every idle pass. Automatic chunks are not prepared: their size
  // follows every reply's durations, so most prepared ones would be encoded again. Returns
  // whether it encoded one.
  bool prepare() {
    if (fixed_chunk_ == 0 || opt_.schedule != schedule::dynamic || !reassigned_.empty() || next_ >= tasks_.size() ||
        prepared_.first == next_)
      return false;
    std::size_t k = next_;
    prepared_.count = encode_chunk(prepared_.bytes, fixed_chunk_, [&](std::size_t& i) {
      if (k == tasks_.size()) return false;
      i = k++;
      return true;
    });
    if (!bodies_.empty()) prepared_.count = 0;
    prepared_.first = next_;
    return true;
  }

  // Whether the prepared chunk is the one refill() would build now: it starts at the first
  // unsent task and no task taken from a lost worker waits (those go first).
  bool prepared_is_next() const { return prepared_.count > 0 && prepared_.first == next_ && reassigned_.empty(); }

  // Sends worker w chunks until it holds in_flight_limit_ of them or no work is left. Near the
  // end of a dynamic run (fewer unsent tasks than live workers could hold) a worker holds one
  // message at most: a queued task must not wait behind a busy worker while another is idle.
  // `now`: the time the chunks count as sent, for the task timeout.
  void refill(int w, clock::time_point now) {
    if (is_lost(w)) return;
    worker_state& state = workers_[static_cast<std::size_t>(w)];
    std::size_t limit = in_flight_limit_;
    if (opt_.schedule == schedule::dynamic && limit > 1 &&
        unsent() < static_cast<std::size_t>(pool_.live_workers()) * limit * chunk_for(w))
      limit = 1;
    while (state.outstanding.size() < limit && has_work(w)) {
      send_slot* slot = free_slot(state);
      if (slot == nullptr) {
        // Its previous message is still being sent (a large one, or its bodies, completes only
        // after the worker took it): try again from the loop, since no reply may come to do it.
        if (std::find(starved_.begin(), starved_.end(), w) == starved_.end()) starved_.push_back(w);
        return;
      }
      chunk& sent = state.outstanding.push_back(); // size() < limit <= in_flight_limit_
      const std::size_t size = chunk_for(w);
      if (prepared_is_next()) { // implies size == fixed_chunk_: only fixed-size chunks are prepared
        // Encoded ahead (prepare()): sent first, its tasks taken after.
        slot->bytes.swap(prepared_.bytes);
        post_message(*slot, w, tag::tasks, comm_);
        for (std::size_t k = 0; k < prepared_.count; ++k) sent.indices.push_back(take_task(w));
        prepared_.count = 0;
      } else {
        encode_chunk(slot->bytes, size, [&](std::size_t& i) {
          if (!has_work(w)) return false;
          i = take_task(w);
          sent.indices.push_back(i);
          return true;
        });
        post_message(*slot, w, tag::tasks, comm_);
        for (const body_span& body : bodies_) post_body(body, w, tag::task_body, comm_, *slot); // from tasks_ itself
      }
      count_attempts(sent.indices, w);
      ++info_.messages;
      sent.sent = now;
    }
  }

  // Refills the workers whose send slots were all busy when they were last refilled.
  // Returns whether any of them got a message.
  bool retry_starved() {
    retrying_.swap(starved_);
    starved_.clear();
    const auto now = clock::now();
    const std::size_t sent = info_.messages;
    for (int w : retrying_) refill(w, now);
    return info_.messages != sent;
  }

  // Files every reply that has arrived; returns whether there was any.
  bool poll_results() {
    bool any = false;
    for (;;) {
      const int worker = inbox_.poll();
      if (worker < 0) return any;
      any = true;
      decoder in = inbox_.message(worker);
      std::uint32_t count = 0;
      if (is_progress_note(in)) {
        heard_from(worker, in);
      } else if (plain_reply(worker, in, count)) {
        // The common case: the worker's next tasks leave first, and the reply is filed while
        // they travel. One clock reading serves the reply and the chunks sent back.
        retire_oldest(worker);
        chunk_ring& outstanding = workers_[static_cast<std::size_t>(worker)].outstanding;
        const std::size_t held = outstanding.size();
        refill(worker, clock::time_point{});
        const auto arrival = clock::now();
        for (std::size_t k = held; k < outstanding.size(); ++k) outstanding[k].sent = arrival;
        file_items(worker, arrival, in, count);
        // Completes the sends just posted where that is already possible, so that the next
        // refill finds a free slot without testing it.
        for (send_slot& slot : workers_[static_cast<std::size_t>(worker)].slots)
          if (!slot.idle()) slot.test();
      } else {
        const auto arrival = clock::now();
        take_reply(worker, arrival);
        refill(worker, arrival);
      }
      // Only now: the worker's next reply cannot come before the tasks just sent, and the next
      // task leaves sooner. (A reply already on its way is matched from MPI's queue instead.)
      inbox_.post(worker);
    }
  }

  // Whether the reply that arrived from `worker`, `in`, answers this run, from a live worker, in
  // one message without bodies: then nothing in it can make the master declare the worker lost.
  // If so, `in` is left at its first item and `count` holds how many it has.
  bool plain_reply(int worker, decoder& in, std::uint32_t& count) const {
    if (is_lost(worker) || inbox_.announced(worker) > 0) return false;
    const auto stamp = in.get<header>();
    count = in.get<std::uint32_t>();
    return stamp.pool == pool_.id && stamp.run == run_ && count != damaged_marker && in.get<std::uint32_t>() == 0;
  }

  // The worker answered its oldest outstanding chunk (it answers them in order).
  void retire_oldest(int worker) {
    chunk_ring& outstanding = workers_[static_cast<std::size_t>(worker)].outstanding;
    if (!outstanding.empty()) outstanding.pop_front();
  }

  bool answers_pending() const {
    for (int w = 1; w < size_; ++w)
      if (!is_lost(w) && !workers_[static_cast<std::size_t>(w)].outstanding.empty()) return true;
    return false;
  }

  // Takes a reply after the run ended early and drops it, with its bodies; a reply to this run
  // answers its worker's oldest chunk.
  void drop_reply(int worker) {
    try {
      if (inbox_.announced(worker) > 0 && !inbox_.fetch_large(worker, [&](const body_span& into) {
            piece_receiver message(into.data, into.bytes, worker, tag::results_large, comm_);
            return message.wait_while_coming(std::chrono::seconds(1), waiting_);
          }))
        return;
      decoder in = inbox_.message(worker);
      if (is_progress_note(in)) return; // not an answer: nothing to retire
      const auto stamp = in.get<header>();
      in.get<std::uint32_t>(); // count
      drain_bodies(worker, in.get<std::uint32_t>(), std::chrono::seconds(1));
      if (stamp.pool == pool_.id && stamp.run == run_) retire_oldest(worker);
    } catch (...) {
      // Not a reply this run can read: nothing to retire.
    }
  }

  // A progress note from `worker`: it is alive, busy with a long chunk (wire.hpp).
  void heard_from(int worker, decoder note) {
    const auto stamp = note.get<header>();
    if (stamp.pool == pool_.id && stamp.run == run_ && !is_lost(worker))
      workers_[static_cast<std::size_t>(worker)].last_answer = clock::now();
  }

  // Files the reply that arrived from `worker`, fetching it first if it came as an envelope.
  void take_reply(int worker, clock::time_point arrival) {
    if (is_progress_note(inbox_.message(worker))) return;
    if (inbox_.announced(worker) > 0) {
      // Sent right after its envelope; a lost worker's late one is given a second per piece, as
      // its bodies.
      const clock::duration limit = is_lost(worker) ? clock::duration(std::chrono::seconds(1)) : timeout_;
      if (!inbox_.fetch_large(
              worker, [&](const body_span& into) { return follow_up(worker, into, tag::results_large, limit); })) {
        if (!is_lost(worker)) lose(worker, timeout_seconds()); // it died between the two
        return;
      }
      arrival = clock::now(); // the results are here only now
    }
    file_reply(worker, arrival, inbox_.message(worker));
  }

  // Files a reply's results and failures, then retires the chunk it answered.
  void file_reply(int worker, clock::time_point arrival, decoder in) {
    const auto stamp = in.get<header>();
    const auto count = in.get<std::uint32_t>();
    const auto bodies = in.get<std::uint32_t>();
    // From an earlier pool or run (stale), or a lost worker's late answer (its tasks were
    // handed on already): dropped, with its bodies.
    if (stamp.pool != pool_.id || stamp.run != run_ || is_lost(worker)) {
      drain_bodies(worker, bodies, std::chrono::seconds(1));
      return;
    }
    if (count == damaged_marker)
      file_damaged(worker, arrival, in);
    else if (!file_items(worker, arrival, in, count))
      return;
    retire_oldest(worker);
  }

  // The worker could not read the message of its oldest chunk: its framing was broken (wire.hpp).
  // No item of it can be trusted, its task indices included, so every task the master sent in it
  // fails, as foreman::serialization_error (a damaged message cannot come from a user's type:
  // from a defect, or corruption). The worker goes on with its next chunk.
  void file_damaged(int worker, clock::time_point arrival, decoder& in) {
    std::string why;
    in.get(why);
    worker_state& state = workers_[static_cast<std::size_t>(worker)];
    state.last_answer = arrival;
    if (state.outstanding.empty()) return;
    for (std::size_t i : state.outstanding[0].indices) {
      if (done_[i]) continue;
      failures_.push_back(task_failure{i, worker, serialization_error_type,
                                       serialization_error("task " + std::to_string(name_of(i)) +
                                                           " could not be decoded on worker " + std::to_string(worker) +
                                                           ": the tasks message holding it was damaged: " + why)
                                           .what()});
      task_record& record = info_.tasks[i];
      record.worker = worker;
      record.seconds = 0.0;
      record.failed = true;
      finish(i, arrival);
    }
  }

  // Files the `count` results and failures of a reply from `worker`, `in` being at the first.
  // Returns false if the worker was declared lost on the way (a body did not come).
  bool file_items(int worker, clock::time_point arrival, decoder& in, std::uint32_t count) {
    worker_state& state = workers_[static_cast<std::size_t>(worker)];
    state.last_answer = arrival;
    for (std::uint32_t k = 0; k < count; ++k) {
      const std::size_t index = task_named(in.get<std::uint64_t>(), worker);
      const auto status = in.get<item_status>();
      const auto seconds = in.get<double>();
      const bool duplicate = done_[index] != 0;
      bool failed = status != item_status::ok;
      if (!failed) {
        std::optional<Result> ignored;
        Result& into = duplicate ? ignored.emplace() : results_[index];
        std::size_t body_bytes = 0;
        std::string why;
        const body_span body = decode_result(in, into, body_bytes, index, why);
        failed = !why.empty();
        // The worker sent the message but not its body: it died in between. The message's
        // chunk is still its oldest outstanding one: its unfiled tasks run again elsewhere.
        if (body && !receive_body(worker, body)) {
          lose(worker, timeout_seconds());
          return false;
        }
        if (failed && body_bytes > 0 && !drain_bodies(worker, pieces_of(body_bytes), timeout_)) {
          lose(worker, timeout_seconds());
          return false;
        }
        if (duplicate) continue;
        if (failed) {
          into = Result{}; // not what a failed load left behind
          failures_.push_back(task_failure{index, worker, serialization_error_type, std::move(why)});
        }
      } else {
        task_failure failure;
        failure.index = index;
        failure.worker = worker;
        in.get(failure.type);
        in.get(failure.message);
        if (duplicate) continue;
        failures_.push_back(std::move(failure));
      }
      task_record& record = info_.tasks[index];
      record.worker = worker;
      record.seconds = seconds;
      task_seconds_ = task_seconds_ == 0.0 ? seconds : task_seconds_ + 0.05 * (seconds - task_seconds_);
      record.failed = failed;
      finish(index, arrival);
    }
    return true;
  }

  // Reads a result item into `into`; on a serialization_error, `why` gets the task's failure
  // message and the returned span is empty (`in` is then at the next item, and body_bytes says
  // how many bytes of a body announced for it must be dropped).
  body_span decode_result(decoder& in, Result& into, std::size_t& body_bytes, std::size_t index, std::string& why) {
    try {
      return get_item(in, into, body_bytes);
    } catch (const serialization_error&) {
      why = serialization_failure("the result of task " + std::to_string(name_of(index)) +
                                  " could not be decoded on the master");
      return body_span{nullptr, 0};
    }
  }

  double timeout_seconds() const { return std::chrono::duration<double>(timeout_).count(); }

  // Receives a body that `worker` sends right after its message (follow_up(), task timeout).
  bool receive_body(int worker, const body_span& body) { return follow_up(worker, body, tag::result_body, timeout_); }

  // Receives into `into` what `worker` sends on tag `t` right after a message (a body, an
  // envelope's message), in pieces past piece_bytes. Gives up, returning false, when no piece
  // came for `limit` (zero: no limit) or, where the worker's process is watched, once it has
  // ended. A long transfer does not hide another worker's death: at least every
  // process_check_interval, and between two pieces (one MPI call moves at most a piece), the
  // others are judged as run() judges them (check_others()).
  bool follow_up(int worker, const body_span& into, tag t, clock::duration limit) {
    piece_receiver in(into.data, into.bytes, worker, t, comm_);
    const bool watched = static_cast<std::size_t>(worker) < pool_.watches.size() &&
                         pool_.watches[static_cast<std::size_t>(worker)].watching();
    auto last_piece = clock::now();
    for (;;) {
      clock::duration slice = process_check_interval;
      if (limit.count() > 0) {
        const auto left = last_piece + limit - clock::now();
        if (left <= clock::duration::zero()) return false;
        slice = std::min(slice, left);
      }
      const std::size_t before = in.received();
      const bool complete = in.wait_for(slice, waiting_);
      const auto now = clock::now();
      if (in.received() != before) { // a piece is a sign of life
        last_piece = now;
        workers_[static_cast<std::size_t>(worker)].last_answer = now;
      }
      if (complete) return true;
      if (watched && pool_.exited(worker)) return false;
      check_others(now, worker);
    }
  }

  // The liveness checks of run(), made while the master receives a transfer from `busy`, whom the
  // transfer judges: the messages other workers sent meanwhile wait in the inbox for the loop,
  // and each counts as a sign of life, as run() would have counted it.
  void check_others(clock::time_point now, int busy) {
    if (timeout_.count() == 0 && !pool_.watching) return;
    try {
      for (const int w : inbox_.collect())
        if (w != busy) workers_[static_cast<std::size_t>(w)].last_answer = now;
      check_liveness(now, busy);
    } catch (const mpi_error& e) {
      // A receive from another worker failed, or losing one refilled the others and a send
      // failed: that peer is lost, and the transfer from `busy` goes on.
      if (!lose_peer(e)) throw;
    }
  }

  // Receives and drops the `count` body messages (pieces counted) that follow a dropped message or
  // item from `worker`; gives up when none of them comes for `limit` (zero: no limit; a lost
  // worker may be dead). Returns whether all came.
  bool drain_bodies(int worker, std::size_t count, clock::duration limit) {
    auto deadline = clock::now() + limit;
    idle_backoff idle;
    while (count > 0 && (limit.count() == 0 || clock::now() < deadline)) {
      int found = 0;
      MPI_Message message;
      MPI_Status status;
      check_mpi(MPI_Improbe(worker, static_cast<int>(tag::result_body), comm_, &found, &message, &status),
                "MPI_Improbe (a dropped reply's body)", worker);
      if (!found) {
        idle.pause();
        continue;
      }
      receive_matched(message, status, scratch_);
      --count;
      deadline = clock::now() + limit;
    }
    return count == 0;
  }

  void finish(std::size_t index, clock::time_point when) {
    done_[index] = 1;
    ++finished_;
    on_done_(index, when);
  }

  // When the master last had a sign of life from worker w: its last reply or progress note, or
  // the sending of the chunk it is working on if that came later (it was idle), or the run's start.
  clock::time_point last_sign_of_life(int w) const {
    const worker_state& state = workers_[static_cast<std::size_t>(w)];
    auto last = std::max(state.last_answer, start_);
    if (!state.outstanding.empty()) last = std::max(last, state.outstanding.front().sent);
    return last;
  }

  // At most every millisecond the task timeouts, at most every process_check_interval the
  // watched processes; never the worker `busy` (0: none; see check_others()).
  void check_liveness(clock::time_point now, int busy = 0) {
    if (now - last_check_ < std::chrono::milliseconds(1)) return;
    last_check_ = now;
    if (timeout_.count() > 0) check_timeouts(now, busy);
    if (pool_.watching && now - last_watch_ >= process_check_interval) {
      last_watch_ = now;
      check_processes(now, busy);
    }
  }

  // A worker holding tasks is lost when nothing was heard from it for the task timeout: it sends
  // a progress note between the tasks of a chunk (and between the pieces of a long transfer) when
  // its last message is progress_interval old, so however large its chunk, a task that takes at
  // most task_timeout never makes it lost.
  void check_timeouts(clock::time_point now, int busy = 0) {
    const auto allowed =
        timeout_ + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(progress_interval));
    for (int w = 1; w < size_; ++w)
      if (w != busy && !is_lost(w) && !workers_[static_cast<std::size_t>(w)].outstanding.empty() &&
          now - last_sign_of_life(w) > allowed)
        lose(w, loss_reason::silent, now);
  }

  // The worker an MPI failure names as its peer is lost; false when it names none (or the master).
  bool lose_peer(const mpi_error& e) {
    const int w = e.peer();
    if (w < 1 || w >= size_) return false;
    if (!is_lost(w)) {
      peer_error_ = e.what();
      lose(w, loss_reason::mpi_error, clock::now());
    }
    return true;
  }

  // Workers whose process has ended are lost at once, whether they hold tasks or not (but `busy`).
  void check_processes(clock::time_point now, int busy = 0) {
    for (int w = 1; w < size_; ++w)
      if (w != busy && !is_lost(w) && pool_.exited(w)) lose(w, loss_reason::process_exited, now);
  }

  // A worker that sent a message and not what had to follow it (a body, an envelope's message):
  // its process ended, or it stayed silent for the task timeout.
  void lose(int w, double /* silent_seconds */) {
    lose(w, pool_.exited(w) ? loss_reason::process_exited : loss_reason::silent, clock::now());
  }

  // Declares worker w lost: it is sent nothing more and its unanswered tasks go elsewhere.
  void lose(int w, loss_reason reason, clock::time_point now) {
    if (is_lost(w)) return; // e.g. a send to it failed while the master was receiving from it
    worker_state& state = workers_[static_cast<std::size_t>(w)];
    std::vector<std::size_t> held;
    for (std::size_t k = 0; k < state.outstanding.size(); ++k)
      for (std::size_t i : state.outstanding[k].indices)
        if (!done_[i]) held.push_back(i);
    const double silent = std::chrono::duration<double>(now - last_sign_of_life(w)).count();
    pool_.mark_lost(w);
    info_.lost_workers.push_back(w);
    info_.losses.push_back(
        worker_loss{w, reason, std::chrono::duration<double>(now - start_).count(), silent, held.size()});
    if (opt_.announce_faults) {
      char why[160];
      if (reason == loss_reason::process_exited)
        std::snprintf(why, sizeof why, "its process (pid %llu) has ended; last sign of life %.2f s ago",
                      static_cast<unsigned long long>(pid_of(w)), silent);
      else if (reason == loss_reason::mpi_error)
        std::snprintf(why, sizeof why, "MPI reported a failure on its connection (%.100s)", peer_error_.c_str());
      else
        std::snprintf(why, sizeof why, "nothing heard from it for %.2f s (task timeout %g s)", silent,
                      opt_.task_timeout.count());
      announce("worker " + std::to_string(w) + " lost: " + why + "; it held " + std::to_string(held.size()) +
               " task(s)" + (held.empty() ? "" : ": " + index_ranges(names_of(held))) + "; it gets no more tasks");
    }
    // A worker runs its chunks in order, so only the oldest unanswered one can have started:
    // the tasks queued behind it are not charged an attempt.
    for (std::size_t k = 0; k < state.outstanding.size(); ++k) {
      const bool oldest = k == 0;
      for (std::size_t i : state.outstanding[k].indices) {
        if (done_[i]) continue;
        if (!oldest) {
          --info_.tasks[i].attempts;
          reassigned_.push_back(i);
          resent_[i] = 1;
        } else if (info_.tasks[i].attempts >= max_attempts_) {
          fail(i, w,
               "worker " + std::to_string(w) + " was lost while running this task, the last of " +
                   std::to_string(max_attempts_) + " attempts");
        } else {
          reassigned_.push_back(i);
          resent_[i] = 1;
          ++info_.retries;
        }
      }
    }
    state.outstanding.clear();
    if (opt_.schedule == schedule::round_robin) orphan_round_robin_tasks(w);
    for (int other = 1; other < size_; ++other) refill(other, now);
  }

  std::uint64_t pid_of(int w) const {
    return static_cast<std::size_t>(w) < pool_.pids.size() ? pool_.pids[static_cast<std::size_t>(w)] : 0;
  }

  void orphan_round_robin_tasks(int w) {
    worker_state& state = workers_[static_cast<std::size_t>(w)];
    for (std::size_t i = own_next(w); i < tasks_.size(); i += worker_count()) reassigned_.push_back(i);
    state.next_round = tasks_.size(); // its own share is exhausted
  }

  void fail(std::size_t index, int worker, std::string message) {
    failures_.push_back(task_failure{index, worker, "foreman::worker_lost", std::move(message)});
    task_record& record = info_.tasks[index];
    record.worker = worker;
    record.failed = true;
    finish(index, clock::now());
  }

  void fail_unfinished(const std::string& why) {
    for (std::size_t i = 0; i < tasks_.size(); ++i)
      if (!done_[i]) fail(i, info_.tasks[i].worker < 0 ? 0 : info_.tasks[i].worker, why);
  }

  MPI_Comm comm_;
  int size_ = 0;
  std::uint32_t run_;
  const std::vector<Task>& tasks_;
  const options& opt_;
  pool_state& pool_;
  std::vector<Result>& results_;
  run_info& info_;
  std::vector<task_failure>& failures_;
  OnDone& on_done_;
  const std::vector<std::size_t>* names_; // names_[k]: task k's index in the user's list; null: k
  std::size_t fixed_chunk_;   // options::chunk_size; 0: automatic, see chunk_for()
  double task_seconds_ = 0.0; // running estimate of one task's duration on a worker
  std::size_t in_flight_limit_;
  unsigned max_attempts_;
  clock::duration timeout_;
  idle_backoff waiting_; // how this rank waits (options::wait, FOREMAN_WAIT), read once per run

  std::vector<worker_state> workers_;
  std::vector<char> done_;             // per task: filed already (guards against a reply counted twice)
  std::vector<char> resent_;           // per task: taken from a lost worker, to be announced when sent again
  std::vector<std::size_t> resending_; // count_attempts(): the tasks of a chunk being sent again
  clock::time_point start_{};          // when run() began: losses are reported relative to it
  clock::time_point last_check_{};     // check_liveness(): when timeouts were last checked
  clock::time_point last_watch_{};     // and the watched processes
  bool ended_ = false;                 // end_run was sent
  std::string peer_error_;             // the MPI failure that made the last worker lost (lose_peer())
  std::size_t next_ = 0;               // dynamic schedule: first task not yet sent
  std::size_t finished_ = 0;           // tasks filed
  std::deque<std::size_t> reassigned_; // tasks taken from lost workers, sent before any other
  std::vector<int> starved_;           // workers refill() could not supply: every send slot was busy
  std::vector<int> retrying_;
  std::vector<char> scratch_;     // dropped bodies land here
  std::vector<body_span> bodies_; // the bodies of the message being sent
  struct {
    std::vector<char> bytes;
    std::size_t first = SIZE_MAX; // the first unsent task when it was encoded
    std::size_t count = 0;        // its tasks: first .. first + count - 1; 0: none (or it has bodies)
  } prepared_;                    // the next chunk of a dynamic run, encoded ahead (prepare())
  inbox& inbox_;                  // the workers' replies, received into receives posted ahead (pool.replies)
};

} // namespace detail
} // namespace foreman
