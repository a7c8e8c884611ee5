#pragma once
/// @file failure_types.hpp
/// The failure types (task_failure::type) and messages that foreman itself files, beyond the
/// public ones of errors.hpp, for the code that files them and the code that reads them back.

namespace foreman {
namespace detail {

/// The failure type of a task dropped by a cancellation (job::cancel(), options::fail_fast).
inline constexpr const char* cancelled_type = "foreman::cancelled";

/// The failure type of a task whose worker was lost (options::max_attempts), or that no worker
/// was left to run.
inline constexpr const char* worker_lost_type = "foreman::worker_lost";
/// The message of a task failed because no live worker was left to run it (master_loop.hpp),
/// by which a sub-master knows the tasks its group did not run (relay.hpp).
inline constexpr const char* no_live_worker_message = "no live worker is left to run it";

} // namespace detail
} // namespace foreman
