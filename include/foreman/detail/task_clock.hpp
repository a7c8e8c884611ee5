#pragma once
/// @file task_clock.hpp
/// The clock that times tasks. A worker reads it twice per message, between a task's arrival and
/// its result's departure, so with one task per message its cost is part of every round trip. On
/// x86 with an invariant time-stamp counter it reads the counter (about 25 cycles on the
/// benchmark machine, against about 60 for steady_clock::now()) and converts counts to seconds
/// with a rate measured once per process against steady_clock (over 5 ms, when the first clock
/// is made: durations agree with steady_clock's to about 1e-5); elsewhere it is steady_clock.

#include <chrono>
#include <cstdint>
#include <thread>

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <x86intrin.h>
#define FOREMAN_DETAIL_TSC 1
#else
#define FOREMAN_DETAIL_TSC 0
#endif

namespace foreman {
namespace detail {

class task_clock {
public:
  using stamp = std::uint64_t;

  task_clock() : rate_(calibration()) {}

  stamp now() const noexcept {
#if FOREMAN_DETAIL_TSC
    if (rate_.counter) return __rdtsc();
#endif
    return steady_nanoseconds();
  }

  /// Seconds from `from` to `to` (0 if the clock went backwards, e.g. across processors).
  double seconds(stamp from, stamp to) const noexcept {
    return to > from ? static_cast<double>(to - from) * rate_.seconds_per_count : 0.0;
  }

  /// Whether this process reads the time-stamp counter.
  bool uses_counter() const noexcept { return rate_.counter; }

private:
  struct rate {
    bool counter = false;
    double seconds_per_count = 1e-9;
  };

  static stamp steady_nanoseconds() noexcept {
    return static_cast<stamp>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
            .count());
  }

  static const rate& calibration() {
    static const rate measured = measure();
    return measured;
  }

  static rate measure() {
    rate r;
#if FOREMAN_DETAIL_TSC
    // CPUID 0x80000007, EDX bit 8: the counter ticks at a constant rate in every power state.
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (__get_cpuid(0x80000007u, &eax, &ebx, &ecx, &edx) == 0 || (edx & (1u << 8)) == 0) return r;
    using steady = std::chrono::steady_clock;
    // Both clocks read at the ends of a 5 ms pause (slept: no processor is taken). Each reading of
    // steady_clock is bracketed by two of the counter; the narrowest of eight brackets is kept, so
    // that each end is known to about 20 ns and the rate to about 1e-5.
    auto paired = [](std::uint64_t& counter, steady::time_point& time) {
      std::uint64_t narrowest = ~std::uint64_t{0};
      for (int attempt = 0; attempt < 8; ++attempt) {
        const std::uint64_t before = __rdtsc();
        const steady::time_point t = steady::now();
        const std::uint64_t after = __rdtsc();
        if (after - before < narrowest) {
          narrowest = after - before;
          counter = before + (after - before) / 2;
          time = t;
        }
      }
    };
    std::uint64_t c0 = 0, c1 = 0;
    steady::time_point t0, t1;
    paired(c0, t0);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    paired(c1, t1);
    if (c1 <= c0) return r;
    r.counter = true;
    r.seconds_per_count = std::chrono::duration<double>(t1 - t0).count() / static_cast<double>(c1 - c0);
#endif
    return r;
  }

  rate rate_;
};

} // namespace detail
} // namespace foreman
