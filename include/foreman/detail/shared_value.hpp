#pragma once
/// @file shared_value.hpp
/// Shared data and worker set-up (shared.hpp) inside the loops. On the master: the run's shared
/// value, encoded once per run or job (shared_payload) and posted to every live worker before
/// any of its tasks (shared_sends; wire.hpp, tag::shared). On a worker: the value received for
/// the run, the initializer run once, and the user's function called with the value
/// (function_setup). Without workers: the master's own value and one run of the initializer
/// (local_call).

#include <foreman/detail/invoke.hpp>
#include <foreman/detail/mpi_check.hpp>
#include <foreman/detail/pool_state.hpp>
#include <foreman/detail/task_clock.hpp>
#include <foreman/detail/transport.hpp>
#include <foreman/detail/wire.hpp>
#include <foreman/errors.hpp>
#include <foreman/shared.hpp>

#include <mpi.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

namespace foreman {
namespace detail {

/// The user's function with the run's shared value bound as its second argument: what
/// invoke_task() calls, as `fn(task)` or `fn(task, result)`. `value` points at where the run's
/// value is found (the worker's copy, or the master's value).
template <class Fn, class S>
struct bound_shared {
  Fn* fn;
  const S* const* value;

  template <class T>
  auto operator()(const T& task) const -> decltype((*fn)(task, **value)) {
    return (*fn)(task, **value);
  }
  template <class T, class R>
  auto operator()(const T& task, R& result) const -> decltype((*fn)(task, **value, result)) {
    return (*fn)(task, **value, result);
  }
};

/// What invoke_task() calls for a worker_function: its function, with the value bound if it has one.
template <class WorkerFn>
struct task_call {
  using whole = std::remove_cv_t<WorkerFn>;
  using function =
      std::conditional_t<std::is_const_v<WorkerFn>, const typename whole::function_type, typename whole::function_type>;
  using type = std::conditional_t<std::is_void_v<typename whole::shared_type>, function,
                                  bound_shared<function, typename whole::shared_type>>;
};

/// A worker_function runs tasks when its function does, with the value bound.
template <class S, class F, class I, class Task, class Result>
struct is_task_function<worker_function<S, F, I>, Task, Result>
    : is_task_function<typename task_call<worker_function<S, F, I>>::type, Task, Result> {};
template <class S, class F, class I, class Task, class Result>
struct is_task_function<const worker_function<S, F, I>, Task, Result>
    : is_task_function<typename task_call<const worker_function<S, F, I>>::type, Task, Result> {};

/// What a worker keeps of the last run's shared value: the object, into whose storage the next
/// run's value is received when it has the same type (for a std::vector of the same size: no
/// allocation, no zeroing, as for the tasks a worker decodes into one kept object). A run that
/// shares no value, or one of another type, lets it go.
class kept_shared {
public:
  /// The kept object if it is an S, else a new, default-constructed S, kept from now on.
  template <class S>
  S& take() {
    if (type_ == nullptr || *type_ != typeid(S)) {
      object_ = std::make_shared<S>();
      type_ = &typeid(S);
    }
    return *static_cast<S*>(object_.get());
  }
  void clear() noexcept {
    object_.reset();
    type_ = nullptr;
  }

private:
  std::shared_ptr<void> object_;
  const std::type_info* type_ = nullptr;
};

/// How a run calls the user's function on a worker, or on a master without workers. A plain
/// function is called as it is; nothing is received and nothing initialized.
template <class Fn, bool = is_worker_function_v<Fn>>
class function_setup {
public:
  static constexpr bool takes_value = false;
  static constexpr bool initializes = false;

  explicit function_setup(Fn& fn, kept_shared* kept = nullptr) : fn_(fn) {
    if (kept != nullptr) kept->clear(); // this run shares nothing
  }
  function_setup(const function_setup&) = delete;
  function_setup& operator=(const function_setup&) = delete;

  Fn& call() { return fn_; }
  bool has_value() const { return true; }
  void use_master_value() {}
  bool initialize(invocation&) { return true; }

private:
  Fn& fn_;
};

/// For a worker_function: holds the value received for the run (filled by decode(), in the object
/// kept from the last run if it has the same type, else in a default-constructed one), runs the
/// initializer (initialize()), and calls the function with the value.
template <class Fn>
class function_setup<Fn, true> {
  using whole = std::remove_cv_t<Fn>;
  using shared_type = typename whole::shared_type;
  using initializer = std::remove_reference_t<decltype(std::declval<Fn&>().initializer())>;

public:
  static constexpr bool takes_value = !std::is_void_v<shared_type>;
  static constexpr bool initializes = !std::is_same_v<std::remove_cv_t<initializer>, no_initializer>;

private:
  using stored = std::conditional_t<takes_value, shared_type, char>; // char: no value, nothing stored
  static constexpr bool init_takes_value =
      std::conditional_t<takes_value, std::is_invocable<initializer&, const stored&>, std::false_type>::value;
  static_assert(!initializes || std::is_invocable_v<initializer&> || init_takes_value,
                "foreman: with_initializer(init, fn): init must be callable as void(), or, when fn is given a "
                "value by with_shared(value, ...), as void(const S&) with S the value's type");

public:
  using callable = typename task_call<Fn>::type;

  /// @param kept on a worker, what it keeps of the last run's value (null: a value of its own)
  explicit function_setup(Fn& fn, kept_shared* kept = nullptr) : fn_(fn), own_(target(kept)), bound_(bind()) {}
  function_setup(const function_setup&) = delete;
  function_setup& operator=(const function_setup&) = delete;

  /// The function invoke_task() calls for each task.
  callable& call() {
    if constexpr (takes_value)
      return bound_;
    else
      return fn_.function();
  }

  /// Whether the run's value is there: received (decode()), or the master's own.
  bool has_value() const { return !takes_value || received_; }

  /// A master without workers: the function is called with the master's own value.
  void use_master_value() {
    if constexpr (takes_value) {
      value_ = fn_.shared().get();
      received_ = true;
    }
  }

  /// Reads the value from a tag::shared message, `in` at its item (get_item()); returns where
  /// its body goes, which the caller receives there, or an empty span.
  /// @throws as get_item()
  body_span decode(decoder& in, std::size_t& body_bytes) {
    if constexpr (takes_value) {
      const body_span body = get_item(in, own_, body_bytes);
      value_ = &own_;
      received_ = true;
      return body;
    } else {
      (void)in;
      body_bytes = 0;
      return {};
    }
  }

  /// Runs the initializer (with the value, if it takes it); false, with its exception's type and
  /// what() in `out`, if it threw.
  bool initialize(invocation& out) {
    out.ok = true;
    if constexpr (initializes) {
      try {
        initializer& init = fn_.initializer();
        if constexpr (init_takes_value)
          init(std::as_const(*value_));
        else
          init();
      } catch (...) {
        out.ok = false;
        describe_failure(out.error_type, out.error_message);
      }
    }
    return out.ok;
  }

private:
  Fn& fn_;
  stored mine_{};                 // own_ when nothing is kept between runs (unused when it is)
  stored& own_;                   // the value received for this run (on a worker)
  const stored* value_ = nullptr; // the run's value: own_ once received, or the master's
  bool received_ = false;
  std::conditional_t<takes_value, callable, char> bound_; // with a value: fn_'s function, value_ bound

  stored& target(kept_shared* kept) {
    if constexpr (takes_value) {
      if (kept != nullptr) return kept->take<stored>();
    } else if (kept != nullptr) {
      kept->clear(); // this run shares nothing
    }
    return mine_;
  }

  auto bind() {
    if constexpr (takes_value)
      return callable{&fn_.function(), &value_};
    else
      return '\0';
  }
};

/// A pool without workers: the master runs each task itself, with its own shared value, once its
/// initializer has run (at construction, once per run or job). If the initializer threw, every
/// task fails with type initializer_error_type.
template <class Fn>
class local_call {
public:
  explicit local_call(Fn& fn) : setup_(fn) {
    setup_.use_master_value();
    invocation init;
    if (!setup_.initialize(init))
      init_failure_ = "not run: the initializer threw on the master (the pool has no workers): " + init.error_type +
                      ": " + init.error_message;
  }

  /// Runs `task` as invoke_task() does, or fails it if the initializer threw.
  template <class Task, class Result>
  task_clock::stamp operator()(const Task& task, Result& into, invocation& out, const task_clock& clock,
                               task_clock::stamp start) {
    if (init_failure_.empty()) return invoke_task(setup_.call(), task, into, out, clock, start);
    out.ok = false;
    out.error_type = initializer_error_type;
    out.error_message = init_failure_;
    out.seconds = 0.0;
    return start;
  }

private:
  function_setup<Fn> setup_;
  std::string init_failure_; // why every task fails ("" : the initializer ran, or there is none)
};

/// The master's shared value for one run or job, encoded once (wire.hpp, tag::shared): the
/// message, its envelope when it is longer than posted_capacity, its body, and the value itself,
/// which the body is sent from and which is kept alive while any send may read it.
struct shared_payload {
  std::shared_ptr<const void> value;
  std::vector<char> message;
  std::vector<char> envelope; // empty: the message fits a posted receive
  body_span body;
  std::string unsendable; // why the value could not be encoded ("": it was)
};

/// The shared value of `fn` encoded for run `run` of pool `pool`; null when `fn` has none.
template <class Fn>
std::shared_ptr<const shared_payload> share(const Fn& fn, std::uint64_t pool, std::uint32_t run) {
  if constexpr (!is_worker_function_v<Fn>) {
    return nullptr;
  } else if constexpr (std::is_void_v<typename std::remove_cv_t<Fn>::shared_type>) {
    return nullptr;
  } else {
    auto payload = std::make_shared<shared_payload>();
    payload->value = fn.shared();
    encoder out(payload->message);
    out.put(header{pool, run});
    out.put(std::uint32_t{1});
    const std::size_t bodies_at = out.size();
    out.put(std::uint32_t{0});
    const std::size_t item_at = out.size();
    try {
      payload->body = put_item(out, *fn.shared());
      out.patch(bodies_at, static_cast<std::uint32_t>(payload->body ? pieces_of(payload->body.bytes) : 0));
    } catch (...) {
      out.rollback(item_at);
      payload->unsendable = serialization_failure("the shared value could not be encoded on the master");
    }
    out.finish();
    if (payload->message.size() > posted_capacity) put_envelope(payload->envelope, payload->message);
    return payload;
  }
}

/// The sends of a run's shared value to its workers: posted at the run's start (post()), before
/// any task, never waited for. Whatever is not complete when the run ends stays in the pool with
/// the payload (release()), and is dropped once complete, at the next run's start.
class shared_sends {
public:
  shared_sends(std::shared_ptr<const shared_payload> payload, int ranks, pool_state& pool)
      : payload_(std::move(payload)), slots_(static_cast<std::size_t>(ranks)) {
    auto& kept = pool.unfinished_shares;
    kept.erase(std::remove_if(kept.begin(), kept.end(), [](auto& entry) { return entry.first.over(); }),
               kept.end());
  }
  shared_sends(const shared_sends&) = delete;
  shared_sends& operator=(const shared_sends&) = delete;

  /// Whether the value could be encoded; else why_unsendable() says why, and nothing is sent.
  bool sendable() const { return payload_->unsendable.empty(); }
  const std::string& why_unsendable() const { return payload_->unsendable; }

  /// Posts the value to worker w: its message (or envelope, then the message on tag::tasks_large),
  /// then its body on tag::task_body. @throws mpi_error naming w
  void post(int w, MPI_Comm comm) {
    if (!sendable()) return;
    const shared_payload& p = *payload_;
    send_slot& slot = slots_[static_cast<std::size_t>(w)];
    slot.peer = w;
    if (p.envelope.empty()) {
      slot.request = post_send(p.message, w, tag::shared, comm);
    } else {
      slot.request = post_send(p.envelope, w, tag::shared, comm);
      post_pieces(p.message.data(), p.message.size(), w, tag::tasks_large, comm, slot,
                  "MPI_Isend (a large shared message)");
    }
    if (p.body) post_body(p.body, w, tag::task_body, comm, slot);
  }

  /// Bytes sent to each worker: the message (or its envelope and the message) and the body.
  std::size_t bytes() const {
    const shared_payload& p = *payload_;
    return p.envelope.size() + p.message.size() + (p.body ? p.body.bytes : 0);
  }

  /// Whether the value's body is sent from memory the pool does not own: a value given by
  /// std::cref (held by a shared_ptr that owns nothing, use_count() 0), sent from its own bytes.
  bool reads_callers_memory() const noexcept {
    return payload_->body && payload_->value && payload_->value.use_count() == 0;
  }

  /// Whether the sends to worker w have completed (tests them; a failed send is over too).
  bool delivered(int w) noexcept { return slots_[static_cast<std::size_t>(w)].over(); }

  /// At the end of the run: the sends not complete are kept in the pool with the payload.
  void release(pool_state& pool) noexcept {
    try {
      for (send_slot& slot : slots_)
        if (!slot.over()) pool.unfinished_shares.emplace_back(std::move(slot), payload_);
    } catch (...) {
      // Out of memory: the sends are forgotten, as by a pool that is destroyed.
    }
  }

private:

  std::shared_ptr<const shared_payload> payload_;
  std::vector<send_slot> slots_; // per rank: the sends of the value to it
};

} // namespace detail
} // namespace foreman
