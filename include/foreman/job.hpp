#pragma once
/// @file job.hpp
/// A job: a run that stays open while the master submits tasks and takes their completions as
/// they arrive (master_worker::start()). The model of mpi4py.futures' `submit` and
/// `as_completed`, without futures or threads: the master's own calls drive the pool.

#include <foreman/detail/invoke.hpp>
#include <foreman/detail/job_journal.hpp>
#include <foreman/detail/keep_alive.hpp>
#include <foreman/detail/master_loop.hpp>
#include <foreman/detail/observer.hpp>
#include <foreman/detail/task_store.hpp>
#include <foreman/errors.hpp>
#include <foreman/options.hpp>
#include <foreman/outcome.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace foreman {

/// One finished task of a job, as job::next() hands it out.
template <class Result>
struct completion {
  std::uint64_t ticket = 0; ///< what job::submit() returned for the task
  int worker = -1;          ///< the rank that ran it (0: the master, in a pool without workers)
  double seconds = 0.0;     ///< time spent in the user's function on that rank (0 for a failure
                            ///< the master filed: a lost worker's last attempt, a cancellation)
  outcome<Result> result;   ///< its result, or the failure it raised
};

template <class Task, class Result>
class job;

namespace detail {

template <class Task, class Result>
class job_core;

/// The master's core of a job, for what drives it from inside foreman (detail/stream.hpp).
struct job_access {
  template <class Task, class Result>
  static job_core<Task, Result>& core(job<Task, Result>& j) {
    return j.master();
  }
};

/// What a job takes from its pool on the master (master_worker::start()).
struct job_binding {
  MPI_Comm comm = MPI_COMM_NULL;
  std::uint32_t run = 0;
  pool_state* pool = nullptr;
  run_info* info = nullptr;
  bool* running = nullptr;       ///< the pool's "a run or job is open" flag, cleared when the job ends
  std::string* broken = nullptr; ///< set when the job ends with an exception (the pool is unusable)
  int workers = 0;
  std::shared_ptr<const shared_payload> shared; ///< with_shared(): sent to the workers as the job starts
  std::string journal_types;                    ///< the types a journal names (options::checkpoint; "": no journal)
};

/// The user's function, kept by a job of a pool without workers, which runs its tasks itself.
template <class Task, class Result>
struct local_function {
  virtual ~local_function() = default;
  virtual void call(const Task& task, Result& into, invocation& out, const task_clock& clock) = 0;
};
template <class Task, class Result, class Fn>
struct local_function_of final : local_function<Task, Result> {
  explicit local_function_of(Fn fn) : fn_(std::move(fn)) {}
  void call(const Task& task, Result& into, invocation& out, const task_clock& clock) override {
    invoke_(task, into, out, clock, clock.now());
  }
  Fn fn_;
  local_call<Fn> invoke_{fn_}; // with_initializer(): its initializer runs here, as the job starts
};

/// The master's side of a job: its store, its completions and the loop that drives the workers.
template <class Task, class Result>
class job_core {
  using store_type = job_store<Task, Result>;
  struct on_done_fn {
    job_core* core;
    FOREMAN_DETAIL_INLINE void operator()(ticket t, typename store_type::item it,
                                          std::chrono::steady_clock::time_point when) const {
      core->filed(t, **it, when);
    }
  };
  using loop_type = master_loop<Task, Result, store_type, on_done_fn>;

public:
  /// @param segments the pool's store segments kept between jobs (job_store::cache), or null
  job_core(const job_binding& pool, const options& opt, std::unique_ptr<local_function<Task, Result>> local,
           typename store_type::cache* segments = nullptr)
      : pool_(pool), opt_(opt), local_(std::move(local)), started_(std::chrono::steady_clock::now()), store_(segments),
        observer_(progress_meter::unknown_total, opt_, pool.pool->is_layer()), local_queue_(scheduler::config{schedule::dynamic, 1, 1, 1}) {
    pool_.info->totals.assign(static_cast<std::size_t>(pool_.workers) + 1, worker_totals{});
    if (pool_.workers > 0) {
      loop_ = std::make_unique<loop_type>(pool_.comm, pool_.run, opt_, *pool_.pool, store_, *pool_.info, on_done_);
      try {
        loop_->share(pool_.shared);
        loop_->start();
      } catch (...) {
        fail_hard();
        throw;
      }
    }
    if (!opt_.checkpoint.empty() && !pool_.journal_types.empty()) {
      try {
        journal_ = std::make_unique<job_journal<Task, Result>>();
        journal_->open(opt_.checkpoint, pool_.journal_types,
                       journal_sync{opt_.checkpoint_sync_every, opt_.checkpoint_sync_interval});
        pool_.info->checkpoint_dropped_bytes = journal_->dropped_bytes();
      } catch (...) {
        journal_.reset();
        if (loop_) loop_->end(); // nothing was submitted: the workers' start() returns
        end_of_job();
        throw;
      }
    }
    plain_submit_ = loop_ != nullptr && journal_ == nullptr;
  }

  job_core(const job_core&) = delete;
  job_core& operator=(const job_core&) = delete;

  ~job_core() {
    if (!open_) return;
    try {
      cancel();
      close();
    } catch (...) {
      // A destructor must not throw: close() already ended the job on the workers (end_early()).
    }
  }

  bool open() const { return open_; }
  std::size_t pending() const { return store_.kept(); }
  std::size_t ready() const { return ready_; }

  /// For a stream in task order (detail/stream.hpp), before the first submission: completions
  /// are no longer queued for next(); take_in_order() takes them from the store by ticket.
  void hand_out_in_order() { in_order_ = true; }

  /// Hands the completions of tickets low, low + 1, ... that are filed to
  /// f(ticket, int worker, double seconds, Result& value, task_failure* failure) (failure: null
  /// for a success), erasing each after, and advances `low` past them; stops at the first ticket
  /// not filed (or not kept), or once f returned false. Returns how many it handed out. Requires
  /// hand_out_in_order(). No completion object is built: the value is handed from the store.
  template <class F>
  std::size_t take_in_order(ticket& low, F&& f) {
    std::size_t taken = 0;
    for (bool go_on = true; go_on && low < store_.issued(); ++low, ++taken) {
      const typename store_type::item it = store_.find(low);
      if (it == nullptr || !store_type::done(it)) break;
      go_on = hand_out(low, it, f);
    }
    return taken;
  }

  /// As take_in_order(), in the order filed (what next() would return, without the completion
  /// objects); without hand_out_in_order().
  template <class F>
  std::size_t take_ready(F&& f) {
    std::size_t taken = 0;
    for (bool go_on = true; go_on && !completed_.empty(); ++taken) {
      const ticket t = completed_.pop();
      go_on = hand_out(t, store_.item_of(t), f);
    }
    return taken;
  }

  /// Moves the pool on once, pausing when nothing happened (what next() does while it waits).
  /// @throws error when the job was broken by an exception and tasks are left unfinished
  void wait_for_more() {
    refuse_if_broken();
    advance(true);
  }

  // The common case inline (an open job with workers, no journal, no priority, every worker busy);
  // the rest in submit_other().
  FOREMAN_DETAIL_INLINE ticket submit(Task task, int priority) {
    if (priority != 0 || !plain_submit_ || loop_->has_idle_worker()) return submit_other(std::move(task), priority);
    const ticket t = store_.add(std::move(task));
    if (++submitted_since_pass_ % submissions_per_check == 0) pass_if_due(); // see submit_other()
    return t;
  }

  FOREMAN_DETAIL_COLD ticket submit_other(Task task, int priority) {
    if (!open_) throw error("submit() on a job that was closed");
    if (journal_) {
      Result value{};
      const auto verdict = journal_->look_up(store_.issued(), task, value);
      if (verdict == job_journal<Task, Result>::verdict::changed) throw error(journal_->changed());
      if (verdict == job_journal<Task, Result>::verdict::restored) return restore(std::move(task), std::move(value));
    }
    if (!loop_) {
      const ticket t = store_.add(std::move(task));
      local_queue_.add(t, priority);
      return t;
    }
    if (priority != 0) release(); // the tickets before it keep their place
    const ticket t = store_.add(std::move(task));
    if (priority != 0) {
      loop_->tickets().add(t, priority);
      released_ = t + 1;
      guarded([&] { loop_->work_added(); });
    } else if (loop_->has_idle_worker()) {
      release(); // it leaves now: a worker waits for it
    }
    // A long run of submissions (the master submitting a whole generation before it takes any
    // completion) moves the pool on now and then, so that the workers' answers are taken and
    // they get their next chunks meanwhile, instead of idling until the first next().
    if (++submitted_since_pass_ % submissions_per_check == 0) pass_if_due();
    return t;
  }

  /// Submits tasks read from next_task() (callable as std::optional<Task>(); nullopt: the source
  /// is exhausted, and `exhausted` is set) until `most` are submitted, each as submit(task, 0);
  /// the scheduler learns of them in runs, not one by one. Returns how many it submitted (when
  /// next_task() throws, those read before stay submitted).
  template <class NextTask>
  std::size_t submit_from(NextTask& next_task, std::size_t most, bool& exhausted) {
    std::size_t count = 0;
    if (journal_ || !loop_) { // the job's journal looks each task up; without workers, no batches
      for (; count < most; ++count) {
        std::optional<Task> task = next_task();
        if (!task) {
          exhausted = true;
          break;
        }
        submit(std::move(*task), 0);
      }
      return count;
    }
    if (!open_) throw error("submit() on a job that was closed");
    while (count < most) {
      std::optional<Task> task = next_task(); // may throw: what was read stays submitted
      if (!task) {
        exhausted = true;
        break;
      }
      store_.add(std::move(*task));
      ++count;
      if (++submitted_since_pass_ % submissions_per_check == 0) pass_if_due(); // see submit()
    }
    release();
    return count;
  }

  std::optional<completion<Result>> try_next() {
    if (completed_.empty()) {
      refuse_if_broken();
      advance(false);
    }
    if (completed_.empty()) return std::nullopt;
    return take();
  }

  // A completion that is ready is taken inline; wait_for_completion() waits for one.
  FOREMAN_DETAIL_INLINE completion<Result> next() {
    if (completed_.empty()) wait_for_completion();
    return take();
  }

  std::size_t cancel() {
    if (!open_) return 0;
    std::size_t dropped = 0;
    auto drop = [&](ticket t) {
      if (store_.has(t) && !store_.done(t)) {
        store_.erase(t);
        ++dropped;
      }
    };
    if (loop_) {
      release(); // unsent: dropped with the others
      guarded([&] { loop_->cancel(drop); });
    } else
      local_queue_.drop_unsent(drop);
    return dropped;
  }

  void close() {
    if (!open_) return;
    if (loop_) {
      release();
      guarded([&] {
        idle_backoff idle(effective_wait_policy(opt_.wait), pool_.pool->oversubscribed);
        while (unfinished() > 0 || loop_->answers_pending()) {
          if (loop_->step() == loop_type::pass::progressed)
            idle.reset();
          else
            idle.pause();
        }
        loop_->end();
      });
    } else {
      while (unfinished() > 0) run_one_locally();
    }
    end_of_job();
    if (journal_) journal_->rethrow(); // the first record that could not be written
  }

private:
  // next() found no completion ready: moves the pool on until one is. A sub-master's job of its
  // group tells the master it is alive meanwhile (keep_alive.hpp; elsewhere keep_alive() does
  // nothing).
  FOREMAN_DETAIL_COLD void wait_for_completion() {
    if (store_.kept() == 0)
      throw error("next() on a job with no task pending: every submitted task was taken or cancelled");
    while (completed_.empty()) {
      refuse_if_broken();
      advance(true);
      keep_alive();
    }
  }

  // A job that ended with tasks unfinished (an exception broke it, see guarded()) has nothing
  // more to give: waiting for them would never end.
  void refuse_if_broken() const {
    if (!open_ && unfinished() > 0)
      throw error("this job ended with an exception (" + *pool_.broken + ") before " + std::to_string(unfinished()) +
                  " of its tasks completed; they never will");
  }

  // Hands the scheduler the tickets submitted since it was last told (submit() tells it at once
  // only when a worker waits for work): before the loop moves on, a cancellation, the end.
  void release() {
    const ticket end = store_.issued();
    if (released_ == end || !loop_) return;
    loop_->tickets().add_range(released_, static_cast<std::size_t>(end - released_));
    released_ = end;
    guarded([&] { loop_->work_added(); });
  }

  // Tasks submitted, neither finished nor cancelled.
  std::size_t unfinished() const { return store_.kept() - ready_; }

  // Hands filed ticket t's value (or failure) to f (take_in_order()), then forgets it.
  template <class F>
  bool hand_out(ticket t, typename store_type::item it, F& f) {
    --ready_;
    std::optional<task_failure> failure = store_.take_failure(t);
    // Erased even when f throws: its completion was handed out. (f adds no task: `it` stays valid.)
    struct erase_after {
      store_type& store;
      ticket t;
      typename store_type::item it;
      ~erase_after() { store.erase(t, it); }
    } erase{store_, t, it};
    auto& e = **it;
    return f(t, e.record.worker, e.record.seconds, e.result, failure ? &*failure : nullptr);
  }

  // Moves the pool on: one pass of the loop (and, when `wait` and nothing happened, a pause), or
  // in a pool without workers the next task run here.
  void advance(bool wait) {
    if (!open_) return;
    if (!loop_) {
      if (local_queue_.unsent() > 0) run_one_locally();
      return;
    }
    submitted_since_pass_ = 0;
    release();
    guarded([&] {
      if (loop_->step() == loop_type::pass::idle && wait)
        idle_.pause();
      else
        idle_.reset();
    });
  }

  // A long run of submissions: one pass of the loop if submissions_per_pass were made since the
  // last, or pass_interval has gone by.
  FOREMAN_DETAIL_COLD void pass_if_due() {
    const auto now = std::chrono::steady_clock::now();
    if (submitted_since_pass_ < submissions_per_pass && now - last_pass_ < pass_interval) return;
    last_pass_ = now;
    advance(false);
  }

  void run_one_locally() {
    const ticket t = local_queue_.take(1);
    const typename store_type::item it = store_.item_of(t);
    auto& e = **it;
    invocation call;
    local_->call(e.task, e.result, call, clock_);
    e.record.worker = 0;
    e.record.seconds = call.seconds;
    e.record.failed = !call.ok;
    e.record.attempts = 1;
    if (!call.ok) {
      e.result = Result{};
      store_.fail(task_failure{static_cast<std::size_t>(t), 0, call.error_type, call.error_message});
    }
    store_.finish(it);
    filed(t, e, std::chrono::steady_clock::now());
  }

  // A task the journal holds: its completion is ready at once, from worker -1, and it is never
  // sent (nor recorded again).
  ticket restore(Task task, Result value) {
    if (loop_) release(); // the tickets before it are sent, not this one
    const ticket t = store_.add(std::move(task));
    released_ = t + 1;
    store_.result(t) = std::move(value);
    job_record& record = store_.record(t);
    record.replayed = true;
    store_.finish(t);
    if (!in_order_) completed_.push(t);
    ++ready_;
    ++pool_.info->replayed;
    if (records_) {
      if (pool_.info->tasks.size() <= t) pool_.info->tasks.resize(static_cast<std::size_t>(t) + 1);
      pool_.info->tasks[t] = record.to_task_record();
    }
    return t;
  }

  // Task t's result or failure was filed (`when`: when its reply arrived), into its entry `e`:
  // its completion is ready, and the run's counts, totals, progress and (for a timeline) records
  // learn of it; a successful result is recorded in the journal, if the job has one.
  FOREMAN_DETAIL_INLINE void filed(ticket t, const typename store_type::entry& e,
                                   std::chrono::steady_clock::time_point when) {
    if (!in_order_) completed_.push(t);
    ++ready_;
    const bool failed = e.record.failed; // a failure was filed with it
    if (journal_ && !failed) journal_->record(t, e.task, e.result);
    run_info& info = *pool_.info;
    info.failures += failed;
    const auto rank = static_cast<std::size_t>(std::max(0, e.record.worker));
    if (rank >= info.totals.size()) info.totals.resize(rank + 1);
    worker_totals& sums = info.totals[rank];
    ++sums.tasks;
    sums.failed += failed;
    sums.busy_seconds += e.record.seconds;
    if (records_) {
      if (info.tasks.size() <= t) info.tasks.resize(static_cast<std::size_t>(t) + 1);
      info.tasks[t] = e.record.to_task_record();
      if (failed) failures_.push_back(*store_.failure(t));
      observer_.task_done(info, static_cast<std::size_t>(t), when);
    } else if (progress_) {
      observer_.task_done(failed, info.lost_workers.size(), when);
    }
  }

  FOREMAN_DETAIL_INLINE completion<Result> take() {
    const ticket t = completed_.pop();
    --ready_;
    const typename store_type::item it = store_.item_of(t);
    auto& e = **it;
    std::optional<task_failure> failure = store_.take_failure(t);
    completion<Result> c{t, e.record.worker, e.record.seconds,
                         failure ? outcome<Result>(std::move(*failure)) : outcome<Result>(std::move(e.result))};
    store_.erase(t, it);
    return c;
  }

  // Runs `f` on the loop; an exception that leaves it (not a worker's failure: those are handled
  // inside) ends the job on the workers and makes the pool unusable, then propagates.
  template <class F>
  void guarded(F&& f) {
    try {
      f();
    } catch (...) {
      fail_hard();
      throw;
    }
  }

  void fail_hard() noexcept {
    if (!open_) return;
    try {
      *pool_.broken = describe_current_exception();
    } catch (...) {
    }
    if (loop_) loop_->end_early();
    end_of_job();
  }

  void end_of_job() noexcept {
    open_ = false;
    plain_submit_ = false;
    if (journal_) journal_->close(); // keeps its error for close() to throw
    pool_.info->wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    *pool_.running = false;
    loop_.reset();
    try {
      std::sort(failures_.begin(), failures_.end(),
                [](const task_failure& a, const task_failure& b) { return a.index < b.index; });
      observer_.run_ended(*pool_.info, failures_); // progress's last line, timeline files
    } catch (...) {
      // The picture of a run matters less than ending it.
    }
  }

  job_binding pool_;
  options opt_;
  std::unique_ptr<local_function<Task, Result>> local_;
  std::chrono::steady_clock::time_point started_;
  store_type store_;
  ticket_queue completed_; // filed, not yet taken, in the order filed (a chunk's: one run)
  std::size_t ready_ = 0;  // filed, not yet taken
  ticket released_ = 0;    // tickets from here on are in the store but not yet in the scheduler
  bool in_order_ = false;  // hand_out_in_order(): completed_ is not kept
  on_done_fn on_done_{this};
  run_observer observer_;              // progress, timeline (with records: see run_info::tasks)
  std::vector<task_failure> failures_; // with records, for the timeline
  std::unique_ptr<loop_type> loop_;
  std::unique_ptr<job_journal<Task, Result>> journal_; // options::checkpoint
  scheduler local_queue_; // a pool without workers: the order in which the master runs the tasks
  task_clock clock_;
  idle_backoff idle_;
  bool records_ = observer_.keeps_records(); // per-task records (a timeline was asked for)
  bool progress_ = observer_.shows_progress();
  // During a long run of submissions, a pass of the loop every submissions_per_pass, or once
  // pass_interval has gone by since the last one (the master's own work between submissions
  // counts), checked every submissions_per_check. 16,384 tiny tasks are what two workers hold
  // at once in automatic chunks (2 in flight of at most 4,096): fewer a pass left them waiting
  // for the next (bench tiny job at -n 3: 0.87-0.91x run() with a pass every 4,096, 0.90-0.92x
  // with 16,384, alternating); the interval bounds that wait when submitting is slow.
  static constexpr unsigned submissions_per_check = 512;
  static constexpr unsigned submissions_per_pass = 16384;
  static constexpr std::chrono::milliseconds pass_interval{1};
  unsigned submitted_since_pass_ = 0;                  // submit() calls since the loop's last pass
  std::chrono::steady_clock::time_point last_pass_{}; // when pass_if_due() last moved the loop
  bool open_ = true;
  // submit()'s inline case applies: open, with workers, without a journal (cleared by end_of_job()).
  bool plain_submit_ = false;
};

} // namespace detail

/// A job of a master_worker pool: a run that stays open while the master submits tasks one by one
/// and takes their completions as they arrive, in completion order. Start it with
/// master_worker::start() on every rank; on a worker, start() serves the job's tasks and returns
/// once the master ends the job, with a job on which is_master() is false and nothing else may be
/// called.
///
/// On the master, a task submitted from the loop that takes completions (work that creates work)
/// goes to the first free worker at once: there is no generation barrier, and no thread.
///
/// @code
/// auto job = pool.start([](const node& n) { return expand(n); });
/// if (job.is_master()) {
///   job.submit(root);
///   while (job.pending() > 0) {
///     foreman::completion<children> c = job.next();
///     for (const node& child : c.result.value()) job.submit(child);
///   }
/// } // the job ends on the workers here (close(), or the destructor)
/// @endcode
///
/// A job is movable, not copyable. Its destructor on the master cancels what is left and ends the
/// job on the workers, also when an exception leaves the master's code; it never throws. The pool
/// serves one run or job at a time: run() or start() while a job is open throws error.
///
/// Failures behave as in run(): a task that throws completes with a failed outcome; a lost
/// worker's tasks are sent again (options::max_attempts, options::task_timeout); with no live
/// worker left, every task fails with "foreman::worker_lost". options::progress shows the tasks
/// done and the rate (the total is not known). master_worker::last_run() and report() describe the
/// job once it is closed: its counters, losses and per-rank sums (run_info::totals); per-task
/// records (run_info::tasks, by ticket) and the timeline files only when a timeline is asked for.
/// With options::checkpoint, each successful result is recorded in a journal under its ticket with
/// its task's fingerprint (detail/job_journal.hpp): a rerun that submits the same tasks in the same
/// order gets each recorded result at submit(), as a completion ready at once (worker -1, its
/// record `replayed`), without running the task; a task submitted under a ticket the journal holds
/// for another task is refused (submit() throws error, nothing is submitted).
template <class Task, class Result>
class job {
public:
  /// An inert job: what start() returns on a worker.
  job() = default;
  explicit job(std::unique_ptr<detail::job_core<Task, Result>> core) : core_(std::move(core)) {}
  job(job&&) noexcept = default;
  job& operator=(job&& other) noexcept {
    core_ = std::move(other.core_);
    return *this;
  }

  /// True on the master, where the job's other calls may be made.
  bool is_master() const noexcept { return core_ != nullptr; }
  /// Whether tasks may still be submitted: on the master, until close() or an exception ended it.
  bool is_open() const noexcept { return core_ && core_->open(); }

  /// Hands `task` to the pool; returns its ticket: 0 for the first submitted, then 1, 2, ...
  /// Among unsent tasks, a higher `priority` goes first; equal priorities go in ticket order
  /// (tasks taken back from a lost worker go before all). Never waits for a worker.
  /// @throws error when the job is closed; when its journal (options::checkpoint) holds another
  ///         task under this ticket (nothing is submitted); mpi_error, error when the pool broke
  ///         (see run())
  FOREMAN_DETAIL_INLINE std::uint64_t submit(Task task, int priority = 0) {
    return master().submit(std::move(task), priority);
  }

  /// The next completion, waiting for one if none has arrived. Completions come in the order the
  /// master filed them, whatever their tickets.
  /// @throws error when no task is pending (every submitted task was taken or cancelled)
  FOREMAN_DETAIL_INLINE completion<Result> next() { return master().next(); }

  /// A completion that has arrived, or nullopt; moves the pool on once (sends, receives), never
  /// waits. Call it in a loop that does other work.
  std::optional<completion<Result>> try_next() { return master().try_next(); }

  /// Tasks submitted whose completion was not yet taken (cancelled ones excluded): running,
  /// waiting to be sent, or arrived (ready()).
  std::size_t pending() const { return core_ ? core_->pending() : 0; }
  /// Completions that have arrived and wait for next() or try_next().
  std::size_t ready() const { return core_ ? core_->ready() : 0; }

  /// Drops every task that has not completed: those not yet sent are forgotten, the results of
  /// those running are discarded when they arrive, and each worker skips the rest of the tasks it
  /// holds (a task already running finishes first: foreman does not interrupt user code).
  /// Completions that had arrived stay ready. The job stays open: tasks submitted afterwards run.
  /// A dropped task whose body is still being sent (a vector or string of 32 KiB or more is sent
  /// from the task itself) is kept with that send until the send is over.
  /// Returns how many tasks were dropped.
  std::size_t cancel() { return master().cancel(); }

  /// Waits for every pending task to complete, then ends the job on the workers (their start()
  /// returns). Completions not yet taken can still be taken with next() and try_next().
  /// Idempotent. @throws as next(); error when the journal (options::checkpoint) could not record
  /// a result (the first such error; the job ran to its end)
  void close() { master().close(); }

private:
  friend struct detail::job_access;

  FOREMAN_DETAIL_INLINE detail::job_core<Task, Result>& master() const {
    if (!core_) not_master();
    return *core_;
  }
  [[noreturn]] FOREMAN_DETAIL_COLD static void not_master() {
    throw error("this call is for the master's job: on a worker, start() returns once the job has ended");
  }

  std::unique_ptr<detail::job_core<Task, Result>> core_;
};

} // namespace foreman
