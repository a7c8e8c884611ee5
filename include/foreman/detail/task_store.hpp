#pragma once
/// @file task_store.hpp
/// Where the master keeps, per ticket, the task, the object its result is received into, its
/// record and whether it is finished. The master's loop is written against the interface both
/// stores share, so that run() keeps its dense vectors and a job holds only its live tasks:
///
///   const Task& task(ticket) const          the task to encode
///   std::uint64_t name(ticket) const        the name it has on the wire and in messages
///   bool lookup(name, worker, ticket&) const the ticket a reply names: false when it names a
///                                           task no longer kept (cancelled); throws error when
///                                           it names no task at all (a protocol error)
///   bool done(ticket) const                 its result or failure is filed (or it is gone)
///   Result& result(ticket)                  where its result is decoded
///   task_record& record(ticket)
///   void mark_resent(ticket); bool take_resent(ticket): taken from a lost worker, to be announced
///   void fail(task_failure)                 files a failure (failure.index: the ticket)
///   void finish(ticket)                     marks it done
///   static bool results_stay_put            result(t) stays where it is until the run ends, so
///                                           that a body can be received straight into it while
///                                           the loop goes on (reply_reader.hpp)

#include <foreman/detail/hot_path.hpp>
#include <foreman/detail/scheduler.hpp>
#include <foreman/errors.hpp>
#include <foreman/outcome.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace foreman {
namespace detail {

inline error unknown_task(std::uint64_t name, int worker, const std::string& known) {
  return error("protocol error: worker " + std::to_string(worker) + " answered task " + std::to_string(name) +
               ", which is not one of " + known);
}

/// The store of run(): the caller's task list, result vector, records and failure list, indexed
/// by ticket = position in the list. `names` (a resumed run, see master_worker::compute_missing())
/// gives each ticket the index it has in the whole list; null: the ticket itself.
template <class Task, class Result>
class dense_store {
public:
  dense_store(const std::vector<Task>& tasks, std::vector<Result>& results, std::vector<task_record>& records,
              std::vector<task_failure>& failures, const std::vector<std::size_t>* names = nullptr)
      : tasks_(tasks), results_(results), records_(records), failures_(failures), names_(names), done_(tasks.size(), 0),
        resent_(tasks.size(), 0) {}

  static constexpr bool results_stay_put = true; // the caller's vector is not touched during run()

  std::size_t size() const { return tasks_.size(); }
  std::size_t finished() const { return finished_; }

  const Task& task(ticket t) const { return tasks_[t]; }
  std::uint64_t name(ticket t) const { return names_ ? (*names_)[t] : t; }
  FOREMAN_DETAIL_INLINE bool lookup(std::uint64_t name, int worker, ticket& t) const {
    if (names_ == nullptr && name < tasks_.size()) { // the common case: a ticket is its name
      t = name;
      return true;
    }
    return lookup_named(name, worker, t);
  }
  bool done(ticket t) const { return done_[t] != 0; }
  Result& result(ticket t) { return results_[t]; }
  task_record& record(ticket t) { return records_[t]; }
  void mark_resent(ticket t) { resent_[t] = 1; }
  bool take_resent(ticket t) { return std::exchange(resent_[t], 0) != 0; }
  void fail(task_failure f) { failures_.push_back(std::move(f)); }
  void finish(ticket t) {
    done_[t] = 1;
    ++finished_;
  }

private:
  // lookup() in a resumed run (names), or of a name that is not one of this run's.
  FOREMAN_DETAIL_COLD bool lookup_named(std::uint64_t name, int worker, ticket& t) const {
    std::size_t k = static_cast<std::size_t>(name);
    if (names_) {
      const auto at = std::lower_bound(names_->begin(), names_->end(), name);
      k = at != names_->end() && *at == name ? static_cast<std::size_t>(at - names_->begin()) : tasks_.size();
    }
    if (name >= std::uint64_t{1} << 63 || k >= tasks_.size())
      throw unknown_task(name, worker, "the " + std::to_string(tasks_.size()) + " tasks of this run");
    t = k;
    return true;
  }

  const std::vector<Task>& tasks_;
  std::vector<Result>& results_;
  std::vector<task_record>& records_;
  std::vector<task_failure>& failures_;
  const std::vector<std::size_t>* names_;
  std::vector<char> done_;   // per task: filed already (guards against a reply counted twice)
  std::vector<char> resent_; // per task: taken from a lost worker, to be announced when sent again
  std::size_t finished_ = 0;
};

/// The store of a job: only the tasks submitted and not yet handed back (by their completion, or
/// dropped by a cancellation). Tickets are given in submission order from 0; a ticket is its
/// task's name on the wire.
///
/// The tickets a job keeps mostly lie in a window behind the newest (a stream's never span more
/// than its bound), so they are kept in a ring indexed by ticket: slot t & mask, found without
/// hashing, reused without allocating. A ticket that stays while many later ones come and go (a
/// long task among many short ones, a completion never taken) would stretch the window without
/// bound, so when the ring is full and less than a quarter of it is in use, its oldest entries
/// move to a hash table (stragglers) instead of the ring growing: the ring never has more than
/// max(min_capacity, 8 x the most tickets it held at once) slots. Failures are kept apart, in a
/// hash table by ticket.
template <class Task, class Result>
class job_store {
public:
  struct entry {
    Task task{};
    Result result{};
    task_record record{};
    bool done = false;
    bool resent = false;
  };

  /// An entry is erased when its task is cancelled (job::cancel()), also while its body arrives.
  static constexpr bool results_stay_put = false;

  /// Keeps `task` under the next ticket, which it returns.
  ticket add(Task task) {
    make_room();
    ring_[static_cast<std::size_t>(next_) & mask_].emplace(
        entry{std::move(task), Result{}, task_record{}, false, false});
    ++in_ring_;
    return next_++;
  }
  /// Tickets given so far.
  ticket issued() const { return next_; }
  std::size_t kept() const { return in_ring_ + stragglers_.size(); }
  bool has(ticket t) const { return find(t) != nullptr; }
  FOREMAN_DETAIL_INLINE entry& at(ticket t) {
    entry* e = find(t);
    if (e == nullptr) not_kept(t);
    return *e;
  }
  /// Forgets ticket t (its completion was handed out, or it was cancelled).
  void erase(ticket t) {
    if (t >= low_ && t < next_) {
      slot& s = ring_[static_cast<std::size_t>(t) & mask_];
      if (!s) return;
      s.reset(); // never throws (a Result is not built here), and frees a large task or result now
      --in_ring_;
      if (t == low_) advance_low();
    } else if (!stragglers_.empty()) {
      stragglers_.erase(t);
    }
    if (!failures_.empty()) failures_.erase(t);
  }
  /// Task t's failure, if one was filed (fail()); else null.
  FOREMAN_DETAIL_INLINE const task_failure* failure(ticket t) const {
    if (failures_.empty()) return nullptr; // the common case: no task failed
    const auto found = failures_.find(t);
    return found == failures_.end() ? nullptr : &found->second;
  }
  /// Task t's failure, moved out (see failure()).
  std::optional<task_failure> take_failure(ticket t) {
    if (failures_.empty()) return std::nullopt;
    const auto found = failures_.find(t);
    if (found == failures_.end()) return std::nullopt;
    std::optional<task_failure> f(std::move(found->second));
    failures_.erase(found);
    return f;
  }
  std::size_t finished() const { return finished_; }
  /// Slots of the ring (what it holds in memory besides the stragglers).
  std::size_t capacity() const { return ring_.size(); }
  /// Tickets kept outside the ring.
  std::size_t stragglers() const { return stragglers_.size(); }

  const Task& task(ticket t) const { return checked(t).task; }
  std::uint64_t name(ticket t) const { return t; }
  bool lookup(std::uint64_t name, int worker, ticket& t) const {
    if (name >= next_) throw unknown_task(name, worker, "the " + std::to_string(next_) + " tasks of this job");
    t = name;
    return find(t) != nullptr;
  }
  bool done(ticket t) const {
    const entry* e = find(t);
    return e == nullptr || e->done;
  }
  Result& result(ticket t) { return at(t).result; }
  task_record& record(ticket t) { return at(t).record; }
  void mark_resent(ticket t) { at(t).resent = true; }
  bool take_resent(ticket t) { return std::exchange(at(t).resent, false); }
  void fail(task_failure f) {
    const ticket t = f.index;
    if (find(t) == nullptr) not_kept(t);
    failures_.insert_or_assign(t, std::move(f));
  }
  void finish(ticket t) {
    at(t).done = true;
    ++finished_;
  }

  static constexpr std::size_t min_capacity = 64;

private:
  using slot = std::optional<entry>; // empty: no ticket kept there

  // On the master's path several times per task: the ring's case is kept small enough to inline.
  FOREMAN_DETAIL_INLINE entry* find(ticket t) {
    if (t - low_ < next_ - low_) { // low_ <= t < next_
      slot& s = ring_[static_cast<std::size_t>(t) & mask_];
      return s ? &*s : nullptr;
    }
    return t < low_ && !stragglers_.empty() ? find_straggler(t) : nullptr;
  }
  FOREMAN_DETAIL_INLINE const entry* find(ticket t) const { return const_cast<job_store&>(*this).find(t); }
  FOREMAN_DETAIL_COLD entry* find_straggler(ticket t) {
    const auto found = stragglers_.find(t);
    return found == stragglers_.end() ? nullptr : &found->second;
  }
  const entry& checked(ticket t) const { return const_cast<job_store&>(*this).at(t); }
  [[noreturn]] FOREMAN_DETAIL_COLD static void not_kept(ticket t) {
    throw error("internal error: ticket " + std::to_string(t) + " is not kept by this job");
  }

  // Makes the slot of ticket next_ free: the window low_ .. next_ must be shorter than the ring.
  void make_room() {
    while (next_ - low_ >= ring_.size()) {
      if (ring_.size() < min_capacity || 4 * in_ring_ >= ring_.size())
        grow();
      else
        evict_oldest();
    }
  }

  void grow() {
    std::vector<slot> wider(std::max(min_capacity, 2 * ring_.size()));
    const std::size_t mask = wider.size() - 1;
    for (ticket t = low_; t < next_; ++t) {
      slot& from = ring_[static_cast<std::size_t>(t) & mask_];
      if (from) wider[static_cast<std::size_t>(t) & mask] = std::move(from);
    }
    ring_.swap(wider);
    mask_ = mask;
  }

  // The oldest ticket of the ring (live: see advance_low()) moves to the stragglers.
  void evict_oldest() {
    slot& s = ring_[static_cast<std::size_t>(low_) & mask_];
    stragglers_.emplace(low_, std::move(*s));
    s.reset();
    --in_ring_;
    advance_low();
  }

  // low_ moves past the slots no longer live: it is next_ or a live ticket's.
  void advance_low() {
    while (low_ < next_ && !ring_[static_cast<std::size_t>(low_) & mask_]) ++low_;
  }

  std::vector<slot> ring_; // a power of two slots: ticket t at t & mask_
  std::size_t mask_ = 0;
  std::size_t in_ring_ = 0;                      // live slots
  std::unordered_map<ticket, entry> stragglers_; // kept tickets below low_
  // Failures apart from the entries, which they would make twice as large (the ring's slots
  // are touched for every task; failures are rare).
  std::unordered_map<ticket, task_failure> failures_;
  ticket low_ = 0; // every kept ticket from here on is in the ring
  ticket next_ = 0;
  std::size_t finished_ = 0;
};

} // namespace detail
} // namespace foreman
