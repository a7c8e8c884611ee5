#pragma once
/// @file master_loop.hpp
/// The master's loop: wires the scheduler (which ticket goes to which worker, scheduler.hpp), the
/// worker table (unanswered chunks, signs of life, worker_table.hpp) and a task store (tasks,
/// results, records, task_store.hpp) to MPI. It keeps every live worker supplied with up to
/// `tasks_in_flight` chunks, files each reply into its task's place, declares a worker lost when
/// its process ends (watched where it can be, liveness.hpp) or when it stays silent past the task
/// timeout, and hands its tasks to the scheduler again. It never blocks on any single worker: all
/// sends and receives are non-blocking, and idle time backs off to sleeping.
///
/// run() drives a whole run to its end; a job drives it pass by pass (start(), step(), end()),
/// adding tickets between passes (work_added()) and cancelling (cancel()).

#include <foreman/detail/announce.hpp>
#include <foreman/detail/idle.hpp>
#include <foreman/detail/liveness.hpp>
#include <foreman/detail/pool_state.hpp>
#include <foreman/detail/scheduler.hpp>
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
#include <cstdio>
#include <deque>
#include <optional>
#include <string>
#include <vector>

namespace foreman {
namespace detail {

/// @tparam Store  dense_store (run()) or job_store (a job); see task_store.hpp
/// @tparam OnDone called as on_done(ticket, time) once a task's result or failure is filed;
///                time: when its message arrived
template <class Task, class Result, class Store, class OnDone>
class master_loop {
public:
  master_loop(MPI_Comm comm, std::uint32_t run, const options& opt, pool_state& pool, Store& store, run_info& info,
              OnDone& on_done)
      : comm_(comm), run_(run), opt_(opt), pool_(pool), store_(store), info_(info), on_done_(on_done),
        max_attempts_(std::max(1u, opt.max_attempts)),
        timeout_(std::chrono::duration_cast<clock::duration>(opt.task_timeout)),
        waiting_(effective_wait_policy(opt.wait), pool.oversubscribed), inbox_(replies_of(pool, comm)),
        size_(static_cast<int>(pool.lost.size())),
        scheduler_({opt.schedule, opt.chunk_size, opt.tasks_in_flight, std::max(1, size_ - 1)}),
        table_(size_, scheduler_.in_flight_limit()), slots_(static_cast<std::size_t>(size_)),
        controls_(static_cast<std::size_t>(size_)), idle_flag_(static_cast<std::size_t>(size_), 0) {
    for (auto& s : slots_) s.resize(scheduler_.in_flight_limit());
    // Tasks a lost worker would have had under round robin go to whoever is free.
    for (int w = 1; w < size_; ++w)
      if (is_lost(w)) scheduler_.lose(w);
  }

  /// The scheduler, for adding tickets (then call work_added()).
  scheduler& tickets() { return scheduler_; }

  /// Runs until every task of the store has a result or a failure, then ends the run on every
  /// live worker. The store's tickets 0 .. store.size() - 1 are added first.
  void run() {
    scheduler_.add_range(0, store_.size());
    start();
    idle_backoff idle = waiting_;
    // After a cancellation the workers' answers to the chunks they held are still taken: each
    // worker skips their tasks, so they come at once.
    while (store_.finished() < store_.size() || (cancelled_ && answers_pending())) {
      if (opt_.fail_fast && failed_ && !cancelled_) {
        cancelled_ = true;
        cancel([&](ticket t) { cancel_task(t); });
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
    watch_ = timeout_.count() > 0 || pool_.watching;
  }

  /// What a pass of the loop did: filed or sent something; only prepared the next chunk (or waits
  /// for a send to complete any moment); nothing (the caller may pause, idle_backoff).
  enum class pass { progressed, busy, idle };

  /// One pass: files the replies that arrived, refills, checks liveness now and then.
  pass step() {
    bool progressed = false, refilled = false;
    try {
      progressed = poll_results();
      refilled = !starved_.empty() && retry_starved();
    } catch (const mpi_error& e) {
      // A failure on one worker's connection makes that worker lost, not the run; any other
      // MPI failure leaves the loop (and the run ends on the workers, see end_early()).
      if (!lose_peer(e)) throw;
      return pass::progressed;
    }
    // The clock is read every 16th poll only: a reading costs as much as a poll. Timeouts are
    // checked at most every millisecond, the workers' processes every process_check_interval
    // (one poll() of a pidfd each): never per message.
    if (watch_ && ++polls_ % 16 == 0) check_liveness(clock::now());
    if (pool_.live_workers() == 0) fail_unsent("no live worker is left to run it");
    if (progressed || refilled) return pass::progressed;
    // A starved worker has answered: its sends complete any moment.
    return !starved_.empty() || prepare() ? pass::busy : pass::idle;
  }

  /// Tickets were added to the scheduler: the workers that hold nothing get them now (the others
  /// get more when they next answer). O(1) when no worker is idle.
  void work_added() {
    if (pool_.live_workers() == 0) {
      fail_unsent("no live worker is left to run it");
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
      try {
        refill(w, now);
      } catch (const mpi_error& e) {
        if (!lose_peer(e)) throw;
      }
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
    prepared_.valid = false;
    for (int w = 1; w < size_; ++w) {
      if (is_lost(w) || !table_.holds_tasks(w)) continue;
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
  /// takes a lost worker's late reply if one came, sends end_run.
  void end() {
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
    for (int w = 1; w < size_; ++w)
      if (inbox_.withdraw(w)) take_reply(w, clock::now());
    keep_incomplete_controls();
    ended_ = true;
    broadcast_control(comm_, pool_, tag::end_run, run_);
  }

  /// For an exception that left the loop: ends the run on every live worker before it reaches the
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
        for (auto& slot : slots_[static_cast<std::size_t>(w)])
          if (!slot.idle() && !slot.test()) pool_.abandoned.push_back(std::move(slot));
      keep_incomplete_controls();
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

  bool is_lost(int w) const { return pool_.lost[static_cast<std::size_t>(w)] != 0; }

  std::vector<std::size_t> names_of(const std::vector<ticket>& ts) const {
    std::vector<std::size_t> out;
    out.reserve(ts.size());
    for (ticket t : ts) out.push_back(static_cast<std::size_t>(store_.name(t)));
    return out;
  }

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

  send_slot* free_slot(int w) {
    for (auto& slot : slots_[static_cast<std::size_t>(w)])
      if (slot.idle() || slot.test()) return &slot;
    return nullptr;
  }

  // How often the workers' processes are checked (where they are watched, liveness.hpp).
  static constexpr std::chrono::milliseconds process_check_interval{100};

  // An automatic chunk's tasks stop once they fill this many bytes (bodies included).
  static constexpr std::size_t max_auto_chunk_bytes = std::size_t{1} << 20;

  // Writes into `bytes` a tasks message of at most `size` tasks, each ticket asked from
  // next(t) (false: no task left); an automatic chunk stops at max_auto_chunk_bytes, as
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
    std::size_t count = 0, body_bytes = 0;
    ticket t = 0;
    while (count < size && next(t)) {
      ++count;
      const std::size_t item_at = out.size();
      const std::uint64_t name = store_.name(t);
      try {
        out.put(name);
        const body_span body = put_item(out, store_.task(t));
        if (body) {
          bodies_.push_back(body);
          body_bytes += body.bytes;
        }
      } catch (...) {
        // Its serialize() threw: the item is taken back, and the worker is sent the task's
        // failure instead, which it answers like any other.
        out.rollback(item_at);
        put_failed_task(out, name, serialization_error_type,
                        serialization_failure("task " + std::to_string(name) + " could not be encoded on the master"));
      }
      if (scheduler_.fixed_chunk() == 0 && out.size() + body_bytes >= max_auto_chunk_bytes) break;
    }
    out.patch(count_at, static_cast<std::uint32_t>(count));
    out.patch(count_at + sizeof(std::uint32_t), body_messages(bodies_));
    out.finish();
    return count;
  }

  // The tasks of a chunk just sent to worker w: counts their attempts, and announces in one line
  // those a lost worker had held (every one of them, with the attempt of those it had started).
  void count_attempts(const std::vector<ticket>& sent, int w) {
    resending_.clear();
    for (ticket t : sent) {
      ++store_.record(t).attempts;
      if (store_.take_resent(t)) resending_.push_back(t);
    }
    if (resending_.empty() || !opt_.announce_faults) return;
    std::string line = std::to_string(resending_.size()) + " task(s) sent again, to worker " + std::to_string(w) +
                       ": " + index_ranges(names_of(resending_));
    // Grouped by attempt: a task queued behind the one a lost worker was running is not charged.
    std::string attempts;
    for (unsigned a = 2; a <= max_attempts_; ++a) {
      std::vector<ticket> at;
      for (ticket t : resending_)
        if (store_.record(t).attempts == a) at.push_back(t);
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
    if (scheduler_.fixed_chunk() == 0 || !scheduler_.fresh_is_next() ||
        (prepared_.valid && prepared_.first == scheduler_.fresh_front()))
      return false;
    prepared_.tickets.clear();
    scheduler_.peek_fresh(scheduler_.fixed_chunk(), prepared_.tickets);
    std::size_t k = 0;
    prepared_.count = encode_chunk(prepared_.bytes, scheduler_.fixed_chunk(), [&](ticket& t) {
      if (k == prepared_.tickets.size()) return false;
      t = prepared_.tickets[k++];
      return true;
    });
    if (!bodies_.empty()) prepared_.count = 0;
    prepared_.first = scheduler_.fresh_front();
    prepared_.valid = true;
    return true;
  }

  // Whether the prepared chunk is the one refill() would build now: it starts at the first
  // unsent ticket and nothing that goes first (taken from a lost worker, a higher priority) waits.
  bool prepared_is_next() const {
    return prepared_.valid && prepared_.count > 0 && scheduler_.fresh_is_next() &&
           prepared_.first == scheduler_.fresh_front();
  }

  // Sends worker w chunks until it holds as many as the scheduler allows or no work is left.
  // `now`: the time the chunks count as sent, for the task timeout.
  void refill(int w, clock::time_point now) {
    if (is_lost(w)) return;
    const std::size_t limit = scheduler_.message_limit(w, pool_.live_workers());
    chunk_ring& outstanding = table_.outstanding(w);
    while (outstanding.size() < limit && scheduler_.has_work(w)) {
      send_slot* slot = free_slot(w);
      if (slot == nullptr) {
        // Its previous message is still being sent (a large one, or its bodies, completes only
        // after the worker took it): try again from the loop, since no reply may come to do it.
        if (std::find(starved_.begin(), starved_.end(), w) == starved_.end()) starved_.push_back(w);
        return;
      }
      chunk& sent = table_.sent(w, now); // size() < limit <= in_flight_limit
      const std::size_t size = scheduler_.chunk_size(w, pool_.live_workers());
      if (prepared_is_next()) { // implies size == fixed_chunk: only fixed-size chunks are prepared
        // Encoded ahead (prepare()): sent first, its tickets taken after.
        slot->bytes.swap(prepared_.bytes);
        post_message(*slot, w, tag::tasks, comm_);
        for (std::size_t k = 0; k < prepared_.count; ++k) sent.tickets.push_back(scheduler_.take(w));
        prepared_.valid = false;
      } else {
        encode_chunk(slot->bytes, size, [&](ticket& t) {
          if (!scheduler_.take_next(w, t)) return false;
          sent.tickets.push_back(t);
          return true;
        });
        post_message(*slot, w, tag::tasks, comm_);
        for (const body_span& body : bodies_) post_body(body, w, tag::task_body, comm_, *slot); // from the task itself
      }
      count_attempts(sent.tickets, w);
      ++info_.messages;
    }
    // Holds nothing: gets work as soon as some comes (work_added()).
    if (outstanding.empty() && !idle_flag_[static_cast<std::size_t>(w)]) {
      idle_flag_[static_cast<std::size_t>(w)] = 1;
      idle_.push_back(w);
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
        table_.answered(worker);
        chunk_ring& outstanding = table_.outstanding(worker);
        const std::size_t held = outstanding.size();
        refill(worker, clock::time_point{});
        const auto arrival = clock::now();
        for (std::size_t k = held; k < outstanding.size(); ++k) outstanding[k].sent = arrival;
        file_items(worker, arrival, in, count);
        // Completes the sends just posted where that is already possible, so that the next
        // refill finds a free slot without testing it.
        for (send_slot& slot : slots_[static_cast<std::size_t>(worker)])
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
      if (stamp.pool == pool_.id && stamp.run == run_) table_.answered(worker);
    } catch (...) {
      // Not a reply this run can read: nothing to retire.
    }
  }

  // A progress note from `worker`: it is alive, busy with a long chunk (wire.hpp).
  void heard_from(int worker, decoder note) {
    const auto stamp = note.get<header>();
    if (stamp.pool == pool_.id && stamp.run == run_ && !is_lost(worker)) table_.heard_from(worker, clock::now());
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
        if (!is_lost(worker)) lose(worker); // it died between the two
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
    table_.answered(worker);
  }

  // The worker could not read the message of its oldest chunk: its framing was broken (wire.hpp).
  // No item of it can be trusted, its task names included, so every task the master sent in it
  // fails, as foreman::serialization_error (a damaged message cannot come from a user's type:
  // from a defect, or corruption). The worker goes on with its next chunk.
  void file_damaged(int worker, clock::time_point arrival, decoder& in) {
    std::string why;
    in.get(why);
    table_.heard_from(worker, arrival);
    const chunk_ring& outstanding = table_.outstanding(worker);
    if (outstanding.empty()) return;
    for (ticket t : outstanding[0].tickets) {
      if (store_.done(t)) continue;
      file_failure(task_failure{static_cast<std::size_t>(t), worker, serialization_error_type,
                                serialization_error("task " + std::to_string(store_.name(t)) +
                                                    " could not be decoded on worker " + std::to_string(worker) +
                                                    ": the tasks message holding it was damaged: " + why)
                                    .what()});
      task_record& record = store_.record(t);
      record.worker = worker;
      record.seconds = 0.0;
      record.failed = true;
      finish(t, arrival);
    }
  }

  // Files the `count` results and failures of a reply from `worker`, `in` being at the first.
  // Returns false if the worker was declared lost on the way (a body did not come).
  bool file_items(int worker, clock::time_point arrival, decoder& in, std::uint32_t count) {
    table_.heard_from(worker, arrival);
    for (std::uint32_t k = 0; k < count; ++k) {
      ticket t = 0;
      const bool kept = store_.lookup(in.get<std::uint64_t>(), worker, t);
      const auto status = in.get<item_status>();
      const auto seconds = in.get<double>();
      const bool duplicate = !kept || store_.done(t);
      bool failed = status != item_status::ok;
      if (!failed) {
        std::optional<Result> ignored;
        Result& into = duplicate ? ignored.emplace() : store_.result(t);
        std::size_t body_bytes = 0;
        std::string why;
        const body_span body = decode_result(in, into, body_bytes, t, why);
        failed = !why.empty();
        // The worker sent the message but not its body: it died in between. The message's
        // chunk is still its oldest outstanding one: its unfiled tasks run again elsewhere.
        if (body && !receive_body(worker, body)) {
          lose(worker);
          return false;
        }
        if (failed && body_bytes > 0 && !drain_bodies(worker, pieces_of(body_bytes), timeout_)) {
          lose(worker);
          return false;
        }
        if (duplicate) continue;
        if (failed) {
          into = Result{}; // not what a failed load left behind
          file_failure(task_failure{static_cast<std::size_t>(t), worker, serialization_error_type, std::move(why)});
        }
      } else {
        task_failure failure;
        failure.index = static_cast<std::size_t>(t);
        failure.worker = worker;
        in.get(failure.type);
        in.get(failure.message);
        if (duplicate) continue;
        file_failure(std::move(failure));
      }
      task_record& record = store_.record(t);
      record.worker = worker;
      record.seconds = seconds;
      scheduler_.observe(seconds);
      record.failed = failed;
      finish(t, arrival);
    }
    return true;
  }

  // Reads a result item into `into`; on a serialization_error, `why` gets the task's failure
  // message and the returned span is empty (`in` is then at the next item, and body_bytes says
  // how many bytes of a body announced for it must be dropped).
  body_span decode_result(decoder& in, Result& into, std::size_t& body_bytes, ticket t, std::string& why) {
    try {
      return get_item(in, into, body_bytes);
    } catch (const serialization_error&) {
      why = serialization_failure("the result of task " + std::to_string(store_.name(t)) +
                                  " could not be decoded on the master");
      return body_span{nullptr, 0};
    }
  }

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
        table_.heard_from(worker, now);
      }
      if (complete) return true;
      if (watched && pool_.exited(worker)) return false;
      check_others(now, worker);
    }
  }

  // The liveness checks of the loop, made while the master receives a transfer from `busy`, whom
  // the transfer judges: the messages other workers sent meanwhile wait in the inbox for the
  // loop, and each counts as a sign of life, as the loop would have counted it.
  void check_others(clock::time_point now, int busy) {
    if (timeout_.count() == 0 && !pool_.watching) return;
    try {
      for (const int w : inbox_.collect())
        if (w != busy) table_.heard_from(w, now);
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

  void file_failure(task_failure f) {
    if (!failed_) first_failed_ = store_.name(f.index);
    failed_ = true;
    store_.fail(std::move(f));
  }

  // options::fail_fast: a task not yet filed when another failed ends as cancelled.
  void cancel_task(ticket t) {
    store_.fail(task_failure{static_cast<std::size_t>(t), 0, cancelled_type,
                             "not run: task " + std::to_string(first_failed_) +
                                 " failed first, and options::fail_fast stops the run at the first failure"});
    store_.record(t).failed = true;
    finish(t, clock::now());
  }

  void finish(ticket t, clock::time_point when) {
    store_.finish(t);
    on_done_(t, when);
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
    silent_.clear();
    table_.for_each_silent(
        now, allowed, [&](int w) { return w == busy || is_lost(w); }, [&](int w) { silent_.push_back(w); });
    for (int w : silent_) lose(w, loss_reason::silent, now);
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
  void lose(int w) { lose(w, pool_.exited(w) ? loss_reason::process_exited : loss_reason::silent, clock::now()); }

  // Declares worker w lost: it is sent nothing more and its unanswered tasks go elsewhere.
  void lose(int w, loss_reason reason, clock::time_point now) {
    if (is_lost(w)) return; // e.g. a send to it failed while the master was receiving from it
    std::vector<ticket> held;
    const chunk_ring& outstanding = table_.outstanding(w);
    for (std::size_t k = 0; k < outstanding.size(); ++k)
      for (ticket t : outstanding[k].tickets)
        if (!store_.done(t)) held.push_back(t);
    const double silent = std::chrono::duration<double>(now - table_.last_sign_of_life(w)).count();
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
    table_.take_back(w, [&](ticket t, bool oldest) {
      if (store_.done(t)) return;
      if (!oldest) {
        --store_.record(t).attempts;
        scheduler_.requeue(t);
        store_.mark_resent(t);
      } else if (store_.record(t).attempts >= max_attempts_) {
        fail(t, w,
             "worker " + std::to_string(w) + " was lost while running this task, the last of " +
                 std::to_string(max_attempts_) + " attempts");
      } else {
        scheduler_.requeue(t);
        store_.mark_resent(t);
        ++info_.retries;
      }
    });
    scheduler_.lose(w);
    for (int other = 1; other < size_; ++other) refill(other, now);
  }

  std::uint64_t pid_of(int w) const {
    return static_cast<std::size_t>(w) < pool_.pids.size() ? pool_.pids[static_cast<std::size_t>(w)] : 0;
  }

  void fail(ticket t, int worker, std::string message) {
    file_failure(task_failure{static_cast<std::size_t>(t), worker, "foreman::worker_lost", std::move(message)});
    task_record& record = store_.record(t);
    record.worker = worker;
    record.failed = true;
    finish(t, clock::now());
  }

  // Every ticket still waiting to be sent fails (no worker is left to run it).
  void fail_unsent(const std::string& why) {
    scheduler_.drop_unsent([&](ticket t) {
      if (!store_.done(t)) fail(t, store_.record(t).worker < 0 ? 0 : store_.record(t).worker, why);
    });
  }

  MPI_Comm comm_;
  std::uint32_t run_;
  const options& opt_;
  pool_state& pool_;
  Store& store_;
  run_info& info_;
  OnDone& on_done_;
  unsigned max_attempts_;
  clock::duration timeout_;
  idle_backoff waiting_; // how this rank waits (options::wait, FOREMAN_WAIT), read once per run
  inbox& inbox_;         // the workers' replies, received into receives posted ahead (pool.replies)
  int size_;             // ranks in the pool
  scheduler scheduler_;
  worker_table table_;
  std::vector<std::vector<send_slot>> slots_; // per worker: its messages being sent
  std::vector<send_slot> controls_;           // per worker: its last control message (send_control())

  std::deque<int> idle_;           // workers that hold no chunk and wait for work (work_added())
  std::vector<char> idle_flag_;    // per worker: in idle_
  std::vector<ticket> resending_;  // count_attempts(): the tickets of a chunk being sent again
  std::vector<int> silent_;        // check_timeouts(): workers found silent
  clock::time_point start_{};      // when the run began: losses are reported relative to it
  clock::time_point last_check_{}; // check_liveness(): when timeouts were last checked
  clock::time_point last_watch_{}; // and the watched processes
  bool watch_ = false;             // timeouts or watched processes to check
  unsigned polls_ = 0;
  bool ended_ = false;             // end_run was sent
  bool failed_ = false;            // some task failed (options::fail_fast)
  bool cancelled_ = false;         // run(): the tasks left were cancelled (options::fail_fast)
  std::uint64_t first_failed_ = 0; // the name of the first task that failed
  std::string peer_error_;         // the MPI failure that made the last worker lost (lose_peer())
  std::vector<int> starved_;       // workers refill() could not supply: every send slot was busy
  std::vector<int> retrying_;
  std::vector<char> scratch_;     // dropped bodies land here
  std::vector<body_span> bodies_; // the bodies of the message being sent
  struct {
    std::vector<char> bytes;
    std::vector<ticket> tickets; // the tickets it holds, for encoding
    ticket first = 0;            // the first unsent ticket when it was encoded
    std::size_t count = 0;       // its tasks; 0: none (or it has bodies)
    bool valid = false;
  } prepared_; // the next chunk of a dynamic run, encoded ahead (prepare())
};

} // namespace detail
} // namespace foreman
