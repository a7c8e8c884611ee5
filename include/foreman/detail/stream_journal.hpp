#pragma once
/// @file stream_journal.hpp
/// The checkpoint journal of a stream (run_stream(), reduce()): the stream layout of journal.hpp,
/// read back while the stream runs, in memory that does not grow with the tasks.
///
/// A stream's tasks are not known up front, so each record carries its task's index (in source
/// order) and the fingerprint of its value. Each run of the stream appends one segment whose
/// indices rise strictly (records are written in task order), so a rerun reads every segment
/// with one forward cursor: when the source gives task j, each cursor moves on to the first record
/// at j or above, and a record at j whose fingerprint is the task's gives the task's result back.
/// Memory: one cursor (a read buffer and one record) per segment, whatever the number of tasks.

#include <foreman/detail/keyed_journal.hpp>
#include <foreman/detail/value_fingerprint.hpp>
#include <foreman/detail/wire.hpp>
#include <foreman/errors.hpp>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace foreman {
namespace detail {

/// A stream's journal, open on the master for one run of the stream.
template <class Task, class Result>
class stream_journal : public keyed_journal {
public:
  /// Read buffer of each segment's cursor.
  static constexpr std::size_t cursor_buffer = 16 * 1024;

  /// Opens (or creates) the journal at `path` for `types`. @throws error as journal_file::open_stream()
  void open(const std::string& path, const std::string& types, journal_sync sync) {
    const journal_scan scan = open_file(
        path, types, sync, [](std::uint64_t, std::uint64_t, std::uint64_t, const std::vector<char>&) {},
        stream_journal_format);
    for (const journal_segment& segment : scan.segments)
      if (segment.records > 0) cursors_.emplace_back(file_.reader(segment.begin, segment.end, cursor_buffer));
    for (cursor& c : cursors_) step(c);
  }

  /// Looks task `index` up, whose value is `task`; stores its fingerprint in `fingerprint`
  /// (`fingerprinted` false when the task cannot be read: it then runs and is not recorded) and,
  /// when restored, its result in `into`; verdict::changed: the source changed (see rethrow()).
  /// Indices must rise from one call to the next.
  verdict look_up(std::uint64_t index, const Task& task, std::uint64_t& fingerprint, bool& fingerprinted,
                  Result& into) {
    fingerprinted = task_fingerprint(task, fingerprint);
    if (!fingerprinted) return verdict::run; // fails when it is sent, as without a checkpoint
    verdict found = verdict::run;
    for (cursor& c : cursors_) {
      while (c.live && c.fields[0] < index) step(c);
      if (!c.live || c.fields[0] != index || found == verdict::restored) continue;
      if (c.fields[1] != fingerprint) {
        if (changed_.empty())
          changed_ = "checkpoint " + path_ + ": task " + std::to_string(index) +
                     " of the stream is not the task the journal recorded at that index (their fingerprints "
                     "differ): the source changed since the journal was written; the stream stopped before it. "
                     "Delete the journal or choose another checkpoint file to run the new source";
        return verdict::changed;
      }
      if (!read_payload(c.payload, into)) continue; // unreadable: another segment may hold it, else it runs again
      found = verdict::restored;
    }
    if (found == verdict::restored) ++restored_;
    return found;
  }

  /// Records `result` of task `index` (fingerprint `fingerprint`). An error (a record too long,
  /// an I/O error that closes the journal) is kept for rethrow(); the stream goes on.
  void record(std::uint64_t index, std::uint64_t fingerprint, const Result& result) {
    record_result(index, fingerprint, result);
  }

  /// As record(), the result already serialized (keyed_journal::encode()).
  void record_encoded(std::uint64_t index, std::uint64_t fingerprint, const std::vector<char>& payload) {
    record_payload(index, fingerprint, payload);
  }

  /// Syncs and closes the journal (an error is kept for rethrow()).
  void close() {
    cursors_.clear();
    close_file();
  }

  /// Throws what went wrong during the stream, if anything: a changed source first, else the
  /// first error of the journal.
  void rethrow() const {
    if (!changed_.empty()) throw error(changed_);
    rethrow_failure();
  }

private:
  struct cursor {
    explicit cursor(fd_source source) : in(std::move(source)) {}
    fd_source in;
    bool live = true;
    std::uint64_t fields[2] = {0, 0}; // the current record's index and fingerprint
    std::vector<char> payload;
    std::vector<char> scratch;
  };

  // The segment's next record (the scan at open found them sound; a reader that fails now, an
  // I/O error, ends the cursor: its tasks run again).
  static void step(cursor& c) { c.live = c.live && read_journal_record(c.in, c.fields, c.payload, c.scratch); }

  std::vector<cursor> cursors_;
};

} // namespace detail
} // namespace foreman
