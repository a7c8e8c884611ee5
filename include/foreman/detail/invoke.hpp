#pragma once
/// @file invoke.hpp
/// Runs the user's function on one task and captures either its result or the exception it
/// threw: the one place where a task's exception is turned into data, for workers and for a
/// master that runs tasks itself.

#include <foreman/detail/task_clock.hpp>
#include <foreman/detail/type_name.hpp>

#if defined(__GLIBCXX__) || defined(_LIBCPP_VERSION)
#include <cxxabi.h>
#endif

#include <exception>
#include <string>
#include <type_traits>
#include <utility>

namespace foreman {
namespace detail {

/// The type of the exception being handled, demangled ("int" for `throw 42`), where the C++ ABI
/// tells it (GCC, Clang); otherwise "unknown exception".
inline std::string current_exception_type() {
#if defined(__GLIBCXX__) || defined(_LIBCPP_VERSION)
  if (const std::type_info* type = abi::__cxa_current_exception_type()) return type_name(*type);
#endif
  return "unknown exception";
}

/// Describes the exception being handled as a task's failure is described: its demangled type
/// (type_name; see current_exception_type() for one not derived from std::exception) and what().
inline void describe_failure(std::string& type, std::string& message) {
  try {
    throw;
  } catch (const std::exception& e) {
    type = type_name(typeid(e));
    message = e.what();
  } catch (...) {
    type = current_exception_type();
    message = "an exception not derived from std::exception";
  }
}

/// Whether `fn` writes its result into an object it is given, as `fn(const Task&, Result&)`,
/// rather than returning it: the object is then reused from task to task (its storage too).
template <class Fn, class Task, class Result>
inline constexpr bool writes_into_v = std::is_invocable_v<Fn&, const Task&, Result&>;

/// Whether `fn` can run a task: as `Result(const Task&)` or as `void(const Task&, Result&)`.
template <class Fn, class Task, class Result, class = void>
struct is_task_function : std::bool_constant<writes_into_v<Fn, Task, Result>> {};
template <class Fn, class Task, class Result>
struct is_task_function<Fn, Task, Result, std::enable_if_t<std::is_invocable_v<Fn&, const Task&>>>
    : std::bool_constant<writes_into_v<Fn, Task, Result> ||
                         std::is_convertible_v<std::invoke_result_t<Fn&, const Task&>, Result>> {};

/// Thrown by a task function that can run no task of this run any more, foreman's own relay of
/// a sub-master whose group has no live worker left (relay.hpp): its worker refuses the rest of
/// the run as a worker whose set-up failed does (worker_loop.hpp), and the master hands the
/// tasks it holds to the others, charging them no attempt. Not an exception of the user's.
struct run_refused {
  std::string type;    ///< why, as a failure's type ("foreman::worker_lost")
  std::string message; ///< why, in words
};

/// How one call of the user's function went.
struct invocation {
  bool ok = false;      ///< false when the function threw
  bool refused = false; ///< it threw run_refused: the worker refuses the run (error_type, error_message say why)
  std::string error_type;
  std::string error_message;
  double seconds = 0.0;
};

/// Calls fn on `task`, leaving its result in `into` (fn(task, into), or into = fn(task)), and
/// records in `out` whether it returned or what it threw; after a throw `into` holds whatever
/// fn left in it. The clock is read once per call: `start` is when the call began (for a run of
/// tasks, the previous call's end), and the return value is when it ended; out.seconds is the
/// difference. out.refused is only ever set, by a run_refused: a worker calls no task after it
/// for the rest of its run.
template <class Fn, class Task, class Result>
task_clock::stamp invoke_task(Fn& fn, const Task& task, Result& into, invocation& out, const task_clock& clock,
                              task_clock::stamp start) {
  out.ok = false;
  try {
    if constexpr (writes_into_v<Fn, Task, Result>)
      fn(task, into);
    else
      into = static_cast<Result>(fn(task));
    out.ok = true;
  } catch (const run_refused& why) {
    out.refused = true;
    out.error_type = why.type;
    out.error_message = why.message;
  } catch (...) {
    describe_failure(out.error_type, out.error_message);
  }
  const task_clock::stamp end = clock.now();
  out.seconds = clock.seconds(start, end);
  return end;
}

} // namespace detail
} // namespace foreman
