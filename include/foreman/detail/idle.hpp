#pragma once
/// @file idle.hpp
/// How a waiting master or worker spends its time: poll hard for a short while (lowest
/// latency), then sleep with growing pauses so that an oversubscribed node gets its core back.

#include <algorithm>
#include <chrono>
#include <thread>

namespace foreman {
namespace detail {

class idle_backoff {
public:
  /// Call after a poll that found nothing to do.
  void pause() {
    if (++idle_polls_ <= spin_polls) return;
    if (idle_polls_ <= spin_polls + yield_polls) {
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
  static constexpr unsigned spin_polls = 200;
  static constexpr unsigned yield_polls = 200;
  static constexpr std::chrono::microseconds min_sleep{20};
  static constexpr std::chrono::microseconds max_sleep{1000};
  unsigned idle_polls_ = 0;
  std::chrono::microseconds sleep_ = min_sleep;
};

} // namespace detail
} // namespace foreman
