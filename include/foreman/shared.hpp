#pragma once
/// @file shared.hpp
/// Shared data and worker set-up: a read-only value that the master sends to every worker once
/// per run or job, not with every task (with_shared), and an initializer that every worker runs
/// once per run or job before its first task (with_initializer). Both wrap the function passed
/// to run(), run_outcomes(), run_into(), start(), run_stream() or reduce().

#include <foreman/serialization.hpp>

#include <functional>
#include <memory>
#include <type_traits>
#include <utility>

namespace foreman {

namespace detail {
/// The initializer of a function given none.
struct no_initializer {};

/// A shared value given by value, or by reference (std::ref, std::cref: not copied).
template <class T>
struct shared_argument {
  using type = T;
  static constexpr bool by_reference = false;
};
template <class T>
struct shared_argument<std::reference_wrapper<T>> {
  using type = std::remove_const_t<T>;
  static constexpr bool by_reference = true;
};
} // namespace detail

/// A task function with what each worker receives and runs before its first task of a run or
/// job: what with_shared() and with_initializer() return, and what every rank passes to run()
/// or start() in place of the plain function. Copying it copies the function and the
/// initializer, not the shared value (held by a std::shared_ptr).
///
/// @tparam Shared the type of the shared value; void when there is none
/// @tparam Fn     the task function: `Result(const Task&, const Shared&)` or
///                `void(const Task&, const Shared&, Result&)`, or without a shared value
///                `Result(const Task&)` or `void(const Task&, Result&)`
/// @tparam Init   the initializer, `void()` or `void(const Shared&)`; detail::no_initializer
///                when there is none
template <class Shared, class Fn, class Init = detail::no_initializer>
class worker_function {
public:
  using shared_type = Shared;
  using function_type = Fn;
  using initializer_type = Init;

  worker_function(std::shared_ptr<const Shared> value, Fn fn, Init init)
      : value_(std::move(value)), fn_(std::move(fn)), init_(std::move(init)) {}

  /// The value sent to the workers, as given on this rank (the master's; ignored on workers).
  const std::shared_ptr<const Shared>& shared() const noexcept { return value_; }
  Fn& function() noexcept { return fn_; }
  const Fn& function() const noexcept { return fn_; }
  Init& initializer() noexcept { return init_; }
  const Init& initializer() const noexcept { return init_; }

private:
  std::shared_ptr<const Shared> value_;
  Fn fn_;
  Init init_;
};

namespace detail {
template <class Fn>
struct is_worker_function : std::false_type {};
template <class S, class F, class I>
struct is_worker_function<worker_function<S, F, I>> : std::true_type {};
/// Whether Fn (cv-qualifiers ignored) came from with_shared() or with_initializer().
template <class Fn>
inline constexpr bool is_worker_function_v = is_worker_function<std::remove_cv_t<Fn>>::value;
/// The type of the value a task function shares (with_shared()); void when it shares none.
template <class Fn, bool = is_worker_function_v<Fn>>
struct shared_type_of {
  using type = void;
};
template <class Fn>
struct shared_type_of<Fn, true> {
  using type = typename std::remove_cv_t<Fn>::shared_type;
};
} // namespace detail

/// Binds a read-only value to a task function: the master sends `value` to every live worker
/// once at the start of each run or job (run(), run_outcomes(), run_into(), start(),
/// run_stream(), reduce()), before any task, and each worker calls `fn(task, value)` with the
/// copy it received, for every task of that run or job. Never sent with a task.
///
/// Every rank passes with_shared(...) to the same call; only the master's `value` is sent: on a
/// worker it is ignored and replaced by the one received (pass `S{}` there, e.g.
/// `with_shared(pool.is_master() ? load() : S{}, fn)`). In a pool without workers the master
/// calls `fn` with its own `value`. A std::vector or std::basic_string of bitwise elements
/// (`std::vector<double>`, ...) is sent straight from its memory and received straight into the
/// worker's copy, in pieces over 256 MiB; any other type goes through its serialize() once per
/// run or job on the master, and once per run or job on each worker. A worker keeps its copy
/// until its next run or job starts: a value of the same type is then received into it (for a
/// vector of the same size: nothing allocated, nothing zeroed); a run or job that shares no
/// value, or one of another type, frees it. The copy `fn` sees on a worker is valid during the
/// run or job only.
///
/// The value is moved or copied into the returned object (held by a std::shared_ptr, kept
/// alive by the pool while a send still reads it, after the pool too); pass `std::cref(value)` to
/// share it without a copy: it must then stay unchanged until the run or job has ended on the
/// master, and, if a worker was lost while it received the value (the master says so), until the
/// program ends, since MPI may still read it for that worker (docs/reliability.md, "Lost while
/// receiving").
///
/// @tparam S     the value's type: serializable (is_serializable_v) and default constructible
/// @param value the value sent to the workers, or `std::cref` of it; ignored on a worker
/// @param fn    callable as `Result(const Task&, const S&)` or `void(const Task&, const S&,
///              Result&)` (writes the result, as for run()); may be with_initializer(init, f),
///              whose `init` may then take the value: `void(const S&)`
/// @return a worker_function<S, ...> to pass to run() or start() on every rank
///
/// A worker that cannot receive the value (its load throws, its storage cannot be allocated)
/// takes no part in that run, as one whose initializer throws (see with_initializer()). A value
/// whose serialize() throws on the master fails every task of the run or job with type
/// "foreman::serialization_error", unless the pool has no workers.
///
/// @code
/// std::vector<double> table = pool.is_master() ? read_table() : std::vector<double>{};
/// pool.run(tasks, foreman::with_shared(std::cref(table), [](const query& q, const std::vector<double>& t) {
///   return lookup(t, q);
/// }));
/// @endcode
template <class S, class Fn>
auto with_shared(S&& value, Fn&& fn) {
  using argument = detail::shared_argument<std::decay_t<S>>;
  using T = typename argument::type;
  static_assert(is_serializable_v<T> && std::is_default_constructible_v<T>,
                "foreman: with_shared(value, fn): the value must be serializable (is_serializable_v: a "
                "serialize() member or free overload, or trivially copyable, holding no pointer or view) and "
                "default constructible: each worker receives it into a default-constructed object");
  std::shared_ptr<const T> held;
  if constexpr (argument::by_reference)
    held = std::shared_ptr<const T>(std::shared_ptr<const T>(), &value.get()); // refers, owns nothing
  else
    held = std::make_shared<const T>(std::forward<S>(value));
  using F = std::decay_t<Fn>;
  if constexpr (detail::is_worker_function_v<F>) {
    static_assert(std::is_void_v<typename F::shared_type>,
                  "foreman: with_shared(value, fn): fn has a shared value already; share one value holding "
                  "both (a struct or a std::tuple)");
    F inner(std::forward<Fn>(fn));
    return worker_function<T, typename F::function_type, typename F::initializer_type>(
        std::move(held), std::move(inner.function()), std::move(inner.initializer()));
  } else {
    return worker_function<T, F>(std::move(held), std::forward<Fn>(fn), detail::no_initializer{});
  }
}

/// Adds a per-worker initializer to a task function: every worker runs `init` once at the start
/// of each run or job, before its first task (with a shared value: once the value has arrived,
/// as `init(value)` if it takes it), whether or not it is then sent tasks. Every rank passes
/// with_initializer(...) to the same call. In a pool without workers the master runs `init`
/// once per run or job, before the first task.
///
/// If `init` throws on a worker, that worker tells the master, which takes it out of this run
/// or job: run_info::losses records it with loss_reason::initializer_failed and the exception
/// (type and what()), a line on standard error announces it (options::announce_faults), and the
/// tasks it was sent go to the other workers (no attempt is counted). It stays in the pool: the
/// next run or job runs `init` on it again. When no worker is left to run a task and the last
/// one left because its initializer threw (or, without workers, when the master's `init`
/// throws), every task not yet run fails with type "foreman::initializer_error"
/// (initializer_error_type), whose message quotes the initializers' exceptions.
///
/// Like a task, `init` must end within options::task_timeout (if one is set): the worker's first
/// tasks are sent as the run starts, and the master hears from it again once it has set up. (A
/// shared value's transfer is judged as a large task's: by the time between two of its pieces.)
///
/// @param init callable as `void()`, or `void(const S&)` when `fn` is given a shared value
/// @param fn   a task function, as for run(), or with_shared(value, f)
/// @return a worker_function to pass to run() or start() on every rank
///
/// @code
/// pool.run(tasks, foreman::with_initializer([] { open_database(); }, [](const key& k) { return fetch(k); }));
/// @endcode
template <class Init, class Fn>
auto with_initializer(Init&& init, Fn&& fn) {
  using I = std::decay_t<Init>;
  using F = std::decay_t<Fn>;
  if constexpr (detail::is_worker_function_v<F>) {
    static_assert(std::is_same_v<typename F::initializer_type, detail::no_initializer>,
                  "foreman: with_initializer(init, fn): fn has an initializer already; call both from one");
    F inner(std::forward<Fn>(fn));
    return worker_function<typename F::shared_type, typename F::function_type, I>(
        inner.shared(), std::move(inner.function()), std::forward<Init>(init));
  } else {
    return worker_function<void, F, I>(nullptr, std::forward<Fn>(fn), std::forward<Init>(init));
  }
}

} // namespace foreman
