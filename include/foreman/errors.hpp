#pragma once
/// @file errors.hpp
/// The exception hierarchy of foreman. Every exception foreman throws derives from
/// foreman::error, and every message begins with "foreman: ".

#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

namespace foreman {

/// Root of every exception foreman throws. The message always starts with `"foreman: "`.
class error : public std::runtime_error {
public:
  /// @param what_arg the message without the `"foreman: "` prefix, which is added here.
  explicit error(const std::string& what_arg) : std::runtime_error("foreman: " + what_arg) {}
};

/// The ranks of one pool disagree on the protocol version or on the Task/Result types:
/// typically two different programs started under one `mpirun`. Thrown on every rank.
class handshake_error : public error {
public:
  using error::error;
};

/// A task or its result could not be moved between master and worker: its serialize() threw
/// while saving or loading it (a polymorphic type not registered in that binary, a load that
/// does not match its save), or an allocation failed while decoding it. foreman does not throw
/// it out of run(): it becomes that task's failure, with task_failure::type
/// "foreman::serialization_error" (serialization_error_type) and the cause in
/// task_failure::message; the other tasks and the pool are unaffected.
class serialization_error : public error {
public:
  using error::error;
};

/// An MPI call that foreman made returned an error (foreman sets MPI_ERRORS_RETURN on the pool's
/// communicator and checks every return code). On the master, a failure of the connection to one
/// worker makes that worker lost (run_info::losses, reason mpi_error) instead of ending the run;
/// any other is thrown from run() after the run was ended on the workers, and the pool then
/// refuses further runs.
class mpi_error : public error {
public:
  /// @param what_arg the call, the peer and MPI's description of the error
  /// @param code the MPI error code returned; @param error_class its MPI error class
  /// @param peer the rank the call talked to, or -1
  mpi_error(const std::string& what_arg, int code, int error_class, int peer)
      : error(what_arg), code_(code), class_(error_class), peer_(peer) {}
  int code() const noexcept { return code_; }         ///< the MPI error code
  int error_class() const noexcept { return class_; } ///< its class (MPI_Error_class), e.g. MPI_ERR_RANK
  int peer() const noexcept { return peer_; }         ///< the rank involved, or -1 if unknown

private:
  int code_;
  int class_;
  int peer_;
};

/// task_failure::type of a serialization_error: stable, whatever the compiler's demangler says.
inline constexpr const char* serialization_error_type = "foreman::serialization_error";

/// No worker could set up for the run or job (with_initializer(): every worker's initializer
/// threw, or, without workers, the master's). Like serialization_error, foreman does not throw it
/// out of run(): it is the failure of every task that was left to run, with task_failure::type
/// "foreman::initializer_error" (initializer_error_type) and the initializers' exceptions, type
/// and what(), quoted in task_failure::message.
class initializer_error : public error {
public:
  using error::error;
};

/// task_failure::type of an initializer_error.
inline constexpr const char* initializer_error_type = "foreman::initializer_error";

/// One task that threw instead of returning a Result.
struct task_failure {
  std::size_t index = 0; ///< position of the task in the list passed to run()
  int worker = 0;        ///< rank (in the pool's communicator) that ran it; 0 when run locally
  std::string type;      ///< demangled type name of the exception, e.g. "std::out_of_range"
  std::string message;   ///< what() of the exception

  /// "task 7 failed on worker 2: std::out_of_range: vector::at"
  std::string describe() const {
    return "task " + std::to_string(index) + " failed on worker " + std::to_string(worker) +
           ": " + type + ": " + message;
  }
};

/// Thrown by master_worker::run() on the master when one or more tasks threw. Every other
/// task has completed when it is thrown; failures() lists each failed task in index order.
class task_error : public error {
public:
  explicit task_error(std::vector<task_failure> failures)
      : error(summary(failures)), failures_(std::move(failures)) {}

  /// The failed tasks, sorted by task index.
  const std::vector<task_failure>& failures() const noexcept { return failures_; }

private:
  static std::string summary(const std::vector<task_failure>& failures) {
    if (failures.size() == 1) return failures.front().describe();
    std::string text = std::to_string(failures.size()) + " tasks failed";
    constexpr std::size_t listed = 10;
    for (std::size_t i = 0; i < failures.size() && i < listed; ++i)
      text += (i == 0 ? ": " : "; ") + failures[i].describe();
    if (failures.size() > listed)
      text += "; ... and " + std::to_string(failures.size() - listed) + " more";
    return text;
  }

  std::vector<task_failure> failures_;
};

} // namespace foreman
