#pragma once
/// @file task_store.hpp
/// Where the master keeps, per ticket, the task, the object its result is received into, its
/// record and whether it is finished. The master's loop is written against the interface both
/// stores share, so that run() keeps its dense vectors and a job holds only its live tasks:
///
///   const Task& task(item)                  the task to encode
///   std::uint64_t name(ticket) const        the name it has on the wire and in messages
///   using item                              a handle to a kept ticket's entry, so that filing a
///                                           reply's item finds it once: the ticket itself
///                                           (dense_store), or a pointer to its slot (job_store),
///                                           valid until the next add() or erase()
///   bool lookup(name, worker, ticket&, item&)  the ticket a reply names and its item: false when
///                                           it names a task no longer kept (cancelled); throws
///                                           error when it names no task at all (a protocol error)
///   item item_of(ticket)                    a kept ticket's item
///   bool done(ticket), done(item)           its result or failure is filed (or it is gone)
///   Result& result(ticket), result(item)    where its result is decoded
///   auto& record(ticket), record(item)      its record: a task_record, or a job_record (the same
///                                           fields, without the timeline's times)
///   void mark_resent(ticket)                taken from a lost worker, to be announced when sent again
///   bool count_attempt(item)                counts an attempt (record's attempts) and takes the
///                                           mark: whether it is sent again after a loss
///   void fail(task_failure)                 files a failure (failure.index: the ticket)
///   void finish(item)                       marks it done
///   static bool results_stay_put            result(t) stays where it is until the run ends, so
///                                           that a body can be received straight into it while
///                                           the loop goes on (reply_reader.hpp)
///   static bool owns_tasks                  the store keeps its own tasks and frees each when
///                                           erased, maybe while a send still reads its body
///                                           (a job's; see master_loop's keep_bodies()); then
///   Task* owned_task(ticket)                the task, null when not kept

#include <foreman/detail/hot_path.hpp>
#include <foreman/detail/scheduler.hpp>
#include <foreman/errors.hpp>
#include <foreman/outcome.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
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

  using item = ticket; // a ticket is its own handle: the vectors are indexed by it

  const Task& task(ticket t) const { return tasks_[t]; }
  static constexpr bool owns_tasks = false; // the caller's, never freed during the run
  std::uint64_t name(ticket t) const { return names_ ? (*names_)[t] : t; }
  FOREMAN_DETAIL_INLINE bool lookup(std::uint64_t name, int worker, ticket& t, item& it) const {
    if (names_ == nullptr && name < tasks_.size()) { // the common case: a ticket is its name
      t = it = name;
      return true;
    }
    const bool kept = lookup_named(name, worker, t);
    it = t;
    return kept;
  }
  item item_of(ticket t) const { return t; }
  bool done(ticket t) const { return done_[t] != 0; }
  Result& result(ticket t) { return results_[t]; }
  task_record& record(ticket t) { return records_[t]; }
  void mark_resent(ticket t) { resent_[t] = 1; }
  bool count_attempt(ticket t) {
    ++records_[t].attempts;
    return std::exchange(resent_[t], 0) != 0;
  }
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

/// What a job's store keeps of a task's record: task_record's fields but the timeline's times
/// (filled in from the master's clock only when a timeline is asked for), and the store's own two
/// flags in what would be padding. 24 bytes, not 48: a job's entries are touched for every task,
/// and one that holds 200,000 tiny tasks at once keeps 11 MB of them.
struct job_record {
  int worker = -1;
  unsigned attempts = 0;
  double seconds = 0.0;
  bool failed = false;
  bool replayed = false;
  bool done = false;   // the store's: its result or failure is filed
  bool resent = false; // the store's: taken from a lost worker, to be announced when sent again

  task_record to_task_record() const { return task_record{worker, seconds, failed, attempts, replayed}; }
};

/// The store of a job: only the tasks submitted and not yet handed back (by their completion, or
/// dropped by a cancellation). Tickets are given in submission order from 0; a ticket is its
/// task's name on the wire.
///
/// The tickets a job keeps mostly lie in a window behind the newest (a stream's never span more
/// than its bound), so they are kept in fixed segments of segment_slots slots, ticket t in
/// segment t / segment_slots at t % segment_slots, found without hashing through a ring of
/// segment pointers. A segment is never moved nor copied: a job that keeps every task it was
/// given (all submitted before any is taken) adds segments, and one whose window moves on hands
/// the segment behind it to the front (as many are kept spare as are in use, at least two), so
/// a stream allocates nothing once its window is full.
///
/// A ticket that stays while many later ones come and go (a long task among many short ones, a
/// completion never taken) would stretch the window without bound, so when it spans more than
/// max(2 segments, 4 x the tickets it holds), its oldest entries move to a hash table
/// (stragglers): the segments never hold more than max(2 segments, 4 x the most tickets held at
/// once) slots, plus a partly used segment at the front, and as many spares. Failures are kept
/// apart, in a hash table by ticket.
template <class Task, class Result>
class job_store {
public:
  struct entry {
    explicit entry(Task&& t) : task(std::move(t)) {}
    Task task;
    Result result{};
    job_record record{}; // with the flags done and resent
  };
  /// Where an entry lives: empty (no ticket kept there) or holding one. std::optional<entry>'s
  /// interface, but a segment of them is built by marking each slot empty, where a segment of
  /// optionals was zeroed whole (28 KB) by GCC 12 for every 512 tasks of a job.
  class slot {
  public:
    slot() noexcept : live_(false) {} // the storage is left alone
    slot(slot&& other) : live_(false) {
      if (other.live_) emplace(std::move(*other));
    }
    slot(const slot&) = delete;
    slot& operator=(const slot&) = delete;
    slot& operator=(slot&&) = delete;
    ~slot() { reset(); }

    explicit operator bool() const noexcept { return live_; }
    /// Builds the entry in an empty slot.
    template <class... Args>
    entry& emplace(Args&&... args) {
      ::new (static_cast<void*>(storage_)) entry(std::forward<Args>(args)...);
      live_ = true;
      return **this;
    }
    void reset() noexcept {
      if (!live_) return;
      live_ = false;
      (**this).~entry();
    }
    entry& operator*() noexcept { return *std::launder(reinterpret_cast<entry*>(storage_)); }
    entry* operator->() noexcept { return &**this; }

  private:
    alignas(entry) unsigned char storage_[sizeof(entry)];
    bool live_;
  };

  class cache;

  /// @param segments where emptied segments are taken from and given back to, kept between the
  ///        jobs of a pool (null: none, every segment is allocated and freed here)
  explicit job_store(cache* segments = nullptr) : cache_(segments) {}
  job_store(const job_store&) = delete; // dir_data_ points into dir_
  job_store& operator=(const job_store&) = delete;
  ~job_store() { give_back(); }

  /// An entry is erased when its task is cancelled (job::cancel()), also while its body arrives.
  static constexpr bool results_stay_put = false;
  /// Slots per segment: 512, some 24 KB for small tasks and results (48-byte slots).
  static constexpr std::size_t segment_slots = 512;

  /// Handle to a kept ticket's entry (see the interface above): its slot, in a segment or among
  /// the stragglers; valid until the next add() (which may move the oldest entries to the
  /// stragglers) or erase().
  using item = slot*;

  /// Keeps `task` under the next ticket, which it returns.
  FOREMAN_DETAIL_INLINE ticket add(Task task) {
    if ((next_ & slot_mask) == 0) start_segment();
    front_[next_ & slot_mask].emplace(std::move(task));
    ++in_window_;
    return next_++;
  }
  /// Tickets given so far.
  ticket issued() const { return next_; }
  std::size_t kept() const { return in_window_ + stragglers_.size(); }
  bool has(ticket t) const { return const_cast<job_store&>(*this).find(t) != nullptr; }

  /// Ticket t's item, or null when it is not kept. The window's case is small enough to inline:
  /// the master's loop finds a ticket once per reply item, and a job once more to hand it out.
  FOREMAN_DETAIL_INLINE item find(ticket t) {
    if (t - low_ < next_ - low_) { // low_ <= t < next_
      slot& s = slot_at(t);
      return s ? &s : nullptr;
    }
    return t < low_ && !stragglers_.empty() ? find_straggler(t) : nullptr;
  }
  FOREMAN_DETAIL_INLINE entry& at(ticket t) { return **item_of(t); }
  /// Ticket t's item. @throws error when t is not kept
  FOREMAN_DETAIL_INLINE item item_of(ticket t) {
    const item it = find(t);
    if (it == nullptr) not_kept(t);
    return it;
  }

  /// Forgets ticket t (its completion was handed out, or it was cancelled); nothing if it is not
  /// kept.
  void erase(ticket t) {
    if (const item it = find(t))
      erase(t, it);
    else if (!failures_.empty())
      failures_.erase(t);
  }
  /// Forgets kept ticket t, whose item is `it`.
  FOREMAN_DETAIL_INLINE void erase(ticket t, item it) {
    if (t >= low_ && failures_.empty()) { // the common case: in the window, no failure kept
      it->reset(); // never throws (a Result is not built here), and frees a large task or result now
      --in_window_;
      // The common case of advance_low(): the next ticket is live, in the same segment (the
      // slot after `it`, as t's is not the segment's last).
      if (t == low_ && (++low_ == next_ || (low_ & slot_mask) == 0 || !it[1])) advance_low();
      return;
    }
    erase_other(t, it);
  }
  /// Task t's failure, if one was filed (fail()); else null.
  FOREMAN_DETAIL_INLINE const task_failure* failure(ticket t) const {
    if (failures_.empty()) return nullptr; // the common case: no task failed
    const auto found = failures_.find(t);
    return found == failures_.end() ? nullptr : &found->second;
  }
  /// Task t's failure, moved out (see failure()).
  FOREMAN_DETAIL_INLINE std::optional<task_failure> take_failure(ticket t) {
    if (failures_.empty()) return std::nullopt; // the common case: no task failed
    return take_failure_other(t);
  }
  std::size_t finished() const { return finished_; }
  /// Slots the segments hold in memory (the spares included), besides the stragglers.
  std::size_t capacity() const {
    return (static_cast<std::size_t>(seg_end_ - seg_low_) + spare_.size()) * segment_slots;
  }
  /// Tickets kept outside the segments.
  std::size_t stragglers() const { return stragglers_.size(); }

  const Task& task(ticket t) const { return checked(t).task; }
  static const Task& task(item it) { return (*it)->task; }
  static constexpr bool owns_tasks = true;
  /// Ticket t's task, which erase() frees; null when t is not kept.
  Task* owned_task(ticket t) {
    const item it = find(t);
    return it ? &(*it)->task : nullptr;
  }
  std::uint64_t name(ticket t) const { return t; }
  FOREMAN_DETAIL_INLINE bool lookup(std::uint64_t name, int worker, ticket& t, item& it) {
    if (name >= next_) unknown(name, worker);
    t = name;
    it = find(t);
    return it != nullptr;
  }
  FOREMAN_DETAIL_INLINE bool done(ticket t) const {
    const item it = const_cast<job_store&>(*this).find(t);
    return it == nullptr || (*it)->record.done;
  }
  static bool done(item it) { return (*it)->record.done; }
  FOREMAN_DETAIL_INLINE Result& result(ticket t) { return at(t).result; }
  static Result& result(item it) { return (*it)->result; }
  FOREMAN_DETAIL_INLINE job_record& record(ticket t) { return at(t).record; }
  static job_record& record(item it) { return (*it)->record; }
  void mark_resent(ticket t) { at(t).record.resent = true; }
  static bool count_attempt(item it) {
    ++(*it)->record.attempts;
    return std::exchange((*it)->record.resent, false);
  }
  void fail(task_failure f) {
    const ticket t = f.index;
    if (find(t) == nullptr) not_kept(t);
    failures_.insert_or_assign(t, std::move(f));
  }
  FOREMAN_DETAIL_INLINE void finish(item it) {
    (*it)->record.done = true;
    ++finished_;
  }
  void finish(ticket t) { finish(item_of(t)); }

private:
  struct segment {
    slot slots[segment_slots];
  };

public:
  /// A job store's emptied segments, kept by its pool (master_worker) from one job to the next:
  /// a job that holds many tasks at once takes them back instead of fresh memory, which the
  /// allocator returned to the system when the previous job ended and the kernel would fault in
  /// again page by page (bench tiny job, 200,000 tasks held at once: about 2,400 page faults a
  /// job without it, none with it). Holds at most max_bytes; the rest is freed.
  class cache {
  public:
    static constexpr std::size_t max_bytes = std::size_t{64} << 20; // 64 MiB
    /// Segments kept.
    std::size_t size() const { return kept_.size(); }

  private:
    friend class job_store;
    std::unique_ptr<segment> take() {
      if (kept_.empty()) return nullptr;
      std::unique_ptr<segment> s = std::move(kept_.back());
      kept_.pop_back();
      return s;
    }
    // Keeps `s` (every slot empty) if there is room, else frees it.
    void keep(std::unique_ptr<segment> s) noexcept {
      if (kept_.size() >= max_bytes / sizeof(segment)) return;
      try {
        kept_.push_back(std::move(s));
      } catch (...) { // s is freed
      }
    }
    std::vector<std::unique_ptr<segment>> kept_;
  };

private:
  static constexpr unsigned segment_bits = 9;
  static constexpr ticket slot_mask = segment_slots - 1;
  static_assert(std::size_t{1} << segment_bits == segment_slots, "segment_slots is 2^segment_bits");

  // The slot of a ticket whose segment is present: seg_low_ <= t >> segment_bits < seg_end_.
  FOREMAN_DETAIL_INLINE slot& slot_at(ticket t) const {
    return dir_data_[static_cast<std::size_t>(t >> segment_bits) & dir_mask_]->slots[t & slot_mask];
  }
  FOREMAN_DETAIL_COLD item find_straggler(ticket t) {
    const auto found = stragglers_.find(t);
    return found == stragglers_.end() ? nullptr : &found->second;
  }
  FOREMAN_DETAIL_COLD std::optional<task_failure> take_failure_other(ticket t) {
    const auto found = failures_.find(t);
    if (found == failures_.end()) return std::nullopt;
    std::optional<task_failure> f(std::move(found->second));
    failures_.erase(found);
    return f;
  }
  // erase() of a straggler, or while failures are kept.
  FOREMAN_DETAIL_COLD void erase_other(ticket t, item it) {
    if (t >= low_) {
      it->reset();
      --in_window_;
      if (t == low_) advance_low();
    } else {
      stragglers_.erase(t);
    }
    if (!failures_.empty()) failures_.erase(t);
  }
  const entry& checked(ticket t) const { return const_cast<job_store&>(*this).at(t); }
  [[noreturn]] FOREMAN_DETAIL_COLD void unknown(std::uint64_t name, int worker) const {
    throw unknown_task(name, worker, "the " + std::to_string(next_) + " tasks of this job");
  }
  [[noreturn]] FOREMAN_DETAIL_COLD static void not_kept(ticket t) {
    throw error("internal error: ticket " + std::to_string(t) + " is not kept by this job");
  }

  // Ticket next_ is the first of its segment: moves the oldest tickets to the stragglers while the
  // window spans more than max(2 segments, 4 x the tickets it holds) (checked once a segment, so
  // the window may span up to a segment more), and makes the segment the front one.
  FOREMAN_DETAIL_COLD void start_segment() {
    while (next_ - low_ >= std::max<ticket>(2 * segment_slots, 4 * static_cast<ticket>(in_window_))) evict_oldest();
    if (next_ >> segment_bits == seg_end_) add_segment();
    front_ = &slot_at(next_);
  }

  // The segment of ticket next_ (a new one: next_ is its first slot) joins the window's.
  FOREMAN_DETAIL_COLD void add_segment() {
    if (seg_end_ - seg_low_ == dir_.size()) { // the ring of pointers is full: twice as many
      std::vector<std::unique_ptr<segment>> wider(std::max<std::size_t>(4, 2 * dir_.size()));
      const std::size_t mask = wider.size() - 1;
      for (ticket k = seg_low_; k < seg_end_; ++k)
        wider[static_cast<std::size_t>(k) & mask] = std::move(dir_[static_cast<std::size_t>(k) & dir_mask_]);
      dir_.swap(wider);
      dir_mask_ = mask;
      dir_data_ = dir_.data();
    }
    std::unique_ptr<segment> fresh;
    if (spare_.empty()) {
      if (cache_) fresh = cache_->take();
      if (!fresh) fresh.reset(new segment); // default-initialized: every slot empty, the rest not zeroed first
    } else {
      fresh = std::move(spare_.back());
      spare_.pop_back();
    }
    dir_[static_cast<std::size_t>(seg_end_) & dir_mask_] = std::move(fresh);
    ++seg_end_;
  }

  // The oldest ticket of the window (live: see advance_low()) moves to the stragglers.
  void evict_oldest() {
    slot& s = slot_at(low_);
    stragglers_.emplace(low_, std::move(s));
    s.reset();
    --in_window_;
    advance_low();
  }

  // low_ moves past the slots no longer live: it is next_ or a live ticket's. The segments it
  // leaves behind (all their slots empty) become spares, or are freed.
  FOREMAN_DETAIL_COLD void advance_low() {
    while (low_ < next_ && !slot_at(low_)) ++low_;
    while (seg_low_ < low_ >> segment_bits) {
      std::unique_ptr<segment>& behind = dir_[static_cast<std::size_t>(seg_low_) & dir_mask_];
      // As many spares as segments in use: a stream's window hands a whole chunk's segments
      // back at once and takes as many again when it reads on.
      if (spare_.size() < std::max<std::size_t>(2, static_cast<std::size_t>(seg_end_ - seg_low_)))
        spare_.push_back(std::move(behind));
      else if (cache_)
        cache_->keep(std::move(behind));
      else
        behind.reset();
      ++seg_low_;
    }
  }

  // The store ends: its segments, emptied, go to the cache (if any).
  void give_back() noexcept {
    if (cache_ == nullptr) return;
    for (ticket k = seg_low_; k < seg_end_; ++k) {
      std::unique_ptr<segment>& s = dir_[static_cast<std::size_t>(k) & dir_mask_];
      for (slot& one : s->slots) one.reset();
      cache_->keep(std::move(s));
    }
    for (std::unique_ptr<segment>& s : spare_) cache_->keep(std::move(s));
  }

  // Segments seg_low_ .. seg_end_ - 1 (of tickets seg_low_ * segment_slots on) are present, at
  // dir_[k & dir_mask_]: a power of two pointers.
  std::vector<std::unique_ptr<segment>> dir_;
  std::unique_ptr<segment>* dir_data_ = nullptr; // dir_.data(), read for every slot
  std::size_t dir_mask_ = 0;
  ticket seg_low_ = 0, seg_end_ = 0;
  slot* front_ = nullptr;                       // the slots of ticket next_'s segment
  std::vector<std::unique_ptr<segment>> spare_; // emptied segments, reused before allocating
  std::size_t in_window_ = 0;                   // live slots in the segments
  std::unordered_map<ticket, slot> stragglers_; // kept tickets below low_ (each slot holds its entry)
  // Failures apart from the entries, which they would make twice as large (the slots are
  // touched for every task; failures are rare).
  std::unordered_map<ticket, task_failure> failures_;
  cache* cache_ = nullptr;
  ticket low_ = 0; // every kept ticket from here on is in the segments
  ticket next_ = 0;
  std::size_t finished_ = 0;
};

} // namespace detail
} // namespace foreman
