#pragma once
/// @file worker_loop.hpp
/// The worker's loop: receive a chunk of tasks from the master, run the user's function on
/// each, send back one reply per chunk, until the master ends the run or closes the pool. With a
/// worker_function (shared.hpp), first set up for the run: receive its shared value, run its
/// initializer (shared_value.hpp).

#include <foreman/detail/idle.hpp>
#include <foreman/detail/invoke.hpp>
#include <foreman/detail/keep_alive.hpp>
#include <foreman/detail/peer_inbox.hpp>
#include <foreman/detail/send_progress.hpp>
#include <foreman/detail/shared_value.hpp>
#include <foreman/detail/task_clock.hpp>
#include <foreman/detail/task_runner.hpp>
#include <foreman/detail/transport.hpp>
#include <foreman/detail/wire.hpp>
#include <foreman/errors.hpp>

#include <mpi.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace foreman {
namespace detail {

#ifdef FOREMAN_DETAIL_TEST_HOOKS
/// Tests only: when set, edits a copy of the next tasks message this process's worker loop
/// receives (then is cleared), which the loop reads instead: a stand-in for a message whose
/// framing is broken, which no transport produces (MPI delivers the bytes that were sent) and
/// only a defect in an encoder, or memory corruption, could.
inline std::function<void(std::vector<char>&)>& injected_tasks_damage() {
  static std::function<void(std::vector<char>&)> edit;
  return edit;
}
#endif

/// What ended a worker's loop.
enum class worker_exit { run_ended, pool_closed };

/// What a worker keeps from one run to the next: its reply slots, with their buffers and the
/// result objects the function writes into, the object tasks are decoded into, and the last
/// shared value (with_shared()). A run after the first allocates none of them again.
template <class Task, class Result>
struct worker_storage {
  /// A reply being sent: its message, and the results it refers to. held[0, in_flight) are the
  /// results sent as bodies, read by their sends until the reply completes; the rest are spare
  /// objects whose storage the next tasks' results reuse.
  struct reply_slot : send_slot {
    std::vector<Result> held;
    std::size_t in_flight = 0;
  };
  std::array<reply_slot, 2> slots; // one may still be in transit while the next is filled
  std::size_t next_slot = 0;
  Task task{};
  std::vector<char> scratch;       // dropped bodies land here
  std::vector<char> note;          // a progress note (wire.hpp)
  task_clock::stamp last_sent = 0; // when this worker last sent the master anything (0: long ago)
  std::vector<body_span> bodies;   // of the reply being built
  std::vector<char> marked_reply;  // a reply that carries no results (send_marked())
  kept_shared shared;              // the last run's shared value (with_shared()), received into again
  int shown_rank = -1;             // this worker's rank in the whole pool, for messages, when its pool is a
                                   // layer of a grouped one (pool_state::shown); -1: its rank in the pool
  send_progress sender;            // drives a reply's sends during a task (options::send_thread); last: joined first
};

/// A task that took at least this long (seconds) is taken as a sign that the next may be long too:
/// the worker then completes its previous reply's sends before running it, or hands them to its
/// send thread (settle_previous_reply).
inline constexpr double long_task_seconds = 1e-3;

/// A worker's side of one run or job. Compiled once per Task and Result: the user's function is
/// reached through a task_runner (task_runner.hpp).
template <class Task, class Result>
class worker_loop {
public:
  /// @param fn    the user's function (task_runner_of, built with &store.shared)
  /// @param store what the worker keeps between runs (see worker_storage)
  /// @param idle  how to wait for the master's messages (options::wait)
  /// @param background_sends whether store.sender may drive a reply's sends while the user's
  ///        function runs (send_progress.hpp: sends_in_background()); else they are completed first
  worker_loop(MPI_Comm comm, std::uint64_t pool, std::uint32_t run, task_runner<Task, Result>& fn,
              worker_storage<Task, Result>& store, idle_backoff idle = idle_backoff(), bool background_sends = false)
      : comm_(comm), pool_(pool), run_(run), fn_(fn), store_(store), idle_(idle), background_sends_(background_sends) {
    check_mpi(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
    if (store.shown_rank >= 0) rank_ = store.shown_rank;
  }

  /// Serves the current run: returns when the master ends it (run_ended) or closes the pool.
  worker_exit run() { return loop(false); }

  /// Waits for the master's goodbye when the pool is destroyed on this worker. Freeing a
  /// communicator while a message to it is still on its way breaks the next communicator that
  /// reuses its context (Open MPI), so the worker leaves only once the goodbye is received.
  /// Tasks of runs the master starts meanwhile are answered with `fn`'s failure, so that the
  /// master reports them instead of waiting for them.
  void close() { loop(true); }

private:
  worker_exit loop(bool closing) {
    idle_backoff idle = idle_;
    // Without a shared value, set up at once: nothing to wait for.
    if (fn_.initializes_at_once() && !closing) set_up(clock_.now());
    inbox_.post();
    for (;;) {
      if (!inbox_.poll()) {
        idle.pause();
        continue;
      }
      idle.reset();
      // Any tag from the master: MPI's non-overtaking order keeps end_run behind the run's tasks.
      const auto kind = static_cast<tag>(inbox_.message_tag());
      if ((kind == tag::tasks || kind == tag::shared) && inbox_.announced() > 0)
        inbox_.fetch_large([&](const body_span& into) { // sent right after its envelope
          receive_from_master(into, tag::tasks_large, 0);
        });
      decoder in = inbox_.message();
#ifdef FOREMAN_DETAIL_TEST_HOOKS
      if (kind == tag::tasks && injected_tasks_damage()) {
        damaged_.clear();
        while (!in.exhausted()) damaged_.push_back(in.get<char>());
        std::exchange(injected_tasks_damage(), nullptr)(damaged_);
        in = decoder(damaged_.data(), damaged_.size());
      }
#endif
      if (kind == tag::tasks && in.remaining() < header_bytes) {
        // Not even its header can be read: answered as damaged, for the run this worker is in.
        answer_damaged("the message is " + std::to_string(in.remaining()) + " bytes long, shorter than its header", 0,
                       0);
        inbox_.post();
        continue;
      }
      const auto stamp = in.get<header>();
      if (stamp.pool != pool_) { // left over from a pool destroyed earlier
        if (kind == tag::tasks || kind == tag::shared) drain_bodies(in);
        inbox_.post();
        continue;
      }
      switch (kind) {
      case tag::tasks: {
        if (closing)
          run_ = stamp.run; // answer whatever run the master is in
        else
          check_run(stamp.run);
        ++messages_;
        if (refusing_) // it could not set up: the master hands these tasks to the others
          drain_bodies(in);
        else if (!closing && !fn_.has_value())
          throw error("protocol error: the master sent tasks but no shared value, which this worker's function "
                      "takes: every rank must pass with_shared(value, fn) to the same run() or start()");
        else
          serve(in);
        // Only now, once the reply is on its way (the master's next message is its answer, or
        // was sent earlier and is matched from MPI's queue): posted before, a receive for any tag
        // would take this message's bodies.
        inbox_.post();
        break;
      }
      case tag::cancel:
        take_cancel(stamp, in);
        inbox_.post();
        break;
      case tag::shared:
        if (closing) {
          drain_bodies(in); // a run this worker is not in
        } else {
          check_run(stamp.run);
          take_shared(in);
        }
        inbox_.post(); // only now: its bodies are taken
        break;
      case tag::end_run:
        if (closing) {
          inbox_.post();
          break;
        }
        check_run(stamp.run);
        finish();
        return worker_exit::run_ended;
      case tag::shutdown:
        finish();
        // The master learns that this worker is leaving, lost or not: one that answers is not
        // ended at MPI_Finalize (lost_at_finalize).
        {
          std::vector<char> bye;
          encoder(bye).put(header{pool_, stamp.run});
          send_short(bye, 0, tag::goodbye, comm_);
        }
        return worker_exit::pool_closed;
      default:
        throw error("protocol error: unexpected message tag " + std::to_string(static_cast<int>(kind)) +
                    " from the master");
      }
    }
  }

  void check_run(std::uint32_t master_run) const {
    if (master_run != run_)
      throw error("the master is in its run " + std::to_string(master_run) + " but this worker in its run " +
                  std::to_string(run_) + ": every rank must call run() the same number of times");
  }

  // Receives and drops the bodies of a tasks message that is not served.
  void drain_bodies(decoder& in) {
    in.get<std::uint32_t>(); // count
    const auto bodies = in.get<std::uint32_t>();
    for (std::uint32_t k = 0; k < bodies; ++k) drop_message(comm_, 0, tag::task_body, store_.scratch);
  }

  void serve(decoder& in) {
    auto& slot = store_.slots[store_.next_slot];
    store_.next_slot = 1 - store_.next_slot;
    if (!slot.idle()) slot.wait(); // usually done at the end of the previous serve()
    slot.in_flight = 0;
    encoder out(slot.bytes, 0);
    out.put(header{pool_, run_});
    const std::size_t count_at = out.size();
    out.put(std::uint32_t{0}); // count and bodies: patched below
    out.put(std::uint32_t{0});
    store_.bodies.clear();
    task_clock::stamp clock = clock_.now();
    std::uint32_t count = 0, announced = 0, received = 0; // tasks; bodies announced, bodies taken
    try {
      count = in.get<std::uint32_t>();
      announced = in.get<std::uint32_t>(); // each is received where its item says
      out.patch(count_at, count);
      clock = serve_items(in, out, slot, count, received, clock);
    } catch (const mpi_error&) {
      throw; // MPI failed, not the message
    } catch (const error&) {
      // The message's framing is broken (wire.hpp): cut short, a length past its end, an unknown
      // item kind. What was read of it cannot be trusted either, so the whole message is
      // answered as damaged, results already computed included; the master fails its tasks.
      out.rollback(count_at);
      slot.in_flight = 0;
      store_.bodies.clear();
      store_.task = Task{};
      answer_damaged(describe_current_exception(), announced > received ? announced - received : 0, clock);
      return;
    }
    if (call_.refused) {
      // The function can run nothing more in this run (run_refused): nothing of this message is
      // answered (the master hands its tasks, those done included, to the others), its bodies
      // not taken yet are dropped, and the run is refused as by a worker that could not set up.
      out.rollback(count_at);
      slot.in_flight = 0;
      store_.bodies.clear();
      for (std::uint32_t k = received; k < announced; ++k) drop_message(comm_, 0, tag::task_body, store_.scratch);
      refuse(call_);
      return;
    }
    out.patch(count_at + sizeof(std::uint32_t), body_messages(store_.bodies));
    out.finish();
    store_.last_sent = clock;
    if (store_.bodies.empty() && slot.bytes.size() <= eager_bytes) {
      // Short, as replies of small results are: sent at once, no request to complete later.
      send_short(slot.bytes, 0, tag::results, comm_);
    } else {
      post_message(slot, 0, tag::results, comm_);
      for (const body_span& body : store_.bodies) {
#ifdef FOREMAN_DETAIL_TEST_HOOKS
        if (injected_body_delay() != nullptr) {
          slot.complete(idle_); // the delay stands for time spent outside MPI: see settle_previous_reply()
          injected_body_delay()();
        }
#endif
        post_body(body, 0, tag::result_body, comm_, slot);
      }
    }
    // The other slot's reply left a message earlier: its send is complete, or completes once the
    // master takes it. Waiting here rather than when the slot is next used keeps the wait off the
    // way from a task's arrival to its result's departure.
    send_slot& other = store_.slots[store_.next_slot];
    if (!other.idle()) other.wait();
  }

  // Runs the `count` tasks of a message, `in` at the first, and writes their outcomes into `out`
  // and `slot`; counts in `received` the bodies it takes. Returns the clock's last reading.
  // @throws error when the message's framing is broken (the decoder's), mpi_error
  task_clock::stamp serve_items(decoder& in, encoder& out, typename worker_storage<Task, Result>::reply_slot& slot,
                                std::uint32_t count, std::uint32_t& received, task_clock::stamp clock) {
    for (std::uint32_t k = 0; k < count; ++k) {
      const auto index = in.get<std::uint64_t>();
      if (index & failed_task_item) { // the master could not encode it: its failure goes back as the task's
        in.get(call_.error_type);
        in.get(call_.error_message);
        put_failed_result(out, index & ~failed_task_item, 0.0, call_.error_type, call_.error_message);
        continue;
      }
      std::size_t body_bytes = 0;
      try {
        if (const body_span body = get_item(in, store_.task, body_bytes)) {
          // The master sent it right after the message: received straight into the task.
          receive_from_master(body, tag::task_body, k);
          received += static_cast<std::uint32_t>(pieces_of(body.bytes));
          clock = clock_.now(); // the task starts once its bytes are here
        }
      } catch (const serialization_error&) {
        // Only this task fails: `in` is at the next item, and a body announced for this one is
        // taken, so that the next item's body is not received in its place.
        if (body_bytes > 0) {
          drop_pieces(comm_, 0, tag::task_body, body_bytes, store_.scratch);
          received += static_cast<std::uint32_t>(pieces_of(body_bytes));
        }
        put_failed_result(out, index, 0.0, serialization_error_type,
                          serialization_failure("task " + std::to_string(index) + " could not be decoded on worker " +
                                                std::to_string(rank_)));
        store_.task = Task{}; // not what a failed load left behind
        continue;
      }
      if (cancelled(clock)) { // the master dropped it: answered without running it
        put_failed_result(out, index, 0.0, cancelled_type, "cancelled by the master before it started");
        continue;
      }
      // The result goes into the slot's next spare object: a function that writes into it
      // (fn(task, result)) reuses the storage an earlier result of this slot had.
      if (slot.in_flight == slot.held.size()) slot.held.emplace_back();
      Result& result = slot.held[slot.in_flight];
      const previous_reply previous = settle_previous_reply();
      if (previous == previous_reply::waited) clock = clock_.now(); // the task starts once the wait is over
      send_progress::scope driven(previous == previous_reply::driven ? &store_.sender : nullptr);
      std::optional<keep_alive_scope> alive; // a batch's relay sends notes while it runs (keep_alive.hpp)
      if constexpr (notes_during_task<Task>) {
        if (previous != previous_reply::driven) alive.emplace(&worker_loop::note_if_due, this);
        note_done_ = k;
      }
      clock = fn_.call(std::as_const(store_.task), result, call_, clock_, clock);
      alive.reset();
      if constexpr (notes_during_task<Task>)
        if (note_failure_) std::rethrow_exception(std::exchange(note_failure_, nullptr)); // as between tasks
      driven.end(); // the send thread parked: this thread may call MPI again
      if (call_.refused) return clock; // serve() refuses the run (run_refused)
      if (k + 1 < count && clock_.seconds(store_.last_sent, clock) >= progress_interval) send_note(k + 1, clock);
      if (!call_.ok) {
        put_failed_result(out, index, call_.seconds, call_.error_type, call_.error_message);
        continue;
      }
      const std::size_t item_at = out.size();
      try {
        out.put(index);
        out.put(item_status::ok);
        out.put(call_.seconds);
        const body_span body = put_item(out, result);
        if (body) { // sent from the object itself: it stays untouched until the reply completes
          store_.bodies.push_back(body);
          ++slot.in_flight;
        }
      } catch (...) {
        // Its serialize() threw: the item is taken back and its task fails.
        out.rollback(item_at);
        put_failed_result(out, index, call_.seconds, serialization_error_type,
                          serialization_failure("the result of task " + std::to_string(index) +
                                                " could not be encoded on worker " + std::to_string(rank_)));
      }
    }
    return clock;
  }

  // Drives the sends of the previous reply (the other slot's) before the user's function runs, and
  // completes them first when the task may be long; true if it waited. MPI need not move a
  // message outside MPI calls: where it does not (MPICH over UCX, docs/mpi.md), a message past the
  // eager limit moves only when its sender calls MPI after the receiver posted the receive. The
  // master reads a reply's message, then waits for its bodies and large message, receiving from
  // this worker only: left undriven during a long task, they would come at this worker's next MPI
  // call, holding the master that long, and past task_timeout the worker would be declared lost.
  // Waiting costs the time the master takes to receive them: it is paid after a task of
  // long_task_seconds or more, as the next may be long too; among shorter tasks the test here
  // moves them, and a wait before every task would give up their overlap with the transfer (a
  // long task right after short ones can still hold the master: docs/mpi.md).
  // With a send thread (background_sends_), the sends are not waited for but handed to it, and it
  // tests them while the function runs: the transfer and the compute overlap. Among short tasks
  // the test here is all, as without it: handing a slot over and parking the thread costs two
  // thread switches, more than a short task's transfer gains.
  enum class previous_reply { done, waited, driven };
  previous_reply settle_previous_reply() {
    send_slot& previous = store_.slots[store_.next_slot];
    if (previous.idle() || previous.test() || call_.seconds < long_task_seconds) return previous_reply::done;
    if (background_sends_) {
      store_.sender.drive(previous);
      return previous_reply::driven;
    }
    previous.complete(idle_);
    return previous_reply::waited;
  }

  // Answers a tasks message whose framing is broken (wire.hpp: damaged_marker, then why): the
  // master fails every task it sent in it. First takes the `bodies` it announced that were not
  // taken yet: they are on their way, and the next receive, which takes any tag, must not match
  // one. The count of body messages (pieces included) is the message's own, as for a stale
  // message (drain_bodies()): a message cut short still has it; one whose first 20 bytes are
  // damaged cannot be answered safely if it had bodies (a count that cannot be read drains none;
  // a wrong one waits for bodies that never come, until the master's task_timeout).
  void answer_damaged(const std::string& why, std::uint32_t bodies, task_clock::stamp now) {
    for (std::uint32_t k = 0; k < bodies; ++k) drop_message(comm_, 0, tag::task_body, store_.scratch);
    send_marked(damaged_marker, now, why.substr(0, 512)); // foreman's own text, not longer
  }

  // Sends the master a reply that carries no results (wire.hpp): the header, `marker` where the
  // count would be, u32 0 (bodies), then `texts`. Rare, and short (the callers cut their texts
  // so that it stays under eager_bytes): sent at once, as a progress note.
  template <class... Texts>
  void send_marked(std::uint32_t marker, task_clock::stamp now, const Texts&... texts) {
    std::vector<char>& reply = store_.marked_reply;
    encoder out(reply, 0);
    out.put(header{pool_, run_});
    out.put(marker);
    out.put(std::uint32_t{0});
    (out.put(texts), ...);
    out.finish();
    send_short(reply, 0, tag::results, comm_);
    store_.last_sent = now;
  }

  // The run's shared value (tag::shared, wire.hpp), `in` after its header: decoded into the
  // setup's object, its body received straight into it; then the set-up goes on (set_up()). A
  // value that cannot be read makes this worker refuse the run (refuse()), its bodies taken first
  // (the next receive takes any tag).
  void take_shared(decoder& in) {
    if (!fn_.takes_value()) {
      throw error("protocol error: the master sent a shared value, which this worker's function does not take: "
                  "every rank must pass with_shared(value, fn) to the same run() or start()");
    } else {
      const task_clock::stamp start = clock_.now();
      std::uint32_t bodies = 0, received = 0;
      invocation failure;
      failure.ok = true;
      try {
        in.get<std::uint32_t>(); // 1
        bodies = in.get<std::uint32_t>();
        std::size_t body_bytes = 0;
        if (const body_span body = fn_.decode(in, body_bytes)) {
          receive_from_master(body, tag::task_body, 0);
          received = bodies;
        }
      } catch (const mpi_error&) {
        throw; // MPI failed, not the value
      } catch (const error&) {
        // Its load threw, its storage could not be allocated, or the message is malformed.
        for (std::uint32_t k = received; k < bodies; ++k) drop_message(comm_, 0, tag::task_body, store_.scratch);
        failure.ok = false;
        failure.error_type = serialization_error_type;
        failure.error_message =
            serialization_failure("the shared value could not be decoded on worker " + std::to_string(rank_));
      }
      if (failure.ok)
        set_up(start);
      else
        refuse(failure);
    }
  }

  // Runs the initializer, if there is one; a worker whose initializer throws refuses the run. A
  // set-up that took progress_interval or longer (with the shared value's transfer, since
  // `start`) is followed by a progress note: the master's deadline for the first tasks, sent as
  // the run started, then counts from here.
  void set_up(task_clock::stamp start) {
    invocation init;
    if (!fn_.initialize(init)) {
      refuse(init);
      return;
    }
    const task_clock::stamp now = clock_.now();
    if (clock_.seconds(start, now) >= progress_interval) send_note(0, now);
  }

  // This worker could not set up for the run, or its function refused to go on (run_refused;
  // wire.hpp: setup_failed_marker, the failure's type and message): the master takes it out of
  // the run and hands its tasks to the others. Until the run ends, it drops the tasks messages
  // it is sent, unanswered.
  void refuse(const invocation& why) {
    refusing_ = true;
    send_marked(setup_failed_marker, clock_.now(), clip(why.error_type, 160), clip(why.error_message, 640));
  }

  static std::string clip(const std::string& text, std::size_t bytes) {
    return text.size() <= bytes ? text : text.substr(0, bytes - 3) + "...";
  }

  // Receives what the master sends right after a message (a task's body, an envelope's message)
  // straight into `into`, in pieces past piece_bytes(); between two pieces, a progress note when
  // the last message to the master is progress_interval old, as between two tasks: a transfer
  // longer than the task timeout does not make this worker look lost. `done`: tasks of the chunk
  // done so far.
  void receive_from_master(const body_span& into, tag t, std::uint32_t done) {
    const char* call = t == tag::task_body ? "MPI_Recv (a task's body)" : "MPI_Recv (a large message)";
    receive_pieces(into.data, into.bytes, 0, t, comm_, call, [&] {
      const task_clock::stamp now = clock_.now();
      if (clock_.seconds(store_.last_sent, now) >= progress_interval) send_note(done, now);
    });
  }

  // Whether the tasks message being served was cancelled (tag::cancel, wire.hpp): known already,
  // or found by looking for a cancellation at most every cancel_probe_interval of this worker's
  // clock (`now`: its last reading), so that tiny tasks pay nothing for the look.
  bool cancelled(task_clock::stamp now) {
    if (messages_ <= skip_through_) return true;
    if (clock_.seconds(last_probe_, now) < cancel_probe_interval) return false;
    last_probe_ = now;
    int found = 0;
    MPI_Message message;
    MPI_Status status;
    check_mpi(MPI_Improbe(0, static_cast<int>(tag::cancel), comm_, &found, &message, &status),
              "MPI_Improbe (a cancellation)", 0);
    if (!found) return false;
    receive_matched(message, status, store_.scratch);
    decoder in(store_.scratch.data(), store_.scratch.size());
    const auto stamp = in.get<header>();
    take_cancel(stamp, in);
    return messages_ <= skip_through_;
  }

  // A cancellation from the master (`in` after its header): the tasks of its messages up to the
  // one it names are skipped. One of another pool or run is stale, and ignored.
  void take_cancel(const header& stamp, decoder& in) {
    const auto through = in.get<std::uint64_t>();
    if (stamp.pool == pool_ && stamp.run == run_) skip_through_ = std::max(skip_through_, through);
  }

  // keep_alive()'s hook while a batch runs (keep_alive.hpp): a note if the last message to the
  // master is progress_interval old, as between two tasks. A note that cannot be sent is not
  // thrown through the relay (whose group job would be left with tasks of a batch it never
  // answers): no more notes are sent, and the loop throws it once the batch's call returned.
  static void note_if_due(void* self) noexcept {
    worker_loop& loop = *static_cast<worker_loop*>(self);
    if (loop.note_failure_) return;
    try {
      const task_clock::stamp now = loop.clock_.now();
      if (loop.clock_.seconds(loop.store_.last_sent, now) >= progress_interval) loop.send_note(loop.note_done_, now);
    } catch (...) {
      loop.note_failure_ = std::current_exception();
    }
  }

  // Tells the master, between two tasks of a long chunk, that this worker is alive (wire.hpp):
  // its deadline then counts from now, not from the chunk's start. 20 bytes, sent eagerly.
  void send_note(std::uint32_t done, task_clock::stamp now) {
    encoder out(store_.note, 0);
    out.put(header{pool_, run_});
    out.put(progress_marker);
    out.put(done);
    out.finish();
    send_short(store_.note, 0, tag::results, comm_);
    store_.last_sent = now;
  }

  // Completes the sends; frees a reply buffer that grew past piece_bytes() (kept otherwise, for the
  // next reply): gigabytes are not held from one run to the next for a reply that was rare.
  void finish() {
    const std::size_t most = piece_bytes();
    for (auto& slot : store_.slots) {
      slot.wait();
      if (slot.bytes.capacity() > most) std::vector<char>().swap(slot.bytes);
    }
  }

  MPI_Comm comm_;
  int rank_ = 0; // as messages name this worker (worker_storage::shown_rank)
  std::uint64_t pool_;
  std::uint32_t run_;
  task_runner<Task, Result>& fn_; // the user's function; with a worker_function, the run's value and initializer
  bool refusing_ = false; // could not set up: this run's tasks are dropped (refuse())
  worker_storage<Task, Result>& store_;
  idle_backoff idle_;
  bool background_sends_; // a send thread drives the previous reply during a long task (options::send_thread)
  peer_inbox inbox_{comm_, 0, MPI_ANY_TAG}; // the master's messages, received into a receive posted ahead
  task_clock clock_;
  invocation call_;
  std::uint64_t messages_ = 0;       // tasks messages of this run received so far
  std::uint64_t skip_through_ = 0;   // tasks of messages 1 .. skip_through_ are cancelled
  task_clock::stamp last_probe_ = 0; // when cancelled() last looked for a cancellation
  std::uint32_t note_done_ = 0;      // a batch's notes (note_if_due()): tasks of its chunk done before it
  std::exception_ptr note_failure_;  // a batch's note that could not be sent, thrown after the batch
#ifdef FOREMAN_DETAIL_TEST_HOOKS
  std::vector<char> damaged_; // a tasks message as injected_tasks_damage() left it
#endif
};

} // namespace detail
} // namespace foreman
