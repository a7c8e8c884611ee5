// libFuzzer target for the checkpoint journal reader (foreman/detail/journal.hpp).
//
// The first input byte picks the mode:
//   even: the rest of the input is a journal file. The reader must not crash, leak, or read out
//         of bounds (the sanitizers watch), and everything it delivers must lie within the input.
//   odd:  a sound journal of 8 records is built, then damaged as the input says: it is cut to
//         a length (2 bytes), and up to 3 bits are flipped (2 bytes each: the bit's position).
//         Every record the reader accepts must be one that was written, in its place: a record
//         accepted that was not written aborts (a finding). Up to 3 flipped bits in a record are
//         always caught by its CRC-32.
//
// Build: cmake -DFOREMAN_BUILD_FUZZERS=ON -DCMAKE_CXX_COMPILER=clang++; run: journal_fuzz -max_total_time=60

#include <foreman/detail/journal.hpp>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

namespace fd = foreman::detail;

const fd::journal_identity& identity() {
  static const fd::journal_identity id{64, 0x0123456789abcdefull, "Task=int;Result=std::vector<double>;archive=17"};
  return id;
}

struct written {
  std::uint64_t index;
  std::vector<char> payload;
};

void check(bool ok) {
  if (!ok) std::abort();
}

void raw_mode(const std::uint8_t* data, std::size_t size) {
  const char* bytes = reinterpret_cast<const char*>(data);
  fd::memory_source source(bytes, size);
  std::size_t delivered = 0;
  const auto scan = fd::scan_journal(source, identity(), [&](std::uint64_t index, const std::vector<char>& payload) {
    check(index < identity().task_count);
    delivered += payload.size();
  });
  check(scan.valid_end + scan.dropped == size || scan.status != fd::journal_scan::state::valid);
  check(delivered <= size);
}

void damage_mode(const std::uint8_t* data, std::size_t size) {
  std::vector<written> records;
  std::vector<char> journal = fd::journal_header(identity());
  for (std::uint64_t k = 0; k < 8; ++k) {
    written w{(k * 11) % 64, std::vector<char>(static_cast<std::size_t>(k * 3), static_cast<char>(k * 37))};
    fd::journal_record(journal, w.index, w.payload);
    records.push_back(std::move(w));
  }
  std::size_t length = journal.size();
  if (size >= 2) {
    length = (static_cast<std::size_t>(data[0]) | static_cast<std::size_t>(data[1]) << 8) % (journal.size() + 1);
    data += 2;
    size -= 2;
  }
  journal.resize(length);
  for (int flip = 0; flip < 3 && size >= 2 && length > 0; ++flip, data += 2, size -= 2) {
    const std::size_t bit = (static_cast<std::size_t>(data[0]) | static_cast<std::size_t>(data[1]) << 8) % (length * 8);
    journal[bit / 8] = static_cast<char>(journal[bit / 8] ^ (1 << (bit % 8)));
  }
  fd::memory_source source(journal.data(), journal.size());
  std::size_t k = 0;
  fd::scan_journal(source, identity(), [&](std::uint64_t index, const std::vector<char>& payload) {
    check(k < records.size());
    check(index == records[k].index && payload == records[k].payload);
    ++k;
  });
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  if (data[0] % 2 == 0)
    raw_mode(data + 1, size - 1);
  else
    damage_mode(data + 1, size - 1);
  return 0;
}
