// A stream's checkpoint journal (options::checkpoint with run_stream(), reduce()): the stream
// layout read back after every truncation and bit flip; a rerun hands the sink the recorded
// results without running their tasks, runs only the rest after a stop or a torn tail, in task
// order and in completion order; a changed source is refused by index; a run()'s journal and a
// stream's are not taken for each other.

#include "catch.hpp"
#include "test_support.hpp"

#include <foreman/detail/journal.hpp>
#include <foreman/foreman.hpp>

#include <unistd.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace {

namespace fd = foreman::detail;
using foreman_test::world_rank;

// ---- the stream layout, in memory ------------------------------------------------------------

struct written {
  std::uint64_t segment, index, fingerprint;
  std::vector<char> payload;
  bool operator==(const written& o) const {
    return segment == o.segment && index == o.index && fingerprint == o.fingerprint && payload == o.payload;
  }
};

const std::string sample_types = "Task=int;Result=std::string;archive=17";

// Two segments of records (one empty payload), as two runs of a stream write them; ends[k]: the
// end of the k-th record or marker.
std::vector<char> sample_stream_journal(std::vector<written>& records, std::vector<std::size_t>& ends,
                                        std::vector<bool>& is_record) {
  std::vector<char> bytes = fd::stream_journal_header(sample_types);
  ends.push_back(bytes.size());
  is_record.push_back(false);
  const std::uint64_t indices[2][3] = {{0, 1, 4}, {2, 3, 9}};
  for (std::uint64_t s = 0; s < 2; ++s) {
    fd::stream_journal_record(bytes, fd::stream_segment_marker, s, {});
    ends.push_back(bytes.size());
    is_record.push_back(false);
    for (std::uint64_t k = 0; k < 3; ++k) {
      const std::uint64_t index = indices[s][k];
      written w{s, index, 0xabc0 + index, std::vector<char>(index * 5 % 13, static_cast<char>('a' + index))};
      fd::stream_journal_record(bytes, w.index, w.fingerprint, w.payload);
      records.push_back(std::move(w));
      ends.push_back(bytes.size());
      is_record.push_back(true);
    }
  }
  return bytes;
}

fd::journal_scan scan_stream_bytes(const std::vector<char>& bytes, std::vector<written>& got,
                                   const std::string& types = sample_types) {
  fd::memory_source source(bytes.data(), bytes.size());
  return fd::scan_stream_journal(
      source, types,
      [&](std::uint64_t segment, std::uint64_t index, std::uint64_t fingerprint, const std::vector<char>& payload) {
        got.push_back({segment, index, fingerprint, payload});
      });
}

TEST_CASE("a stream journal cut at any byte gives back exactly the records it holds whole", "[stream][checkpoint]") {
  std::vector<written> records;
  std::vector<std::size_t> ends;
  std::vector<bool> is_record;
  const std::vector<char> bytes = sample_stream_journal(records, ends, is_record);
  for (std::size_t cut = 0; cut <= bytes.size(); ++cut) {
    CAPTURE(cut);
    std::vector<written> got;
    const auto scan = scan_stream_bytes(std::vector<char>(bytes.begin(), bytes.begin() + static_cast<long>(cut)), got);
    if (cut < ends[0]) {
      REQUIRE(scan.status == fd::journal_scan::state::empty);
      REQUIRE(got.empty());
      continue;
    }
    REQUIRE(scan.status == fd::journal_scan::state::valid);
    std::size_t whole = 0, sound_records = 0; // pieces (markers and records) wholly inside the cut
    while (whole + 1 < ends.size() && ends[whole + 1] <= cut) sound_records += is_record[++whole] ? 1 : 0;
    REQUIRE(got.size() == sound_records);
    for (std::size_t k = 0; k < got.size(); ++k) REQUIRE(got[k] == records[k]);
    REQUIRE(scan.valid_end == ends[whole]);
    REQUIRE(scan.dropped == cut - ends[whole]);
  }
}

TEST_CASE("no single-bit flip in a stream journal makes the reader accept a record that was not written",
          "[stream][checkpoint]") {
  std::vector<written> records;
  std::vector<std::size_t> ends;
  std::vector<bool> is_record;
  const std::vector<char> bytes = sample_stream_journal(records, ends, is_record);
  for (std::size_t bit = 0; bit < bytes.size() * 8; ++bit) {
    CAPTURE(bit);
    std::vector<char> flipped = bytes;
    flipped[bit / 8] = static_cast<char>(flipped[bit / 8] ^ (1 << (bit % 8)));
    std::vector<written> got;
    const auto scan = scan_stream_bytes(flipped, got);
    if (bit / 8 < ends[0]) {
      REQUIRE(scan.status != fd::journal_scan::state::valid);
      REQUIRE(got.empty());
      continue;
    }
    REQUIRE(scan.status == fd::journal_scan::state::valid);
    REQUIRE(got.size() <= records.size());
    for (std::size_t k = 0; k < got.size(); ++k) REQUIRE(got[k] == records[k]);
    REQUIRE(scan.valid_end <= bit / 8);
  }
}

TEST_CASE("a stream journal's order is checked: a falling index or a segment out of turn ends the sound part",
          "[stream][checkpoint]") {
  std::vector<char> bytes = fd::stream_journal_header(sample_types);
  fd::stream_journal_record(bytes, 3, 1, {}); // a record before any segment
  std::vector<written> got;
  REQUIRE(scan_stream_bytes(bytes, got).records == 0);

  bytes = fd::stream_journal_header(sample_types);
  fd::stream_journal_record(bytes, fd::stream_segment_marker, 0, {});
  fd::stream_journal_record(bytes, 5, 1, {'a'});
  const std::size_t sound = bytes.size();
  fd::stream_journal_record(bytes, 5, 2, {'b'}); // not above the last index of its segment
  auto scan = scan_stream_bytes(bytes, got);
  REQUIRE(scan.records == 1);
  REQUIRE(scan.valid_end == sound);

  bytes.resize(sound);
  fd::stream_journal_record(bytes, fd::stream_segment_marker, 7, {}); // segment 1 expected
  got.clear();
  scan = scan_stream_bytes(bytes, got);
  REQUIRE(scan.records == 1);
  REQUIRE(scan.segments.size() == 1);
  REQUIRE(scan.valid_end == sound);

  bytes.resize(sound);
  fd::stream_journal_record(bytes, fd::stream_segment_marker, 1, {});
  fd::stream_journal_record(bytes, 2, 9, {'c'}); // a new segment starts again from any index
  got.clear();
  scan = scan_stream_bytes(bytes, got);
  REQUIRE(scan.records == 2);
  REQUIRE(scan.segments.size() == 2);
  REQUIRE(scan.segments[1].records == 1);
  REQUIRE(scan.valid_end == bytes.size());
}

TEST_CASE("the two layouts are told apart: each reader names the other", "[stream][checkpoint]") {
  std::vector<char> run_journal = fd::journal_header({4, 99, sample_types});
  fd::journal_record(run_journal, 1, {'x'});
  std::vector<written> got;
  REQUIRE(scan_stream_bytes(run_journal, got).status == fd::journal_scan::state::other_layout);
  REQUIRE(got.empty());

  std::vector<char> stream_journal = fd::stream_journal_header(sample_types);
  fd::stream_journal_record(stream_journal, fd::stream_segment_marker, 0, {});
  fd::stream_journal_record(stream_journal, 0, 1, {'x'});
  fd::memory_source source(stream_journal.data(), stream_journal.size());
  std::size_t delivered = 0;
  const auto scan =
      fd::scan_journal(source, {4, 99, sample_types}, [&](std::uint64_t, const std::vector<char>&) { ++delivered; });
  REQUIRE(scan.status == fd::journal_scan::state::other_layout);
  REQUIRE(delivered == 0);

  REQUIRE(scan_stream_bytes(stream_journal, got, "Task=long;Result=int;archive=17").status ==
          fd::journal_scan::state::mismatch);
  REQUIRE(got.empty());
}

// ---- streams resumed, on every rank ---------------------------------------------------------

std::string temp_path(const std::string& name) {
  return foreman_test::temp_path("foreman_stream_checkpoint_", name);
}
using foreman_test::cleanup;

using pool_type = foreman::master_worker<std::uint64_t, std::uint64_t>;

// The tasks 0, 3, 6, ... (n of them), from index `changed_at` on shifted by one.
struct counting_source {
  std::uint64_t n;
  std::uint64_t changed_at = ~std::uint64_t{0};
  std::uint64_t next = 0;
  std::optional<std::uint64_t> operator()() {
    if (next == n) return std::nullopt;
    const std::uint64_t i = next++;
    return i * 3 + (i >= changed_at ? 1 : 0);
  }
};

// A run's function leaves its mark in the low bit: a rerun tells a result read back (the first
// run's mark) from one computed again.
std::uint64_t first_run(std::uint64_t x) {
  return foreman_test::mix(x) << 1;
}
std::uint64_t second_run(std::uint64_t x) {
  return foreman_test::mix(x) << 1 | 1;
}

struct delivery {
  std::uint64_t index;
  int worker;
  std::uint64_t value;
};

// Runs a stream of `source` and keeps what the sink got; the sink stops after `stop_after`.
std::vector<delivery> run(pool_type& pool, counting_source source, std::uint64_t (*fn)(std::uint64_t),
                          const foreman::options& opt, std::size_t stop_after = ~std::size_t{0}) {
  std::vector<delivery> got;
  pool.run_stream(
      source, fn,
      [&](std::uint64_t index, int worker, const std::uint64_t& value) {
        got.push_back({index, worker, value});
        return got.size() < stop_after;
      },
      opt);
  return got;
}

// A pool and options naming a journal file of the test's own (removed at the end).
struct stream_setup {
  pool_type pool;
  cleanup file;
  foreman::options opt;
  stream_setup(const std::string& name, std::size_t buffersize) : file{temp_path(name)} {
    opt.checkpoint = file.path;
    opt.buffersize = buffersize;
  }
};

TEST_CASE("a stream run again over the same source reads every result back and runs no task", "[stream][checkpoint]") {
  stream_setup setup("again", 16);
  auto& pool = setup.pool;
  auto& opt = setup.opt;
  constexpr std::uint64_t n = 500;
  const std::vector<delivery> first = run(pool, {n}, first_run, opt);
  if (pool.is_master()) {
    REQUIRE(first.size() == n);
    REQUIRE(pool.last_run().replayed == 0);
  }
  // second_run would mark every result it computed; none may be.
  const std::vector<delivery> again = run(pool, {n}, second_run, opt);
  if (!pool.is_master()) return;
  REQUIRE(again.size() == n);
  for (std::uint64_t i = 0; i < n; ++i) {
    CAPTURE(i);
    REQUIRE(again[i].index == i);
    REQUIRE(again[i].value == first_run(i * 3));
    REQUIRE(again[i].value == first[i].value);
    REQUIRE(again[i].worker == -1);
  }
  REQUIRE(pool.last_run().replayed == n);
  const foreman::run_report report = pool.report();
  REQUIRE(report.replayed == n);
  REQUIRE(report.tasks == n);
}

TEST_CASE("a stream stopped early and run again: only the rest runs", "[stream][checkpoint]") {
  stream_setup setup("stopped", 8);
  auto& pool = setup.pool;
  auto& opt = setup.opt;
  constexpr std::uint64_t n = 300, k = 120;
  const std::vector<delivery> first = run(pool, {n}, first_run, opt, k);
  if (pool.is_master()) REQUIRE(first.size() == k);
  const std::vector<delivery> rest = run(pool, {n}, second_run, opt);
  if (pool.is_master()) {
    REQUIRE(rest.size() == n);
    for (std::uint64_t i = 0; i < n; ++i) {
      CAPTURE(i);
      REQUIRE(rest[i].index == i);
      REQUIRE(rest[i].value == (i < k ? first_run(i * 3) : second_run(i * 3)));
      REQUIRE((rest[i].worker == -1) == (i < k));
    }
    REQUIRE(pool.last_run().replayed == k);
  }
  // Two segments now: a third run reads everything back from both.
  const std::vector<delivery> third = run(pool, {n}, first_run, opt);
  if (pool.is_master()) {
    REQUIRE(third.size() == n);
    for (std::uint64_t i = 0; i < n; ++i) REQUIRE(third[i].value == rest[i].value);
    REQUIRE(pool.last_run().replayed == n);
  }
}

// With a timeline, a job keeps a record per ticket; a stream's tasks read back from its journal
// are never submitted, so they have none. The report counted only the records: fewer tasks than
// replayed, and a throughput of (tasks - replayed) that wrapped around.
TEST_CASE("a resumed stream with a timeline reports every task, the replayed ones included", "[stream][checkpoint]") {
  stream_setup setup("timeline", 8);
  auto& pool = setup.pool;
  auto& opt = setup.opt;
  cleanup timeline{temp_path("timeline.json")};
  constexpr std::uint64_t n = 300, k = 200; // more read back than computed
  const std::vector<delivery> first = run(pool, {n}, first_run, opt, k);
  if (pool.is_master()) REQUIRE(first.size() == k);
  opt.timeline_json = timeline.path;
  const std::vector<delivery> rest = run(pool, {n}, second_run, opt);
  if (!pool.is_master()) return;
  REQUIRE(rest.size() == n);
  REQUIRE(pool.last_run().replayed == k);
  const foreman::run_report report = pool.report();
  CHECK(report.tasks == n);
  CHECK(report.replayed == k);
  std::size_t on_ranks = 0;
  for (const foreman::worker_report& row : report.workers) on_ranks += row.tasks;
  CHECK(on_ranks == n - k); // the replayed ones ran on no rank
  CHECK(report.throughput >= 0.0);
  if (report.wall_seconds > 0) CHECK(report.throughput <= double(n - k) / report.wall_seconds * 1.000001);
}

TEST_CASE("a stream whose source changed is refused at the first changed index, after those before it",
          "[stream][checkpoint]") {
  stream_setup setup("changed", 4);
  auto& pool = setup.pool;
  auto& opt = setup.opt;
  constexpr std::uint64_t n = 60;
  run(pool, {n}, first_run, opt);
  counting_source changed{n, 37};
  std::vector<delivery> got;
  bool refused = false;
  try {
    got = run(pool, changed, second_run, opt);
  } catch (const foreman::error& e) {
    refused = true;
    const std::string what = e.what();
    CAPTURE(what);
    REQUIRE(what.find("task 37 of the stream") != std::string::npos);
    REQUIRE(what.find("source changed") != std::string::npos);
  }
  REQUIRE(refused == pool.is_master());
  // The pool goes on: a stream without the journal runs the changed source whole.
  const std::vector<delivery> plain = run(pool, changed, second_run, foreman::options{});
  if (pool.is_master()) REQUIRE(plain.size() == n);
  // A source longer than the journal, the same up to its end: the new tasks run.
  const std::vector<delivery> longer = run(pool, {n + 20}, second_run, opt);
  if (pool.is_master()) {
    REQUIRE(longer.size() == n + 20);
    for (std::uint64_t i = 0; i < n + 20; ++i)
      REQUIRE(longer[i].value == (i < n ? first_run(i * 3) : second_run(i * 3)));
    REQUIRE(pool.last_run().replayed == n);
  }
}

TEST_CASE("a stream journal with a torn tail resumes: only the torn records run again", "[stream][checkpoint]") {
  stream_setup setup("torn", 0);
  auto& pool = setup.pool;
  auto& opt = setup.opt;
  constexpr std::uint64_t n = 100;
  run(pool, {n}, first_run, opt);
  // A record is index, fingerprint, length, an 8-byte payload and a checksum: 32 bytes. Cutting 3
  // tears the last one.
  if (pool.is_master()) {
    const auto bytes = foreman_test::read_file(setup.file.path);
    REQUIRE(::truncate(setup.file.path.c_str(), static_cast<off_t>(bytes.size() - 3)) == 0);
  }
  const std::vector<delivery> resumed = run(pool, {n}, second_run, opt);
  if (pool.is_master()) {
    REQUIRE(resumed.size() == n);
    for (std::uint64_t i = 0; i < n; ++i) {
      CAPTURE(i);
      REQUIRE(resumed[i].value == (i < n - 1 ? first_run(i * 3) : second_run(i * 3)));
    }
    REQUIRE(pool.last_run().replayed == n - 1);
    REQUIRE(pool.last_run().checkpoint_dropped_bytes == 32 - 3);
  }
}

TEST_CASE("a stream in completion order with a checkpoint: records in task order, a rerun runs only what is missing",
          "[stream][checkpoint]") {
  stream_setup setup("unordered", 0);
  auto& pool = setup.pool;
  auto& opt = setup.opt;
  opt.unordered = true;
  opt.buffersize = 8;
  constexpr std::uint64_t n = 400, k = 150;
  // Slow tasks here and there, so that completions come out of order.
  auto slow_first = [](std::uint64_t x) {
    if (x % 7 == 0) foreman_test::sleep_us(300);
    return first_run(x);
  };
  std::size_t seen = 0;
  pool.run_stream(
      counting_source{n}, slow_first, [&](std::uint64_t, int, const std::uint64_t&) { return ++seen < k; }, opt);
  std::map<std::uint64_t, delivery> rest;
  for (const delivery& d : run(pool, {n}, second_run, opt)) rest[d.index] = d;
  if (!pool.is_master()) return;
  REQUIRE(rest.size() == n);
  // What the first run recorded is a prefix of the tasks (records go in task order), at most the
  // k handed on; everything else ran again.
  std::uint64_t restored = 0;
  while (restored < n && rest[restored].worker == -1) ++restored;
  REQUIRE(restored <= k);
  REQUIRE(pool.last_run().replayed == restored);
  for (std::uint64_t i = 0; i < n; ++i) {
    CAPTURE(i);
    REQUIRE(rest[i].value == (i < restored ? first_run(i * 3) : second_run(i * 3)));
  }
  // The rerun finished the journal: a third run reads it all back.
  std::size_t third = 0;
  bool right = true;
  pool.run_stream(
      counting_source{n}, second_run,
      [&](std::uint64_t index, int worker, const std::uint64_t& value) {
        right = right && worker == -1 && value == rest[index].value;
        ++third;
      },
      opt);
  REQUIRE(third == n);
  REQUIRE(right);
}

TEST_CASE("in completion order with a checkpoint, results not yet recorded count against buffersize",
          "[stream][checkpoint]") {
  stream_setup setup("bound", 8);
  auto& pool = setup.pool;
  auto& opt = setup.opt;
  opt.unordered = true;
  // Task 0 is slow: the others complete and reach the sink, but none can be recorded before it,
  // so the source is not read past the bound until it completes.
  std::uint64_t read = 0, read_when_first_done = 0;
  bool first_seen = false;
  pool.run_stream(
      [&]() -> std::optional<std::uint64_t> {
        if (read == 200) return std::nullopt;
        return read++;
      },
      [](std::uint64_t x) {
        if (x == 0) foreman_test::sleep_us(200000);
        return first_run(x);
      },
      [&](std::uint64_t index, int, const std::uint64_t&) {
        if (index == 0 && !first_seen) {
          first_seen = true;
          read_when_first_done = read;
        }
      },
      opt);
  if (!pool.is_master()) return;
  REQUIRE(first_seen);
  CHECK(read_when_first_done <= 8);
}

TEST_CASE("a run()'s journal is refused to a stream and a stream's to a run(), by name", "[stream][checkpoint]") {
  stream_setup setup("layouts", 0);
  auto& pool = setup.pool;
  auto& opt = setup.opt;
  std::vector<std::uint64_t> tasks{1, 2, 3};
  pool.run(tasks, first_run, opt);
  bool refused = false;
  try {
    run(pool, {3}, first_run, opt);
  } catch (const foreman::error& e) {
    refused = std::string(e.what()).find("is the journal of a run()") != std::string::npos;
  }
  REQUIRE(refused == pool.is_master());

  if (pool.is_master()) std::remove(setup.file.path.c_str());
  run(pool, {3}, first_run, opt);
  refused = false;
  try {
    pool.run(tasks, first_run, opt);
  } catch (const foreman::error& e) {
    refused = std::string(e.what()).find("is the journal of a stream") != std::string::npos;
  }
  REQUIRE(refused == pool.is_master());
  // Both refusals left the pool usable.
  const auto results = pool.run(tasks, first_run);
  if (pool.is_master()) REQUIRE(results.size() == 3);
}

TEST_CASE("reduce() with a checkpoint folds the recorded results without running them", "[stream][checkpoint]") {
  stream_setup setup("reduce", 0);
  auto& pool = setup.pool;
  auto& opt = setup.opt;
  auto add = [](std::uint64_t acc, std::uint64_t r) { return acc + r; };
  const std::uint64_t sum = pool.reduce(counting_source{200}, first_run, std::uint64_t{0}, add, opt);
  const std::uint64_t again = pool.reduce(counting_source{200}, second_run, std::uint64_t{0}, add, opt);
  if (pool.is_master()) {
    REQUIRE(again == sum);
    REQUIRE(pool.last_run().replayed == 200);
  }
}

} // namespace
