#pragma once
// Small helpers shared by foreman's tests.

#include <boost/mpi/communicator.hpp>

#include <chrono>
#include <cstdint>
#include <thread>

namespace foreman_test {

/// The world communicator's size and this process's rank in it.
inline int world_size() {
  return boost::mpi::communicator().size();
}
inline int world_rank() {
  return boost::mpi::communicator().rank();
}

/// splitmix64: deterministic pseudo-random numbers, the same on every rank.
inline std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

inline void sleep_us(std::int64_t microseconds) {
  std::this_thread::sleep_for(std::chrono::microseconds(microseconds));
}

} // namespace foreman_test
