// libFuzzer target for the checkpoint journal reader (foreman/detail/journal.hpp).
//
// The first input byte picks the mode (its value modulo 5):
//   0:    the rest of the input is a run()'s journal file. The reader must not crash, leak, or
//         read out of bounds (the sanitizers watch), and everything it delivers must lie within
//         the input.
//   1:    a sound journal of 8 records is built, then damaged as the input says: it is cut to
//         a length (2 bytes), and up to 3 bits are flipped (2 bytes each: the bit's position).
//         Every record the reader accepts must be one that was written, in its place: a record
//         accepted that was not written aborts (a finding). Up to 3 flipped bits in a record are
//         always caught by its CRC-32.
//   2, 3: the same for a stream's journal (its own layout: segments of records that carry their
//         task's fingerprint); what it delivers must also keep the layout's order (indices rising
//         within a segment, segments numbered in turn) and its segments must tile what it read.
//   4:    mode 3 for a job's journal (the stream layout with format 3, its indices in any order:
//         written here falling within each segment).
//
// Build: cmake -DFOREMAN_BUILD_FUZZERS=ON -DCMAKE_CXX_COMPILER=clang++; run: journal_fuzz -max_total_time=60

#include <foreman/detail/journal.hpp>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
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

// Cuts `journal` to a length (the input's first 2 bytes) and flips up to 3 bits (2 bytes each).
void damage(std::vector<char>& journal, const std::uint8_t* data, std::size_t size) {
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
}

void damage_mode(const std::uint8_t* data, std::size_t size) {
  std::vector<written> records;
  std::vector<char> journal = fd::journal_header(identity());
  for (std::uint64_t k = 0; k < 8; ++k) {
    written w{(k * 11) % 64, std::vector<char>(static_cast<std::size_t>(k * 3), static_cast<char>(k * 37))};
    fd::journal_record(journal, w.index, w.payload);
    records.push_back(std::move(w));
  }
  damage(journal, data, size);
  fd::memory_source source(journal.data(), journal.size());
  std::size_t k = 0;
  fd::scan_journal(source, identity(), [&](std::uint64_t index, const std::vector<char>& payload) {
    check(k < records.size());
    check(index == records[k].index && payload == records[k].payload);
    ++k;
  });
}

const std::string& stream_types() {
  static const std::string types = "Task=std::string;Result=int;archive=17";
  return types;
}

// Checks what the stream reader delivered against the layout's rules.
struct stream_order {
  std::uint64_t segment = 0, last = 0, records = 0;
  bool any = false;
  void operator()(std::uint64_t s, std::uint64_t index) {
    check(index != fd::stream_segment_marker);
    check(s >= segment);
    if (s == segment && any) check(index > last);
    segment = s;
    last = index;
    any = true;
    ++records;
  }
};

void check_segments(const fd::journal_scan& scan, std::size_t size) {
  if (scan.status != fd::journal_scan::state::valid) return;
  check(scan.valid_end + scan.dropped == size);
  std::uint64_t records = 0, end = 0;
  for (const fd::journal_segment& s : scan.segments) {
    check(s.begin >= end && s.begin <= s.end && s.end <= scan.valid_end);
    end = s.end;
    records += s.records;
  }
  check(records == scan.records);
}

void raw_stream_mode(const std::uint8_t* data, std::size_t size) {
  fd::memory_source source(reinterpret_cast<const char*>(data), size);
  std::size_t delivered = 0;
  stream_order order;
  const auto scan = fd::scan_stream_journal(
      source, stream_types(),
      [&](std::uint64_t s, std::uint64_t index, std::uint64_t, const std::vector<char>& payload) {
        order(s, index);
        delivered += payload.size();
      });
  check(delivered <= size);
  check(order.records == scan.records);
  check_segments(scan, size);
}

void damage_stream_mode(const std::uint8_t* data, std::size_t size, std::uint32_t format = fd::stream_journal_format) {
  struct stream_written {
    std::uint64_t segment, index, fingerprint;
    std::vector<char> payload;
  };
  std::vector<stream_written> records;
  std::vector<char> journal = fd::stream_journal_header(stream_types(), format);
  const bool job = format == fd::job_journal_format;
  for (std::uint64_t s = 0; s < 3; ++s) {
    fd::stream_journal_record(journal, fd::stream_segment_marker, s, {});
    for (std::uint64_t k = 0; k < 3; ++k) {
      stream_written w{s, job ? 40 - s - k * 5 : s + k * 5, 0x5eed0000 + s * 16 + k,
                       std::vector<char>(static_cast<std::size_t>(k * 4 + s), static_cast<char>(k * 29 + s))};
      fd::stream_journal_record(journal, w.index, w.fingerprint, w.payload);
      records.push_back(std::move(w));
    }
  }
  damage(journal, data, size);
  fd::memory_source source(journal.data(), journal.size());
  std::size_t k = 0;
  const auto scan = fd::scan_stream_journal(
      source, stream_types(),
      [&](std::uint64_t s, std::uint64_t index, std::uint64_t fingerprint, const std::vector<char>& payload) {
        check(k < records.size());
        const stream_written& w = records[k];
        check(s == w.segment && index == w.index && fingerprint == w.fingerprint && payload == w.payload);
        ++k;
      },
      format);
  check_segments(scan, journal.size());
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  switch (data[0] % 5) {
  case 0:
    raw_mode(data + 1, size - 1);
    break;
  case 1:
    damage_mode(data + 1, size - 1);
    break;
  case 2:
    raw_stream_mode(data + 1, size - 1);
    break;
  case 3:
    damage_stream_mode(data + 1, size - 1);
    break;
  default:
    damage_stream_mode(data + 1, size - 1, fd::job_journal_format);
  }
  return 0;
}
