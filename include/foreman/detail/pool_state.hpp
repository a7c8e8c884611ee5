#pragma once
/// @file pool_state.hpp
/// What the master keeps about its workers from one run (or job) to the next, and the control
/// messages of a pool: ending a run on every worker, and the goodbyes when the pool closes.

#include <foreman/detail/idle.hpp>
#include <foreman/detail/liveness.hpp>
#include <foreman/detail/outliving_sends.hpp>
#include <foreman/detail/reply_inbox.hpp>
#include <foreman/detail/transport.hpp>
#include <foreman/detail/wire.hpp>

#include <mpi.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace foreman {
namespace detail {

/// What a pool remembers between runs about its workers.
struct pool_state {
  pool_state() = default;
  pool_state(const pool_state&) = delete;
  pool_state& operator=(const pool_state&) = delete;
  /// The sends still running (to lost workers) outlive the pool with their buffers
  /// (outliving_sends.hpp): MPI may read those until the sends complete or MPI_Finalize.
  ~pool_state() {
    if (abandoned.empty() && unfinished_shares.empty()) return;
    int finalized = 1;
    if (MPI_Finalized(&finalized) != MPI_SUCCESS || finalized)
      outliving_sends::leak(std::move(abandoned), std::move(unfinished_shares));
    else
      outliving_sends::instance().keep(std::move(abandoned), std::move(unfinished_shares));
  }

  std::uint64_t id = 0;               ///< the pool's id, first field of every message header
  std::vector<char> lost;             ///< per rank: declared lost, never sent anything again
  std::vector<send_slot> abandoned;   ///< sends to lost workers that may never complete
  bool oversubscribed = true;         ///< more of the pool's ranks on this host than processors
  std::unique_ptr<reply_inbox> replies; ///< the workers' replies: receive buffers kept between runs
  std::vector<process_watch> watches; ///< per rank: its process, where the master can watch it
  std::vector<std::uint64_t> pids;    ///< per rank: its pid (in its own pid namespace), for messages
  bool watching = false;              ///< some worker's process is watched
  int lost_count = 0;                 ///< ranks marked in `lost`
  /// Per rank: the rank it is named by in messages, its rank in the whole pool when this pool is
  /// a layer of a grouped one (master_worker::make_groups()); empty: its own.
  std::vector<int> shown;
  int shown_rank(int w) const { return shown.empty() ? w : shown[static_cast<std::size_t>(w)]; }
  /// How messages name this pool's rank 0: "the master", or, for a group of a grouped pool,
  /// "sub-master 4" (its rank in the whole pool).
  std::string master_name() const {
    const int r = shown_rank(0);
    return r == 0 ? std::string("the master") : "sub-master " + std::to_string(r);
  }
  /// Which pool this is: the one the program built, or a layer of a grouped one
  /// (master_worker::make_groups()). A layer's runs are observed by the whole pool's master: no
  /// progress display or timeline of their own, whatever the options or the environment say.
  enum class layer_kind : unsigned char { whole, top, group };
  layer_kind layer = layer_kind::whole;
  bool is_layer() const { return layer != layer_kind::whole; }
  /// How messages name worker w: "worker 5", or, on the top layer (whose workers are the
  /// sub-masters), "sub-master 4"; by its rank in the whole pool (shown_rank()).
  std::string peer(int w) const {
    return (layer == layer_kind::top ? "sub-master " : "worker ") + std::to_string(shown_rank(w));
  }
  /// "task(s)", or, on the top layer, "batch(es)" (its tasks are batches of the run's tasks,
  /// numbered by the top job from 0 in each run).
  const char* tasks_noun() const { return layer == layer_kind::top ? "batch(es)" : "task(s)"; }
  /// "tasks", or, on the top layer, "batches".
  const char* tasks_plural() const { return layer == layer_kind::top ? "batches" : "tasks"; }
  /// Per task name of its run or job (task_store.hpp): the index messages give it, when this pool
  /// is a group of a grouped one (the run's index of each task, kept by the relay, relay.hpp);
  /// null: the name itself.
  const std::vector<std::uint64_t>* shown_tasks = nullptr;
  std::uint64_t shown_task(std::uint64_t name) const {
    return shown_tasks != nullptr && name < shown_tasks->size() ? (*shown_tasks)[static_cast<std::size_t>(name)] : name;
  }
  /// Counted, not recounted: the master's loop asks on every pass.
  int live_workers() const { return static_cast<int>(lost.size()) - 1 - lost_count; }
  void mark_lost(int w) {
    char& flag = lost[static_cast<std::size_t>(w)];
    lost_count += flag ? 0 : 1;
    flag = 1;
  }
  /// Takes back a worker that was out of one run only (its set-up failed, shared_value.hpp).
  void readmit(int w) {
    char& flag = lost[static_cast<std::size_t>(w)];
    lost_count -= flag ? 1 : 0;
    flag = 0;
  }
  /// Sends of a shared value not complete when their run ended, each with what keeps the value
  /// and its message alive until it completes (shared_value.hpp; pruned at the next run's).
  std::vector<std::pair<send_slot, std::shared_ptr<const void>>> unfinished_shares;
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

} // namespace detail
} // namespace foreman
