#pragma once
/// @file task_runner.hpp
/// How a worker calls the user's function, behind a virtual interface: the worker's loop
/// (worker_loop.hpp) is then compiled once per Task and Result type, not once per task function.
/// Every lambda is a type of its own, and a program, or a test suite, with many run() calls
/// compiled the whole loop again for each (seconds each at -O2, GCC 12). The price is one virtual
/// call per task (and one per run for the set-up).

#include <foreman/detail/invoke.hpp>
#include <foreman/detail/shared_value.hpp>
#include <foreman/detail/task_clock.hpp>
#include <foreman/detail/transport.hpp>
#include <foreman/detail/wire.hpp>
#include <foreman/errors.hpp>

#include <cstddef>

namespace foreman {
namespace detail {

/// The user's function as a worker's loop sees it: with a worker_function (with_shared(),
/// with_initializer()), its run's value and its initializer too (function_setup).
template <class Task, class Result>
class task_runner {
public:
  virtual ~task_runner() = default;

  /// Whether the function takes a shared value, which the master sends before the first task.
  virtual bool takes_value() const noexcept = 0;
  /// Whether it has an initializer that takes no value: it runs as the run starts, with nothing
  /// to wait for.
  virtual bool initializes_at_once() const noexcept = 0;
  /// Whether the run's value is there (always, for a function that takes none).
  virtual bool has_value() const noexcept = 0;
  /// Reads the run's value from a tag::shared message, `in` at its item; returns where its body
  /// goes, or an empty span (function_setup::decode()). Called only when takes_value().
  /// @throws as get_item()
  virtual body_span decode(decoder& in, std::size_t& body_bytes) = 0;
  /// Runs the initializer, if any; false, with the exception described in `out`, if it threw.
  virtual bool initialize(invocation& out) = 0;
  /// Runs the function on one task, as invoke_task().
  virtual task_clock::stamp call(const Task& task, Result& into, invocation& out, const task_clock& clock,
                                 task_clock::stamp start) = 0;
};

/// task_runner for the function `Fn`, which it refers to (it must outlive this object).
template <class Task, class Result, class Fn>
class task_runner_of final : public task_runner<Task, Result> {
  using setup_type = function_setup<Fn>;

public:
  /// @param kept what the worker keeps of the last run's value (function_setup)
  task_runner_of(Fn& fn, kept_shared* kept) : setup_(fn, kept) {}

  bool takes_value() const noexcept override { return setup_type::takes_value; }
  bool initializes_at_once() const noexcept override { return setup_type::initializes && !setup_type::takes_value; }
  bool has_value() const noexcept override { return setup_.has_value(); }
  body_span decode(decoder& in, std::size_t& body_bytes) override {
    if constexpr (setup_type::takes_value) {
      return setup_.decode(in, body_bytes);
    } else {
      (void)in;
      body_bytes = 0;
      throw error("internal error: a shared value decoded for a function that takes none");
    }
  }
  bool initialize(invocation& out) override { return setup_.initialize(out); }
  task_clock::stamp call(const Task& task, Result& into, invocation& out, const task_clock& clock,
                         task_clock::stamp start) override {
    return invoke_task(setup_.call(), task, into, out, clock, start);
  }

private:
  setup_type setup_;
};

} // namespace detail
} // namespace foreman
