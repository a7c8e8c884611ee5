#pragma once
/// @file idle.hpp
/// How a waiting master or worker spends its time (options::wait): poll (lowest latency), then
/// yield, then sleep with growing pauses. Adaptive waiting polls for milliseconds when every rank
/// of the host has a processor of its own, and only briefly when the host is oversubscribed, so
/// that a waiting rank gives its core to the ranks that compute.

#include <foreman/detail/env_override.hpp>
#include <foreman/options.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

namespace foreman {
namespace detail {

/// The wait policy in force: options::wait, overridden by FOREMAN_WAIT=adaptive|busy|sleep.
inline wait_policy effective_wait_policy(wait_policy option) {
  return env_override(
      "FOREMAN_WAIT", option,
      {{"busy", wait_policy::busy}, {"sleep", wait_policy::sleep}, {"adaptive", wait_policy::adaptive}});
}

/// Whether more ranks of a pool run on this rank's machine than it has processors: from the
/// machine of each rank the handshake gathered (`hosts`, one per rank: handshake.hpp's
/// machine_of()).
inline bool host_oversubscribed(const std::vector<std::uint64_t>& hosts, int rank) {
  const std::uint64_t mine = hosts[static_cast<std::size_t>(rank)];
  const auto here = static_cast<unsigned>(std::count(hosts.begin(), hosts.end(), mine));
  const unsigned processors = std::thread::hardware_concurrency();
  return processors != 0 && here > processors;
}

class idle_backoff {
public:
  /// @param oversubscribed whether this host runs more ranks than it has processors: adaptive
  ///        waiting then gives the core back after a short poll, else it polls for a long while
  explicit idle_backoff(wait_policy policy = wait_policy::adaptive, bool oversubscribed = true)
      : busy_(policy == wait_policy::busy),
        spin_limit_(policy == wait_policy::sleep ? short_spin : oversubscribed ? shared_spin : dedicated_spin) {}

  /// Call after a poll that found nothing to do.
  void pause() {
    ++idle_polls_;
    if (busy_ || idle_polls_ <= spin_limit_) return;
    if (idle_polls_ <= spin_limit_ + yield_polls) {
      std::this_thread::yield();
      return;
    }
    std::this_thread::sleep_for(sleep_);
    sleep_ = std::min(sleep_ * 2, max_sleep);
  }

  /// Call after a poll that found work.
  void reset() {
    idle_polls_ = 0;
    sleep_ = min_sleep;
  }

private:
  static constexpr unsigned short_spin = 32;
  static constexpr unsigned shared_spin = 200;       // ~10-20 us: catches a reply already on its way
  static constexpr unsigned dedicated_spin = 100000; // a few milliseconds: nobody else wants the core
  static constexpr unsigned yield_polls = 100;
  static constexpr std::chrono::microseconds min_sleep{20};
  static constexpr std::chrono::microseconds max_sleep{1000};
  bool busy_;
  unsigned spin_limit_;
  unsigned idle_polls_ = 0;
  std::chrono::microseconds sleep_ = min_sleep;
};

} // namespace detail
} // namespace foreman
