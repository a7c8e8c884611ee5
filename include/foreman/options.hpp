#pragma once
/// @file options.hpp
/// The knobs of a run, gathered in one aggregate so that new knobs never break callers.

#include <chrono>
#include <cstddef>
#include <string>

namespace foreman {

/// How tasks are placed on workers.
enum class schedule {
  /// A free worker gets the next unassigned task (self-scheduling). Best for uneven tasks.
  dynamic,
  /// Task i runs on worker 1 + (i mod worker_count()): deterministic placement, so that
  /// "worker r computed chunk r" holds, as in hand-written master/worker programs.
  round_robin,
};

/// How a rank waits for its next message (options::wait).
enum class wait_policy {
  /// Poll, then yield the core, then sleep with growing pauses (20 µs to 1 ms). When every
  /// rank of the pool on this host has a processor of its own, it polls for a few milliseconds
  /// before yielding (the latency of blocking MPI calls); when the host runs more of the pool's
  /// ranks than it has processors, it polls only briefly (~10 µs), so that a waiting rank gives
  /// its core to the ranks that compute.
  adaptive,
  /// Always poll, never sleep, as blocking MPI calls do: the lowest latency when every rank has
  /// its own core; on an oversubscribed node it takes cores from the ranks that compute.
  busy,
  /// Poll a few dozen times, then yield and sleep: a waiting rank frees its core almost at once.
  /// For oversubscribed nodes and long tasks; each message may wait up to a millisecond.
  sleep,
};

/// Whether a worker moves its last reply's sends from a thread of its own while the user's
/// function runs (options::send_thread). MPI need not move a message outside MPI calls, and over
/// a network it usually does not: without that thread a large result's transfer and the next
/// task's compute follow each other, with it they overlap.
///
/// The thread calls MPI (MPI_Test on the reply's requests) only while the user's function runs,
/// and it is parked before the worker's own loop calls MPI again: MPI_THREAD_SERIALIZED from
/// whoever initialized MPI suffices for foreman's calls, but then the user's function must not
/// call MPI while the thread runs. `boost::mpi::environment env(argc, argv)` asks for no thread
/// support (Open MPI 4.1 and MPICH 4 then give MPI_THREAD_SINGLE): ask for it with
/// `boost::mpi::environment env(argc, argv, boost::mpi::threading::serialized)` (or `multiple`).
/// foreman never initializes MPI itself. Where MPI gives less than the policy needs, the worker
/// does what it does with `off`, silently: the results are the same, only the overlap is lost.
enum class send_thread_policy {
  /// The thread where MPI gives MPI_THREAD_MULTIPLE, under which the user's function may call MPI
  /// too; no thread below. A program that asked for MULTIPLE has said that several of its threads
  /// call MPI; one that asked for SERIALIZED may call MPI from its task function, serialized with
  /// its own threads, which a thread of foreman's would break without its knowing.
  automatic,
  /// The thread where MPI gives MPI_THREAD_SERIALIZED or more. The user's function promises not to
  /// call MPI (with SERIALIZED; with MULTIPLE it may).
  on,
  /// No thread: the worker completes its last reply's sends before a long task (one after a task
  /// of 1 ms or more), and only tests them before a short one.
  off,
};

/// Options of master_worker::run(). Set the fields you care about; the others keep their
/// defaults. Only the master's options matter: workers ignore the options they are given, except
/// `wait` and `send_thread`, which each rank takes from its own call.
///
/// @code
/// foreman::options opt;
/// opt.schedule = foreman::schedule::round_robin;
/// auto results = pool.run(tasks, fn, opt);
/// @endcode
struct options {
  /// Placement of tasks on workers.
  foreman::schedule schedule = schedule::dynamic;

  /// Tasks sent to a worker in one message. 0 (the default): automatic. The master measures
  /// how long tasks take on the workers and packs about a millisecond of work into each message
  /// (one task per message until the first answers arrive; at most 4096), and, guided, never more
  /// than half of what is left per worker, so that chunks shrink near the end and no worker is
  /// left with a long tail. Any other value is a fixed chunk size; 1 gives the finest load
  /// balance and the exact task-by-task timing of each worker.
  std::size_t chunk_size = 0;

  /// Messages (chunks) a worker may hold at once: with 2 or more a worker finds its next
  /// task already delivered when it finishes one, instead of waiting a round trip.
  std::size_t tasks_in_flight = 2;

  /// How long one task may take: a worker holding tasks from which nothing was heard for this
  /// long (+ 0.1 s) is declared lost: it is sent nothing more, and its unanswered tasks run again
  /// on other workers. Counted from the worker's last sign of life (its last reply, the progress
  /// note it sends between the tasks of a long chunk, or, if it was idle, the arrival of its chunk:
  /// when the chunk, and the shared value before the first, could have arrived at 1 MiB/s, or
  /// when their sends were seen complete, if later), so the size of a chunk does not stretch it. Zero (the default): no timeout; a worker whose
  /// process dies on the master's host is noticed all the same (its process is watched), a hung
  /// worker or one that dies on another host is not. Choose it well above the slowest task's
  /// duration. See docs/reliability.md.
  std::chrono::duration<double> task_timeout{0};

  /// How often a task is tried in all: a task whose worker was lost that many times ends as a
  /// failure of type "foreman::worker_lost" instead of taking every worker down with it.
  unsigned max_attempts = 3;

  /// Stop at the first failure: once a task has failed (it threw, or its last attempt was lost),
  /// every task not yet completed ends at once as a failure of type "foreman::cancelled" instead
  /// of running: unsent ones are not sent, and each worker skips the rest of the tasks it holds
  /// (a task already running finishes first). run() then throws task_error listing the first
  /// failure and the cancelled tasks; run_outcomes() reports them. Off by default: every task runs.
  bool fail_fast = false;

  /// Streams (master_worker::run_stream(), reduce()): how many tasks may be read from the source
  /// ahead of the results handed to the sink, in all (running, waiting to be sent, or finished
  /// early and held for task order). The master's memory for the stream is proportional to it.
  /// 0 (the default): automatic, enough for every worker to hold tasks_in_flight full chunks twice
  /// over (at most 2 × workers × tasks_in_flight × 4096 tasks), and at least 1024. The name is
  /// that of Python's Executor.map(buffersize=).
  std::size_t buffersize = 0;

  /// Streams: hand results to the sink in completion order instead of task order. In task order
  /// (the default) a result that arrives before an earlier task's is held until that one arrives;
  /// unordered, none is held. The name is that of mpi4py.futures' map(unordered=).
  bool unordered = false;

  /// Print one line on standard error for each lost worker and each re-dispatched task.
  bool announce_faults = true;

  /// How this rank waits for messages; see wait_policy. Each rank uses the value of its own
  /// run() call. The environment variable `FOREMAN_WAIT=adaptive|busy|sleep` overrides it on
  /// the ranks that see it (mpirun passes the environment on to local ranks; `-x FOREMAN_WAIT`
  /// for remote ones).
  wait_policy wait = wait_policy::adaptive;

  /// Whether each worker keeps its last reply's sends moving from a thread of its own while the
  /// user's function runs, so that a large result's transfer overlaps the next task; see
  /// send_thread_policy for what MPI must provide and what the function may then do. Each worker
  /// uses the value of its own call. The environment variable
  /// `FOREMAN_SEND_THREAD=automatic|on|off` overrides it on the ranks that see it (`-x
  /// FOREMAN_SEND_THREAD` for remote ones).
  send_thread_policy send_thread = send_thread_policy::automatic;

  /// Path of a checkpoint journal; empty (the default): none. The master appends each
  /// finished result to it as it arrives. Run again with the same task list (and the same
  /// Task and Result types), the results already there are read back instead of computed, and
  /// only the missing tasks run. A journal of another task list or other types is refused
  /// with foreman::error; a torn or damaged tail is cut off and its tasks run again. Failed
  /// tasks are not recorded. A stream (run_stream(), reduce()) records each result with its
  /// task's index and fingerprint, and a rerun over the same source reads them back (a changed
  /// source is refused by index); not yet for jobs (start()). See docs/reliability.md.
  std::string checkpoint;

  /// Durability of the journal: every result reaches the operating system at once (a killed
  /// job loses nothing written), and the file is forced to disk (fsync) after this many results,
  /// so a power cut loses at most checkpoint_sync_every - 1 of them. 1: fsync every result.
  std::size_t checkpoint_sync_every = 32;

  /// Also fsync when a result arrives this long or longer after the previous fsync, so that slow
  /// tasks are each made durable at once.
  std::chrono::duration<double> checkpoint_sync_interval{1.0};

  /// Show the run's progress on the master's standard error (never on standard output):
  /// done/total, tasks per second, ETA, failures and lost workers. On a terminal it is one line
  /// redrawn in place at most four times a second; otherwise (a log file) a plain line each time
  /// another 10 % of the tasks is done. The environment variable `FOREMAN_PROGRESS` overrides
  /// this without recompiling: `FOREMAN_PROGRESS=1` turns it on, `FOREMAN_PROGRESS=0` off.
  /// Under mpirun a rank's standard error is a pipe, never a terminal, even when mpirun's is:
  /// `FOREMAN_PROGRESS=terminal` asks for the line redrawn in place all the same (mpirun passes
  /// it through), `FOREMAN_PROGRESS=log` for the plain lines.
  bool progress = false;

  /// After the run, write its timeline as Chrome Trace Event JSON to this file (open it in
  /// https://ui.perfetto.dev or chrome://tracing); empty: none. See write_chrome_trace().
  std::string timeline_json;

  /// After the run, write its timeline as a self-contained HTML page with a Gantt chart (one row
  /// per worker, one bar per task; above timeline_bar_limit tasks, one bar per time bin) to this
  /// file; empty: none. See write_timeline_html().
  /// When both timeline paths are empty, the environment variable `FOREMAN_TIMELINE=<prefix>`
  /// writes `<prefix>.json` and `<prefix>.html` (each run overwrites them). A file that cannot
  /// be written is reported on standard error; the run's results are returned all the same.
  std::string timeline_html;
};

} // namespace foreman
