#pragma once
/// @file journal.hpp
/// The checkpoint journal: an append-only file of finished results, so that a run killed
/// part-way can be started again and compute only what is missing (see docs/reliability.md).
/// It has three layouts, told apart by the format field after the magic: a run()'s (format 1),
/// identified by its whole task list, a stream's (format 2), whose records each carry their
/// task's fingerprint, and a job's (format 3), as a stream's in any order. Each reader refuses
/// the others by name (state::other_layout).
///
/// A run()'s layout (integers in the machine's byte order; the magic tells a foreign file apart):
///
///     header  "FOREMAN-JOURNAL\n"             16 bytes
///             format                           u32 (1: a run's journal)
///             task count                       u64
///             task-list fingerprint            u64 (CRC-64/XZ of every task's value:
///                                              detail/value_fingerprint.hpp)
///             types length n                   u32
///             types                            n bytes ("Task=...;Result=...;archive=...")
///             header checksum                  u32 (CRC-32 of all the header bytes above)
///     record  task index                       u64
///             payload length m                 u32
///             payload                          m bytes (the serialized Result)
///             record checksum                  u32 (CRC-32 of index, length and payload)
///
/// A reader trusts a record only if its checksum matches and its index is below the task
/// count; at the first record that fails, everything from there on is the torn or damaged
/// tail: it is dropped (cut off before new records are appended) and those tasks run again.
///
/// A stream's layout (run_stream(), reduce(); detail/stream_journal.hpp reads it back):
///
///     header  "FOREMAN-JOURNAL\n"             16 bytes
///             format                           u32 (2: a stream's journal)
///             types length n, types, header checksum (as above)
///     segment index                            u64 (all ones: not a task index)
///             segment number s                 u64 (0 for the first segment, then 1, 2, ...)
///             payload length                   u32 (0)
///             record checksum                  u32
///     record  task index                       u64 (in the order the source gave the tasks)
///             task fingerprint                 u64 (CRC-64/XZ of the task's value)
///             payload length m, payload, record checksum (CRC-32 of all the record's bytes)
///
/// Each run of the stream appends one segment (its marker is written before its first record),
/// and writes its records in strictly increasing task index. A record before any segment, an
/// index not above the one before it in its segment, or a segment numbered out of turn is
/// damage, read as a torn tail is.
///
/// A job's layout (start(); detail/job_journal.hpp reads it back) is a stream's with format 3 and
/// its records in the order the tasks completed: the index is the task's ticket (its submission's
/// number, from 0), and within a segment no order is asked for. A job's reader holds every
/// record's result until the task is submitted again.

#include <foreman/errors.hpp>

#include <boost/crc.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

namespace foreman {
namespace detail {

inline constexpr char journal_magic[16] = {'F', 'O', 'R', 'E', 'M', 'A', 'N', '-',
                                           'J', 'O', 'U', 'R', 'N', 'A', 'L', '\n'};
inline constexpr std::uint32_t journal_format = 1;
inline constexpr std::uint32_t stream_journal_format = 2;
inline constexpr std::uint32_t job_journal_format = 3;

/// What a stream's or a job's journal holds for a task looked up in it (stream_journal.hpp,
/// job_journal.hpp).
enum class journal_verdict {
  run,      ///< nothing usable: the task runs (and is recorded when it succeeds)
  restored, ///< its result, read back
  changed,  ///< a record at its index for another task: the tasks changed since it was written
};
/// The first error a stream's or a job's journal met while its run went on (a record that could
/// not be written, a close that failed): kept, so that the results still reach the caller, and
/// thrown by rethrow() once the run ended.
class journal_error {
public:
  /// Runs f(); an exception it throws is kept (the first only) instead of propagating.
  template <class F>
  void keep_from(F&& f) noexcept {
    try {
      f();
    } catch (...) {
      if (!first_) first_ = std::current_exception();
    }
  }
  /// Throws the error kept, if any.
  void rethrow() const {
    if (first_) std::rethrow_exception(first_);
  }

private:
  std::exception_ptr first_;
};

/// The index field of a stream journal's segment marker (no task has it).
inline constexpr std::uint64_t stream_segment_marker = ~std::uint64_t{0};
/// A record's payload may not exceed this: the writer refuses a longer one (its length would not
/// fit the u32 length field, or would be taken for damage by the reader), and the reader takes a
/// longer length for damage (a damaged length field must not make it allocate).
inline constexpr std::uint32_t journal_max_payload = 0x7fffffffu;

/// True when a payload of `size` bytes fits a record. The one check the writers make, kept apart
/// so that its boundary can be tested without allocating gigabytes.
constexpr bool journal_payload_fits(std::size_t size, std::size_t limit = journal_max_payload) noexcept {
  return size <= limit && size <= journal_max_payload;
}

/// What a journal belongs to: the task list and the types. Two runs may share a journal only if
/// all three agree.
struct journal_identity {
  std::uint64_t task_count = 0;
  std::uint64_t tasks_fingerprint = 0;
  std::string types;
};

template <class T>
void append_raw(std::vector<char>& out, const T& value) {
  const char* bytes = reinterpret_cast<const char*>(&value);
  out.insert(out.end(), bytes, bytes + sizeof(T));
}

inline std::uint32_t crc32_of(const char* data, std::size_t size) {
  boost::crc_32_type crc;
  crc.process_bytes(data, size);
  return crc.checksum();
}

// The end of either header: the types, then a CRC-32 of every header byte before it.
inline void append_types_and_checksum(std::vector<char>& out, const std::string& types) {
  append_raw(out, static_cast<std::uint32_t>(types.size()));
  out.insert(out.end(), types.begin(), types.end());
  append_raw(out, crc32_of(out.data(), out.size()));
}

inline std::vector<char> journal_header(const journal_identity& id) {
  std::vector<char> out(journal_magic, journal_magic + sizeof journal_magic);
  append_raw(out, journal_format);
  append_raw(out, id.task_count);
  append_raw(out, id.tasks_fingerprint);
  append_types_and_checksum(out, id.types);
  return out;
}

/// A stream journal's header (a job's: format job_journal_format): its identity is its types alone.
inline std::vector<char> stream_journal_header(const std::string& types, std::uint32_t format = stream_journal_format) {
  std::vector<char> out(journal_magic, journal_magic + sizeof journal_magic);
  append_raw(out, format);
  append_types_and_checksum(out, types);
  return out;
}

inline void refuse_unfit_record(std::uint64_t index, std::size_t size) {
  if (!journal_payload_fits(size))
    throw error("checkpoint record of task " + std::to_string(index) + " has " + std::to_string(size) +
                " bytes, more than a journal record can hold (" + std::to_string(journal_max_payload) + ")");
}

// The end of either kind of record, whose fixed fields start at out[start]: the payload's length,
// the payload, and a CRC-32 of all the record's bytes.
inline void append_payload_and_checksum(std::vector<char>& out, std::size_t start, const std::vector<char>& payload) {
  append_raw(out, static_cast<std::uint32_t>(payload.size()));
  out.insert(out.end(), payload.begin(), payload.end());
  append_raw(out, crc32_of(out.data() + start, out.size() - start));
}

/// Appends one record to `out`.
/// @throws error (appending nothing) if the payload is longer than journal_max_payload: its length
///         would be written cut to 32 bits, and the reader would drop it and every record after it
inline void journal_record(std::vector<char>& out, std::uint64_t index, const std::vector<char>& payload) {
  refuse_unfit_record(index, payload.size());
  const std::size_t start = out.size();
  append_raw(out, index);
  append_payload_and_checksum(out, start, payload);
}

/// Appends one record of a stream journal to `out` (a segment marker: index stream_segment_marker,
/// `fingerprint` the segment's number, no payload).
/// @throws error as journal_record()
inline void stream_journal_record(std::vector<char>& out, std::uint64_t index, std::uint64_t fingerprint,
                                  const std::vector<char>& payload) {
  refuse_unfit_record(index, payload.size());
  const std::size_t start = out.size();
  append_raw(out, index);
  append_raw(out, fingerprint);
  append_payload_and_checksum(out, start, payload);
}

/// A stream journal's segment: the records one run of the stream appended, [begin, end) in bytes.
struct journal_segment {
  std::uint64_t begin = 0; ///< just after its marker
  std::uint64_t end = 0;   ///< after its last sound record
  std::uint64_t records = 0;
  std::uint64_t last = 0; ///< the task index of its last record (when it has records)
};

/// What reading a journal found.
struct journal_scan {
  enum class state {
    empty,        ///< no bytes, or the beginning of this run's header (cut while being created)
    valid,        ///< a header for this identity; records may follow
    not_journal,  ///< the file does not start with the magic
    damaged,      ///< the magic is there, but the header is cut, or its checksum or format is wrong
    mismatch,     ///< a sound header for another task list or other types
    other_layout, ///< another layout's header (a stream's journal read as a run's, ...): see format
  };
  state status = state::empty;
  std::uint32_t format = 0;    ///< the format the header names (status other_layout, valid, ...)
  journal_identity found;      ///< the header's identity (status valid or mismatch)
  std::uint64_t records = 0;   ///< sound records delivered to the callback
  std::uint64_t valid_end = 0; ///< bytes up to the end of the last sound record
  std::uint64_t dropped = 0;   ///< bytes after valid_end: a torn or damaged tail
  std::vector<journal_segment> segments; ///< a stream journal's segments, in file order
};

/// A byte range as a journal source (tests, the fuzz target).
class memory_source {
public:
  memory_source(const char* data, std::size_t size) : data_(data), size_(size) {}
  bool read(char* out, std::size_t n) {
    if (!peek(out, n)) return false;
    pos_ += n;
    return true;
  }
  bool peek(char* out, std::size_t n) const {
    if (n > size_ - pos_) return false;
    if (n != 0) std::memcpy(out, data_ + pos_, n); // out may be null (an empty payload's data())
    return true;
  }
  std::uint64_t remaining() const { return size_ - pos_; }

private:
  const char* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

/// An open file, read forward through a buffer (a stream journal is read once through at open,
/// then by one of these per segment while the stream runs: a system call per record would cost
/// more than the records).
class fd_source {
public:
  /// Reads the bytes [begin, end) of `fd`, through a buffer of `buffer` bytes.
  fd_source(int fd, std::uint64_t end, std::uint64_t begin = 0, std::size_t buffer = 64 * 1024)
      : fd_(fd), left_(end > begin ? end - begin : 0), offset_(begin), capacity_(std::max<std::size_t>(buffer, 64)) {}
  bool read(char* out, std::size_t n) {
    if (!peek(out, n)) return false;
    skip(n);
    return true;
  }
  bool peek(char* out, std::size_t n) {
    if (n > left_) return false;
    if (n > capacity_) return pread_all(out, n, offset_); // longer than the buffer: read directly
    if (n > held()) {
      buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(used_));
      used_ = 0;
      const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(capacity_, left_));
      const std::size_t had = buffer_.size();
      buffer_.resize(want);
      if (!pread_all(buffer_.data() + had, want - had, offset_ + had)) {
        buffer_.resize(had);
        return false;
      }
    }
    if (n != 0) std::memcpy(out, buffer_.data() + used_, n);
    return true;
  }
  std::uint64_t remaining() const { return left_; }
  /// Where the next read starts, in the file.
  std::uint64_t offset() const { return offset_; }

private:
  std::size_t held() const { return buffer_.size() - used_; }
  void skip(std::size_t n) {
    left_ -= n;
    offset_ += n;
    if (n >= held()) {
      buffer_.clear();
      used_ = 0;
    } else {
      used_ += n;
    }
  }
  bool pread_all(char* out, std::size_t n, std::uint64_t at) const {
    std::size_t done = 0;
    while (done < n) {
      const ssize_t got = ::pread(fd_, out + done, n - done, static_cast<off_t>(at + done));
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) return false;
      done += static_cast<std::size_t>(got);
    }
    return true;
  }

  int fd_;
  std::uint64_t left_;
  std::uint64_t offset_;
  std::size_t capacity_;
  std::vector<char> buffer_; // the file's bytes from offset_ - used_ on
  std::size_t used_ = 0;     // of buffer_, already read
};

// The beginning both layouts share, up to and including the format field, which must be `format`.
// Returns false when the scan is over: the source is empty or holds the beginning of `wanted`
// (status empty), is not a journal, holds the other layout, or is cut in the format field or
// has another (damaged). Else `head` holds the bytes read.
template <class Source>
bool read_journal_start(Source& source, const std::vector<char>& wanted, std::uint32_t format, journal_scan& scan,
                        std::vector<char>& head) {
  const std::uint64_t total = source.remaining();
  if (total == 0) return false;
  // A file shorter than this run's header and equal to its beginning was cut while the header
  // was first written (it is written and synced before any record): it holds nothing yet.
  if (total < wanted.size()) {
    std::vector<char> prefix(static_cast<std::size_t>(total));
    if (source.peek(prefix.data(), prefix.size()) && std::equal(prefix.begin(), prefix.end(), wanted.begin()))
      return false;
  }
  head.assign(sizeof journal_magic, '\0');
  const std::size_t magic_seen = static_cast<std::size_t>(std::min<std::uint64_t>(total, head.size()));
  if (!source.read(head.data(), magic_seen) || std::memcmp(head.data(), journal_magic, magic_seen) != 0 ||
      magic_seen < sizeof journal_magic) {
    scan.status = journal_scan::state::not_journal;
    return false;
  }
  scan.status = journal_scan::state::damaged; // until the header proves sound
  std::uint32_t found = 0;
  if (!source.read(reinterpret_cast<char*>(&found), sizeof found)) return false;
  append_raw(head, found);
  scan.format = found;
  if (found != format && (found == journal_format || found == stream_journal_format || found == job_journal_format))
    scan.status = journal_scan::state::other_layout;
  return found == format;
}

// Reads a header's types and checksum into `types` (the bytes before them in `head`); false if
// cut or the checksum is wrong.
template <class Source>
bool read_journal_types(Source& source, std::vector<char>& head, std::string& types) {
  std::uint32_t types_size = 0, crc = 0;
  if (!source.read(reinterpret_cast<char*>(&types_size), sizeof types_size)) return false;
  append_raw(head, types_size);
  if (types_size > source.remaining()) return false;
  types.assign(types_size, '\0');
  if (!source.read(types.data(), types.size())) return false;
  head.insert(head.end(), types.begin(), types.end());
  if (!source.read(reinterpret_cast<char*>(&crc), sizeof crc) || crc != crc32_of(head.data(), head.size()))
    return false;
  append_raw(head, crc);
  return true;
}

// After a sound header of `size` bytes (of `total`): valid if it names this journal (`same`), else
// a mismatch whose records are not read. Returns `same`.
inline bool header_names(journal_scan& scan, std::uint64_t size, std::uint64_t total, bool same) {
  scan.valid_end = size;
  scan.status = same ? journal_scan::state::valid : journal_scan::state::mismatch;
  if (!same) scan.dropped = total - size;
  return same;
}

// Reads one record: `Fixed` fixed fields (u64 each), a u32 payload length, the payload and a CRC-32
// of all of them. False (what was read is then the torn or damaged tail) if the source ends first,
// the length is out of bounds, or the checksum is wrong. `record` is scratch space.
template <std::size_t Fixed, class Source>
bool read_journal_record(Source& source, std::uint64_t (&fields)[Fixed], std::vector<char>& payload,
                         std::vector<char>& record) {
  std::uint32_t size = 0, sum = 0;
  if (source.remaining() < sizeof fields + sizeof size + sizeof sum) return false;
  if (!source.read(reinterpret_cast<char*>(fields), sizeof fields) ||
      !source.read(reinterpret_cast<char*>(&size), sizeof size))
    return false;
  if (size > journal_max_payload || size > source.remaining() - sizeof sum) return false;
  payload.resize(size);
  if (!source.read(payload.data(), size) || !source.read(reinterpret_cast<char*>(&sum), sizeof sum)) return false;
  record.clear();
  for (const std::uint64_t field : fields) append_raw(record, field);
  append_raw(record, size);
  record.insert(record.end(), payload.begin(), payload.end());
  return sum == crc32_of(record.data(), record.size());
}

/// Reads a journal from `source`. Each sound record whose index is below `expected.task_count`
/// goes to `on_record(index, payload)`; reading stops at the first record that is not sound.
/// Records are delivered only when the header matches `expected`. Never throws for any content
/// of the source (only what on_record throws).
template <class Source, class OnRecord>
journal_scan scan_journal(Source& source, const journal_identity& expected, OnRecord&& on_record) {
  journal_scan scan;
  const std::uint64_t total = source.remaining();
  std::vector<char> head;
  if (!read_journal_start(source, journal_header(expected), journal_format, scan, head)) return scan;
  std::uint64_t count = 0, fingerprint = 0;
  auto get = [&](auto& value) {
    if (!source.read(reinterpret_cast<char*>(&value), sizeof value)) return false;
    append_raw(head, value);
    return true;
  };
  if (!get(count) || !get(fingerprint)) return scan;
  std::string types;
  if (!read_journal_types(source, head, types)) return scan;
  scan.found = journal_identity{count, fingerprint, std::move(types)};
  if (!header_names(scan, head.size(), total,
                    scan.found.task_count == expected.task_count &&
                        scan.found.tasks_fingerprint == expected.tasks_fingerprint &&
                        scan.found.types == expected.types))
    return scan;

  std::vector<char> record;
  std::vector<char> payload;
  std::uint64_t fields[1];
  while (read_journal_record(source, fields, payload, record) && fields[0] < expected.task_count) {
    on_record(fields[0], payload);
    ++scan.records;
    scan.valid_end += record.size() + sizeof(std::uint32_t);
  }
  scan.dropped = total - scan.valid_end;
  return scan;
}

/// Reads a stream journal from `source`. Each sound record goes to `on_record(segment, index,
/// fingerprint, payload)` (`segment`: the number of the segment holding it), and scan.segments
/// tells where each segment lies; reading stops at the first record that is not sound (see the
/// file comment for what else is damage). Records are delivered only when the header names
/// `types`. With `format` job_journal_format, reads a job's journal: the same, but the indices
/// of a segment may come in any order. Never throws for any content of the source (only what
/// on_record throws).
template <class Source, class OnRecord>
journal_scan scan_stream_journal(Source& source, const std::string& types, OnRecord&& on_record,
                                 std::uint32_t format = stream_journal_format) {
  journal_scan scan;
  const std::uint64_t total = source.remaining();
  std::vector<char> head;
  const bool ordered = format != job_journal_format;
  if (!read_journal_start(source, stream_journal_header(types, format), format, scan, head) ||
      !read_journal_types(source, head, scan.found.types))
    return scan;
  if (!header_names(scan, head.size(), total, scan.found.types == types)) return scan;

  std::vector<char> record;
  std::vector<char> payload;
  std::uint64_t fields[2]; // index (or the marker), fingerprint (or the segment's number)
  while (read_journal_record(source, fields, payload, record)) {
    const std::uint64_t end = scan.valid_end + record.size() + sizeof(std::uint32_t);
    if (fields[0] == stream_segment_marker) {
      if (fields[1] != scan.segments.size() || !payload.empty()) break;
      scan.segments.push_back(journal_segment{end, end, 0});
    } else {
      if (scan.segments.empty()) break;
      journal_segment& segment = scan.segments.back();
      if (ordered && segment.records > 0 && fields[0] <= segment.last) break;
      on_record(static_cast<std::uint64_t>(scan.segments.size() - 1), fields[0], fields[1], payload);
      segment.end = end;
      segment.last = fields[0];
      ++segment.records;
      ++scan.records;
    }
    scan.valid_end = end;
  }
  scan.dropped = total - scan.valid_end;
  return scan;
}

/// When the journal is forced to disk (fsync): after `every` records, or when a record comes
/// `interval` or more after the last fsync, and when the run ends. Each record reaches the
/// operating system (write(2)) at once, so a killed process loses nothing written; a power cut
/// loses at most `every - 1` records.
struct journal_sync {
  std::size_t every = 32;
  std::chrono::duration<double> interval{1.0};
};

/// The journal of one run, open for appending. While it is open it holds an exclusive lock on
/// the file (flock), so that a second job (or a second open in this process) is refused instead
/// of interleaving its records with this one's.
class journal_file {
public:
  /// @param max_payload the longest payload append() accepts (journal_max_payload at most; a
  ///                    smaller one lets tests reach the limit without gigabytes)
  explicit journal_file(std::size_t max_payload = journal_max_payload)
      : max_payload_(std::min<std::size_t>(max_payload, journal_max_payload)) {}
  journal_file(const journal_file&) = delete;
  journal_file& operator=(const journal_file&) = delete;
  ~journal_file() { close_quietly(); }

  /// Opens or creates `path` for `id` and locks it. Each sound record already there goes to
  /// on_record.
  /// @throws error if the file cannot be used: in use by another job (locked), not a journal,
  ///         damaged header, another task list or other types, a stream's journal, or an I/O
  ///         error. The file is then left as it was.
  template <class OnRecord>
  journal_scan open(const std::string& path, const journal_identity& id, journal_sync sync, OnRecord&& on_record) {
    return open_layout(path, journal_header(id), journal_format, sync, id,
                       [&](fd_source& source) { return scan_journal(source, id, on_record); });
  }

  /// Opens or creates `path` as a stream's journal for `types` and locks it. Each sound record
  /// already there goes to on_record(segment, index, fingerprint, payload); the scan's segments
  /// say where each lies (read them back with segment_reader()). Records appended later with
  /// append_to_segment() go to a new segment. With `format` job_journal_format, a job's journal
  /// (its records in any order).
  /// @throws error as open(), another layout's journal refused in place of this one
  template <class OnRecord>
  journal_scan open_stream(const std::string& path, const std::string& types, journal_sync sync, OnRecord&& on_record,
                           std::uint32_t format = stream_journal_format) {
    const journal_scan scan =
        open_layout(path, stream_journal_header(types, format), format, sync, journal_identity{0, 0, types},
                    [&](fd_source& source) { return scan_stream_journal(source, types, on_record, format); });
    segment_ = scan.segments.size();
    segment_open_ = false;
    return scan;
  }

  /// A reader of the bytes [begin, end) of the open journal, through a buffer of `buffer` bytes.
  fd_source reader(std::uint64_t begin, std::uint64_t end, std::size_t buffer) const {
    return fd_source(fd_, end, begin, buffer);
  }

  bool is_open() const noexcept { return fd_ >= 0; }

  /// A sentence added to the error when open() finds a journal of another task list (what may
  /// make an equal task list look different).
  void explain_mismatch(std::string why) { mismatch_note_ = std::move(why); }

  /// Appends a record and passes it to the operating system; fsyncs as the policy says.
  /// @throws error if the payload is longer than the limit: nothing is written, the journal
  ///         stays open and later records are appended as usual (this task runs again on resume)
  /// @throws error on an I/O error; the journal is then closed
  void append(std::uint64_t index, const std::vector<char>& payload) {
    refuse_longer_than_limit(index, payload);
    buffer_.clear();
    journal_record(buffer_, index, payload);
    write_record();
  }

  /// Appends a record of task `index` with its task's `fingerprint` to this run's segment of a
  /// stream's journal (open_stream()), after the segment's marker if it is the first; indices
  /// must rise from one call to the next. @throws error as append()
  void append_to_segment(std::uint64_t index, std::uint64_t fingerprint, const std::vector<char>& payload) {
    refuse_longer_than_limit(index, payload);
    buffer_.clear();
    if (!segment_open_) stream_journal_record(buffer_, stream_segment_marker, segment_, {});
    stream_journal_record(buffer_, index, fingerprint, payload);
    write_record();
    segment_open_ = true;
  }

  void sync() {
    if (unsynced_ == 0) return;
    if (::fsync(fd_) != 0) fail("cannot fsync");
    unsynced_ = 0;
    last_sync_ = std::chrono::steady_clock::now();
  }

  /// Syncs and closes. @throws error on an I/O error
  void close() {
    if (fd_ < 0) return;
    sync();
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) fail("cannot close");
  }

private:
  static std::string layout_name(std::uint32_t format) {
    return format == journal_format          ? "a run() over a task list"
           : format == stream_journal_format ? "a stream (run_stream(), reduce())"
                                             : "a job (start())";
  }

  // open() and open_stream() (`format`): opens, locks and scans (`scan_file(fd_source&)`); writes
  // `header` to an empty file, cuts a torn tail off a sound one, refuses any other.
  template <class Scan>
  journal_scan open_layout(const std::string& path, const std::vector<char>& header, std::uint32_t format,
                           journal_sync sync, const journal_identity& id, Scan&& scan_file) {
    path_ = path;
    sync_ = sync;
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) fail("cannot open");
    // Before anything is read: another job's records may be arriving. A flock belongs to the
    // open file description, so it also keeps out a second open in this process; it is
    // released when the descriptor is closed, also when the process dies.
    while (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      if (errno == EINTR) continue;
      if (errno == EWOULDBLOCK)
        refuse("is in use by another run (another job, or another pool of this one, holds it open); two runs "
               "cannot share a journal: wait for the other to finish or choose another checkpoint file");
      fail("cannot lock");
    }
    struct stat st {};
    if (::fstat(fd_, &st) != 0) fail("cannot stat");
    fd_source source(fd_, static_cast<std::uint64_t>(st.st_size));
    journal_scan scan = scan_file(source);
    using state = journal_scan::state;
    switch (scan.status) {
    case state::not_journal:
      refuse("is not a foreman checkpoint journal (it does not start with \"FOREMAN-JOURNAL\"); "
             "choose another checkpoint file");
    case state::damaged:
      refuse("has a damaged header (checksum or format); it cannot be trusted: delete it to start afresh");
    case state::mismatch:
      refuse(describe_mismatch(scan.found, id, mismatch_note_));
    case state::other_layout:
      refuse("is the journal of " + layout_name(scan.format) + ", not of " + layout_name(format) + "; " +
             (format == journal_format          ? "a run()"
              : format == stream_journal_format ? "a stream"
                                                : "a job") +
             " cannot resume from it: delete it or choose another checkpoint file");
    case state::empty: {
      if (::ftruncate(fd_, 0) != 0) fail("cannot truncate");
      write_at_end(header, 0);
      if (::fsync(fd_) != 0) fail("cannot fsync");
      end_ = header.size();
      break;
    }
    case state::valid:
      // Cut off a torn or damaged tail, so that new records follow the last sound one.
      if (scan.dropped != 0 && ::ftruncate(fd_, static_cast<off_t>(scan.valid_end)) != 0) fail("cannot truncate");
      end_ = scan.valid_end;
      break;
    }
    last_sync_ = std::chrono::steady_clock::now();
    return scan;
  }

  void refuse_longer_than_limit(std::uint64_t index, const std::vector<char>& payload) const {
    if (!journal_payload_fits(payload.size(), max_payload_))
      throw error("checkpoint " + path_ + ": the result of task " + std::to_string(index) + " is " +
                  std::to_string(payload.size()) + " bytes serialized, more than a journal record holds (" +
                  std::to_string(max_payload_) + " bytes); it was not recorded and runs again on resume");
  }

  // Writes buffer_ (whole records) at the end; fsyncs as the policy says.
  void write_record() {
    write_at_end(buffer_, end_);
    end_ += buffer_.size();
    ++unsynced_;
    const auto now = std::chrono::steady_clock::now();
    if (unsynced_ >= std::max<std::size_t>(1, sync_.every) || now - last_sync_ >= sync_.interval) sync();
  }

  [[noreturn]] void refuse(const std::string& why) {
    close_quietly();
    throw error("checkpoint " + path_ + " " + why);
  }

  [[noreturn]] void fail(const char* what) {
    const int code = errno;
    close_quietly();
    throw error(std::string("checkpoint ") + path_ + ": " + what + ": " + std::strerror(code));
  }

  void close_quietly() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  void write_at_end(const std::vector<char>& bytes, std::uint64_t offset) {
    std::size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t put = ::pwrite(fd_, bytes.data() + done, bytes.size() - done, static_cast<off_t>(offset + done));
      if (put < 0 && errno == EINTR) continue;
      if (put <= 0) fail("cannot write");
      done += static_cast<std::size_t>(put);
    }
  }

  static std::string describe_mismatch(const journal_identity& found, const journal_identity& want,
                                       const std::string& note) {
    std::string why = "was written for another run: ";
    if (found.types != want.types)
      why += "its types are " + found.types + ", this run's are " + want.types;
    else
      why += "its task list has " + std::to_string(found.task_count) + " tasks (fingerprint " +
             std::to_string(found.tasks_fingerprint) + "), this run's has " + std::to_string(want.task_count) +
             " (fingerprint " + std::to_string(want.tasks_fingerprint) + ")" +
             (found.task_count == want.task_count && !note.empty() ? " (" + note + ")" : "");
    return why + "; delete it or choose another checkpoint file";
  }

  std::size_t max_payload_;
  std::string mismatch_note_;
  std::string path_;
  int fd_ = -1;
  std::uint64_t end_ = 0;
  journal_sync sync_;
  std::size_t unsynced_ = 0;
  std::chrono::steady_clock::time_point last_sync_{};
  std::vector<char> buffer_;
  std::uint64_t segment_ = 0; // a stream's journal: the number of this run's segment
  bool segment_open_ = false; // its marker is written
};

} // namespace detail
} // namespace foreman
