// Checkpoint journal (options::checkpoint): the file format read back after every possible
// truncation and every single-bit flip (a reader may drop records, never accept one that was not
// written); resuming a run computes only the missing tasks and returns the same results; journals
// of another task list, other types, an empty file and a file that is not a journal.

#include "catch.hpp"
#include "test_support.hpp"

#include <foreman/detail/journal.hpp>
#include <foreman/foreman.hpp>

#include <boost/mpi/collectives.hpp>
#include <boost/mpi/communicator.hpp>
#include <boost/serialization/split_member.hpp>
#include <boost/serialization/vector.hpp>

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace {

namespace fd = foreman::detail;
using foreman_test::world_rank;

// ---- the file format, in memory ------------------------------------------------------------

struct written {
  std::uint64_t index;
  std::vector<char> payload;
};

fd::journal_identity sample_identity() {
  return {40, 0x1234567890abcdefull, "Task=int;Result=std::string;archive=17"};
}

// A header and records of assorted sizes (one empty), as the master writes them.
std::vector<char> sample_journal(std::vector<written>& records, std::vector<std::size_t>& ends) {
  std::vector<char> bytes = fd::journal_header(sample_identity());
  ends.push_back(bytes.size());
  for (std::uint64_t k = 0; k < 6; ++k) {
    written w{(k * 7) % 40, std::vector<char>(k * 5 % 13, static_cast<char>('a' + k))};
    fd::journal_record(bytes, w.index, w.payload);
    records.push_back(std::move(w));
    ends.push_back(bytes.size());
  }
  return bytes;
}

fd::journal_scan scan_bytes(const std::vector<char>& bytes, std::vector<written>& got,
                            const fd::journal_identity& id = sample_identity()) {
  fd::memory_source source(bytes.data(), bytes.size());
  return fd::scan_journal(source, id, [&](std::uint64_t index, const std::vector<char>& payload) {
    got.push_back({index, payload});
  });
}

bool same(const written& a, const written& b) {
  return a.index == b.index && a.payload == b.payload;
}

TEST_CASE("a journal cut at any byte gives back exactly the records it holds whole", "[checkpoint][format]") {
  std::vector<written> records;
  std::vector<std::size_t> ends; // ends[0]: end of the header; ends[k]: end of record k
  const std::vector<char> bytes = sample_journal(records, ends);
  for (std::size_t cut = 0; cut <= bytes.size(); ++cut) {
    CAPTURE(cut);
    std::vector<written> got;
    const auto scan = scan_bytes(std::vector<char>(bytes.begin(), bytes.begin() + static_cast<long>(cut)), got);
    if (cut < ends[0]) {
      // cut while the header was written: no journal yet
      REQUIRE(scan.status == fd::journal_scan::state::empty);
      REQUIRE(got.empty());
      continue;
    }
    REQUIRE(scan.status == fd::journal_scan::state::valid);
    std::size_t whole = 0;
    while (whole < records.size() && ends[whole + 1] <= cut) ++whole;
    REQUIRE(got.size() == whole);
    REQUIRE(scan.records == whole);
    for (std::size_t k = 0; k < whole; ++k) REQUIRE(same(got[k], records[k]));
    REQUIRE(scan.valid_end == ends[whole]);
    REQUIRE(scan.dropped == cut - ends[whole]);
  }
}

TEST_CASE("no single-bit flip anywhere makes the reader accept a record that was not written", "[checkpoint][format]") {
  std::vector<written> records;
  std::vector<std::size_t> ends;
  const std::vector<char> bytes = sample_journal(records, ends);
  for (std::size_t bit = 0; bit < bytes.size() * 8; ++bit) {
    CAPTURE(bit);
    std::vector<char> flipped = bytes;
    flipped[bit / 8] = static_cast<char>(flipped[bit / 8] ^ (1 << (bit % 8)));
    std::vector<written> got;
    const auto scan = scan_bytes(flipped, got);
    const std::size_t byte = bit / 8;
    if (byte < ends[0]) {
      // in the header: refused one way or another, no record delivered
      REQUIRE(scan.status != fd::journal_scan::state::valid);
      REQUIRE(got.empty());
      continue;
    }
    REQUIRE(scan.status == fd::journal_scan::state::valid);
    std::size_t damaged = 0; // the record holding the flipped byte
    while (ends[damaged + 1] <= byte) ++damaged;
    REQUIRE(got.size() == damaged); // every record before it, none from it on
    for (std::size_t k = 0; k < got.size(); ++k) REQUIRE(same(got[k], records[k]));
    REQUIRE(scan.valid_end == ends[damaged]);
  }
}

TEST_CASE("random multi-bit damage never yields a record that was not written", "[checkpoint][format]") {
  std::vector<written> records;
  std::vector<std::size_t> ends;
  const std::vector<char> bytes = sample_journal(records, ends);
  for (std::uint64_t trial = 0; trial < 20000; ++trial) {
    std::vector<char> damaged = bytes;
    const std::uint64_t r = foreman_test::mix(trial);
    const int flips = 2 + static_cast<int>(r % 6);
    for (int f = 0; f < flips; ++f) {
      const std::uint64_t bit = foreman_test::mix(r + static_cast<std::uint64_t>(f)) % (bytes.size() * 8);
      damaged[bit / 8] = static_cast<char>(damaged[bit / 8] ^ (1 << (bit % 8)));
    }
    std::vector<written> got;
    scan_bytes(damaged, got);
    REQUIRE(got.size() <= records.size());
    for (std::size_t k = 0; k < got.size(); ++k) REQUIRE(same(got[k], records[k]));
  }
}

TEST_CASE("a sound journal of another identity is told apart and yields nothing", "[checkpoint][format]") {
  std::vector<written> records;
  std::vector<std::size_t> ends;
  const std::vector<char> bytes = sample_journal(records, ends);
  fd::journal_identity other = sample_identity();
  for (int which = 0; which < 3; ++which) {
    fd::journal_identity id = sample_identity();
    if (which == 0) id.task_count += 1;
    if (which == 1) id.tasks_fingerprint ^= 1;
    if (which == 2) id.types = "Task=int;Result=long;archive=17";
    std::vector<written> got;
    const auto scan = scan_bytes(bytes, got, id);
    REQUIRE(scan.status == fd::journal_scan::state::mismatch);
    REQUIRE(got.empty());
    REQUIRE(scan.found.types == other.types);
  }
  std::vector<written> got;
  const std::string text = "task,result\n1,2\n3,4\n";
  REQUIRE(scan_bytes(std::vector<char>(text.begin(), text.end()), got).status == fd::journal_scan::state::not_journal);
  REQUIRE(scan_bytes(std::vector<char>{}, got).status == fd::journal_scan::state::empty);
  REQUIRE(got.empty());
}

// ---- resuming runs, on every rank ------------------------------------------------------------

// A path in the temporary directory, the master's: only the master touches the journal.
std::string temp_path(const std::string& name) {
  return foreman_test::temp_path("foreman_checkpoint_", name);
}
using foreman_test::cleanup;
using foreman_test::read_file;
using foreman_test::write_file;

long long square(int x) {
  return static_cast<long long>(x) * x + 1;
}

std::vector<int> make_tasks(int n, int salt = 0) {
  std::vector<int> tasks;
  for (int i = 0; i < n; ++i) tasks.push_back(i * 3 + salt);
  return tasks;
}

std::vector<long long> expected_of(const std::vector<int>& tasks) {
  std::vector<long long> out;
  for (int t : tasks) out.push_back(square(t));
  return out;
}

// A function for runs that must compute nothing: every call fails the run.
long long must_not_run(int x) {
  throw std::logic_error("task " + std::to_string(x) + " was computed although the journal holds it");
}

constexpr std::size_t record_size = 8 + 4 + sizeof(long long) + 4; // index, length, payload, checksum

// A pool, tasks, and options naming a journal file of the test's own (removed at the end).
struct checkpoint_setup {
  foreman::master_worker<int, long long> pool;
  cleanup file;
  std::vector<int> tasks;
  foreman::options opt;
  checkpoint_setup(const std::string& name, int count) : file{temp_path(name)}, tasks(make_tasks(count)) {
    opt.checkpoint = file.path;
  }
};

TEST_CASE("a run with a checkpoint resumes from its journal without computing again", "[checkpoint]") {
  checkpoint_setup setup("resume", 30);
  auto& pool = setup.pool;
  const auto& tasks = setup.tasks;
  const auto& opt = setup.opt;

  auto first = pool.run(tasks, square, opt);
  if (pool.is_master()) {
    REQUIRE(first == expected_of(tasks));
    REQUIRE(pool.last_run().replayed == 0);
  }
  // The second run reads every result back: must_not_run is never called.
  std::vector<std::size_t> seen;
  auto replayed = [&](std::size_t index, int worker, const long long& value) {
    REQUIRE(worker == -1);
    REQUIRE(value == square(tasks[index]));
    seen.push_back(index);
  };
  auto again = pool.run(tasks, must_not_run, replayed, opt);
  if (pool.is_master()) {
    REQUIRE(again == first);
    REQUIRE(pool.last_run().replayed == tasks.size());
    REQUIRE(seen.size() == tasks.size());
    for (const auto& record : pool.last_run().tasks) REQUIRE(record.replayed);
    const foreman::run_report report = pool.report();
    REQUIRE(report.replayed == tasks.size());
    std::ostringstream text;
    report.print(text);
    REQUIRE(text.str().find(std::to_string(tasks.size()) + " replayed from the checkpoint") != std::string::npos);
  }
}

TEST_CASE("a journal missing some results: only those tasks run again", "[checkpoint]") {
  checkpoint_setup setup("partial", 25);
  auto& pool = setup.pool;
  const auto& file = setup.file;
  const auto& tasks = setup.tasks;
  const auto& opt = setup.opt;
  pool.run(tasks, square, opt);

  // Keep the header and the first 10 records, as if the job had been killed there.
  std::vector<std::size_t> kept;
  if (pool.is_master()) {
    std::vector<char> bytes = read_file(file.path);
    const std::size_t header = bytes.size() - tasks.size() * record_size;
    bytes.resize(header + 10 * record_size);
    write_file(file.path, bytes);
    for (std::size_t k = 0; k < 10; ++k) {
      std::uint64_t index = 0;
      std::memcpy(&index, bytes.data() + header + k * record_size, sizeof index);
      kept.push_back(index);
    }
  }
  std::vector<std::size_t> computed;
  auto note = [&](std::size_t index, int worker, const long long&) {
    if (worker != -1) computed.push_back(index);
  };
  auto results = pool.run(tasks, square, note, opt);
  if (pool.is_master()) {
    REQUIRE(results == expected_of(tasks));
    REQUIRE(pool.last_run().replayed == 10);
    REQUIRE(computed.size() == tasks.size() - 10);
    for (std::size_t index : kept) {
      REQUIRE(pool.last_run().tasks[index].replayed);
      REQUIRE(std::find(computed.begin(), computed.end(), index) == computed.end());
    }
    for (std::size_t index : computed) REQUIRE(pool.last_run().tasks[index].attempts >= 1);
  }
  // The journal is whole again.
  auto third = pool.run(tasks, must_not_run, opt);
  if (pool.is_master()) {
    REQUIRE(third == expected_of(tasks));
    REQUIRE(pool.last_run().replayed == tasks.size());
  }
}

TEST_CASE("the journal cut at every byte of its last record: that task runs again, the others not", "[checkpoint]") {
  checkpoint_setup setup("torn", 12);
  auto& pool = setup.pool;
  const auto& file = setup.file;
  const auto& tasks = setup.tasks;
  const auto& opt = setup.opt;
  pool.run(tasks, square, opt); // writes the journal
  std::vector<char> whole;
  if (pool.is_master()) whole = read_file(file.path);

  for (std::size_t cut = 0; cut < record_size; ++cut) {
    CAPTURE(cut);
    if (pool.is_master()) {
      std::vector<char> torn = whole;
      torn.resize(whole.size() - record_size + cut);
      write_file(file.path, torn);
    }
    auto results = pool.run(tasks, square, opt);
    if (pool.is_master()) {
      REQUIRE(results == expected_of(tasks));
      REQUIRE(pool.last_run().replayed == tasks.size() - 1);
      REQUIRE(pool.last_run().checkpoint_dropped_bytes == cut);
      REQUIRE(read_file(file.path).size() == whole.size()); // cut off, then the record written again
    }
  }
}

TEST_CASE("a bit flipped anywhere in the journal: refused if in the header, else recomputed; never wrong",
          "[checkpoint]") {
  checkpoint_setup setup("flip", 6);
  auto& pool = setup.pool;
  const auto& file = setup.file;
  const auto& tasks = setup.tasks;
  const auto& opt = setup.opt;
  pool.run(tasks, square, opt); // writes the journal
  const auto expected = expected_of(tasks);

  std::size_t size = 0;
  std::vector<char> whole;
  if (pool.is_master()) {
    whole = read_file(file.path);
    size = whole.size();
  }
  boost::mpi::broadcast(boost::mpi::communicator(), size, 0); // every rank makes the same runs
  const std::size_t header = size - tasks.size() * record_size;
  for (std::size_t bit = 0; bit < size * 8; ++bit) {
    CAPTURE(bit);
    if (pool.is_master()) {
      std::vector<char> flipped = whole;
      flipped[bit / 8] = static_cast<char>(flipped[bit / 8] ^ (1 << (bit % 8)));
      write_file(file.path, flipped);
    }
    if (bit / 8 < header) {
      if (pool.is_master())
        REQUIRE_THROWS_AS(pool.run(tasks, square, opt), foreman::error);
      else
        pool.run(tasks, square, opt);
      continue;
    }
    auto results = pool.run(tasks, square, opt);
    if (pool.is_master()) {
      REQUIRE(results == expected);
      REQUIRE(pool.last_run().replayed == (bit / 8 - header) / record_size);
    }
  }
}

TEST_CASE("journals that do not belong to the run are refused, on the master, and the workers go on", "[checkpoint]") {
  checkpoint_setup setup("foreign", 10);
  auto& pool = setup.pool;
  const auto& file = setup.file;
  const auto& tasks = setup.tasks;
  const auto& opt = setup.opt;
  pool.run(tasks, square, opt); // writes the journal
  const std::vector<char> original = pool.is_master() ? read_file(file.path) : std::vector<char>{};

  auto refused = [&](auto& some_pool, const auto& some_tasks, auto fn, const std::string& words) {
    if (some_pool.is_master()) {
      try {
        some_pool.run(some_tasks, fn, opt);
        FAIL("the journal was not refused");
      } catch (const foreman::error& e) {
        const std::string what = e.what();
        CAPTURE(what);
        REQUIRE(what.find(file.path) != std::string::npos);
        REQUIRE(what.find(words) != std::string::npos);
      }
      REQUIRE(read_file(file.path) == original); // left as it was
    } else {
      REQUIRE(some_pool.run(some_tasks, fn, opt).empty());
    }
  };
  SECTION("another task list: other values, or one task more") {
    refused(pool, make_tasks(10, 1), square, "task list");
    refused(pool, make_tasks(11), square, "task list");
  }
  SECTION("other types") {
    foreman::master_worker<int, double> other;
    refused(
        other, tasks, [](int x) { return x * 0.5; }, "types");
  }
  // The pool is still usable, and the journal still resumes its own run.
  auto results = pool.run(tasks, must_not_run, opt);
  if (pool.is_master()) REQUIRE(results == expected_of(tasks));
}

TEST_CASE("an empty file is a new journal; a file that is not a journal is refused and kept", "[checkpoint]") {
  checkpoint_setup setup("other", 8);
  auto& pool = setup.pool;
  const auto& file = setup.file;
  const auto& tasks = setup.tasks;
  const auto& opt = setup.opt;

  if (pool.is_master()) write_file(file.path, {});
  auto results = pool.run(tasks, square, opt);
  if (pool.is_master()) {
    REQUIRE(results == expected_of(tasks));
    REQUIRE(pool.last_run().replayed == 0);
    REQUIRE(read_file(file.path).size() > tasks.size() * record_size);
  }

  const std::string text = "these are my notes, not a journal\n";
  if (pool.is_master()) {
    write_file(file.path, std::vector<char>(text.begin(), text.end()));
    REQUIRE_THROWS_WITH(pool.run(tasks, square, opt), Catch::Contains("is not a foreman checkpoint journal"));
    const auto kept = read_file(file.path);
    REQUIRE(std::string(kept.begin(), kept.end()) == text);
  } else {
    pool.run(tasks, square, opt);
  }
}

TEST_CASE("failed tasks are not recorded: they run again on resume", "[checkpoint]") {
  checkpoint_setup setup("failed", 18);
  auto& pool = setup.pool;
  const auto& tasks = setup.tasks;
  const auto& opt = setup.opt;
  auto flaky = [](int x) -> long long {
    if (x % 9 == 0) throw std::runtime_error("no luck with " + std::to_string(x));
    return square(x);
  };
  auto outcomes = pool.run_outcomes(tasks, flaky, opt);
  std::size_t failed = 0;
  for (const auto& o : outcomes) failed += o.ok() ? 0 : 1;
  if (pool.is_master()) REQUIRE(failed == 6);

  auto results = pool.run(tasks, square, opt);
  if (pool.is_master()) {
    REQUIRE(results == expected_of(tasks));
    REQUIRE(pool.last_run().replayed == tasks.size() - 6);
    for (std::size_t i = 0; i < tasks.size(); ++i) REQUIRE(pool.last_run().tasks[i].replayed == (tasks[i] % 9 != 0));
  }
}

TEST_CASE("durability: fsync after every result still resumes the same", "[checkpoint]") {
  foreman::master_worker<int, std::string> pool;
  const cleanup file{temp_path("sync")};
  std::vector<int> tasks = make_tasks(15);
  foreman::options opt;
  opt.checkpoint = file.path;
  opt.checkpoint_sync_every = 1;
  auto text = [](int x) { return std::string(static_cast<std::size_t>(x % 7), 'x') + std::to_string(x); };
  auto first = pool.run(tasks, text, opt);
  auto again = pool.run(
      tasks, [](int) -> std::string { throw std::logic_error("computed again"); }, opt);
  if (pool.is_master()) {
    REQUIRE(again == first);
    REQUIRE(pool.last_run().replayed == tasks.size());
    REQUIRE(first[4] == text(tasks[4]));
  }
}

// ---- the record limit ---------------------------------------------------------------------------

TEST_CASE("a record longer than the format holds is refused, never written cut", "[checkpoint][format]") {
  // The limit's boundary, without allocating it: a payload of 2^32 + 8 bytes would otherwise be
  // written with the length 8, and its bytes taken for the records after it.
  STATIC_REQUIRE(fd::journal_payload_fits(0));
  STATIC_REQUIRE(fd::journal_payload_fits(fd::journal_max_payload));
  STATIC_REQUIRE(!fd::journal_payload_fits(std::size_t{fd::journal_max_payload} + 1));
  STATIC_REQUIRE(!fd::journal_payload_fits((std::size_t{1} << 32) + 8));
  STATIC_REQUIRE(!fd::journal_payload_fits(static_cast<std::size_t>(-1)));
  STATIC_REQUIRE(fd::journal_payload_fits(16, 16));
  STATIC_REQUIRE(!fd::journal_payload_fits(17, 16));
  if (world_rank() != 0) return; // a file of the master's only
  const std::string path = std::string(std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp") +
                           "/foreman_checkpoint_limit_" + std::to_string(static_cast<long>(::getpid()));
  std::remove(path.c_str());
  {
    fd::journal_file journal(16); // the same path as the real limit, at 16 bytes
    journal.open(path, sample_identity(), fd::journal_sync{}, [](std::uint64_t, const std::vector<char>&) {});
    journal.append(3, std::vector<char>(10, 'a'));
    const std::size_t before = read_file(path).size();
    REQUIRE_THROWS_WITH(journal.append(4, std::vector<char>(17, 'b')),
                        Catch::Contains("task 4 is 17 bytes") && Catch::Contains("more than a journal record holds"));
    REQUIRE(read_file(path).size() == before); // nothing written
    REQUIRE(journal.is_open());                // and the next records are
    journal.append(5, std::vector<char>(16, 'c'));
    journal.close();
  }
  std::vector<written> got;
  const auto scan = scan_bytes(read_file(path), got);
  std::remove(path.c_str());
  REQUIRE(scan.status == fd::journal_scan::state::valid);
  REQUIRE(scan.dropped == 0);
  REQUIRE(got.size() == 2);
  REQUIRE(same(got[0], written{3, std::vector<char>(10, 'a')}));
  REQUIRE(same(got[1], written{5, std::vector<char>(16, 'c')}));
}

// ---- resuming with failures: each failure stays with its own task ----------------------------

// Fails on the tasks of `failing` (task values), each with a message naming its value.
auto failing_on(std::vector<int> failing) {
  return [failing](int x) -> long long {
    if (std::find(failing.begin(), failing.end(), x) != failing.end())
      throw std::runtime_error("task value " + std::to_string(x) + " threw");
    return square(x);
  };
}

TEST_CASE("a resumed run files each failure under its own task (issue 16)", "[checkpoint][resume]") {
  foreman::master_worker<int, long long> pool;
  const cleanup file{temp_path("refail")};
  std::vector<int> tasks;
  for (int i = 0; i < 10; ++i) tasks.push_back(i);
  foreman::options opt;
  opt.checkpoint = file.path;
  pool.run_outcomes(tasks, failing_on({1, 2, 3, 4}), opt); // the journal holds 0 and 5..9

  std::vector<std::pair<std::size_t, std::string>> called; // (index, "ok" or the message)
  auto note = [&](std::size_t index, int, const foreman::outcome<long long>& o) {
    called.emplace_back(index, o.ok() ? "ok" : o.failure().message);
  };
  const auto outcomes = pool.run_outcomes(tasks, failing_on({1}), note, opt);
  if (pool.is_master()) {
    const foreman::run_info& info = pool.last_run();
    REQUIRE(outcomes.size() == tasks.size());
    REQUIRE(pool.last_run().replayed == 6);
    for (std::size_t i = 0; i < tasks.size(); ++i) {
      CAPTURE(i);
      CHECK(outcomes[i].ok() == (i != 1));
      CHECK(info.tasks[i].failed == (i == 1));
      CHECK(info.tasks[i].replayed == (i == 0 || i >= 5));
      if (outcomes[i].ok()) {
        CHECK(outcomes[i].value() == square(tasks[i]));
      } else {
        CHECK(outcomes[i].failure().index == i);
        CHECK(outcomes[i].failure().message == "task value 1 threw");
      }
    }
    REQUIRE(info.failures == 1);
    // Each task reaches the callback once, with its own outcome.
    REQUIRE(called.size() == tasks.size());
    std::sort(called.begin(), called.end());
    for (std::size_t i = 0; i < tasks.size(); ++i) {
      CHECK(called[i].first == i);
      CHECK(called[i].second == (i == 1 ? "task value 1 threw" : "ok"));
    }
  }
}

// The randomized form: random task lists, failing sets that differ between the first and the
// resumed run, journals cut at random byte offsets, random scheduling options; the resumed run
// must give what an uninterrupted run gives when the journal's results are taken as given.

struct called_outcome {
  int worker = 0;
  bool ok = false;
  long long value = 0;
  std::string type, message;
  int calls = 0;
};

bool same_outcome(const foreman::outcome<long long>& a, const foreman::outcome<long long>& b) {
  if (a.ok() != b.ok()) return false;
  if (a.ok()) return a.value() == b.value();
  return a.failure().index == b.failure().index && a.failure().type == b.failure().type &&
         a.failure().message == b.failure().message;
}

// The indices of the sound records a journal's bytes hold (the first occurrence of each).
std::vector<std::size_t> journal_indices(const std::vector<char>& bytes) {
  fd::memory_source probe(bytes.data(), bytes.size());
  const auto found = fd::scan_journal(probe, fd::journal_identity{}, [](std::uint64_t, const std::vector<char>&) {});
  std::vector<std::size_t> out;
  if (found.status != fd::journal_scan::state::mismatch) return out; // empty, or cut inside the header
  fd::memory_source source(bytes.data(), bytes.size());
  fd::scan_journal(source, found.found, [&](std::uint64_t index, const std::vector<char>&) {
    if (std::find(out.begin(), out.end(), index) == out.end()) out.push_back(static_cast<std::size_t>(index));
  });
  return out;
}

TEST_CASE("randomized: a resumed run equals an uninterrupted run, outcomes, records and callbacks",
          "[checkpoint][resume]") {
  using foreman_test::mix;
  foreman::master_worker<int, long long> pool;
  const cleanup file{temp_path("random")};
  const bool master = pool.is_master();
  for (std::uint64_t iteration = 0; iteration < 64; ++iteration) {
    CAPTURE(iteration);
    const std::uint64_t seed = mix(0x1605eedull + iteration);
    // A task's value is its index * 1000 + a random part: a function that sees only the value
    // knows the index (the reference run below needs that), and values still differ at random.
    const std::size_t n = 1 + mix(seed) % 48;
    std::vector<int> tasks(n);
    for (std::size_t i = 0; i < n; ++i) tasks[i] = static_cast<int>(i * 1000 + mix(seed + 1 + i) % 1000);
    auto index_of = [](int x) { return static_cast<std::size_t>(x / 1000); };
    // Failing sets: each task fails with its own chance in each run, independently.
    const std::uint64_t salt1 = mix(seed ^ 0x11), salt2 = mix(seed ^ 0x22);
    const std::uint64_t percent1 = mix(seed ^ 0x33) % 70, percent2 = mix(seed ^ 0x44) % 70;
    auto fails = [](int x, std::uint64_t salt, std::uint64_t percent) {
      return mix(salt ^ static_cast<std::uint64_t>(x)) % 100 < percent;
    };
    auto phase = [fails](std::uint64_t salt, std::uint64_t percent) {
      return [fails, salt, percent](int x) -> long long {
        if (!fails(x, salt, percent)) return square(x);
        if (x % 2) throw std::runtime_error("odd " + std::to_string(x) + " failed, salt " + std::to_string(salt));
        throw std::domain_error("even " + std::to_string(x) + " failed, salt " + std::to_string(salt));
      };
    };
    foreman::options opt;
    opt.checkpoint = file.path;
    opt.chunk_size = static_cast<std::size_t>(mix(seed ^ 0x55) % 4); // 0: automatic
    opt.tasks_in_flight = 1 + static_cast<std::size_t>(mix(seed ^ 0x66) % 3);
    opt.schedule = mix(seed ^ 0x77) % 2 ? foreman::schedule::round_robin : foreman::schedule::dynamic;

    if (master) std::remove(file.path.c_str());
    pool.run_outcomes(tasks, phase(salt1, percent1), opt); // writes the journal

    // Cut the journal at a random byte (or not at all), and learn which results it keeps.
    std::vector<std::size_t> kept;
    if (master) {
      std::vector<char> bytes = read_file(file.path);
      const std::uint64_t how = mix(seed ^ 0x88) % 4;
      if (how != 0) bytes.resize(static_cast<std::size_t>(mix(seed ^ 0x99) % (bytes.size() + 1)));
      write_file(file.path, bytes);
      kept = journal_indices(bytes);
    }
    boost::mpi::broadcast(boost::mpi::communicator(), kept, 0);
    auto is_kept = [&kept](std::size_t i) { return std::find(kept.begin(), kept.end(), i) != kept.end(); };

    // The resumed run, and an uninterrupted run of the function the resumed run effectively
    // has: the journal's results for the tasks it holds, the second failing set for the others.
    std::vector<called_outcome> resumed_calls(n), reference_calls(n);
    std::vector<std::size_t> resumed_order;
    auto recorder = [](std::vector<called_outcome>& calls, std::vector<std::size_t>* order) {
      return [&calls, order](std::size_t index, int worker, const foreman::outcome<long long>& o) {
        called_outcome& c = calls.at(index);
        ++c.calls;
        c.worker = worker;
        c.ok = o.ok();
        if (o.ok()) {
          c.value = o.value();
        } else {
          c.type = o.failure().type;
          c.message = o.failure().message;
        }
        if (order) order->push_back(index);
      };
    };
    const auto resumed = pool.run_outcomes(tasks, phase(salt2, percent2), recorder(resumed_calls, &resumed_order), opt);
    const foreman::run_info resumed_info = pool.last_run();
    foreman::options plain = opt;
    plain.checkpoint.clear();
    auto effective = [&, second = phase(salt2, percent2)](int x) -> long long {
      return is_kept(index_of(x)) ? square(x) : second(x);
    };
    const auto reference = pool.run_outcomes(tasks, effective, recorder(reference_calls, nullptr), plain);
    const foreman::run_info reference_info = pool.last_run();
    if (!master) continue;

    REQUIRE(resumed.size() == n);
    REQUIRE(reference.size() == n);
    CHECK(resumed_info.replayed == kept.size());
    CHECK(resumed_info.failures == reference_info.failures);
    CHECK(resumed_order.size() == n);
    for (std::size_t i = 0; i < n; ++i) {
      CAPTURE(i);
      CHECK(same_outcome(resumed[i], reference[i]));
      if (!reference[i].ok()) CHECK(reference[i].failure().index == i);
      const foreman::task_record& r = resumed_info.tasks[i];
      const foreman::task_record& u = reference_info.tasks[i];
      CHECK(r.failed == u.failed);
      CHECK(r.failed == !resumed[i].ok());
      CHECK(r.replayed == is_kept(i));
      CHECK(!u.replayed);
      CHECK(r.attempts == (r.replayed ? 0u : u.attempts));
      if (r.replayed) CHECK(r.worker == -1);
      if (!resumed[i].ok()) CHECK(resumed[i].failure().worker == r.worker);
      // Each task reaches the callback exactly once, with the same outcome as in the
      // uninterrupted run; the replayed ones first, from worker -1.
      const called_outcome& a = resumed_calls[i];
      const called_outcome& b = reference_calls[i];
      CHECK(a.calls == 1);
      CHECK(b.calls == 1);
      CHECK(a.ok == b.ok);
      CHECK(a.value == b.value);
      CHECK(a.type == b.type);
      CHECK(a.message == b.message);
      CHECK(a.worker == r.worker);
      CHECK(a.ok == resumed[i].ok());
    }
    for (std::size_t k = 0; k < resumed_order.size(); ++k) CHECK(is_kept(resumed_order[k]) == (k < kept.size()));
  }
}

// ---- a task that cannot be encoded, with a checkpoint ---------------------------------------

// A task whose serialize() throws while it is saved (on the master: when it is sent, and when
// the task list is fingerprinted for the journal's header).
struct touchy {
  int n = 0;
  bool poisoned = false;
  template <class Archive>
  void save(Archive& ar, unsigned) const {
    ar << n;
    if (poisoned) throw std::runtime_error("cannot save task value " + std::to_string(n));
    ar << poisoned;
  }
  template <class Archive>
  void load(Archive& ar, unsigned) {
    ar >> n >> poisoned;
  }
  BOOST_SERIALIZATION_SPLIT_MEMBER()
};

TEST_CASE("a task whose serialize() throws, with a checkpoint: that task fails, the others run, journaled, and "
          "resume",
          "[checkpoint][resume]") {
  foreman::master_worker<touchy, long long> pool;
  const cleanup file{temp_path("touchy")};
  std::vector<touchy> tasks(12);
  for (std::size_t i = 0; i < tasks.size(); ++i) tasks[i].n = static_cast<int>(i) * 3;
  tasks[4].poisoned = tasks[9].poisoned = true; // in the middle of a chunk of 3, and at its end
  // As without a checkpoint: with workers the task cannot travel and fails; without (1 rank)
  // nothing is encoded and it simply runs.
  auto fails = [&](std::size_t i) { return tasks[i].poisoned && foreman_test::world_size() > 1; };
  foreman::options opt;
  opt.checkpoint = file.path;
  opt.chunk_size = 3;
  auto fn = [](const touchy& t) { return square(t.n); };

  std::vector<foreman::outcome<long long>> first;
  std::string escaped; // what run_outcomes() threw, if anything: on the master only
  try {
    first = pool.run_outcomes(tasks, fn, opt);
  } catch (const std::exception& e) {
    escaped = e.what();
  }
  if (pool.is_master()) {
    REQUIRE(escaped == "");
    REQUIRE(first.size() == tasks.size());
    for (std::size_t i = 0; i < tasks.size(); ++i) {
      CAPTURE(i);
      if (fails(i)) {
        REQUIRE_FALSE(first[i].ok());
        CHECK(first[i].failure().index == i);
        CHECK(first[i].failure().type == "foreman::serialization_error");
        CHECK(first[i].failure().message == "foreman: task " + std::to_string(i) +
                                                " could not be encoded on the master: std::runtime_error: cannot "
                                                "save task value " +
                                                std::to_string(tasks[i].n));
      } else {
        REQUIRE(first[i].ok());
        CHECK(first[i].value() == square(tasks[i].n));
      }
    }
  }

  // The same tasks on the same journal: accepted, every result read back, only the failed ones
  // tried again, failing as before (under their own index).
  auto computed_again = [](const touchy& t) -> long long {
    throw std::logic_error("task value " + std::to_string(t.n) + " was computed again");
  };
  std::vector<foreman::outcome<long long>> second;
  try {
    second = pool.run_outcomes(tasks, computed_again, opt);
  } catch (const std::exception& e) {
    escaped = e.what();
  }
  if (pool.is_master()) {
    REQUIRE(escaped == "");
    const foreman::run_info& info = pool.last_run();
    REQUIRE(second.size() == tasks.size());
    CHECK(info.replayed == tasks.size() - (foreman_test::world_size() > 1 ? 2 : 0));
    for (std::size_t i = 0; i < tasks.size(); ++i) {
      CAPTURE(i);
      CHECK(info.tasks[i].replayed == !fails(i));
      CHECK(info.tasks[i].failed == fails(i));
      CHECK(same_outcome(second[i], first[i]));
    }
  }
}

// ---- the journal records every finished result, whatever the callback does -------------------

TEST_CASE("a throwing on_result does not stop the journal: every result is recorded", "[checkpoint]") {
  checkpoint_setup setup("callback", 100);
  auto& pool = setup.pool;
  const auto& tasks = setup.tasks;
  const auto& opt = setup.opt;
  auto throw_at = [](std::size_t nth) {
    return [nth, calls = std::size_t{0}](std::size_t, int, const long long&) mutable {
      if (++calls == nth) throw std::runtime_error("callback gives up");
    };
  };
  if (pool.is_master())
    CHECK_THROWS_WITH(pool.run(tasks, square, throw_at(3), opt), "callback gives up");
  else
    pool.run(tasks, square, throw_at(3), opt);
  auto again = pool.run(tasks, must_not_run, opt);
  if (pool.is_master()) {
    REQUIRE(again == expected_of(tasks));
    REQUIRE(pool.last_run().replayed == tasks.size());
  }

  // The same when the callback throws on a replayed result: the computed ones are recorded.
  if (pool.is_master()) {
    std::vector<char> bytes = read_file(setup.file.path);
    bytes.resize(bytes.size() - 60 * record_size);
    write_file(setup.file.path, bytes);
  }
  if (pool.is_master())
    CHECK_THROWS_WITH(pool.run(tasks, square, throw_at(1), opt), "callback gives up");
  else
    pool.run(tasks, square, throw_at(1), opt);
  if (pool.is_master()) CHECK(pool.last_run().replayed == 40);
  auto third = pool.run(tasks, must_not_run, opt);
  if (pool.is_master()) {
    REQUIRE(third == expected_of(tasks));
    REQUIRE(pool.last_run().replayed == tasks.size());
  }
}

// ---- one journal, one job ----------------------------------------------------------------------

TEST_CASE("a journal open in one job is refused to another, with a clear error", "[checkpoint]") {
  checkpoint_setup setup("locked", 12);
  auto& pool = setup.pool;
  const auto& file = setup.file;
  const auto& tasks = setup.tasks;
  const auto& opt = setup.opt;
  pool.run(tasks, square, opt); // writes the journal

  // Another job holds the journal open (an open file description of its own, as another
  // process would have): it is refused, and the file is left as it was.
  fd::journal_file holder;
  std::vector<char> before;
  if (pool.is_master()) {
    before = read_file(file.path);
    fd::memory_source probe(before.data(), before.size());
    const auto found =
        fd::scan_journal(probe, fd::journal_identity{}, [](std::uint64_t, const std::vector<char>&) {}).found;
    holder.open(file.path, found, fd::journal_sync{}, [](std::uint64_t, const std::vector<char>&) {});
    REQUIRE(holder.is_open());
    // CHECK, not REQUIRE, until the last collective run: the workers must not be left waiting.
    std::string what = "(no error)";
    try {
      pool.run(tasks, square, opt);
    } catch (const foreman::error& e) {
      what = e.what();
    }
    CAPTURE(what);
    CHECK(what.find(file.path) != std::string::npos);
    CHECK(what.find("in use by another") != std::string::npos);
    CHECK(read_file(file.path) == before);

    fd::journal_file second; // two opens in one process conflict too
    CHECK_THROWS_WITH(second.open(file.path, found, fd::journal_sync{}, [](std::uint64_t, const std::vector<char>&) {}),
                      Catch::Contains("in use by another"));
    CHECK(!second.is_open());
    holder.close();
  } else {
    REQUIRE(pool.run(tasks, square, opt).empty());
  }
  // Once the other job is done, the journal serves this one.
  auto results = pool.run(tasks, must_not_run, opt);
  if (pool.is_master()) {
    REQUIRE(results == expected_of(tasks));
    REQUIRE(pool.last_run().replayed == tasks.size());
  }
}

} // namespace
