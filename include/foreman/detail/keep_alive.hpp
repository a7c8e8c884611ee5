#pragma once
/// @file keep_alive.hpp
/// Progress notes sent from inside a task: what lets a sub-master of a grouped pool, whose one
/// task (a batch) runs for as long as its group needs, be judged by the master as a worker is,
/// lost when silent for task_timeout + progress_interval (docs/reliability.md).
///
/// A worker sends its master a progress note between two tasks of a chunk when its last message
/// is progress_interval old (worker_loop.hpp). While a task runs it sends nothing: a user's
/// function may take up to task_timeout. A sub-master's task is a relay of a whole batch to its
/// group (relay.hpp), which may take many times that; so while the worker loop runs a task of a
/// type for which notes_during_task is true (batch<T>: batch.hpp), it installs a
/// keep_alive_scope, and what runs the batch calls keep_alive() wherever it may wait or work
/// long: between the items it decodes and encodes, and on every pass of its group job's wait
/// (job.hpp). Elsewhere (no scope: a master, a flat pool's worker) keep_alive() does nothing, and
/// a flat pool's worker pays nothing per task: the scope is compiled in for batches only.

namespace foreman {
namespace detail {

/// Whether the worker loop lets a task of this type send progress notes while it runs (a
/// sub-master's batch; batch.hpp sets it). Its worker then never runs a send thread, whatever
/// options::send_thread or FOREMAN_SEND_THREAD say (master_worker.hpp, serve(): the relay calls
/// MPI while it runs).
template <class Task>
inline constexpr bool notes_during_task = false;

/// The note-sending hook of the worker loop running the current task on this thread.
struct keep_alive_hook {
  void (*send_if_due)(void* loop) noexcept = nullptr;
  void* loop = nullptr;
};

inline keep_alive_hook& current_keep_alive() {
  thread_local keep_alive_hook hook;
  return hook;
}

/// Sends the master of the task running on this thread a progress note, if one is due (its
/// last message is progress_interval old); nothing outside a keep_alive_scope. Not collective.
/// Never throws: a note that cannot be sent is thrown by the worker loop after the task.
inline void keep_alive() noexcept {
  const keep_alive_hook& hook = current_keep_alive();
  if (hook.send_if_due != nullptr) hook.send_if_due(hook.loop);
}

/// Installs a worker loop's hook for the duration of one task; the hook before it comes back at
/// the end (a task that runs a pool's job that runs tasks: the innermost loop's).
class keep_alive_scope {
public:
  keep_alive_scope(void (*send_if_due)(void*) noexcept, void* loop) : before_(current_keep_alive()) {
    current_keep_alive() = keep_alive_hook{send_if_due, loop};
  }
  keep_alive_scope(const keep_alive_scope&) = delete;
  keep_alive_scope& operator=(const keep_alive_scope&) = delete;
  ~keep_alive_scope() { current_keep_alive() = before_; }

private:
  keep_alive_hook before_;
};

} // namespace detail
} // namespace foreman
