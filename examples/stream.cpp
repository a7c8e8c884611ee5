// stream: millions of tasks in a little memory. The tasks are read from a source one at a time,
// only as the workers need them, and each result is folded into a running total as it arrives;
// neither the list of tasks nor the list of results ever exists.
//
//   mpirun -n 4 ./stream
//
// The question: among all the numbers below 2^24, how many have k of their bits set, for each k,
// and how many bits are set in all? One task per number: 16,777,216 tasks. The answers are known
// in closed form, which checks the program: C(24, k) numbers have k bits set (choose which k of
// the 24 bits), and each of the 24 bits is set in half of the numbers, 24 x 2^23 bits in all.
//
// pool.run() would need the whole task list on the master, and would give back the whole result
// list: 128 MiB for these two alone, and foreman's records of each task besides. A stream keeps
// only a bounded number of tasks in flight (options::buffersize), whatever the source's length.
#include <foreman/foreman.hpp>

#include <fmt/core.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <fstream>
#include <optional>
#include <string>

// The master's peak resident memory in kB (VmHWM in /proc/self/status; 0 where there is none).
long peak_resident_kb() {
  std::ifstream status("/proc/self/status");
  std::string key;
  long kb = 0;
  while (status >> key)
    if (key == "VmHWM:" && status >> kb) return kb;
  return 0;
}

int main(int argc, char* argv[]) {
  boost::mpi::environment env(argc, argv); // starts MPI on this rank

  constexpr int bits = 24;
  constexpr std::uint32_t count = std::uint32_t{1} << bits; // the numbers 0 .. 2^24 - 1

  // A task is a number, its result the number of bits set in it.
  foreman::master_worker<std::uint32_t, int> pool;

  // The source: called on the master each time the stream wants one more task. It returns the
  // next number, or nothing (std::nullopt) once all have been given: the stream then ends.
  // Here the tasks are made on the fly; they could as well be lines read from a file.
  std::uint32_t next = 0;
  std::uint64_t read = 0, handed_on = 0, most_out = 0; // to show that the read-ahead is bounded
  auto source = [&]() -> std::optional<std::uint32_t> {
    if (next == count) return std::nullopt;
    most_out = std::max(most_out, read - handed_on); // tasks read and not yet handed to the sink
    ++read;
    return next++;
  };

  // The work, run on the workers.
  auto bits_set = [](std::uint32_t x) {
    int set = 0;
    for (; x != 0; x >>= 1) set += static_cast<int>(x & 1);
    return set;
  };

  // The sink: called on the master with each result, in task order (index 0, 1, 2, ...), as the
  // results arrive. It folds them into 25 counters.
  std::array<std::uint64_t, bits + 1> numbers_with{}; // numbers_with[k]: numbers with k bits set
  auto sink = [&](std::uint64_t /*index*/, int /*worker*/, const int& set) {
    ++numbers_with[static_cast<std::size_t>(set)];
    ++handed_on;
  };

  // Every rank calls run_stream(); on a worker it serves tasks until the stream ends. How many
  // tasks may be read ahead of the sink is options::buffersize (0, the default: enough to keep
  // every worker busy). A result that arrives before an earlier task's waits for it: the sink
  // sees them in order. Set options::unordered to take them as they come instead.
  pool.run_stream(source, bits_set, sink);
  if (!pool.is_master()) return 0;

  // Check against the closed forms: C(24, k) numbers with k bits set, 24 x 2^23 bits in all.
  std::uint64_t total = 0, binomial = 1; // binomial = C(24, k)
  bool right = true;
  for (int k = 0; k <= bits; ++k) {
    right = right && numbers_with[static_cast<std::size_t>(k)] == binomial;
    total += static_cast<std::uint64_t>(k) * numbers_with[static_cast<std::size_t>(k)];
    binomial = binomial * static_cast<std::uint64_t>(bits - k) / static_cast<std::uint64_t>(k + 1);
  }
  const std::uint64_t expected_total = std::uint64_t{bits} << (bits - 1);
  right = right && total == expected_total && handed_on == count;

  fmt::print("Counted the bits set in each number below 2^{}: {} tasks, streamed\n", bits, count);
  fmt::print("Numbers with 12 bits set: {}\n", numbers_with[12]);
  fmt::print("Bits set in all: {}\n", total);
  if (!right) {
    fmt::print(stderr, "WRONG: the counts differ from C(24, k) or the total from 24 x 2^23 = {}\n", expected_total);
    return 1;
  }
  fmt::print("Every count matches the closed form: C(24, k) numbers with k bits set, 24 x 2^23 bits.\n");

  // Figures of this run, which vary: they show that the memory did not grow with the tasks.
  const double task_list_mib = double(count) * (sizeof(std::uint32_t) + sizeof(int)) / (1024.0 * 1024.0);
  fmt::print("Tasks read ahead of the sink, at most: {}\n", most_out);
  fmt::print("Master's peak resident memory: {:.1f} MiB (the task and result lists alone would take {:.0f} MiB)\n",
             peak_resident_kb() / 1024.0, task_list_mib);
}
