#pragma once
/// @file keyed_journal.hpp
/// What a job's journal (job_journal.hpp) and a stream's (stream_journal.hpp) share: a journal
/// file of the stream layout (journal.hpp) whose records are keyed by a task's number (a ticket,
/// or an index in source order) and its task's fingerprint; the counts of results read back and
/// of bytes cut off at open; the message of a changed task; and the first error met while the
/// run went on, kept for the caller (journal_error).

#include <foreman/detail/journal.hpp>
#include <foreman/detail/wire.hpp>

#include <cstdint>
#include <exception>
#include <string>
#include <utility>
#include <vector>

namespace foreman {
namespace detail {

/// The base of a job's and a stream's journal: not used alone.
class keyed_journal {
public:
  using verdict = journal_verdict;

  bool is_open() const noexcept { return file_.is_open(); }
  /// Results read back so far (each counted once, when its task was looked up).
  std::uint64_t restored() const noexcept { return restored_; }
  /// Bytes of a torn or damaged tail cut off when the journal was opened.
  std::uint64_t dropped_bytes() const noexcept { return dropped_; }

  /// Serializes `result` into `out`, the payload of its record.
  template <class Result>
  static void encode(const Result& result, std::vector<char>& out) {
    out.clear();
    encoder(out).put(result);
  }

protected:
  keyed_journal() = default;
  ~keyed_journal() = default;

  // Opens (or creates) the journal at `path` for `types` in `format` (stream_journal_format or
  // job_journal_format), handing every sound record to on_record as journal_file::open_stream()
  // does; keeps the path for messages and the bytes cut off. @throws error as open_stream()
  template <class OnRecord>
  journal_scan open_file(const std::string& path, const std::string& types, journal_sync sync, OnRecord&& on_record,
                         std::uint32_t format) {
    path_ = path;
    journal_scan scan = file_.open_stream(path, types, sync, std::forward<OnRecord>(on_record), format);
    dropped_ = scan.dropped;
    return scan;
  }

  // Records `result` under `key` with its task's `fingerprint`; an error (a record too long, an
  // I/O error that closes the journal) is kept for rethrow_failure(), and the run goes on.
  template <class Result>
  void record_result(std::uint64_t key, std::uint64_t fingerprint, const Result& result) {
    if (!file_.is_open()) return;
    failed_.keep_from([&] {
      encode(result, payload_);
      file_.append_to_segment(key, fingerprint, payload_);
    });
  }

  // As record_result(), the result already serialized.
  void record_payload(std::uint64_t key, std::uint64_t fingerprint, const std::vector<char>& payload) {
    if (!file_.is_open()) return;
    failed_.keep_from([&] { file_.append_to_segment(key, fingerprint, payload); });
  }

  // Reads a record's payload into `into`: false when it cannot be read whole (the task then runs
  // again, as if nothing were recorded).
  template <class Result>
  static bool read_payload(const std::vector<char>& payload, Result& into) {
    try {
      decoder in(payload.data(), payload.size());
      in.get(into);
      return in.exhausted();
    } catch (const std::exception&) {
      return false;
    }
  }

  // Syncs and closes the file; an error is kept for rethrow_failure().
  void close_file() {
    failed_.keep_from([&] { file_.close(); });
  }

  // Throws the first error kept, if any.
  void rethrow_failure() const { failed_.rethrow(); }

  journal_file file_;
  std::string path_;
  std::uint64_t restored_ = 0;
  std::string changed_; // why the last lookup found another task under its key ("": none)

private:
  std::vector<char> payload_;
  std::uint64_t dropped_ = 0;
  journal_error failed_;
};

} // namespace detail
} // namespace foreman
