#pragma once
/// @file invoke.hpp
/// Runs the user's function on one task and captures either its result or the exception it
/// threw: the one place where a task's exception is turned into data, for workers and for a
/// master that runs tasks itself.

#include <foreman/detail/type_name.hpp>

#if defined(__GLIBCXX__) || defined(_LIBCPP_VERSION)
#include <cxxabi.h>
#endif

#include <chrono>
#include <exception>
#include <optional>
#include <string>
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

template <class Result>
struct invocation {
  std::optional<Result> value; ///< empty when the function threw
  std::string error_type;
  std::string error_message;
  double seconds = 0.0;
};

/// Calls fn(task) and captures its value or exception in `out`. The clock is read once per call:
/// `start` is when the call began (for a run of tasks, the previous call's end), and the return
/// value is when it ended; out.seconds is the difference.
template <class Result, class Fn, class Task>
std::chrono::steady_clock::time_point invoke_task(Fn& fn, const Task& task, invocation<Result>& out,
                                                  std::chrono::steady_clock::time_point start) {
  try {
    out.value = static_cast<Result>(fn(task)); // assigned: an engaged value keeps its storage
  } catch (const std::exception& e) {
    out.value.reset();
    out.error_type = type_name(typeid(e));
    out.error_message = e.what();
  } catch (...) {
    out.value.reset();
    out.error_type = current_exception_type();
    out.error_message = "an exception not derived from std::exception";
  }
  const auto end = std::chrono::steady_clock::now();
  out.seconds = std::chrono::duration<double>(end - start).count();
  return end;
}

} // namespace detail
} // namespace foreman
