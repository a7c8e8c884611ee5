#pragma once
/// @file outliving_sends.hpp
/// Sends that had not completed when their pool was destroyed, kept with the buffers they read
/// until the process ends.
///
/// A send to a worker declared lost may never complete (the worker hangs, or died on another
/// host), so the master leaves it behind (pool_state::abandoned, pool_state::unfinished_shares).
/// But a lost worker may be alive and still receiving, over a link slower than the master's
/// floor rate or after a pause: MPI then goes on reading the send's buffer, after the run and
/// after the pool, until the send completes or MPI_Finalize. Open MPI's TCP transport writes the
/// rest from that buffer; had it been freed, it aborts the master ("mca_btl_tcp_frag_send: writev
/// error (...) Bad address", seen in session 28) or sends whatever the memory then holds. MPI offers
/// no way to withdraw a send (MPI_Cancel of a send is deprecated by MPI-4 and does nothing in Open
/// MPI's ob1). So the buffers foreman owns are never freed while their send may be running: the
/// pool hands them here when it is destroyed, and they are kept until the process ends (freed
/// then by the system; never by a static destructor, which may run before MPI_Finalize). What a
/// send reads from the user's memory (a task's body sent from the task itself, a shared value
/// given by std::cref) cannot be kept here: see with_shared() and docs/reliability.md.

#include <foreman/detail/transport.hpp>

#include <algorithm>
#include <memory>
#include <mutex>
#include <new>
#include <utility>
#include <vector>

namespace foreman {
namespace detail {

class outliving_sends {
public:
  /// The process's one keeper (never destroyed).
  static outliving_sends& instance() {
    static outliving_sends* const kept = new outliving_sends(); // never freed: see the file's comment
    return *kept;
  }

  /// Takes `slots` (sends whose buffers they hold) and `shares` (sends of a shared value, each with
  /// what keeps the value's payload alive) until their sends complete, or the process ends; first
  /// forgets those kept before whose sends have completed. Requires MPI (not finalized). Never
  /// throws: what cannot be kept (out of memory) is leaked instead.
  void keep(std::vector<send_slot>&& slots,
            std::vector<std::pair<send_slot, std::shared_ptr<const void>>>&& shares) noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    try {
      prune();
      for (send_slot& slot : slots)
        if (!slot.over()) entries_.push_back(entry{std::move(slot), nullptr});
      for (auto& [slot, owner] : shares)
        if (!slot.over()) entries_.push_back(entry{std::move(slot), std::move(owner)});
    } catch (...) {
      // Out of memory: leak what is left rather than free a buffer MPI may read.
      leak(std::move(slots), std::move(shares));
    }
  }

  /// Keeps the buffers of `slots` and `shares` until the process ends, without MPI (after
  /// MPI_Finalize nothing reads them; before, nothing may be freed that a send could read).
  static void leak(std::vector<send_slot>&& slots,
                   std::vector<std::pair<send_slot, std::shared_ptr<const void>>>&& shares) noexcept {
    // Reachable from here (not a leak to LeakSanitizer), never freed.
    static auto* const bin = new std::vector<std::vector<send_slot>>();
    try {
      bin->push_back(std::move(slots));
      for (auto& share : shares) bin->back().push_back(std::move(share.first));
      static auto* const owners = new std::vector<std::shared_ptr<const void>>();
      for (auto& share : shares) owners->push_back(std::move(share.second));
    } catch (...) {
      // Out of memory: what could not be moved here is freed by its owner.
    }
  }

  /// Sends kept that have not completed (for the tests). Requires MPI.
  std::size_t size() {
    std::lock_guard<std::mutex> lock(mutex_);
    prune();
    return entries_.size();
  }

private:
  struct entry {
    send_slot slot;                     // a send foreman's buffer is read by
    std::shared_ptr<const void> owner;  // what keeps the buffers it reads alive, if not the slot
  };
  outliving_sends() = default;

  void prune() {
    entries_.erase(std::remove_if(entries_.begin(), entries_.end(),
                                  [](entry& e) { return e.slot.over(); }),
                   entries_.end());
  }

  std::mutex mutex_;
  std::vector<entry> entries_;
};

} // namespace detail
} // namespace foreman
