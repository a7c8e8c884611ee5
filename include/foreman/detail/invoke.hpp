#pragma once
/// @file invoke.hpp
/// Runs the user's function on one task and captures either its result or the exception it
/// threw: the one place where a task's exception is turned into data, for workers and for a
/// master that runs tasks itself.

#include <foreman/detail/type_name.hpp>

#include <chrono>
#include <exception>
#include <optional>
#include <string>
#include <utility>

namespace foreman {
namespace detail {

template <class Result>
struct invocation {
  std::optional<Result> value; ///< empty when the function threw
  std::string error_type;
  std::string error_message;
  double seconds = 0.0;
};

template <class Result, class Fn, class Task>
void invoke_task(Fn& fn, const Task& task, invocation<Result>& out) {
  out.value.reset();
  const auto start = std::chrono::steady_clock::now();
  try {
    out.value.emplace(fn(task));
  } catch (const std::exception& e) {
    out.error_type = type_name(typeid(e));
    out.error_message = e.what();
  } catch (...) {
    out.error_type = "unknown exception";
    out.error_message = "an exception not derived from std::exception";
  }
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

} // namespace detail
} // namespace foreman
