#pragma once
/// @file master_loop.hpp
/// The master's loop: wires the scheduler (which ticket goes to which worker, scheduler.hpp), the
/// worker table (unanswered chunks, signs of life, worker_table.hpp), the chunk encoder (tasks
/// messages, chunk_encoder.hpp), the loss ledger (what a lost worker records and announces,
/// loss_ledger.hpp), the result filer (each outcome into the store, result_filer.hpp) and a task
/// store (tasks, results, records, task_store.hpp) to MPI. It keeps every live worker supplied
/// with up to `tasks_in_flight` chunks, reads each reply and hands its items to the filer,
/// declares a worker lost when its process ends (watched where it can be, liveness.hpp) or when
/// it stays silent past the task timeout, and hands its tasks to the scheduler again. It never
/// blocks on any single worker: all sends and receives are non-blocking, what follows a reply
/// (its bodies, an envelope's message) is received by the reply reader (reply_reader.hpp) a piece
/// at a time from the loop's passes, and idle time backs off to sleeping.
///
/// run() drives a whole run to its end; a job drives it pass by pass (start(), step(), end()),
/// adding tickets between passes (work_added()) and cancelling (cancel()).

#include <foreman/detail/announce.hpp>
#include <foreman/detail/chunk_encoder.hpp>
#include <foreman/detail/idle.hpp>
#include <foreman/detail/keep_alive.hpp>
#include <foreman/detail/liveness.hpp>
#include <foreman/detail/loss_ledger.hpp>
#include <foreman/detail/pool_state.hpp>
#include <foreman/detail/reply_reader.hpp>
#include <foreman/detail/result_filer.hpp>
#include <foreman/detail/scheduler.hpp>
#include <foreman/detail/shared_value.hpp>
#include <foreman/detail/transport.hpp>
#include <foreman/detail/wire.hpp>
#include <foreman/detail/worker_table.hpp>
#include <foreman/errors.hpp>
#include <foreman/options.hpp>
#include <foreman/outcome.hpp>

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace foreman {
namespace detail {

/// What run() gives master_loop as its OnDone: the caller's callable behind a pointer, so that a
/// program instantiates one master loop per Task, Result and store, not one per task function and
/// callback (each of which, a lambda, is a type of its own; the loop costs seconds of compiling
/// per instantiation). One indirect call per task. The callable must outlive this object.
class done_callback {
public:
  template <class F>
  explicit done_callback(F& f)
      : object_(&f),
        call_([](void* object, ticket t, clock::time_point when) { (*static_cast<F*>(object))(t, when); }) {}
  template <class Item>
  void operator()(ticket t, const Item&, clock::time_point when) const {
    call_(object_, t, when);
  }

private:
  void* object_;
  void (*call_)(void*, ticket, clock::time_point);
};

/// @tparam Store  dense_store (run()) or job_store (a job); see task_store.hpp
/// @tparam OnDone called as on_done(ticket, Store::item, time) once a task's result or failure is
///                filed; time: when its message arrived (done_callback for run())
template <class Task, class Result, class Store, class OnDone>
class master_loop {
public:
  master_loop(MPI_Comm comm, std::uint32_t run, const options& opt, pool_state& pool, Store& store, run_info& info,
              OnDone& on_done)
      : comm_(comm), run_(run), opt_(opt), pool_(pool), store_(store), info_(info), on_done_(on_done),
        losses_(info, opt.task_timeout.count(), opt.max_attempts, pool.tasks_noun(), pool.tasks_plural()),
        timeout_(std::chrono::duration_cast<clock::duration>(opt.task_timeout)),
        waiting_(effective_wait_policy(opt.wait), pool.oversubscribed), inbox_(replies_of(pool, comm)),
        size_(static_cast<int>(pool.lost.size())), replies_per_pass_(std::max(16, size_ - 1)),
        scheduler_({opt.schedule, opt.chunk_size, opt.tasks_in_flight, std::max(1, size_ - 1)}),
        chunks_(store, pool, run), filer_(store, scheduler_, pool, on_done),
        table_(size_, scheduler_.in_flight_limit(), clock::time_point{}, transfer_rate_floor), reader_(comm, size_),
        slots_(static_cast<std::size_t>(size_)), controls_(static_cast<std::size_t>(size_)),
        large_(static_cast<std::size_t>(size_)), parked_(static_cast<std::size_t>(size_), 0),
        counts_(static_cast<std::size_t>(size_), 0), idle_flag_(static_cast<std::size_t>(size_), 0) {
    for (auto& s : slots_) s.resize(scheduler_.in_flight_limit());
    // Tasks a lost worker would have had under round robin go to whoever is free.
    for (int w = 1; w < size_; ++w)
      if (is_lost(w)) scheduler_.lose(w);
  }

  /// The scheduler, for adding tickets (then call work_added()).
  scheduler& tickets() { return scheduler_; }

  /// The run's shared value (shared_value.hpp; null: none), sent to every live worker by start()
  /// before its first tasks. Call before start().
  void share(std::shared_ptr<const shared_payload> payload) {
    if (payload) shared_ = std::make_unique<shared_sends>(std::move(payload), size_, pool_);
  }

  /// Runs until every task of the store has a result or a failure, then ends the run on every
  /// live worker. The store's tickets 0 .. store.size() - 1 are added first.
  void run() {
    scheduler_.add_range(0, store_.size());
    start();
    idle_backoff idle = waiting_;
    // After a cancellation the workers' answers to the chunks they held are still taken: each
    // worker skips their tasks, so they come at once.
    while (store_.finished() < store_.size() || (cancelled_ && answers_pending())) {
      if (opt_.fail_fast && filer_.any_failed() && !cancelled_) {
        cancelled_ = true;
        cancel([&](ticket t) { filer_.cancel(t); });
      }
      const pass p = step();
      if (p == pass::progressed)
        idle.reset();
      else if (p == pass::idle)
        idle.pause();
    }
    end();
  }

  /// Posts a receive for every worker's next reply and sends every live worker its first chunks.
  void start() {
    // Every worker's next reply has a receive waiting for it, lost ones' too (a late reply is
    // taken and dropped).
    for (int w = 1; w < size_; ++w) inbox_.post(w);
    start_ = clock::now();
    table_.start(start_);
    if (shared_) post_shared();
    for (int w = 1; w < size_; ++w) {
      // A worker takes the shared value before its first tasks: its size counts as in transit.
      if (shared_ && !is_lost(w)) table_.sent_ahead(w, shared_->bytes(), start_);
      refill_or_lose(w, start_);
    }
    last_check_ = last_watch_ = start_;
    // A worker that died before this run is lost before it is sent anything.
    if (pool_.watching) check_processes(start_);
    watch_ = timeout_.count() > 0 || pool_.watching;
  }

  /// What a pass of the loop did: filed or sent something; only prepared the next chunk (or waits
  /// for a send to complete any moment); nothing (the caller may pause, idle_backoff).
  enum class pass { progressed, busy, idle };

  /// One pass: files the replies that arrived, moves the transfers in progress on by a piece each,
  /// refills, checks liveness now and then.
  pass step() {
    bool progressed = false, refilled = false;
    try {
      progressed = poll_results();
      if (reader_.any()) progressed |= poll_transfers();
      refilled = !starved_.empty() && retry_starved();
    } catch (const mpi_error& e) {
      // A failure on one worker's connection makes that worker lost, not the run; any other
      // MPI failure leaves the loop (and the run ends on the workers, see end_early()).
      if (!lose_peer(e)) throw;
      return pass::progressed;
    }
    // The clock is read every 16th poll only: a reading costs as much as a poll. Timeouts are
    // checked at most every millisecond, the workers' processes every process_check_interval
    // (one poll() of a pidfd each): never per message. Transfers have deadlines of their own.
    if ((watch_ || reader_.any()) && ++polls_ % 16 == 0) {
      try {
        check_liveness(clock::now()); // a loss refills the others: a send may fail there too
      } catch (const mpi_error& e) {
        if (!lose_peer(e)) throw;
        return pass::progressed;
      }
    }
    if (no_worker_left()) fail_unsent();
    if (progressed || refilled) return pass::progressed;
    // A starved worker has answered: its sends complete any moment.
    return !starved_.empty() || chunks_.prepare(scheduler_) ? pass::busy : pass::idle;
  }

  /// Whether a live worker holds nothing and waits for work (work_added() would send it some).
  bool has_idle_worker() const { return !idle_.empty(); }

  /// Tickets were added to the scheduler: the workers that hold nothing get them now (the others
  /// get more when they next answer). O(1) when no worker is idle.
  void work_added() {
    if (no_worker_left()) {
      fail_unsent();
      return;
    }
    if (idle_.empty()) return;
    const auto now = clock::now();
    // Each idle worker once: one that gets nothing (round robin: its share is empty) is queued
    // again by refill().
    for (std::size_t n = idle_.size(); n > 0 && !idle_.empty() && scheduler_.unsent() > 0; --n) {
      const int w = idle_.front();
      idle_.pop_front();
      idle_flag_[static_cast<std::size_t>(w)] = 0;
      if (is_lost(w) || table_.holds_tasks(w)) continue;
      refill_or_lose(w, now);
    }
  }

  /// Cancels every ticket not yet filed: those waiting to be sent and those the live workers hold
  /// are handed to dropped(t), which must make the store's done(t) true (file a failure, or forget
  /// t); a reply naming them is ignored when it comes. Each live worker holding chunks is told to
  /// skip the rest of their tasks (tag::cancel): it answers them without running them, so that
  /// answers_pending() soon turns false.
  template <class Dropped>
  void cancel(Dropped&& dropped) {
    scheduler_.drop_unsent(dropped);
    chunks_.drop_prepared();
    for (int w = 1; w < size_; ++w) {
      if (is_lost(w) || !table_.holds_tasks(w)) continue;
      keep_bodies(w, false); // a body still being sent outlives its dropped task
      const chunk_ring& outstanding = table_.outstanding(w);
      for (std::size_t k = 0; k < outstanding.size(); ++k)
        for (ticket t : outstanding[k].tickets)
          if (!store_.done(t)) dropped(t);
      send_control(w, tag::cancel, table_.messages_sent(w));
    }
  }

  /// Tasks sent to a worker and not yet filed, on every live worker.
  bool answers_pending() const {
    return table_.any_holding([&](int w) { return !is_lost(w); });
  }

  /// Ends the run on every live worker once every task sent was answered: completes the sends,
  /// takes a lost worker's late reply if one came, sends end_run. What is still being received
  /// (a lost worker's late reply, the body of a value that could not be decoded) is first taken
  /// to its end, each transfer within its deadline.
  void end() {
    settle_transfers();
    for (int w = 1; w < size_; ++w) {
      for (auto& slot : slots_[static_cast<std::size_t>(w)]) {
        if (slot.idle()) continue;
        if (is_lost(w))
          pool_.abandoned.push_back(std::move(slot)); // may never complete: keep its buffer alive
        else
          slot.wait(); // answered, hence matched (bodies included: a worker takes them first): completes
      }
    }
    // Live workers have answered everything: only a lost worker's late reply can still come.
    ending_ = true;
    for (int w = 1; w < size_; ++w)
      if (inbox_.withdraw(w) && !is_progress_note(inbox_.message(w))) take_message(w, clock::now());
    settle_transfers();
    keep_incomplete_controls();
    ended_ = true;
    broadcast_control(comm_, pool_, tag::end_run, run_);
  }

  /// For an exception that left the loop: ends the run on every live worker before it reaches the
  /// caller, so that none serves this run forever. Sends end_run (it arrives behind the chunks a
  /// worker holds, which it still answers), takes and drops their answers, so that no worker
  /// waits for the master to receive one (transfers in progress included: what they bring is
  /// dropped), for at most max(task timeout, 2 s); then withdraws the receives still posted and
  /// keeps the buffers of sends that did not complete alive in the pool.
  void end_early() noexcept {
    try {
      dropping_ = true; // nothing more is filed, nothing more sent
      if (!ended_) {
        ended_ = true;
        broadcast_control(comm_, pool_, tag::end_run, run_);
      }
      const auto deadline = clock::now() + std::max<clock::duration>(timeout_, std::chrono::seconds(2));
      for (int w = 1; w < size_; ++w)
        if (!parked_[static_cast<std::size_t>(w)]) inbox_.post(w); // a parked reply is taken after its transfer
      drive([&] { return !(answers_pending() || reader_.any()) || clock::now() >= deadline; },
            [&] {
              bool moved = poll_results();
              if (reader_.any()) {
                moved = poll_transfers() || moved;
                check_transfers(clock::now());
              }
              return moved;
            });
      reader_.withdraw_all();
      for (int w = 1; w < size_; ++w) {
        if (!is_lost(w)) keep_bodies(w, true); // (a lost worker's were kept when it was lost)
        for (auto& slot : slots_[static_cast<std::size_t>(w)])
          if (!slot.idle() && !slot.test()) pool_.abandoned.push_back(std::move(slot));
      }
      keep_incomplete_controls();
    } catch (...) {
      // Best effort: the exception that ended the run is the one to report.
    }
  }

  master_loop(const master_loop&) = delete;
  master_loop& operator=(const master_loop&) = delete;
  /// A run that ended early (an exception) leaves no receive posted into the pool's buffers, nor
  /// into the task store's.
  ~master_loop() {
    reader_.withdraw_all(); // first: its receives write into the inbox's and the store's memory
    inbox_.withdraw_all();
    inbox_.release_large();
    if (shared_) shared_->release(pool_);
    // Out of this run only: the next one sends them tasks again (but a dead one).
    for (int w : losses_.set_up_failures())
      if (!pool_.exited(w)) pool_.readmit(w);
  }

private:
  // A result whose body is on its way, kept by the reply reader until the body has arrived: its
  // task, and, where the store's own element may go meanwhile (a job's), the value the body goes
  // into (await_body()).
  struct awaited {
    ticket t = 0;
    double seconds = 0.0;
    Result value{};
  };
  using reader_type = reply_reader<awaited>;

  static reply_inbox& replies_of(pool_state& pool, MPI_Comm comm) {
    if (!pool.replies)
      pool.replies =
          std::make_unique<reply_inbox>(comm, static_cast<int>(pool.lost.size()), static_cast<int>(tag::results));
    return *pool.replies;
  }

  bool is_lost(int w) const { return pool_.lost[static_cast<std::size_t>(w)] != 0; }

  // Ticket t as messages name it (pool_state::shown_task).
  std::size_t shown_name(ticket t) const { return static_cast<std::size_t>(pool_.shown_task(store_.name(t))); }

  // Sends worker w a control message of this run (header, u64 value) without waiting; the send
  // is completed by the next one, or kept alive in the pool at the end (keep_incomplete_controls()).
  void send_control(int w, tag t, std::uint64_t value) {
    send_slot& slot = controls_[static_cast<std::size_t>(w)];
    if (!slot.idle()) slot.wait(); // a control message is tiny: sent eagerly, complete already
    encoder out(slot.bytes, 0);
    out.put(header{pool_.id, run_});
    out.put(value);
    out.finish();
    slot.peer = w;
    try {
      slot.request = post_send(slot.bytes, w, t, comm_);
    } catch (const mpi_error& e) {
      if (!lose_peer(e)) throw;
    }
  }
  void keep_incomplete_controls() {
    for (auto& slot : controls_)
      if (!slot.idle() && !slot.test()) pool_.abandoned.push_back(std::move(slot));
  }

  // A send slot of w's whose sends have completed (the chunk it carried, if still unanswered,
  // counts as delivered at `now`), or null.
  send_slot* free_slot(int w, clock::time_point now) {
    auto& slots = slots_[static_cast<std::size_t>(w)];
    for (std::size_t k = 0; k < slots.size(); ++k) {
      if (!slots[k].idle() && !slots[k].test()) continue;
      table_.delivered(w, k, now);
      return &slots[k];
    }
    return nullptr;
  }

  // For the sends to w that are not over and read tasks' bodies from the tasks themselves, before
  // the master stops waiting for them (w lost, its tasks cancelled, the run ended by an
  // exception): a task that the store owns and may free meanwhile (a job's: when its result is
  // handed out, when cancelled, with the job) moves into the send's slot, kept with it until the
  // sends are over (send_slot::kept, also after the pool: outliving_sends.hpp), and `copy_back`
  // leaves a copy in the store, to be sent again from. Tasks answered already are left alone: the
  // worker has received their bodies. Returns whether such a send reads bodies from tasks the
  // store does not own (run()'s, the caller's vector: docs/reliability.md, "Lost while
  // receiving"). Only a chunk still outstanding is looked at: one answered was received whole.
  bool keep_bodies(int w, bool copy_back) {
    bool callers = false;
    auto& slots = slots_[static_cast<std::size_t>(w)];
    const chunk_ring& outstanding = table_.outstanding(w);
    for (std::size_t k = 0; k < outstanding.size(); ++k)
      callers = keep_chunk_bodies(slots[outstanding[k].slot], outstanding[k].tickets, copy_back) || callers;
    return callers;
  }
  // keep_bodies() for the tickets of one chunk, sent from `slot`.
  bool keep_chunk_bodies(send_slot& slot, const std::vector<ticket>& tickets, bool copy_back) {
    bool callers = false;
    if constexpr (body_traits<Task>::capable) {
      if (slot.bodies.empty() || slot.over()) return false;
      for (ticket t : tickets) {
        if (store_.done(t)) continue;
        if constexpr (Store::owns_tasks) {
          Task* task = store_.owned_task(t);
          if (task == nullptr || !travels_as_body(*task)) continue;
          auto kept = std::make_shared<Task>(std::move(*task)); // the buffer moves, where MPI reads it
          if (copy_back) *task = *kept;
          slot.kept.push_back(std::move(kept));
        } else {
          callers = callers || travels_as_body(store_.task(t));
        }
      }
    }
    return callers;
  }

  // check_timeouts(): tests the sends to w that the worker table counts as in transit, and tells
  // it those that have completed (at `now`). A send MPI failed names its worker in unreachable_,
  // lost after the table's pass.
  void test_deliveries(int w, clock::time_point now) {
    if (table_.ahead_in_transit(w) && shared_->delivered(w)) table_.ahead_delivered(w, now);
    if (!table_.front_in_transit(w)) return;
    const std::size_t k = table_.outstanding(w).front().slot;
    send_slot& slot = slots_[static_cast<std::size_t>(w)][k];
    try {
      if (slot.idle() || slot.test()) table_.delivered(w, k, now);
    } catch (const mpi_error& e) {
      table_.delivered(w, k, now); // over, if not delivered
      unreachable_.emplace_back(w, e.what());
    }
  }

  // How often the workers' processes are checked (where they are watched, liveness.hpp).
  static constexpr std::chrono::milliseconds process_check_interval{100};

  // The slowest rate, in bytes per second, at which a piece of a live worker's transfer still
  // counts as coming (live_deadline()): on top of the task timeout, a piece is allowed its size at
  // this rate (1 s per MiB: 256 s for a piece of 256 MiB). A piece moves in one MPI message, so
  // the master sees nothing of it until it has arrived whole; many workers may send to the master
  // at once over one link (Gigabit Ethernet shared by 100 transfers gives each more than this).
  // Too slow a floor only delays noticing a worker that dies mid-transfer where its process
  // cannot be watched (another host: a watched one is noticed at once); too fast a one would lose,
  // for good, a live worker that a busy network slows down.
  static constexpr double transfer_rate_floor = double(std::size_t{1} << 20);

  // What a piece being dropped (a lost worker's late reply, a stale one) is given to come: it may
  // never come, and the wait for it delays nothing but end() (as before: a second a piece).
  static constexpr std::chrono::seconds drop_quiet{1};

  // Task t goes into a chunk for a worker: counts its attempt, and notes it for
  // announce_resent() if a lost worker had held it.
  FOREMAN_DETAIL_INLINE void count_attempt(ticket t, typename Store::item it) {
    if (store_.count_attempt(it)) resending_.push_back(t);
  }

  // The chunk just sent to worker w, its tasks counted (count_attempt()): announces in one line
  // those a lost worker had held (every one of them, with the attempt of those it had started).
  void announce_resent(int w) {
    if (resending_.empty()) return;
    if (opt_.announce_faults) announce_resent_line(w);
    resending_.clear();
  }
  FOREMAN_DETAIL_COLD void announce_resent_line(int w) {
    std::vector<std::pair<std::size_t, unsigned>> resent;
    resent.reserve(resending_.size());
    for (ticket t : resending_) resent.emplace_back(shown_name(t), store_.record(t).attempts);
    announce(losses_.resent(pool_.peer(w), resent));
  }

  // Sends worker w chunks until it holds as many as the scheduler allows or no work is left.
  // `now`: the time the chunks count as sent, for the task timeout.
  void refill(int w, clock::time_point now) {
    if (is_lost(w) || dropping_ || (shared_ && !shared_->sendable())) return;
    const std::size_t limit = scheduler_.message_limit(w, pool_.live_workers());
    chunk_ring& outstanding = table_.outstanding(w);
    while (outstanding.size() < limit && scheduler_.has_work(w)) {
      send_slot* slot = free_slot(w, now);
      if (slot == nullptr) {
        // Its previous message is still being sent (a large one, or its bodies, completes only
        // after the worker took it): try again from the loop, since no reply may come to do it.
        if (std::find(starved_.begin(), starved_.end(), w) == starved_.end()) starved_.push_back(w);
        return;
      }
      chunk& sent = table_.sent(w, now); // size() < limit <= in_flight_limit
      sent.slot = static_cast<std::size_t>(slot - slots_[static_cast<std::size_t>(w)].data());
      const std::size_t size = scheduler_.chunk_size(w, pool_.live_workers());
      resending_.clear();                         // not a chunk's whose sending failed
      if (chunks_.prepared_is_next(scheduler_)) { // implies size == fixed_chunk: only fixed-size chunks are prepared
        // Encoded ahead (chunk_encoder::prepare()): sent first, its tickets taken after (none
        // when MPI refuses the send: they stay with the scheduler).
        const std::size_t count = chunks_.take_prepared(slot->bytes);
        post_message(*slot, w, tag::tasks, comm_);
        sent.bytes = slot->bytes.size();
        sent.in_transit = true;
        for (std::size_t k = 0; k < count; ++k) {
          sent.tickets.push_back(scheduler_.take(w));
          count_attempt(sent.tickets.back(), store_.item_of(sent.tickets.back()));
        }
      } else {
        // Each task's attempt is counted as it goes in (the store finds it once for both).
        chunks_.encode(
            slot->bytes, size, scheduler_.fixed_chunk() == 0,
            [&](ticket& t) {
              if (!scheduler_.take_next(w, t)) return false;
              sent.tickets.push_back(t);
              return true;
            },
            [&](ticket t, typename Store::item it) { count_attempt(t, it); });
        try {
          post_message(*slot, w, tag::tasks, comm_);
          sent.bytes = slot->bytes.size();
          sent.in_transit = true;
          for (const body_span& body : chunks_.bodies()) {
            post_body(body, w, tag::task_body, comm_, *slot); // from the task itself
            sent.bytes += body.bytes;
          }
        } catch (const mpi_error&) {
          unsend(sent, *slot);
          throw; // w is lost (lose_peer())
        }
      }
      announce_resent(w);
      ++info_.messages;
    }
    // Holds nothing: gets work as soon as some comes (work_added()).
    if (outstanding.empty() && !idle_flag_[static_cast<std::size_t>(w)]) {
      idle_flag_[static_cast<std::size_t>(w)] = 1;
      idle_.push_back(w);
    }
  }

  // refill(w); when MPI refuses a send to w, w is lost instead (and lose() refills the others).
  void refill_or_lose(int w, clock::time_point now) {
    try {
      refill(w, now);
    } catch (const mpi_error& e) {
      if (!lose_peer(e)) throw;
    }
  }

  // The chunk whose message or bodies MPI refused to send (refill()): the worker cannot have
  // started any of its tasks (it takes a chunk's bodies before running it), so they go back to
  // the scheduler with their attempts uncounted, and those a lost worker had held are still to be
  // announced when sent again. Otherwise, once its worker is lost, the chunk would count as the
  // one it was running: an attempt charged for a task never sent, and with max_attempts 1 a
  // failure (foreman::worker_lost) of a task no worker ran. Where its message went out and a
  // body failed, the bodies posted before still read from their tasks: kept as keep_bodies()
  // keeps them (lose() warns of the caller's).
  FOREMAN_DETAIL_COLD void unsend(chunk& c, send_slot& slot) {
    unsent_callers_ = keep_chunk_bodies(slot, c.tickets, true) || unsent_callers_;
    for (ticket t : c.tickets) {
      --store_.record(t).attempts;
      scheduler_.requeue(t);
    }
    for (ticket t : resending_) store_.mark_resent(t);
    resending_.clear();
    c.tickets.clear();
  }

  // Refills the workers whose send slots were all busy when they were last refilled.
  // Returns whether any of them got a message.
  bool retry_starved() {
    retrying_.swap(starved_);
    starved_.clear();
    const auto now = clock::now();
    const std::size_t sent = info_.messages;
    for (int w : retrying_) refill_or_lose(w, now);
    return info_.messages != sent;
  }

  // Files the replies that have arrived, replies_per_pass_ (max(16, workers)) at most, so that a
  // pass ends, and liveness is checked, however fast replies pour in; returns whether there was any.
  // A reply whose bodies (or whose envelope's message) follow it starts its worker's transfer,
  // which poll_transfers() moves on; the reply is complete, and its worker refilled, when
  // everything has arrived.
  bool poll_results() {
    bool any = false;
#ifdef FOREMAN_DETAIL_TEST_HOOKS
    if (injected_failure_in_transfer() > 0 && reader_.any() && !reader_.active(injected_failure_in_transfer()))
      injected_receive_failure() = std::exchange(injected_failure_in_transfer(), -1);
#endif
    for (int taken = 0; taken < replies_per_pass_; ++taken) {
      const int worker = inbox_.poll();
      if (worker < 0) return any;
      any = true;
      decoder in = inbox_.message(worker);
      std::uint32_t count = 0;
      if (is_progress_note(in)) {
        heard_from(worker, in);
      } else if (reader_.active(worker)) {
        // Its previous reply is still arriving: this one waits in the inbox, its receive not
        // posted again, and is taken once that one is complete (after_transfer()).
        parked_[static_cast<std::size_t>(worker)] = 1;
        continue;
      } else if (!dropping_ && plain_reply(worker, in, count)) {
        // The common case: the worker's next tasks leave first, and the reply is filed while
        // they travel. One clock reading serves the reply and the chunks sent back.
        table_.answered(worker);
        chunk_ring& outstanding = table_.outstanding(worker);
        const std::size_t held = outstanding.size();
        std::optional<mpi_error> refused; // MPI refused to send it more: lost once its reply is filed
        try {
          refill(worker, clock::time_point{});
        } catch (const mpi_error& e) {
          refused.emplace(e);
        }
        const auto arrival = clock::now();
        for (std::size_t k = held; k < outstanding.size(); ++k) outstanding[k].sent = arrival;
        table_.heard_from(worker, arrival);
        bodies_of reply{*this, worker, arrival};
        filer_.read_items(worker, arrival, in, count, reply);
        // Completes the sends just posted where that is already possible, so that the next
        // refill finds a free slot without testing it (their chunks delivered).
        auto& slots = slots_[static_cast<std::size_t>(worker)];
        for (std::size_t k = 0; k < slots.size(); ++k)
          if (!slots[k].idle() && slots[k].test()) table_.delivered(worker, k, arrival);
        if (refused && !lose_peer(*refused)) throw *refused;
      } else {
        take_message(worker, clock::now());
      }
      // Only now: the worker's next reply cannot come before the tasks just sent, and the next
      // task leaves sooner. (A reply already on its way is matched from MPI's queue instead.)
      // A worker whose transfer has begun gets it too: its progress notes keep that transfer
      // alive, and its next reply waits, parked, for it.
      inbox_.post(worker);
    }
    return any;
  }

  // Whether the reply that arrived from `worker`, `in`, answers this run, from a live worker, in
  // one message without bodies: then nothing in it can make the master declare the worker lost.
  // If so, `in` is left at its first item and `count` holds how many it has.
  bool plain_reply(int worker, decoder& in, std::uint32_t& count) const {
    if (is_lost(worker) || inbox_.announced(worker) > 0) return false;
    const auto stamp = in.get<header>();
    count = in.get<std::uint32_t>();
    return stamp.pool == pool_.id && stamp.run == run_ && count != damaged_marker && count != setup_failed_marker &&
           in.get<std::uint32_t>() == 0;
  }

  // A progress note from `worker`: it is alive, busy with a long chunk (wire.hpp), which also
  // keeps a transfer of its alive (its sends move on when it makes MPI calls, between its tasks).
  void heard_from(int worker, decoder note) {
    const auto stamp = note.get<header>();
    if (stamp.pool != pool_.id || stamp.run != run_ || is_lost(worker)) return;
    const auto now = clock::now();
    table_.heard_from(worker, now);
    reader_.heard_from(worker, now);
  }

  // The deadlines of transfers (reply_reader.hpp; docs/reliability.md). A live worker's transfer:
  // the piece awaited is allowed what the worker itself is (the task timeout + progress_interval:
  // it makes MPI calls, which move its sends on, at least between two tasks, and sends a
  // progress note then), plus its size at transfer_rate_floor; no deadline without a task
  // timeout, as for everything else a live worker does. What is dropped (a lost worker's late
  // reply, a stale one): drop_quiet per piece, as it may never come.
  transfer_deadline live_deadline() const {
    if (timeout_.count() == 0) return {};
    return transfer_deadline{
        timeout_ + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(progress_interval)),
        transfer_rate_floor};
  }
  static transfer_deadline drop_deadline() {
    return transfer_deadline{drop_quiet, 0.0};
  }
  transfer_deadline deadline_of(int worker) const {
    return is_lost(worker) || dropping_ ? drop_deadline() : live_deadline();
  }

  // Takes the reply (not a progress note) that arrived from `worker` at `arrival`: reads it now, or
  // begins the receive of the message its envelope announced (read when it has arrived).
  void take_message(int worker, clock::time_point arrival) {
    if (inbox_.announced(worker) > 0) {
      const body_span into = inbox_.large_buffer(worker);
      large_[static_cast<std::size_t>(worker)] = into;
      reader_.open(worker, arrival, deadline_of(worker));
      reader_.expect_message(worker, into);
      return;
    }
    read_reply(worker, inbox_.message(worker), arrival);
  }

  // Reads a reply from `worker` (`in` at its start) that arrived at `arrival`: files what it
  // holds whole, queues the receive of its bodies (filed as each arrives), and, if nothing
  // follows it, completes it. One from an earlier pool or run (stale), or a lost worker's late
  // answer (its tasks were handed on already), is dropped with its bodies, as is every reply
  // once the run ended early (end_early()).
  void read_reply(int worker, decoder in, clock::time_point arrival) {
    const auto stamp = in.get<header>();
    const auto count = in.get<std::uint32_t>();
    const auto bodies = in.get<std::uint32_t>();
    const bool current = stamp.pool == pool_.id && stamp.run == run_ && !is_lost(worker);
    counts_[static_cast<std::size_t>(worker)] = current ? 1 : 0; // it answers the worker's oldest chunk
    if (bodies > 0) reader_.open(worker, arrival, current ? deadline_of(worker) : drop_deadline());
    if (!current || dropping_) {
      reader_.expect_drop(worker, bodies);
    } else {
      table_.heard_from(worker, arrival);
      if (count == damaged_marker)
        file_damaged(worker, arrival, in);
      else if (count == setup_failed_marker)
        set_up_failed(worker, arrival, in); // it is lost: reply_done() retires nothing
      else {
        bodies_of reply{*this, worker, arrival};
        filer_.read_items(worker, arrival, in, count, reply);
      }
    }
    if (!reader_.active(worker)) reply_done(worker, arrival);
  }

  // The worker could not set up for this run (its initializer threw, or the shared value could
  // not be received: shared_value.hpp): it runs none of this run's tasks, and those it was sent
  // go to the others. Out of this run only (see ~master_loop()).
  void set_up_failed(int worker, clock::time_point arrival, decoder& in) {
    const auto type = in.get<std::string>();
    const auto message = in.get<std::string>();
    losses_.set_up_failed(worker, pool_.peer(worker), type, message);
    table_.heard_from(worker, arrival); // it answered: its silence is not what it is reported for
    lose(worker, loss_reason::initializer_failed, arrival);
  }

  // A reply and everything that followed it have arrived, or were dropped: a live worker's answer
  // to this run retires its oldest chunk (a worker answers its chunks in order), and the worker
  // gets more; a reply that waited for this one is taken now.
  void reply_done(int worker, clock::time_point now) {
    char& counts = counts_[static_cast<std::size_t>(worker)];
    if (counts && !is_lost(worker)) table_.answered(worker);
    counts = 0;
    refill_or_lose(worker, now);
    after_transfer(worker, now);
  }

  // Worker w's transfer has ended (complete, or withdrawn): the reply that arrived meanwhile and
  // waits in the inbox is taken, and w's next receive is posted.
  void after_transfer(int w, clock::time_point now) {
    char& parked = parked_[static_cast<std::size_t>(w)];
    if (!parked) return;
    parked = 0;
    take_message(w, now);
    if (!ending_) inbox_.post(w);
  }

  // Moves every transfer in progress on, by a piece each at most, and files what has arrived:
  // an envelope's message is read, a body's item filed, a reply whose last body came completed.
  // Returns whether any piece arrived.
  bool poll_transfers() {
    const auto now = clock::now();
    bool any = false;
    reader_.begin_pass();
    typename reader_type::arrival what{};
    for (int w; (w = reader_.poll(now, what)) >= 0;) {
      any = true;
      if (!is_lost(w)) table_.heard_from(w, now); // a piece is a sign of life
      if (what == reader_type::arrival::message) {
        const body_span& message = large_[static_cast<std::size_t>(w)];
        read_reply(w, decoder(static_cast<const char*>(message.data), message.bytes), now);
        continue; // it completed the reply if nothing else follows
      }
      if (what == reader_type::arrival::body && !dropping_) {
        awaited& a = reader_.item(w);
        filer_.file_body(a.t, w, a.seconds, a.value, now);
      }
      if (!reader_.active(w)) reply_done(w, now);
    }
    return any || reader_.pieces_arrived();
  }

  // The worker could not read the message of its oldest chunk: its framing was broken (wire.hpp);
  // every task the master sent in it fails (result_filer::file_damaged()). The worker goes on with
  // its next chunk.
  void file_damaged(int worker, clock::time_point arrival, decoder& in) {
    std::string why;
    in.get(why);
    table_.heard_from(worker, arrival);
    const chunk_ring& outstanding = table_.outstanding(worker);
    if (!outstanding.empty()) filer_.file_damaged(worker, arrival, outstanding[0].tickets, why);
  }

  // Where the result_filer sends the bodies a reply from `worker` announces: into the reply
  // reader, which receives them (a result's, filed by file_body() when it has come) or drops them.
  struct bodies_of {
    master_loop& loop;
    int worker;
    clock::time_point arrival;
    void await(ticket t, double seconds, Result& into, const body_span& body) {
      open();
      loop.await_body(worker, t, seconds, into, body);
    }
    void drop(std::size_t bytes) {
      open();
      loop.reader_.expect_drop(worker, pieces_of(bytes), bytes);
    }
    void open() {
      if (!loop.reader_.active(worker)) loop.reader_.open(worker, arrival, loop.live_deadline());
    }
  };

  // Queues the receive of task t's result body, which get_item() sized `into` for (`body`). run()'s
  // results stay where they are for the whole run: the body goes straight into the caller's
  // element. A job's entry may be erased while the body arrives (job::cancel()): the value, its
  // storage with it, waits in the transfer, and goes into the entry when it has arrived, if the
  // entry is still there (tests/reply_reader_test.cpp cancels a job while 8 MiB arrive).
  void await_body(int worker, ticket t, double seconds, Result& into, const body_span& body) {
    if constexpr (Store::results_stay_put) {
      reader_.expect_body(worker, awaited{t, seconds, Result{}}, [&](awaited&) { return body; });
    } else if constexpr (body_traits<Result>::capable) {
      reader_.expect_body(worker, awaited{t, seconds, std::move(into)}, [&](awaited& a) {
        return body_span{static_cast<void*>(&a.value[0]), body.bytes};
      });
    }
  }

  // Transfers whose piece awaited is late (reply_reader::overdue()): a live worker's answer makes
  // it lost; what was being dropped (a lost worker's, a stale reply's, after an early end) is
  // given up. Either way what waited behind it is taken.
  void check_transfers(clock::time_point now) {
    late_ = reader_.overdue(now);
    for (const int w : late_) {
      if (!reader_.active(w)) continue;
      if (is_lost(w) || dropping_ || !counts_[static_cast<std::size_t>(w)]) {
        reader_.withdraw(w);
        reply_done(w, now);
        continue;
      }
      const double quiet = std::chrono::duration<double>(now - reader_.last_progress(w)).count();
      const double allowed = std::chrono::duration<double>(reader_.allowance(w)).count();
      table_.heard_from(w, reader_.last_progress(w));
      lose(w, loss_reason::silent, now, losses_.transfer_stopped(quiet, allowed));
    }
  }

  // At most every millisecond the transfers' deadlines and the task timeouts, at most every
  // process_check_interval the watched processes.
  void check_liveness(clock::time_point now) {
    if (now - last_check_ < std::chrono::milliseconds(1)) return;
    last_check_ = now;
    if (reader_.any()) check_transfers(now);
    if (timeout_.count() > 0) check_timeouts(now);
    if (pool_.watching && now - last_watch_ >= process_check_interval) {
      last_watch_ = now;
      check_processes(now);
    }
  }

  // Runs the transfers still in progress to their ends, with liveness checked meanwhile: each is
  // bounded by its deadline (a live worker's by the task timeout and its size; none without a
  // task timeout, as every wait for a live worker then), what is dropped by drop_quiet a piece.
  void settle_transfers() {
    drive([&] { return !reader_.any(); },
          [&] {
            const bool moved = poll_transfers();
            check_liveness(clock::now());
            return moved;
          });
  }

  // Runs `pass` (true: it moved something) until `done()`, waiting as the loop waits between
  // passes that moved nothing; a worker an MPI failure names is lost (lose_peer()). On a
  // sub-master, whose group job waits here (its transfers' ends; after an exception, up to
  // max(task timeout, 2 s) for its workers' last answers), each pass sends the master a progress
  // note when one is due (keep_alive.hpp): that wait is not the sub-master's silence.
  template <class Done, class Pass>
  void drive(Done&& done, Pass&& pass) {
    idle_backoff idle = waiting_;
    while (!done()) {
      keep_alive();
      bool moved = true;
      try {
        moved = pass();
      } catch (const mpi_error& e) {
        if (!lose_peer(e)) throw;
      }
      if (moved)
        idle.reset();
      else
        idle.pause();
    }
  }

  // A worker holding tasks is lost when nothing was heard from it for the task timeout: it sends
  // a progress note between the tasks of a chunk (and between the pieces of a long transfer) when
  // its last message is progress_interval old, so however large its chunk, a task that takes at
  // most task_timeout never makes it lost. If it was idle, its silence counts from the arrival of
  // what it must receive first (the chunk's message and bodies, the run's shared value before its
  // first chunk) over a link at transfer_rate_floor, as a reply's transfer is allowed (or from
  // when those sends were seen complete, if later): it receives a message whole before it can run
  // a task or send a note. A worker whose reply is being transferred is judged by the transfer's
  // deadline instead (check_transfers()).
  void check_timeouts(clock::time_point now) {
    silent_.clear();
    unreachable_.clear();
    table_.for_each_silent(
        now, silence_allowed(), [&](int w) { test_deliveries(w, now); },
        [&](int w) { return is_lost(w) || reader_.active(w); }, [&](int w) { silent_.push_back(w); });
    for (auto& [w, why] : unreachable_) lose(w, loss_reason::mpi_error, now, std::move(why));
    for (int w : silent_) lose(w, loss_reason::silent, now);
  }
  clock::duration silence_allowed() const {
    return timeout_ + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(progress_interval));
  }

  // The worker an MPI failure names as its peer is lost; false when it names none (or the master).
  bool lose_peer(const mpi_error& e) {
    const int w = e.peer();
    if (w < 1 || w >= size_) return false;
    if (!is_lost(w)) {
      lose(w, loss_reason::mpi_error, clock::now(), e.what());
    } else if (!reader_.active(w)) {
      after_transfer(w, clock::now()); // its late reply's transfer failed: what waited behind it is taken
    }
    return true;
  }

  // Workers whose process has ended are lost at once, whether they hold tasks or not, also in the
  // middle of a transfer.
  void check_processes(clock::time_point now) {
    for (int w = 1; w < size_; ++w)
      if (!is_lost(w) && pool_.exited(w)) lose(w, loss_reason::process_exited, now);
  }

  // Declares worker w lost: it is sent nothing more and its unanswered tasks go elsewhere.
  // `detail`: loss_facts::detail (MPI's failure; a transfer's deadline, when it made w silent).
  void lose(int w, loss_reason reason, clock::time_point now, std::string detail = std::string()) {
    if (is_lost(w)) return; // e.g. a send to it failed while the master was receiving from it
    // Its transfer in progress ends: the receives into its results' places are withdrawn (those
    // tasks are not done: they go elsewhere below). Where its process may still be sending, what
    // it sends is still taken, and dropped, so that its sends complete and it can follow the
    // pool's next run (within drop_quiet a piece).
    if (reader_.active(w)) {
      if (pool_.exited(w))
        reader_.withdraw(w);
      else
        reader_.drop_rest(w, now, drop_deadline());
    }
    counts_[static_cast<std::size_t>(w)] = 0;
    pool_.mark_lost(w);
    const std::string line = losses_.lost(facts_of_loss(w, reason, now, std::move(detail)));
    if (opt_.announce_faults) announce(line);
    const bool callers_tasks = keep_bodies(w, true) || std::exchange(unsent_callers_, false); // before take_back()
    if (opt_.announce_faults && !pool_.exited(w)) {
      const bool value = shared_ && shared_->reads_callers_memory() && !shared_->delivered(w);
      const std::string warning = loss_ledger::unfinished_sends(pool_.peer(w), callers_tasks, value);
      if (!warning.empty()) announce(warning);
    }
    // A worker runs its chunks in order, so only the oldest unanswered one can have started:
    // the tasks queued behind it are not charged an attempt (nor any, if it could not set up).
    const bool set_up = reason == loss_reason::initializer_failed;
    table_.take_back(w, [&](ticket t, bool oldest) {
      if (store_.done(t)) return;
      auto& record = store_.record(t);
      switch (losses_.fate(oldest, set_up, record.attempts)) {
      case held_fate::requeued:
        --record.attempts;
        [[fallthrough]];
      case held_fate::retried:
        scheduler_.requeue(t);
        store_.mark_resent(t);
        break;
      case held_fate::failed:
        filer_.fail(t, w, losses_.last_attempt_lost(pool_.peer(w)));
        break;
      }
    });
    scheduler_.lose(w);
    if (!reader_.active(w)) after_transfer(w, now); // a reply that waited for it: a late one now
    for (int other = 1; other < size_; ++other) refill_or_lose(other, now);
  }

  // What the master knows of worker w as it loses it, at `now` (loss_ledger::lost()).
  loss_facts facts_of_loss(int w, loss_reason reason, clock::time_point now, std::string detail) const {
    loss_facts f;
    f.worker = w;
    f.peer = pool_.peer(w);
    f.reason = reason;
    f.noticed = std::chrono::duration<double>(now - start_).count();
    f.silent = std::chrono::duration<double>(now - table_.last_sign_of_life(w)).count();
    const chunk_ring& outstanding = table_.outstanding(w);
    for (std::size_t k = 0; k < outstanding.size(); ++k)
      for (ticket t : outstanding[k].tickets)
        if (!store_.done(t)) f.held.push_back(shown_name(t));
    f.pid = pid_of(w);
    f.detail = std::move(detail);
    // Silent from the arrival at transfer_rate_floor of what it was sent (not from a sign of
    // life): said so, that a slow link is recognized as such.
    f.awaited = table_.holds_tasks(w) && table_.arrival(w) > table_.last_sign_of_life(w);
    f.awaited_for = std::chrono::duration<double>(now - table_.arrival(w)).count();
    f.awaited_bytes = table_.awaited_bytes(w);
    f.delivered = table_.in_transit(w) == 0;
    return f;
  }

  std::uint64_t pid_of(int w) const {
    return static_cast<std::size_t>(w) < pool_.pids.size() ? pool_.pids[static_cast<std::size_t>(w)] : 0;
  }

  // No worker can run a task in this run: none is left, or the shared value cannot be sent.
  bool no_worker_left() const {
    return pool_.live_workers() == 0 || (shared_ && !shared_->sendable());
  }

  // Every ticket still waiting to be sent fails (no_worker_left()): as foreman::worker_lost, or,
  // when the last worker left because it could not set up, as foreman::initializer_error.
  void fail_unsent() {
    if (scheduler_.unsent() == 0) return;
    failure_text why = losses_.no_worker_left();
    if (shared_ && !shared_->sendable()) why = failure_text{shared_->why_unsendable(), serialization_error_type};
    scheduler_.drop_unsent([&](ticket t) {
      if (!store_.done(t))
        filer_.fail(t, store_.record(t).worker < 0 ? 0 : store_.record(t).worker, why.message, why.type);
    });
  }

  // Sends every live worker the run's shared value, which it takes before any task (MPI's order).
  // A worker MPI cannot reach is lost once all were sent it: losing one sends the others tasks.
  void post_shared() {
    std::vector<mpi_error> unreachable;
    for (int w = 1; w < size_; ++w) {
      if (is_lost(w)) continue;
      try {
        shared_->post(w, comm_);
      } catch (const mpi_error& e) {
        unreachable.push_back(e);
      }
    }
    for (const mpi_error& e : unreachable)
      if (!lose_peer(e)) throw e;
  }

  MPI_Comm comm_;
  std::uint32_t run_;
  const options& opt_;
  pool_state& pool_;
  Store& store_;
  run_info& info_;
  OnDone& on_done_;
  loss_ledger losses_; // the lost workers' record in info_, and the lines announcing them
  clock::duration timeout_;
  idle_backoff waiting_; // how this rank waits (options::wait, FOREMAN_WAIT), read once per run
  reply_inbox& inbox_;   // the workers' replies, received into receives posted ahead (pool.replies)
  int size_;             // ranks in the pool
  int replies_per_pass_; // poll_results(): at most this many replies filed per pass
  scheduler scheduler_;
  chunk_encoder<Store> chunks_;               // tasks messages, and the next one encoded ahead
  result_filer<Result, Store, OnDone> filer_; // each task's outcome into the store
  worker_table table_;
  reader_type reader_;                        // what follows the replies: bodies, envelopes' messages
  std::vector<std::vector<send_slot>> slots_; // per worker: its messages being sent
  std::vector<send_slot> controls_;           // per worker: its last control message (send_control())
  std::vector<body_span> large_;              // per worker: where its envelope's message is received
  std::vector<char> parked_;                  // per worker: its next reply waits for its transfer
  std::vector<char> counts_;                  // per worker: its reply in transfer answers a chunk
  std::vector<int> late_;                     // check_transfers(): transfers past their deadline
  bool dropping_ = false;                     // end_early(): replies are dropped, nothing is sent
  bool ending_ = false;                       // end(): the workers' receives are not posted again

  std::deque<int> idle_;                                 // workers that hold no chunk and wait for work (work_added())
  std::vector<char> idle_flag_;                          // per worker: in idle_
  std::vector<ticket> resending_;                        // count_attempt(): the tickets of a chunk being sent again
  std::vector<int> silent_;                              // check_timeouts(): workers found silent
  std::vector<std::pair<int, std::string>> unreachable_; // and workers a send to which MPI failed
  clock::time_point start_{};                            // when the run began: losses are reported relative to it
  clock::time_point last_check_{};                       // check_liveness(): when timeouts were last checked
  clock::time_point last_watch_{};                       // and the watched processes
  bool watch_ = false;                                   // timeouts or watched processes to check
  unsigned polls_ = 0;
  bool ended_ = false;       // end_run was sent
  bool cancelled_ = false;   // run(): the tasks left were cancelled (options::fail_fast)
  std::vector<int> starved_; // workers refill() could not supply: every send slot was busy
  std::vector<int> retrying_;
  bool unsent_callers_ = false;          // unsend() left sends reading bodies from the caller's tasks (lose() warns)
  std::unique_ptr<shared_sends> shared_; // the run's shared value, if it has one (share())
};

} // namespace detail
} // namespace foreman
