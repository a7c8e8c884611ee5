#pragma once
/// @file chunk_encoder.hpp
/// The master's tasks messages (master_loop.hpp). encode() writes a chunk of tickets into a send
/// buffer as [header | u32 count | u32 body messages | (u64 name, task item)...] (wire.hpp): a
/// task of body_threshold bytes or more travels after the message as a body read from the task
/// itself (bodies()), and a task whose serialize() throws travels as its failure, which the worker
/// answers like any other. prepare() encodes the next chunk of a dynamic run with a fixed chunk
/// size ahead, while the master has nothing else to do, so that the next reply is answered by
/// sending it. No MPI call: tests/chunk_encoder_test.cpp runs without mpirun.

#include <foreman/detail/pool_state.hpp>
#include <foreman/detail/scheduler.hpp>
#include <foreman/detail/wire.hpp>
#include <foreman/errors.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace foreman {
namespace detail {

/// @tparam Store  dense_store or job_store (task_store.hpp): where a ticket's task and name are
template <class Store>
class chunk_encoder {
public:
  /// An automatic chunk (chunk_size 0) stops once its tasks fill this many bytes, bodies
  /// included: larger ones save no time, and the worker would hold all of their results at once.
  static constexpr std::size_t max_auto_bytes = std::size_t{1} << 20;

  /// @param store  the run's tasks; @param pool  its id and the names messages give (pool_state);
  /// @param run    the run's number, in every message's header
  chunk_encoder(Store& store, const pool_state& pool, std::uint32_t run) : store_(store), pool_(pool), run_(run) {}
  chunk_encoder(const chunk_encoder&) = delete;
  chunk_encoder& operator=(const chunk_encoder&) = delete;

  /// Writes into `bytes` a tasks message of at most `size` tasks (`automatic`: also stopping at
  /// max_auto_bytes), each ticket asked from next(t) (false: no task left) and, once its item is
  /// found, handed to put(t, item) (the store finds it once for both). Returns the number of
  /// tasks written; bodies() then lists the bodies to send after the message, in order.
  template <class Next, class Put = void (*)(ticket, typename Store::item)>
  std::size_t encode(
      std::vector<char>& bytes, std::size_t size, bool automatic, Next&& next,
      Put&& put = [](ticket, typename Store::item) {}) {
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
      const typename Store::item it = store_.item_of(t);
      put(t, it);
      try {
        out.put(name);
        const body_span body = put_item(out, store_.task(it));
        if (body) {
          bodies_.push_back(body);
          body_bytes += body.bytes;
        }
      } catch (...) {
        // Its serialize() threw: the item is taken back, and the worker is sent the task's
        // failure instead.
        out.rollback(item_at);
        put_failed_task(out, name, serialization_error_type,
                        serialization_failure("task " + std::to_string(pool_.shown_task(name)) +
                                              " could not be encoded on " + pool_.master_name()));
      }
      if (automatic && out.size() + body_bytes >= max_auto_bytes) break;
    }
    out.patch(count_at, static_cast<std::uint32_t>(count));
    out.patch(count_at + sizeof(std::uint32_t), body_messages(bodies_));
    out.finish();
    return count;
  }

  /// The bodies of the message encode() wrote last, each in its task's own memory.
  const std::vector<body_span>& bodies() const { return bodies_; }

  /// A dynamic schedule with a fixed chunk size: encodes the chunk take() would build next, unless
  /// the one prepared already starts at the same ticket. A chunk with bodies is marked, not kept
  /// (it is encoded once, not again on every idle pass). Automatic chunks are not prepared: their
  /// size follows every reply's durations, so most prepared ones would be encoded again.
  /// Returns whether it encoded one.
  bool prepare(const scheduler& s) {
    if (s.fixed_chunk() == 0 || !s.fresh_is_next() || (prepared_.valid && prepared_.first == s.fresh_front()))
      return false;
    prepared_.tickets.clear();
    s.peek_fresh(s.fixed_chunk(), prepared_.tickets);
    std::size_t k = 0;
    prepared_.count = encode(prepared_.bytes, s.fixed_chunk(), false, [&](ticket& t) {
      if (k == prepared_.tickets.size()) return false;
      t = prepared_.tickets[k++];
      return true;
    });
    if (!bodies_.empty()) prepared_.count = 0;
    prepared_.first = s.fresh_front();
    prepared_.valid = true;
    return true;
  }

  /// Whether the prepared chunk is the one the scheduler would hand out now: it starts at the
  /// first unsent ticket, and nothing that goes first (taken from a lost worker, a higher
  /// priority) waits. Then its size is the fixed chunk size.
  bool prepared_is_next(const scheduler& s) const {
    return prepared_.valid && prepared_.count > 0 && s.fresh_is_next() && prepared_.first == s.fresh_front();
  }

  /// Hands the prepared message over by swapping it into `bytes` (which becomes the next one's
  /// buffer) and returns its number of tasks: the next that many tickets the scheduler gives.
  /// Requires prepared_is_next().
  std::size_t take_prepared(std::vector<char>& bytes) {
    bytes.swap(prepared_.bytes);
    prepared_.valid = false;
    return prepared_.count;
  }

  /// Forgets the prepared chunk (its tickets were dropped: job::cancel(), options::fail_fast).
  void drop_prepared() { prepared_.valid = false; }

private:
  Store& store_;
  const pool_state& pool_;
  std::uint32_t run_;
  std::vector<body_span> bodies_; // the bodies of the message encoded last
  struct {
    std::vector<char> bytes;
    std::vector<ticket> tickets; // the tickets it holds, for encoding
    ticket first = 0;            // the first unsent ticket when it was encoded
    std::size_t count = 0;       // its tasks; 0: none (or it has bodies)
    bool valid = false;
  } prepared_;
};

} // namespace detail
} // namespace foreman
