#pragma once
/// @file master_worker.hpp
/// The facade: a pool of MPI ranks where rank 0 hands out tasks and the others run them.

#include <foreman/detail/group_layout.hpp>
#include <foreman/detail/handshake.hpp>
#include <foreman/detail/invoke.hpp>
#include <foreman/detail/journal.hpp>
#include <foreman/detail/launch_check.hpp>
#include <foreman/detail/master_loop.hpp>
#include <foreman/detail/observer.hpp>
#include <foreman/detail/grouped_run.hpp>
#include <foreman/detail/relay.hpp>
#include <foreman/detail/shared_value.hpp>
#include <foreman/detail/stream.hpp>
#include <foreman/detail/supervision.hpp>
#include <foreman/detail/task_store.hpp>
#include <foreman/detail/type_name.hpp>
#include <foreman/detail/value_fingerprint.hpp>
#include <foreman/detail/worker_loop.hpp>
#include <foreman/errors.hpp>
#include <foreman/hierarchy.hpp>
#include <foreman/job.hpp>
#include <foreman/options.hpp>
#include <foreman/outcome.hpp>
#include <foreman/report.hpp>
#include <foreman/serialization.hpp>
#include <foreman/shared.hpp>

#include <boost/mpi/communicator.hpp>
#include <boost/mpi/environment.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace foreman {

namespace detail {
template <class F, class Result>
inline constexpr bool is_value_callback_v = std::is_invocable_v<F&, std::size_t, int, const Result&>;
template <class F, class Result>
inline constexpr bool is_outcome_callback_v = std::is_invocable_v<F&, std::size_t, int, const outcome<Result>&>;

struct no_callback {
  template <class... Args>
  void operator()(Args&&...) const noexcept {}
};

// The top layer of a grouped pool is a pool of batches, which is never grouped again.
struct no_pool {
  void shutdown() {}
};
} // namespace detail

/// A pool of MPI ranks in which rank 0 (the master) hands out tasks and every other rank (a
/// worker) runs a function on them. Construct it on every rank of a communicator and call
/// run() on every rank; the master receives the results in task order.
///
/// The pool works on its own duplicate of the communicator, so its messages never mix with
/// the caller's or another pool's. It may serve any number of run() calls in a row.
/// Without workers (a communicator of size 1, e.g. a program started without mpirun) the
/// master runs every task itself.
///
/// Threads: foreman never initializes MPI. Under the thread level the program asked for, a worker
/// may keep its last reply's sends moving from a thread of its own while the user's function
/// runs (options::send_thread): by default only under MPI_THREAD_MULTIPLE; with
/// send_thread_policy::on under MPI_THREAD_SERIALIZED too, and the function must then not call
/// MPI. Below that, no thread is made.
///
/// @code
/// boost::mpi::environment env(argc, argv);
/// foreman::master_worker<int, long> pool;
/// std::vector<long> squares = pool.run(std::vector<int>{1, 2, 3}, [](int x) { return long(x) * x; });
/// if (pool.is_master()) for (long s : squares) std::cout << s << '\n';
/// @endcode
///
/// @tparam Task     what a worker receives; serializable (see is_serializable) and default constructible
/// @tparam Result   what a worker returns; serializable and default constructible
/// @tparam Dispatch flat_dispatch (the default: one master serves every worker), or
///                  hierarchical_dispatch, whose pools may group their workers under sub-masters
///                  (foreman::hierarchy). A separate type because its grouped runs compile into
///                  about twice the code of a flat pool's (examples/sum.cpp: 12.7 s against 26 s
///                  at -O2); flat pools pay nothing for it.
template <class Task, class Result, class Dispatch>
class master_worker {
  // A view first: it is no more serializable than any other type foreman refuses, but the fix
  // differs, so the generic message below stays silent for it.
  static_assert(!detail::holds_view_v<Task>,
                "foreman: Task must own what it holds: a raw pointer, std::string_view, std::span or "
                "std::reference_wrapper (also inside a container, std::pair, std::tuple, std::optional or "
                "std::variant) refers to memory of the sending process; send the values themselves (std::string "
                "for a string_view, std::vector for a span, the pointed-to object for a pointer)");
  static_assert(!detail::holds_view_v<Result>,
                "foreman: Result must own what it holds: a raw pointer, std::string_view, std::span or "
                "std::reference_wrapper (also inside a container, std::pair, std::tuple, std::optional or "
                "std::variant) refers to memory of the sending process; send the values themselves (std::string "
                "for a string_view, std::vector for a span, the pointed-to object for a pointer)");
  // A plain struct sent as its bytes whose fields hold a pointer or a view (not the views above,
  // whose fix differs): the same address would arrive, and the fix is the struct's serialize().
  static_assert(detail::holds_view_v<Task> || !detail::sends_address_as_bytes_v<Task>,
                "foreman: Task is sent as its bytes, which hold an address: a class without serialize() travels as "
                "its bytes (also inside a container, std::array, std::optional or std::variant), and a field of it, "
                "at any depth, is a pointer (to an object, a function or a member), std::string_view, std::span or "
                "std::reference_wrapper, which means nothing in another process; write a serialize() member or free "
                "function for that class (it then sends the pointed-to values), or hold the values themselves");
  static_assert(detail::holds_view_v<Result> || !detail::sends_address_as_bytes_v<Result>,
                "foreman: Result is sent as its bytes, which hold an address: a class without serialize() travels as "
                "its bytes (also inside a container, std::array, std::optional or std::variant), and a field of it, "
                "at any depth, is a pointer (to an object, a function or a member), std::string_view, std::span or "
                "std::reference_wrapper, which means nothing in another process; write a serialize() member or free "
                "function for that class (it then sends the pointed-to values), or hold the values themselves");
  static_assert(is_serializable_v<Task> || detail::holds_view_v<Task> || detail::sends_address_as_bytes_v<Task>,
                "foreman: Task must be serializable with Boost.Serialization: give it a serialize(Archive&, "
                "unsigned) member or a free serialize() overload, or make it trivially copyable");
  static_assert(is_serializable_v<Result> || detail::holds_view_v<Result> || detail::sends_address_as_bytes_v<Result>,
                "foreman: Result must be serializable with Boost.Serialization: give it a serialize(Archive&, "
                "unsigned) member or a free serialize() overload, or make it trivially copyable");
  static_assert(std::is_default_constructible_v<Task> && std::is_default_constructible_v<Result>,
                "foreman: Task and Result must be default constructible: workers deserialize into a "
                "default-constructed object");
  static constexpr bool types_ok_ = is_serializable_v<Task> && is_serializable_v<Result> &&
                                    std::is_default_constructible_v<Task> && std::is_default_constructible_v<Result>;
  static_assert(std::is_same_v<Dispatch, flat_dispatch> || std::is_same_v<Dispatch, hierarchical_dispatch>,
                "foreman: the third template argument of master_worker is foreman::flat_dispatch or "
                "foreman::hierarchical_dispatch");
  // Whether this pool's runs may be grouped (a pool of batches, the top layer of a grouped one,
  // never is).
  static constexpr bool can_group_ = std::is_same_v<Dispatch, hierarchical_dispatch> && !detail::is_batch_v<Task>;

public:
  using task_type = Task;
  using result_type = Result;

  /// Builds the pool; collective over `comm`. Checks that every rank uses the same Task and
  /// Result types and protocol version. A process alone in MPI_COMM_WORLD whose launcher says it
  /// started several (each then runs every task itself: an MPI library that did not join the
  /// launcher's job) prints a warning on standard error naming the likely causes.
  /// @param comm    the ranks of the pool; its rank 0 becomes the master
  /// @throws handshake_error on every rank when the ranks disagree
  explicit master_worker(const boost::mpi::communicator& comm = boost::mpi::communicator())
      : master_worker(comm, hierarchy::automatic(), 0) {}

  /// As master_worker(comm), for a pool of hierarchical_dispatch: `layout` says whether its runs
  /// are grouped under sub-masters (foreman::hierarchy; the master's choice holds on every rank).
  /// hierarchy::automatic() is flat below 1,024 workers; FOREMAN_GROUP_SIZE on the master replaces
  /// it. Also collective over `comm` (the layers of a grouped pool are made here).
  template <class D = Dispatch, class = std::enable_if_t<std::is_same_v<D, hierarchical_dispatch>>>
  master_worker(const boost::mpi::communicator& comm, hierarchy layout) : master_worker(comm, layout, 0) {}

private:
  master_worker(const boost::mpi::communicator& comm, hierarchy layout, int)
      : comm_(errors_returned(boost::mpi::communicator(comm, boost::mpi::comm_duplicate))),
        peers_(detail::handshake<Task, Result>(comm_)) {
    pool_.id = peers_.front().pool;
    pool_.lost.assign(static_cast<std::size_t>(comm_.size()), 0);
    std::vector<std::uint64_t> machines; // not host names: namespaces of one machine share its cores
    for (const auto& peer : peers_) machines.push_back(detail::machine_of(peer));
    pool_.oversubscribed = detail::host_oversubscribed(machines, comm_.rank());
    if (is_master()) {
      // Each worker's process, watched where the master can prove it is that process (liveness.hpp).
      // FOREMAN_WATCH_PROCESSES=0 turns the watching off (then only task_timeout notices a
      // dead worker, as for one on another host).
      const char* watch = std::getenv("FOREMAN_WATCH_PROCESSES");
      const bool watching = watch == nullptr || std::string(watch) != "0";
      pool_.watches.resize(peers_.size());
      for (const auto& peer : peers_) pool_.pids.push_back(peer.identity.pid);
      for (std::size_t w = 1; watching && w < peers_.size(); ++w) {
        pool_.watches[w] = detail::process_watch::open(peers_[w].identity, peers_.front().identity);
        pool_.watching = pool_.watching || pool_.watches[w].watching();
      }
    }
    detail::watch_for_supervisor(is_master());
    if (comm_.size() == 1) { // alone: did the launcher mean it to be (detail/launch_check.hpp)?
      int world_size = 0;
      detail::check_mpi(MPI_Comm_size(MPI_COMM_WORLD, &world_size), "MPI_Comm_size");
      detail::warn_if_alone(world_size);
    }
    make_groups(layout);
  }

public:
  /// Closes the pool (see shutdown()). Never blocks on a worker that is not listening.
  ~master_worker() {
    try {
      shutdown();
    } catch (...) {
      // A destructor must not throw; the pool is gone either way.
    }
  }

  master_worker(const master_worker&) = delete;
  master_worker& operator=(const master_worker&) = delete;

  /// True on rank 0 of the communicator, the rank that receives the results.
  bool is_master() const noexcept { return comm_.rank() == 0; }
  /// This process's rank in the pool's communicator.
  int rank() const noexcept { return comm_.rank(); }
  /// Number of worker ranks: size - 1, or 0 when the master is alone (it then runs every task
  /// itself). In a grouped pool the sub-masters are among them, but run() gives them no task
  /// (jobs and streams do: they are served flat).
  int worker_count() const noexcept { return comm_.size() - 1; }
  /// The sub-masters of a grouped pool, in group order (empty when flat; see foreman::hierarchy).
  std::vector<int> sub_masters() const {
    std::vector<int> ranks;
    for (int g = 0; g < layout_.groups(); ++g) ranks.push_back(layout_.first(g));
    return ranks;
  }
  /// The pool's private communicator (a duplicate of the one it was built on).
  const boost::mpi::communicator& communicator() const noexcept { return comm_; }

  /// Runs `fn` on every task. Called by every rank.
  ///
  /// On the master, returns the results in task order: element i is fn(tasks[i]), whatever
  /// order the tasks completed in. On a worker, serves tasks until the master ends the run and
  /// returns an empty vector; the tasks a worker passes are ignored.
  ///
  /// @param tasks the work, read on the master only
  /// @param fn    callable as `Result(const Task&)`; may throw
  /// @param opt   scheduling options, read on the master only
  /// @throws task_error on the master when any task threw, after every other task completed
  /// @throws error on the master when options::checkpoint names a file that cannot be used
  ///         (not a journal, damaged header, another task list or other types, an I/O error);
  ///         the workers' run() then returns normally
  /// @throws handshake_error, error on protocol violations (e.g. ranks calling run() a
  ///         different number of times) or after shutdown()
  /// @throws error at once when called from inside a run of this pool (from `fn` or from an
  ///         on_result callback), or while a job of this pool is open (start()): a pool serves
  ///         one run or job at a time. From `fn`, that task fails with it; from a callback, the
  ///         outer run() rethrows it once its run has completed.
  /// @throws error when a run of this pool ended with an exception other than task_error (a
  ///         protocol error, an MPI failure): that run() ends the run on the workers before it
  ///         rethrows, and every later run() throws error naming that first cause, on the master
  ///         at once (the workers waiting in their run() are let go as by shutdown()).
  ///
  /// A task or result that cannot be serialized or deserialized (its serialize() throws, a
  /// polymorphic type is not registered, an allocation fails) fails that task alone, with type
  /// "foreman::serialization_error". Values of any size travel (over 256 MiB in pieces).
  template <class Fn>
  std::vector<Result> run(const std::vector<Task>& tasks, Fn&& fn, const options& opt = {}) {
    detail::no_callback none;
    return run(tasks, std::forward<Fn>(fn), none, opt);
  }

  /// As run(tasks, fn, opt), and calls `on_result` on the master as each task completes, in
  /// completion order: as `on_result(index, worker, const Result&)` for each success, or as
  /// `on_result(index, worker, const outcome<Result>&)` for every task, successes and failures.
  /// If `on_result` throws, it is not called again, the run still completes on every rank, and
  /// run() then rethrows that exception on the master.
  template <class Fn, class OnResult, class = std::enable_if_t<!std::is_convertible_v<OnResult, const options&>>>
  std::vector<Result> run(const std::vector<Task>& tasks, Fn&& fn, OnResult&& on_result, const options& opt = {}) {
    std::vector<Result> results;
    execute(tasks, fn, on_result, opt, results);
    if (!failures_.empty()) throw task_error(failures_);
    return results;
  }

  /// As run(tasks, fn, opt), but writes the results into `results` instead of a new vector, and,
  /// when Result is a std::vector or std::basic_string of trivially copyable elements, receives
  /// each result into the storage the element at its index already holds: a run whose results
  /// have the sizes of the previous run's allocates and zeroes nothing for them (for large
  /// results, this is where the time goes; see docs/performance.md). Other Result types are
  /// assigned afresh. On the master `results` ends with tasks.size() elements (a failed task's
  /// element is Result{}); on workers it is left empty.
  /// @throws the same as run()
  template <class Fn>
  void run_into(const std::vector<Task>& tasks, Fn&& fn, std::vector<Result>& results, const options& opt = {}) {
    detail::no_callback none;
    if (!is_master()) results.clear();
    execute(tasks, fn, none, opt, results, true);
    if (!failures_.empty()) throw task_error(failures_);
  }

  /// As run(), but never throws task_error: element i holds fn(tasks[i]) or the failure it
  /// raised. Empty on workers.
  template <class Fn>
  std::vector<outcome<Result>> run_outcomes(const std::vector<Task>& tasks, Fn&& fn, const options& opt = {}) {
    detail::no_callback none;
    return run_outcomes(tasks, std::forward<Fn>(fn), none, opt);
  }

  /// As run_outcomes(tasks, fn, opt), with a per-task callback as for run().
  template <class Fn, class OnResult, class = std::enable_if_t<!std::is_convertible_v<OnResult, const options&>>>
  std::vector<outcome<Result>> run_outcomes(const std::vector<Task>& tasks, Fn&& fn, OnResult&& on_result,
                                            const options& opt = {}) {
    std::vector<Result> results;
    execute(tasks, fn, on_result, opt, results);
    std::vector<outcome<Result>> outcomes;
    if (!is_master()) return outcomes;
    outcomes.reserve(results.size());
    for (auto& r : results) outcomes.emplace_back(std::move(r));
    for (auto& f : failures_) outcomes[f.index] = outcome<Result>(f);
    return outcomes;
  }

  /// Starts a job (see job): a run that stays open while the master submits tasks and takes
  /// their completions as they arrive. Collective: called by every rank with its function.
  ///
  /// On the master, returns at once with the open job. On a worker, serves the job's tasks until
  /// the master closes the job (or its job object is destroyed), then returns an inert job
  /// (is_master() false). In a pool without workers the master keeps a copy of `fn` and runs each
  /// task itself when next() or try_next() asks for a completion.
  ///
  /// @param fn  callable as `Result(const Task&)` or `void(const Task&, Result&)`; may throw
  /// @param opt as for run(); read on the master (and `wait` on each rank). options::checkpoint
  ///            names the job's journal (see job): results recorded by ticket, given back at
  ///            submit() in a rerun that submits the same tasks in the same order
  /// @throws error as run() does when called inside an open run or job, after shutdown(), or on a
  ///         pool an earlier run broke; on the master when options::checkpoint names a file that
  ///         cannot be used (the job is then ended on the workers too)
  template <class Fn>
  job<Task, Result> start(Fn&& fn, const options& opt = {}) {
    using function = std::decay_t<Fn>;
    constexpr bool fn_ok = detail::is_task_function<function, Task, Result>::value;
    static_assert(fn_ok, "foreman: fn must be callable as Result(const Task&) (it accepts a const Task& and returns "
                         "a value convertible to Result) or as void(const Task&, Result&) (it writes the result); "
                         "given a value by with_shared(value, fn), as Result(const Task&, const S&) or "
                         "void(const Task&, const S&, Result&)");
    if constexpr (types_ok_ && fn_ok) {
      enter_run("start()");
      if (!is_master()) {
        struct run_guard {
          bool& running;
          ~run_guard() { running = false; }
        } guard{running_};
        serve(fn, opt);
        return job<Task, Result>();
      }
      info_.workers = worker_count();
      try {
        std::unique_ptr<detail::local_function<Task, Result>> local;
        if (worker_count() == 0)
          local = std::make_unique<detail::local_function_of<Task, Result, function>>(std::forward<Fn>(fn));
        // with_shared(): the value is encoded here, and sent to the workers as the job starts.
        auto shared = worker_count() > 0 ? detail::share(fn, pool_.id, run_) : nullptr;
        const detail::job_binding binding{
            comm_, run_, &pool_, &info_, &running_, &broken_, worker_count(), std::move(shared), journal_types()};
        return job<Task, Result>(
            std::make_unique<detail::job_core<Task, Result>>(binding, opt, std::move(local), &job_segments_));
      } catch (...) {
        running_ = false;
        throw;
      }
    } else {
      return job<Task, Result>();
    }
  }

  /// Runs `fn` on a stream of tasks in bounded memory: tasks are read from `source` only as
  /// needed, at most options::buffersize ahead of the results handed to `sink`, and no vector of
  /// all tasks or results is kept. Collective: called by every rank (workers ignore `source` and
  /// `sink` and serve until the stream ends).
  ///
  /// @param source callable as `std::optional<Task>()`, called on the master only; nullopt ends
  ///               the stream. (For an iterator range, see the overload below.)
  /// @param fn     as for run()
  /// @param sink   called on the master for each task, in task order (options::unordered: in
  ///               completion order), as `sink(std::uint64_t index, int worker, const Result&)`
  ///               for each success, or as `sink(index, worker, const outcome<Result>&)` for every
  ///               task; `index` counts the tasks from 0 in the order the source gave them. It may
  ///               return bool: false stops the stream (tasks not yet handed on are cancelled and
  ///               the source is not read further).
  /// @param opt    as for run(); options::buffersize bounds the tasks read ahead of the sink,
  ///               options::unordered hands results on in completion order
  /// @throws task_error on the master, after the stream ended, when tasks failed and the sink takes
  ///         values (an outcome sink sees the failures instead); with options::fail_fast the
  ///         first failure stops the stream
  /// @throws whatever `source` or `sink` throws, on the master, after the stream was cancelled
  ///         and ended on the workers; error, mpi_error as run()
  /// @throws error on the master when options::checkpoint names a file that cannot be used (as
  ///         run(); also a run()'s journal), before any task, the workers' call returning normally;
  ///         or when the source changed under the journal (a task at an index the journal holds
  ///         has another value): the source is read no further, the tasks before it complete and
  ///         reach the sink, then the error names the index
  ///
  /// With options::checkpoint the master records each successful result with its task's index
  /// and value fingerprint, in task order (also with options::unordered: see docs/api.md); run
  /// again over the same source, the tasks the journal holds are not sent, their recorded
  /// results go to the sink (worker -1) and last_run().replayed counts them. The journal is read
  /// back with one cursor per earlier run of the stream, so the memory bound holds on resume.
  ///
  /// options::progress and report() work as for a job (see job); per-task records and the
  /// timeline files are kept only when a timeline is asked for.
  template <class Source, class Fn, class Sink,
            class = std::enable_if_t<std::is_invocable_r_v<std::optional<Task>, Source&>>>
  void run_stream(Source&& source, Fn&& fn, Sink&& sink, const options& opt = {}) {
    using sink_type = detail::stream_sink<Result, std::remove_reference_t<Sink>>;
    static_assert(sink_type::takes_values || sink_type::takes_outcomes,
                  "foreman: the sink must be callable as (std::uint64_t index, int worker, const Result&) or "
                  "(std::uint64_t index, int worker, const foreman::outcome<Result>&)");
    options job_options = opt;
    job_options.checkpoint.clear(); // the stream keeps its own journal (stream_journal.hpp)
    job<Task, Result> stream = start(std::forward<Fn>(fn), job_options);
    if (!stream.is_master()) return;
    sink_type deliver(sink, opt.fail_fast);
    if (opt.checkpoint.empty()) {
      detail::drive_stream(stream, source, deliver, opt, worker_count());
    } else {
      detail::stream_journal<Task, Result> journal;
      try {
        journal.open(opt.checkpoint, journal_types(),
                     detail::journal_sync{opt.checkpoint_sync_every, opt.checkpoint_sync_interval});
      } catch (...) {
        stream.close(); // nothing was submitted: the workers' start() returns
        throw;
      }
      detail::drive_stream(stream, source, deliver, opt, worker_count(), journal);
      journal.close();
      info_.replayed = static_cast<std::size_t>(journal.restored());
      info_.checkpoint_dropped_bytes = journal.dropped_bytes();
      journal.rethrow();
    }
    if (!deliver.failures().empty()) throw task_error(std::move(deliver.failures()));
  }

  /// As run_stream(source, fn, sink, opt), the tasks read from the input range [first, last)
  /// one at a time, as they are needed (an input iterator suffices: a file read with
  /// std::istream_iterator, a generator's iterator).
  template <class InputIt, class Fn, class Sink>
  void run_stream(InputIt first, InputIt last, Fn&& fn, Sink&& sink, const options& opt = {}) {
    auto source = [&]() -> std::optional<Task> {
      if (!is_master() || first == last) return std::nullopt;
      std::optional<Task> task(*first);
      ++first;
      return task;
    };
    run_stream(source, std::forward<Fn>(fn), std::forward<Sink>(sink), opt);
  }

  /// Folds the results of a stream in task order, in bounded memory: returns, on the master,
  /// op(...op(op(init, fn(t0)), fn(t1))..., fn(tn)) over the tasks the source gives; `init` on
  /// the workers. Collective, as run_stream(). `op` is called as `R op(R accumulated, const
  /// Result&)` on the master, in task order, whatever order the tasks complete in (with
  /// options::unordered, in completion order: for an op that is associative and commutative).
  /// @throws task_error after the stream when tasks failed (their results are left out of the
  ///         fold); as run_stream() otherwise
  template <class Source, class Fn, class R, class Op,
            class = std::enable_if_t<std::is_invocable_r_v<std::optional<Task>, Source&>>>
  R reduce(Source&& source, Fn&& fn, R init, Op&& op, const options& opt = {}) {
    R accumulated = std::move(init);
    run_stream(
        std::forward<Source>(source), std::forward<Fn>(fn),
        [&](std::uint64_t, int, const Result& result) { accumulated = op(std::move(accumulated), result); }, opt);
    return accumulated;
  }

  /// As reduce(source, fn, init, op, opt), the tasks read from the input range [first, last)
  /// one at a time, as they are needed.
  template <class InputIt, class Fn, class R, class Op>
  R reduce(InputIt first, InputIt last, Fn&& fn, R init, Op&& op, const options& opt = {}) {
    R accumulated = std::move(init);
    run_stream(
        first, last, std::forward<Fn>(fn),
        [&](std::uint64_t, int, const Result& result) { accumulated = op(std::move(accumulated), result); }, opt);
    return accumulated;
  }

  /// Where each task of the last run ran and how long it took (on the master; empty on workers).
  const run_info& last_run() const noexcept { return info_; }

  /// The last run's report (wall time, throughput, per-worker load, failures); on the master.
  /// `pool.report().print(std::cout)` prints it as a table.
  run_report report() const { return run_report(info_); }

  /// Closes the pool: on the master, tells every worker whose process is not known to have
  /// ended, lost ones included, to leave (a worker waiting in run() returns), waiting at most 2 s
  /// for those messages to go out; on any rank, later run() calls throw. Idempotent. The master
  /// never waits long for a worker; a worker waits for the master's goodbye (it comes when the
  /// master destroys or shuts down its pool), answering as failures any tasks the master still
  /// sends. A lost worker may still run (hung) and would keep the job from ending: nothing is
  /// forced here. When MPI_Finalize starts on the master (the user's code is done), a lost worker
  /// whose process the master watches and that still runs gets 1 s more, then is killed
  /// (SIGKILL through its pidfd; FOREMAN_LOST_WORKERS=keep leaves it running); one that cannot be
  /// watched (another host) is named on standard error. Never MPI_Abort. See
  /// docs/reliability.md.
  void shutdown() {
    if (closed_) return;
    closed_ = true;
    if (boost::mpi::environment::finalized()) return;
    // A grouped pool's layers first, top down: the master lets the sub-masters go, each
    // sub-master its workers; then the whole pool's goodbye below.
    if (top_) top_->shutdown();
    if (group_) group_->shutdown();
    if (!is_master()) {
      // Leave only with the master's goodbye in hand: see worker_loop::close().
      auto refuse = [rank = comm_.rank()](const Task&) -> Result {
        throw error("the pool was already destroyed or shut down on worker " + std::to_string(rank) +
                    ": every rank must call run() the same number of times");
      };
      if constexpr (types_ok_) {
        detail::task_runner_of<Task, Result, decltype(refuse)> runner(refuse, &worker_store_.shared);
        detail::worker_loop<Task, Result>(comm_, pool_.id, run_, runner, worker_store_).close();
      }
      return;
    }
    detail::broadcast_control(comm_, pool_, detail::tag::shutdown, run_);
    // Every worker answers the goodbye at once, unless it hangs (a lost one): 2 s at most.
    end_lost_workers(detail::collect_goodbyes(comm_, pool_, std::chrono::seconds(2)));
    detail::discard_pending(comm_); // late replies of lost workers must not outlive the pool
  }

private:
  // Failing MPI calls on the pool's communicator return their error, which foreman checks
  // (detail/mpi_check.hpp), whatever handler the communicator it was built on had: a duplicate
  // inherits it, and MPI_ERRORS_ARE_FATAL would end the job where a worker could be lost instead.
  static boost::mpi::communicator errors_returned(boost::mpi::communicator comm) {
    detail::check_mpi(MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
    return comm;
  }

  // A lost worker may still run (hung, or only slow) and keep the job from ending. It was sent
  // the goodbye with the others; one the master watches is handed to lost_at_finalize, which
  // ends it at MPI_Finalize if it still runs then; one it cannot watch is named.
  // A lost worker that answered the goodbye is leaving on its own: it is neither named nor ended.
  // The top layer of a grouped pool leaves its lost sub-masters to the whole pool, in which they
  // are lost too, on the same master: named and ended once, as sub-masters (peer_name()). A worker
  // that its group lost in a grouped run is its sub-master's to name and end, as its group's pool
  // ends (the sub-master runs on the group's host, where the master may not), unless the master
  // lost that sub-master too or only the master can watch the worker (leaves_to_sub_master()). One
  // lost in a job, which a grouped pool serves flat, is the whole pool's. (A sub-master that the
  // master declared lost while it ran on, only slow, names its group's lost workers as well.)
  void end_lost_workers(const std::vector<char>& answered) {
    if (pool_.layer == detail::pool_state::layer_kind::top) return;
    for (int w = 1; w < comm_.size(); ++w) {
      if (!pool_.lost[static_cast<std::size_t>(w)] || pool_.exited(w) || answered[static_cast<std::size_t>(w)] ||
          leaves_to_sub_master(w))
        continue;
      detail::process_watch& watch = pool_.watches[static_cast<std::size_t>(w)];
      const std::string name = "lost " + peer_name(w) + " (pid " +
                               std::to_string(pool_.pids[static_cast<std::size_t>(w)]) + ")";
      if (watch.watching()) {
        detail::announce(name + " still runs; it was asked to leave" +
                         (detail::lost_at_finalize::kills()
                              ? "; if it still runs when MPI_Finalize starts here, it is killed 1 s later"
                              : ""));
        detail::lost_at_finalize::add(peer_name(w), pool_.pids[static_cast<std::size_t>(w)], std::move(watch));
      } else {
        detail::announce(name + " runs on another host or in another pid namespace and may still run; it was asked "
                                "to leave; the job ends when it does");
      }
    }
  }

  // Whether the whole pool of a grouped one leaves lost worker w to its sub-master: its group lost
  // it in a grouped run, the sub-master is neither lost nor seen to end, and it can watch w's
  // process (same kernel and pid namespace) or the master cannot either.
  bool leaves_to_sub_master(int w) {
    if (static_cast<std::size_t>(w) >= lost_in_group_.size() || !lost_in_group_[static_cast<std::size_t>(w)])
      return false;
    const int g = layout_.group_of(w);
    if (g < 0) return false;
    const int s = layout_.first(g);
    if (pool_.lost[static_cast<std::size_t>(s)] || pool_.exited(s)) return false;
    const bool sub_master_can_watch =
        peers_[static_cast<std::size_t>(w)].identity.shares_pids_with(peers_[static_cast<std::size_t>(s)].identity);
    return sub_master_can_watch || !pool_.watches[static_cast<std::size_t>(w)].watching();
  }

  // How this pool's messages name rank w: a grouped pool's sub-master as such, any other rank as
  // its layer names it (pool_state::peer()).
  std::string peer_name(int w) const {
    return layout_.grouped() && layout_.is_sub_master(w) ? "sub-master " + std::to_string(w) : pool_.peer(w);
  }

  // The checks and the set-up every run and job starts with: refused when called from inside a
  // run of this pool, on a broken pool, or after shutdown(). Checked before anything of the run in
  // progress is touched: a nested run would reset its results and records, and its messages would
  // be taken for the outer run's. Sets running_, which the caller clears when the run ends.
  void enter_run(const char* call) {
    if (running_)
      throw error(std::string(call) +
                  " called from inside a run or job of this pool (from a task, an on_result callback, or while a "
                  "job is open); a pool serves one run or job at a time");
    if (!broken_.empty()) {
      if (is_master()) shutdown(); // lets go the workers waiting for this run
      throw error("this pool can no longer be used: an earlier run ended with an exception (" + broken_ +
                  "); build a new pool");
    }
    if (closed_) throw error(std::string(call) + " called on a pool after shutdown()");
    running_ = true;
    ++run_;
    failures_.clear();
    info_ = run_info{};
  }

  // A worker's part of a run or job: serves its tasks until the master ends it.
  template <class Fn>
  void serve(Fn& fn, const options& opt) {
    const detail::idle_backoff idle(detail::effective_wait_policy(opt.wait), pool_.oversubscribed);
    try {
      // A sub-master's worker of the top layer never has one (FOREMAN_SEND_THREAD included): its
      // relay calls MPI while it runs, and sends progress notes (keep_alive.hpp).
      const bool background_sends =
          !detail::notes_during_task<Task> &&
          detail::sends_in_background(detail::effective_send_thread_policy(opt.send_thread), detail::mpi_thread_level());
      detail::task_runner_of<Task, Result, Fn> runner(fn, &worker_store_.shared);
      if (detail::worker_loop<Task, Result>(comm_, pool_.id, run_, runner, worker_store_, idle, background_sends)
              .run() ==
          detail::worker_exit::pool_closed)
        closed_ = true;
    } catch (...) {
      broken_ = detail::describe_current_exception();
      throw;
    }
  }

  template <class Fn, class OnResult>
  void execute(const std::vector<Task>& tasks, Fn& fn, OnResult& on_result, const options& opt,
               std::vector<Result>& results, bool reuse = false) {
    constexpr bool fn_ok = detail::is_task_function<Fn, Task, Result>::value;
    static_assert(fn_ok, "foreman: fn must be callable as Result(const Task&) (it accepts a const Task& and returns "
                         "a value convertible to Result) or as void(const Task&, Result&) (it writes the result); "
                         "given a value by with_shared(value, fn), as Result(const Task&, const S&) or "
                         "void(const Task&, const S&, Result&)");
    constexpr bool callback_ok = std::is_same_v<OnResult, detail::no_callback> ||
                                 detail::is_value_callback_v<OnResult, Result> ||
                                 detail::is_outcome_callback_v<OnResult, Result>;
    static_assert(callback_ok, "foreman: on_result must be callable as (std::size_t index, int worker, const "
                               "Result&) or (std::size_t index, int worker, const foreman::outcome<Result>&)");
    if constexpr (types_ok_ && fn_ok && callback_ok) {
      enter_run("run()");
      struct run_guard {
        bool& running;
        ~run_guard() { running = false; }
      } guard{running_};
      if (!is_master()) {
        if (layout_.grouped())
          serve_grouped(fn, opt);
        else
          serve(fn, opt);
        return;
      }
      detail::run_observer observer(tasks.size(), opt, pool_.is_layer()); // timing, progress, timeline
      info_.workers = worker_count();
      info_.sub_masters = sub_masters();
      if (reuse && detail::body_traits<Result>::capable)
        results.resize(tasks.size()); // each element's storage is received into again
      else
        results.assign(tasks.size(), Result{});
      info_.tasks.assign(tasks.size(), task_record{});
      // A throwing callback (or a failing journal) must not abandon the workers mid-run: keep the
      // first exception, finish the run, then rethrow it.
      std::exception_ptr callback_error;
      detail::journal_file journal;
      std::vector<char> payload;
      // The journal records every finished result whatever the callback does: a callback that
      // threw is not called again, but the results that follow are still appended. A journal
      // that failed to write closed itself (nothing more is appended); a record it refused (too
      // long) is skipped alone. The first exception of either kind is rethrown after the run.
      auto on_done = [&, callback_threw = false](std::size_t index,
                                                 std::chrono::steady_clock::time_point when) mutable {
        if (journal.is_open() && !info_.tasks[index].failed && !info_.tasks[index].replayed) {
          try {
            payload.clear();
            detail::encoder(payload).put(results[index]);
            journal.append(index, payload);
          } catch (...) {
            if (!callback_error) callback_error = std::current_exception();
          }
        }
        observer.task_done(info_, index, when);
        if (callback_threw) return;
        try {
          notify(on_result, index, results);
        } catch (...) {
          callback_threw = true;
          if (!callback_error) callback_error = std::current_exception();
        }
      };
      if (!opt.checkpoint.empty()) {
        try {
          replay(tasks, opt, journal, results);
        } catch (...) {
          // The workers are waiting for this run: end it before reporting.
          end_run_unstarted(fn);
          throw;
        }
        const auto now = std::chrono::steady_clock::now();
        for (std::size_t i = 0; i < tasks.size(); ++i)
          if (info_.tasks[i].replayed) on_done(i, now);
      }
      try {
        if (info_.replayed == 0)
          compute(tasks, fn, opt, results, on_done);
        else
          compute_missing(tasks, fn, opt, results, on_done);
      } catch (...) {
        // The loop has ended the run on the workers (master_loop::end_early); what it left
        // behind (receives, sends, the workers' positions in the protocol) is not known.
        broken_ = detail::describe_current_exception();
        throw;
      }
      try {
        journal.close();
      } catch (...) {
        if (!callback_error) callback_error = std::current_exception();
      }
      std::sort(failures_.begin(), failures_.end(),
                [](const task_failure& a, const task_failure& b) { return a.index < b.index; });
      if (reuse)
        for (const task_failure& f : failures_) results[f.index] = Result{}; // no stale value from an earlier run
      info_.failures = failures_.size();
      info_.wall_seconds = observer.elapsed();
      observer.run_ended(info_, failures_);
      if (callback_error) std::rethrow_exception(callback_error);
    }
  }

  // `names`: see master_loop (a resumed run's tasks keep the indices of the whole list).
  template <class Fn, class OnDone>
  void compute(const std::vector<Task>& tasks, Fn& fn, const options& opt, std::vector<Result>& results,
               OnDone& on_done, const std::vector<std::size_t>* names = nullptr) {
    if (worker_count() == 0)
      run_locally(tasks, fn, opt, results, on_done, names);
    else if (layout_.grouped())
      compute_grouped(tasks, fn, opt, results, on_done, names);
    else {
      detail::dense_store<Task, Result> store(tasks, results, info_.tasks, failures_, names);
      detail::done_callback done(on_done);
      detail::master_loop<Task, Result, detail::dense_store<Task, Result>, detail::done_callback> loop(
          comm_, run_, opt, pool_, store, info_, done);
      try {
        loop.share(detail::share(fn, pool_.id, run_)); // with_shared(): sent as the run starts
        loop.run();
      } catch (...) {
        loop.end_early(); // no worker is left serving a run the master has left
        throw;
      }
    }
  }

  // Resuming from a journal: runs only the tasks it lacks, as a run of their own whose indices,
  // records and failures are then put back in the places of the whole task list.
  //
  // Every index the part-run produces is translated through `where` exactly once: a failure is
  // pushed with its part-run index k and translated to where[k] by the first translate() after
  // it (before its on_done, and at the end for any that had none); `translated` marks the
  // boundary, so a failure already translated is never looked at again (translating by value,
  // "index == k", would move a translated index i that happens to equal a later k).
  template <class Fn, class OnDone>
  void compute_missing(const std::vector<Task>& tasks, Fn& fn, const options& opt, std::vector<Result>& results,
                       OnDone& on_done) {
    std::vector<std::size_t> where; // where[k]: the whole list's index of the part-run's task k
    std::vector<Task> missing;
    for (std::size_t i = 0; i < tasks.size(); ++i)
      if (!info_.tasks[i].replayed) {
        where.push_back(i);
        missing.push_back(tasks[i]);
      }
    std::vector<Result> part(missing.size());
    run_info whole = std::move(info_);
    info_ = run_info{};
    info_.tasks.assign(missing.size(), task_record{});
    std::size_t translated = failures_.size(); // failures_[translated..] hold part-run indices
    auto translate = [&] {
      for (; translated < failures_.size(); ++translated)
        failures_[translated].index = where[failures_[translated].index];
    };
    // The callback and the journal speak of the whole task list: info_ is the whole run's record
    // while on_done runs, and is swapped back however on_done ends.
    struct swapped {
      run_info& a;
      run_info& b;
      swapped(run_info& x, run_info& y) : a(x), b(y) { std::swap(a, b); }
      ~swapped() { std::swap(a, b); }
    };
    auto on_part_done = [&](std::size_t k, std::chrono::steady_clock::time_point when) {
      translate();
      const std::size_t i = where[k];
      results[i] = std::move(part[k]);
      whole.tasks[i] = info_.tasks[k];
      const swapped as_whole(whole, info_);
      on_done(i, when);
    };
    auto merge = [&] {
      translate();
      whole.retries += info_.retries;
      whole.messages += info_.messages;
      whole.lost_workers = std::move(info_.lost_workers);
      whole.losses = std::move(info_.losses);
      info_ = std::move(whole);
    };
    try {
      compute(missing, fn, opt, part, on_part_done, &where);
    } catch (...) {
      merge();
      throw;
    }
    merge();
  }

  // A grouped run on the master: batches to the sub-masters (detail/grouped_run.hpp). Their lost
  // sub-masters and those groups' workers are lost to the whole pool too: the workers wait for a
  // sub-master that is gone, and the pool's goodbye treats them as it treats any lost worker.
  template <class Fn, class OnDone>
  void compute_grouped(const std::vector<Task>& tasks, const Fn& fn, const options& opt, std::vector<Result>& results,
                       OnDone& on_done, const std::vector<std::size_t>* names) {
    if constexpr (can_group_) {
      const detail::grouped_run_end end =
          detail::run_grouped(*top_, layout_, tasks, fn, opt, results, info_, failures_, on_done, names);
      info_.messages += end.batches;
      info_.retries += end.batches_resent;
      // The workers the groups lost (their sub-masters told) are lost to the whole pool too (no
      // flat job sends them anything); those whose set-up failed, for their run only, are not.
      lost_in_group_.resize(static_cast<std::size_t>(comm_.size()));
      for (const worker_loss& l : info_.losses)
        if (l.reason != loss_reason::initializer_failed) {
          pool_.mark_lost(l.worker);
          lost_in_group_[static_cast<std::size_t>(l.worker)] = 1;
        }
      // A lost sub-master's loss as the top layer saw it; its workers, cut off with it, are lost
      // to the whole pool (no more flat jobs for them, the pool's goodbye treats them as lost).
      for (const worker_loss& l : end.sub_losses) info_.losses.push_back(l);
      for (int g : end.lost_groups)
        for (int r = layout_.first(g); r < layout_.first(g + 1); ++r) {
          pool_.mark_lost(r);
          if (std::find(info_.lost_workers.begin(), info_.lost_workers.end(), r) == info_.lost_workers.end())
            info_.lost_workers.push_back(r);
        }
    }
  }

  // A run the master leaves before its first task (a checkpoint it cannot use): the workers,
  // waiting for the run, are told it ended.
  template <class Fn>
  void end_run_unstarted(const Fn& fn) {
    if (worker_count() == 0) return;
    if constexpr (can_group_) {
      if (layout_.grouped()) {
        detail::open_top_job<Task, Result>(*top_, fn, options{}).close(); // each sub-master then ends its group's job
        return;
      }
    } else {
      (void)fn;
    }
    detail::broadcast_control(comm_, pool_, detail::tag::end_run, run_);
  }

  // A rank of a grouped pool in run(): a sub-master relays batches to its group until the
  // master ends the run; a group's worker serves its sub-master's job.
  template <class Fn>
  void serve_grouped(Fn& fn, const options& opt) {
    if constexpr (can_group_) {
      // A layer closed by the master's shutdown() (not a run's end) closes this rank's pool:
      // the sub-master lets its workers go, every rank takes the master's goodbye (shutdown()).
      if (top_) {
        using relay_type = detail::relay<Task, Result, group_pool, Fn>;
        relay_type relay(*group_, group_->pool_, fn, rank(), opt);
        options top_opt = opt;
        top_opt.send_thread = send_thread_policy::off; // the relay calls MPI while it runs (serve() insists)
        auto run_batch = [&relay](const detail::batch<Task>& b) { return relay(b); };
        using shared_type = typename relay_type::shared_type;
        if constexpr (std::is_void_v<shared_type>) {
          top_->start(run_batch, top_opt);
        } else { // the master's value comes with the top layer's job, and is kept as it starts
          top_->start(
              with_initializer([&relay](const shared_type& value) { relay.keep(value); },
                               with_shared(shared_type{}, [&run_batch](const detail::batch<Task>& b,
                                                                       const shared_type&) { return run_batch(b); })),
              top_opt);
        }
        relay.finish(top_->closed_);
        if (top_->closed_) shutdown();
      } else {
        group_->start(fn, opt);
        if (group_->closed_) shutdown();
      }
    }
  }

  // Builds the layers of a grouped pool (foreman::hierarchy): the master and the sub-masters
  // (top_), and each sub-master with its workers (group_). Collective over comm_.
  void make_groups(hierarchy layout) {
    if constexpr (can_group_) {
      int group_size = 0;
      if (is_master())
        group_size = detail::group_layout::group_size_for(detail::group_size_from_env(layout), comm_.size());
      detail::check_mpi(MPI_Bcast(&group_size, 1, MPI_INT, 0, comm_), "MPI_Bcast");
      layout_ = detail::group_layout(comm_.size(), group_size);
      if (!layout_.grouped()) return;
      const int group = layout_.group_of(rank());
      const bool top = is_master() || layout_.is_sub_master(rank());
      MPI_Comm top_comm = MPI_COMM_NULL, group_comm = MPI_COMM_NULL;
      detail::check_mpi(MPI_Comm_split(comm_, top ? 0 : MPI_UNDEFINED, rank(), &top_comm), "MPI_Comm_split");
      detail::check_mpi(MPI_Comm_split(comm_, group >= 0 ? group : MPI_UNDEFINED, rank(), &group_comm),
                        "MPI_Comm_split");
      // Each layer names its ranks by their ranks in the whole pool, in its messages and its
      // workers' (top layer: rank t is the sub-master of group t - 1; a group: its sub-master, then
      // its workers, in order).
      if (top) {
        top_ = std::make_unique<top_pool>(boost::mpi::communicator(top_comm, boost::mpi::comm_take_ownership));
        top_->worker_store_.shown_rank = rank();
        if (is_master())
          for (int t = 0; t <= layout_.groups(); ++t) top_->pool_.shown.push_back(layout_.rank_of_top(t));
        top_->pool_.layer = detail::pool_state::layer_kind::top;
      }
      if (group >= 0) {
        group_ = std::make_unique<group_pool>(boost::mpi::communicator(group_comm, boost::mpi::comm_take_ownership));
        group_->worker_store_.shown_rank = rank();
        group_->pool_.layer = detail::pool_state::layer_kind::group;
        if (layout_.is_sub_master(rank()))
          for (int r = layout_.first(group); r < layout_.first(group + 1); ++r) group_->pool_.shown.push_back(r);
      }
    } else {
      (void)layout;
    }
  }

  // What a journal's header names besides its tasks: the types and the archive formats, which
  // must not change under a journal's records.
  static std::string journal_types() {
    return "Task=" + detail::type_name<Task>() + ";Result=" + detail::type_name<Result>() + ";archive=foreman-" +
           std::to_string(detail::value_format) + "/boost-" +
           std::to_string(static_cast<unsigned>(boost::archive::BOOST_ARCHIVE_VERSION()));
  }

  // Opens the journal of options::checkpoint and reads back the results it holds.
  void replay(const std::vector<Task>& tasks, const options& opt, detail::journal_file& journal,
              std::vector<Result>& results) {
    detail::journal_identity id;
    id.task_count = tasks.size();
    // By value, not by the encoder's bytes: equal tasks whose padding bytes differ (a long
    // double, a struct with holes, built after other heap use) are the same task list. A task
    // whose serialization throws counts by its place in the list instead: it fails when it is
    // sent (at 1 rank it simply runs), as without a checkpoint, and the same list still names
    // the same journal.
    detail::value_fingerprint fingerprint;
    for (std::size_t i = 0; i < tasks.size(); ++i) {
      const detail::value_fingerprint before = fingerprint;
      try {
        fingerprint.add(tasks[i]);
      } catch (...) {
        fingerprint = before; // not what its serialize() wrote before it threw
        fingerprint.unreadable(i);
      }
    }
    id.tasks_fingerprint = fingerprint.checksum();
    id.types = journal_types();
    if (fingerprint.inexact())
      journal.explain_mismatch("the Task type " + detail::type_name<Task>() +
                               " (or a type inside it) is identified by its bytes, padding included: its "
                               "fields cannot be reached (it is not a plain aggregate) and it has no "
                               "serialize(), so equal tasks built differently may differ there; give it a "
                               "serialize() member to identify tasks by value");
    const detail::journal_sync sync{opt.checkpoint_sync_every, opt.checkpoint_sync_interval};
    const detail::journal_scan scan =
        journal.open(opt.checkpoint, id, sync, [&](std::uint64_t index, const std::vector<char>& payload) {
          task_record& record = info_.tasks[index];
          if (record.replayed) return; // a task recorded twice: the first sound record counts
          try {
            detail::decoder in(payload.data(), payload.size());
            in.get(results[index]);
            if (!in.exhausted()) return;
          } catch (const std::exception&) {
            return; // unreadable: the task runs again
          }
          record.replayed = true;
          ++info_.replayed;
        });
    info_.checkpoint_dropped_bytes = scan.dropped;
  }

  template <class OnResult>
  void notify(OnResult& on_result, std::size_t index, const std::vector<Result>& results) {
    const task_record& record = info_.tasks[index];
    if constexpr (detail::is_value_callback_v<OnResult, Result>) {
      if (!record.failed) on_result(index, record.worker, results[index]);
    } else if constexpr (detail::is_outcome_callback_v<OnResult, Result>) {
      if (record.failed) {
        // The failure filed for this task, found by its index, not taken to be the newest one
        // (it almost always is, so the search starts there).
        auto f = failures_.rbegin();
        while (f != failures_.rend() && f->index != index) ++f;
        if (f == failures_.rend())
          throw error("internal error: task " + std::to_string(index) + " failed but no failure was filed for it");
        on_result(index, record.worker, outcome<Result>(*f));
      } else {
        on_result(index, record.worker, outcome<Result>(results[index]));
      }
    }
  }

  // No workers: the master runs every task itself, with the same error capture as a worker.
  template <class Fn, class OnDone>
  void run_locally(const std::vector<Task>& tasks, Fn& fn, const options& opt, std::vector<Result>& results,
                   OnDone& on_done, const std::vector<std::size_t>* names) {
    detail::invocation call;
    const detail::task_clock clock;
    detail::local_call<Fn> invoke(fn); // with_initializer(): runs the initializer
    std::string stopped;               // options::fail_fast: why the tasks left are not run
    for (std::size_t i = 0; i < tasks.size(); ++i) {
      if (!stopped.empty()) {
        info_.tasks[i].failed = true;
        failures_.push_back(task_failure{i, 0, detail::cancelled_type, stopped});
        on_done(i, std::chrono::steady_clock::now());
        continue;
      }
      invoke(tasks[i], results[i], call, clock, clock.now());
      info_.tasks[i] = task_record{0, call.seconds, !call.ok, 1};
      if (!call.ok) {
        results[i] = Result{}; // not what the function left behind
        failures_.push_back(task_failure{i, 0, call.error_type, call.error_message});
        if (opt.fail_fast)
          stopped = "not run: task " + std::to_string(names ? (*names)[i] : i) +
                    " failed first, and options::fail_fast stops the run at the first failure";
      }
      on_done(i, std::chrono::steady_clock::now());
    }
  }

  boost::mpi::communicator comm_;
  std::vector<detail::hello> peers_;                  // every rank's handshake record
  detail::pool_state pool_;                           // on the master: lost workers, sends that may never complete
  detail::worker_storage<Task, Result> worker_store_; // on a worker: buffers and objects kept between runs
  typename detail::job_store<Task, Result>::cache job_segments_; // on the master: a job's store memory, kept between jobs
  std::uint32_t run_ = 0;
  bool closed_ = false;
  bool running_ = false; // inside run(): a nested call is refused
  std::string broken_;   // why the pool can no longer be used, if a run ended with an exception
  run_info info_;
  std::vector<task_failure> failures_;
  // A grouped pool (foreman::hierarchy): its layout, and the layers this rank is in, whose
  // closed_ the facade reads.
  template <class, class, class>
  friend class master_worker;
  using top_pool = std::conditional_t<can_group_,
                                      master_worker<detail::batch<Task>, detail::batch_reply<Result>, flat_dispatch>,
                                      detail::no_pool>;
  using group_pool = std::conditional_t<can_group_, master_worker<Task, Result, flat_dispatch>, detail::no_pool>;
  detail::group_layout layout_;
  std::unique_ptr<top_pool> top_;     // the master and the sub-masters
  std::unique_ptr<group_pool> group_; // a sub-master and its workers
  std::vector<char> lost_in_group_;   // on the master of a grouped pool: rank w's loss came from its sub-master
};

} // namespace foreman
