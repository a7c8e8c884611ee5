#pragma once
/// @file journal.hpp
/// The checkpoint journal: an append-only file of finished results, so that a run killed
/// part-way can be started again and compute only what is missing (see docs/reliability.md).
///
/// Layout (integers in the machine's byte order; the magic tells a foreign file apart):
///
///     header  "FOREMAN-JOURNAL\n"             16 bytes
///             format version                   u32 (1)
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
#include <string>
#include <vector>

namespace foreman {
namespace detail {

inline constexpr char journal_magic[16] = {'F', 'O', 'R', 'E', 'M', 'A', 'N', '-',
                                           'J', 'O', 'U', 'R', 'N', 'A', 'L', '\n'};
inline constexpr std::uint32_t journal_format = 1;
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

inline std::vector<char> journal_header(const journal_identity& id) {
  std::vector<char> out(journal_magic, journal_magic + sizeof journal_magic);
  append_raw(out, journal_format);
  append_raw(out, id.task_count);
  append_raw(out, id.tasks_fingerprint);
  append_raw(out, static_cast<std::uint32_t>(id.types.size()));
  out.insert(out.end(), id.types.begin(), id.types.end());
  append_raw(out, crc32_of(out.data(), out.size()));
  return out;
}

/// Appends one record to `out`.
/// @throws error (appending nothing) if the payload is longer than journal_max_payload: its length
///         would be written cut to 32 bits, and the reader would drop it and every record after it
inline void journal_record(std::vector<char>& out, std::uint64_t index, const std::vector<char>& payload) {
  if (!journal_payload_fits(payload.size()))
    throw error("checkpoint record of task " + std::to_string(index) + " has " + std::to_string(payload.size()) +
                " bytes, more than a journal record can hold (" + std::to_string(journal_max_payload) + ")");
  const std::size_t start = out.size();
  append_raw(out, index);
  append_raw(out, static_cast<std::uint32_t>(payload.size()));
  out.insert(out.end(), payload.begin(), payload.end());
  append_raw(out, crc32_of(out.data() + start, out.size() - start));
}

/// What reading a journal found.
struct journal_scan {
  enum class state {
    empty,       ///< no bytes, or the beginning of this run's header (cut while being created)
    valid,       ///< a header for this identity; records may follow
    not_journal, ///< the file does not start with the magic
    damaged,     ///< the magic is there, but the header is cut, or its checksum or format is wrong
    mismatch,    ///< a sound header for another task list or other types
  };
  state status = state::empty;
  journal_identity found;      ///< the header's identity (status valid or mismatch)
  std::uint64_t records = 0;   ///< sound records delivered to the callback
  std::uint64_t valid_end = 0; ///< bytes up to the end of the last sound record
  std::uint64_t dropped = 0;   ///< bytes after valid_end: a torn or damaged tail
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

/// An open file, read from its start up to the size it had when opened.
class fd_source {
public:
  /// Reads `size` bytes of `fd` from offset 0.
  fd_source(int fd, std::uint64_t size) : fd_(fd), left_(size) {}
  bool read(char* out, std::size_t n) {
    if (!peek(out, n)) return false;
    left_ -= n;
    offset_ += n;
    return true;
  }
  bool peek(char* out, std::size_t n) const {
    if (n > left_) return false;
    std::size_t done = 0;
    while (done < n) {
      const ssize_t got = ::pread(fd_, out + done, n - done, static_cast<off_t>(offset_ + done));
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) return false;
      done += static_cast<std::size_t>(got);
    }
    return true;
  }
  std::uint64_t remaining() const { return left_; }

private:
  int fd_;
  std::uint64_t left_;
  std::uint64_t offset_ = 0;
};

/// Reads a journal from `source`. Each sound record whose index is below `expected.task_count`
/// goes to `on_record(index, payload)`; reading stops at the first record that is not sound.
/// Records are delivered only when the header matches `expected`. Never throws for any content
/// of the source (only what on_record throws).
template <class Source, class OnRecord>
journal_scan scan_journal(Source& source, const journal_identity& expected, OnRecord&& on_record) {
  journal_scan scan;
  const std::uint64_t total = source.remaining();
  if (total == 0) return scan;
  // A file shorter than this run's header and equal to its beginning was cut while the header
  // was first written (it is written and synced before any record): it holds nothing yet.
  const std::vector<char> wanted = journal_header(expected);
  if (total < wanted.size()) {
    std::vector<char> prefix(static_cast<std::size_t>(total));
    if (source.peek(prefix.data(), prefix.size()) && std::equal(prefix.begin(), prefix.end(), wanted.begin()))
      return scan;
  }
  std::vector<char> head(sizeof journal_magic);
  const std::size_t magic_seen = static_cast<std::size_t>(std::min<std::uint64_t>(total, head.size()));
  if (!source.read(head.data(), magic_seen) || std::memcmp(head.data(), journal_magic, magic_seen) != 0 ||
      magic_seen < sizeof journal_magic) {
    scan.status = journal_scan::state::not_journal;
    return scan;
  }
  scan.status = journal_scan::state::damaged; // until the header proves sound
  std::uint32_t format = 0, types_size = 0, crc = 0;
  std::uint64_t count = 0, fingerprint = 0;
  auto get = [&](auto& value) {
    if (!source.read(reinterpret_cast<char*>(&value), sizeof value)) return false;
    append_raw(head, value);
    return true;
  };
  if (!get(format) || !get(count) || !get(fingerprint) || !get(types_size)) return scan;
  if (format != journal_format || types_size > source.remaining()) return scan;
  std::string types(types_size, '\0');
  if (!source.read(types.data(), types.size())) return scan;
  head.insert(head.end(), types.begin(), types.end());
  if (!source.read(reinterpret_cast<char*>(&crc), sizeof crc) || crc != crc32_of(head.data(), head.size())) return scan;
  scan.found = journal_identity{count, fingerprint, std::move(types)};
  scan.valid_end = head.size() + sizeof crc;
  if (scan.found.task_count != expected.task_count || scan.found.tasks_fingerprint != expected.tasks_fingerprint ||
      scan.found.types != expected.types) {
    scan.status = journal_scan::state::mismatch;
    scan.dropped = total - scan.valid_end;
    return scan;
  }
  scan.status = journal_scan::state::valid;

  std::vector<char> record;
  std::vector<char> payload;
  for (;;) {
    std::uint64_t index = 0;
    std::uint32_t size = 0, sum = 0;
    constexpr std::size_t fixed = sizeof index + sizeof size + sizeof sum;
    if (source.remaining() < fixed) break;
    if (!source.read(reinterpret_cast<char*>(&index), sizeof index) ||
        !source.read(reinterpret_cast<char*>(&size), sizeof size))
      break;
    if (size > journal_max_payload || size > source.remaining() - sizeof sum) break;
    payload.resize(size);
    if (!source.read(payload.data(), size) || !source.read(reinterpret_cast<char*>(&sum), sizeof sum)) break;
    record.clear();
    append_raw(record, index);
    append_raw(record, size);
    record.insert(record.end(), payload.begin(), payload.end());
    if (sum != crc32_of(record.data(), record.size()) || index >= expected.task_count) break;
    on_record(index, payload);
    ++scan.records;
    scan.valid_end += fixed + size;
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
  ///         damaged header, another task list or other types, or an I/O error. The file is then
  ///         left as it was.
  template <class OnRecord>
  journal_scan open(const std::string& path, const journal_identity& id, journal_sync sync, OnRecord&& on_record) {
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
    journal_scan scan = scan_journal(source, id, on_record);
    using state = journal_scan::state;
    switch (scan.status) {
    case state::not_journal:
      refuse("is not a foreman checkpoint journal (it does not start with \"FOREMAN-JOURNAL\"); "
             "choose another checkpoint file");
    case state::damaged:
      refuse("has a damaged header (checksum or format); it cannot be trusted: delete it to start afresh");
    case state::mismatch:
      refuse(describe_mismatch(scan.found, id, mismatch_note_));
    case state::empty: {
      const std::vector<char> header = journal_header(id);
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

  bool is_open() const noexcept { return fd_ >= 0; }

  /// A sentence added to the error when open() finds a journal of another task list (what may
  /// make an equal task list look different).
  void explain_mismatch(std::string why) { mismatch_note_ = std::move(why); }

  /// Appends a record and passes it to the operating system; fsyncs as the policy says.
  /// @throws error if the payload is longer than the limit: nothing is written, the journal
  ///         stays open and later records are appended as usual (this task runs again on resume)
  /// @throws error on an I/O error; the journal is then closed
  void append(std::uint64_t index, const std::vector<char>& payload) {
    if (!journal_payload_fits(payload.size(), max_payload_))
      throw error("checkpoint " + path_ + ": the result of task " + std::to_string(index) + " is " +
                  std::to_string(payload.size()) + " bytes serialized, more than a journal record holds (" +
                  std::to_string(max_payload_) + " bytes); it was not recorded and runs again on resume");
    buffer_.clear();
    journal_record(buffer_, index, payload);
    write_at_end(buffer_, end_);
    end_ += buffer_.size();
    ++unsynced_;
    const auto now = std::chrono::steady_clock::now();
    if (unsynced_ >= std::max<std::size_t>(1, sync_.every) || now - last_sync_ >= sync_.interval) sync();
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
};

} // namespace detail
} // namespace foreman
