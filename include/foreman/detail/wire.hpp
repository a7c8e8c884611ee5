#pragma once
/// @file wire.hpp
/// foreman's wire protocol: the message tags, the layout of each message, and the byte-level
/// encoder/decoder that writes trivially copyable values as raw bytes and everything else
/// through foreman's Boost.Serialization archive (archive.hpp) into the same buffer.
///
/// Messages on the pool's private communicator (see docs/design.md):
///
///   every message starts with the header  u64 pool, u32 run
///   master -> worker  tag::tasks     header, u32 count, u32 bodies, count x { u64 index, Task* }
///                                    or, for a task the master could not encode,
///                                    { u64 index | failed_task_item, string type, string message }
///   master -> worker  tag::task_body     the bytes of one Task body (see below), or one piece of
///                                    them; `bodies` counts these messages, pieces included
///   worker -> master  tag::results   header, u32 count, u32 bodies, count x { u64 index, u8 status,
///                                    f64 seconds, Result* | (string type, string message) }
///   worker -> master  tag::result_body   the bytes of one Result body, or one piece of them
///   worker -> master  tag::results   a progress note: header, u32 progress_marker, u32 tasks of
///                                    the current chunk done (sent between the tasks of a chunk
///                                    when the worker's last message is progress_interval old)
///   worker -> master  tag::results   the answer to a tasks message whose framing is broken:
///                                    header, u32 damaged_marker, u32 0 (bodies), string why; every
///                                    task the master sent in that message fails (the message's
///                                    own indices cannot be trusted: the master knows them)
///   worker -> master  tag::results   the worker could not set up for the run (shared_value.hpp),
///                                    or its function refused to go on (run_refused: a sub-master
///                                    whose group has no live worker, relay.hpp): header, u32
///                                    setup_failed_marker, u32 0 (bodies), string type, string
///                                    message (its initializer's exception, why the shared value
///                                    could not be received, or the refusal's); it runs no more
///                                    tasks of the run and drops, unanswered, the tasks messages
///                                    it is sent; the tasks it held go to the others
///   master -> worker  tag::shared    the run's shared value (with_shared()), sent once per run or
///                                    job to every live worker before any of its tasks: header,
///                                    u32 1, u32 bodies, Shared* (an item as in a tasks message,
///                                    without an index); a body follows on tag::task_body, and a
///                                    message longer than posted_capacity goes as an envelope on
///                                    tag::shared, then itself on tag::tasks_large
///   master -> worker  tag::end_run   header
///   master -> worker  tag::cancel    header, u64 through: the worker answers every task of this
///                                    run's tasks messages 1 .. through (counted from the run's
///                                    first) that it has not started as a failure of type
///                                    foreman::cancelled, without running it (job::cancel(),
///                                    options::fail_fast); it looks for this message between tasks
///                                    at most every cancel_probe_interval
///   master -> worker  tag::shutdown  header
///   worker -> master  tag::goodbye   header: the answer to shutdown (a lost worker that sends it
///                                    leaves on its own and is not ended at MPI_Finalize)
///
/// A tasks or results message longer than posted_capacity goes as its envelope (header, u32
/// envelope_marker, u64 size) on its tag, then itself on tag::tasks_large / tag::results_large:
/// the receiver posts its receives for these tags before the messages arrive (transport.hpp).
///
/// Pieces: MPI counts a message's bytes in an int, so a body or an envelope's message longer than
/// piece_bytes() travels as consecutive messages of piece_bytes() on its tag, the last one shorter.
/// MPI's non-overtaking rule delivers them in order; the receiver knows how many come from the
/// size already announced (a body's element count, an envelope's size) and receives each straight
/// into its place in the destination. No other message is added: up to piece_bytes(), a body or a
/// message is one message, as it always was.
///
/// Task*, Result*: a value as the encoder writes it; for a contiguous container of bitwise
/// elements (std::vector<double>, std::string, ...) a u8 kind first: 0, the value follows; 1, it
/// is a body: its element count (u64) follows, and its bytes travel as a message of their own,
/// sent straight from the container and received straight into the destination container (no
/// copy on either side; Open MPI moves large ones with a single copy between the processes).
/// Values of body_threshold bytes or more are bodies. A message's bodies follow it, in item order.
/// A value that is not bitwise (it goes through the archive) is framed as u32 length (or, from
/// long_length on, u32 long_length and the length as u64), then its
/// archived bytes: a reader whose load of it throws steps over it to the next item, so that one
/// value that cannot be decoded fails only its own task (serialization_error); a bitwise value
/// has a known size and no length. An encoder whose writing of an item throws is rolled back to
/// the item's start and writes a failure item instead (see put_item, get_item). A tasks message
/// whose framing itself is broken (cut short, a length past its end, an unknown item kind) is
/// answered as a whole with damaged_marker; the worker first takes the bodies it announced and
/// had not taken yet, so that none is matched by its next receive.
///
/// A worker receives with MPI_ANY_TAG from the master, so MPI's non-overtaking rule keeps
/// end_run behind the run's last tasks, and the shared value ahead of the first; it receives a
/// message's bodies before it probes again.
/// `pool` is the id the master chose at the handshake: a message that outlived its pool (Open MPI reuses a freed
/// communicator's context for the next duplicate) carries another id and is dropped; `run` counts the pool's runs, so a
/// late reply to an earlier run is dropped too.

#include <foreman/errors.hpp>
#include <foreman/serialization.hpp>

#include <foreman/detail/archive.hpp>
#include <foreman/detail/failure_types.hpp>
#include <foreman/detail/hot_path.hpp>
#include <foreman/detail/invoke.hpp>
#include <foreman/detail/type_name.hpp>

#include <boost/archive/archive_exception.hpp>

#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <limits>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <vector>

namespace foreman {
namespace detail {

/// Bumped whenever a message layout changes; checked by the handshake.
inline constexpr std::uint32_t protocol_version = 10;
/// Bumped whenever the encoding of a single value changes (put_item, the archives); journals,
/// which hold encoded results, name it.
inline constexpr std::uint32_t value_format = 4;

/// An archived value's length is framed as a u32 below long_length, else as u32 long_length
/// followed by the length as u64 (put_item, get_item).
inline constexpr std::uint32_t long_length = 0xFFFFFFFFu;

/// Message tags on the pool's private communicator.
enum class tag : int {
  tasks = 1,
  results = 2,
  end_run = 3,
  shutdown = 4,
  task_body = 5,
  result_body = 6,
  tasks_large = 7,   ///< a tasks message that its envelope announced
  results_large = 8, ///< a results message that its envelope announced
  goodbye = 9,       ///< a worker's answer to shutdown: it is leaving the pool (header only)
  cancel = 10,       ///< skip the tasks of the messages sent so far (header, u64 through)
  shared = 11        ///< the run's shared value, before any task (header, u32 1, u32 bodies, item)
};

/// How often a worker busy with a chunk looks for a tag::cancel message (seconds of its clock):
/// rarely enough that tiny tasks pay nothing for it, often enough that a cancelled job frees
/// its workers at once.
inline constexpr double cancel_probe_interval = 1e-3;

/// The tag a message that is too long for a posted receive travels on, after its envelope.
constexpr tag large_tag(tag t) {
  return t == tag::tasks ? tag::tasks_large : tag::results_large;
}

/// tasks and results messages are received into buffers of this size posted before they arrive
/// (transport.hpp); a longer message is sent as an envelope of envelope_bytes, its own header
/// followed by u32 envelope_marker and the message's size as u64, and then on large_tag().
inline constexpr std::size_t posted_capacity = std::size_t{8} << 10;
inline constexpr std::uint32_t envelope_marker = 0xFFFFFFFFu; ///< never a message's item count
inline constexpr std::size_t header_bytes = 12;
inline constexpr std::size_t envelope_bytes = header_bytes + 4 + 8;

/// The piece size a program starts with, in bytes: FOREMAN_DETAIL_PIECE_BYTES, 256 MiB unless
/// defined (then alike in every translation unit of the program). A body or an envelope's message
/// longer than the piece size travels as pieces of that many bytes (see the file comment). MPI
/// counts a message's bytes in an int; and one piece is what one MPI call moves (Open MPI's shared
/// memory copies a whole message in one test of its receive), so the piece size also bounds how
/// long a transfer keeps a loop from looking at anything else.
#ifndef FOREMAN_DETAIL_PIECE_BYTES
#define FOREMAN_DETAIL_PIECE_BYTES (std::size_t{256} << 20)
#endif
inline constexpr std::size_t default_piece_bytes = FOREMAN_DETAIL_PIECE_BYTES;
static_assert(default_piece_bytes <= static_cast<std::size_t>(INT_MAX),
              "FOREMAN_DETAIL_PIECE_BYTES: MPI counts a message's bytes in an int");
static_assert(default_piece_bytes >= posted_capacity,
              "FOREMAN_DETAIL_PIECE_BYTES: a message that fits a posted receive is sent whole, so a piece holds one");

/// This process's piece size (piece_bytes()) and whether a pool has fixed it (fix_piece_bytes()).
struct piece_setting {
  std::size_t bytes = default_piece_bytes;
  bool fixed = false;
};
/// The one piece_setting of this process. Initialized as a constant: reading it takes no guard.
inline piece_setting& process_piece_setting() noexcept {
  static piece_setting setting;
  return setting;
}

/// The piece size in effect in this process, in bytes: default_piece_bytes, or what
/// set_piece_bytes() chose before the first pool. One load; the loops read it per message or per
/// body, never per task.
inline std::size_t piece_bytes() noexcept {
  return process_piece_setting().bytes;
}

/// Sets this process's piece size. For tests, which lower it so that small values travel in pieces
/// (tests/mpi_main.cpp, option --piece-bytes): one build of a test program then runs its cases
/// with either size. Call it on every rank with the same size (the handshake refuses ranks that
/// differ), before this process builds its first pool.
/// @param bytes from posted_capacity (a message that fits a posted receive is sent whole, so a
///        piece holds one) to INT_MAX (MPI counts a message's bytes in an int)
/// @throws foreman::error if `bytes` is out of that range, or if it differs from the size a pool
///         of this process was built with (fix_piece_bytes())
inline void set_piece_bytes(std::size_t bytes) {
  piece_setting& setting = process_piece_setting();
  const std::string call = "set_piece_bytes(" + std::to_string(bytes) + "): ";
  if (bytes < posted_capacity)
    throw error(call + "a message that fits a posted receive (" + std::to_string(posted_capacity) +
                " bytes) is sent whole, so a piece must hold one");
  if (bytes > static_cast<std::size_t>(INT_MAX))
    throw error(call + "MPI counts a message's bytes in an int, so a piece holds " + std::to_string(INT_MAX) +
                " bytes at most");
  if (setting.fixed && bytes != setting.bytes)
    throw error(call + "this process has built a pool with pieces of " + std::to_string(setting.bytes) +
                " bytes; the piece size is set before the first pool");
  setting.bytes = bytes;
}

/// The piece size for a pool being built (its handshake's), fixed from now on: the pool's ranks
/// agreed on it, and every rank cuts and counts the pool's pieces by it for as long as it lives.
inline std::size_t fix_piece_bytes() noexcept {
  piece_setting& setting = process_piece_setting();
  setting.fixed = true;
  return setting.bytes;
}

/// How many messages `bytes` bytes travel in: one up to piece_bytes(), else one per piece.
inline std::size_t pieces_of(std::size_t bytes) noexcept {
  const std::size_t piece = piece_bytes();
  return bytes <= piece ? 1 : (bytes - 1) / piece + 1;
}

/// What the handshake compares: the protocol version (bits 0-31) and the piece size (bits 32-63,
/// under 2^31), which two programs must share to read each other's messages.
constexpr std::uint64_t protocol_word(std::size_t piece) {
  return protocol_version | static_cast<std::uint64_t>(piece) << 32;
}

/// A progress note (header, u32 progress_marker, u32 done) on tag::results tells the master that a
/// worker busy with a long chunk is alive: it sends one between two tasks of a chunk when its last
/// message to the master is progress_interval old or older. The master's deadline for a worker is
/// then its last sign of life + task_timeout + progress_interval, whatever the chunk's size.
inline constexpr std::uint32_t progress_marker = 0xFFFFFFFEu; ///< never a message's item count

/// In a reply's count: the tasks message it answers could not be read (see the file comment).
inline constexpr std::uint32_t damaged_marker = 0xFFFFFFFDu; ///< never a message's item count
/// In a reply's count: the worker could not set up for the run (see the file comment).
inline constexpr std::uint32_t setup_failed_marker = 0xFFFFFFFCu; ///< never a message's item count
inline constexpr std::size_t progress_note_bytes = header_bytes + 4 + 4;
inline constexpr double progress_interval = 0.1; ///< seconds

/// Values of at least this many bytes that can travel as a body do (see the file comment).
inline constexpr std::size_t body_threshold = std::size_t{32} << 10;

/// The first bytes of every message: which pool and which of its runs it belongs to.
struct header {
  std::uint64_t pool = 0;
  std::uint32_t run = 0;
};

/// Status byte of one result item.
enum class item_status : std::uint8_t { ok = 0, failed = 1 };

/// Set in a task item's index when the master could not encode the task: a type and a message
/// follow instead of the task, and the worker answers with them as the task's failure. No run has
/// 2^63 tasks.
inline constexpr std::uint64_t failed_task_item = std::uint64_t{1} << 63;

/// Appends values to a message buffer. Raw values are copied into room reserved ahead (one
/// resize for several values, see reserve()); the buffer holds exactly the bytes written once
/// finish() is called or the encoder is destroyed: call finish() before sending the buffer
/// while the encoder is still in scope.
class encoder {
public:
  /// Appends to the bytes `out` holds.
  explicit encoder(std::vector<char>& out) : out_(out), size_(out.size()) {}
  /// Writes from byte offset `at` of `out`, taking the bytes after it as reserved room: a buffer
  /// reused for a message as long as its last one is written without resizing it.
  encoder(std::vector<char>& out, std::size_t at) : out_(out), size_(at) {}
  encoder(const encoder&) = delete;
  encoder& operator=(const encoder&) = delete;
  ~encoder() { finish(); }

  /// Bytes written so far.
  std::size_t size() const { return size_; }
  /// Forgets what was written after byte offset `at` (<= size()): an item whose writing threw is
  /// taken back whole. Its bytes stay in the buffer as reserved room.
  void rollback(std::size_t at) { size_ = at; }
  /// Overwrites the u32 written at byte offset `at` (a count known only after the items).
  void patch(std::size_t at, std::uint32_t value) { std::memcpy(out_.data() + at, &value, sizeof value); }
  void patch(std::size_t at, std::uint64_t value) { std::memcpy(out_.data() + at, &value, sizeof value); }
  /// Opens `bytes` bytes at byte offset `at` (<= size()), moving what was written after it: for
  /// a field found too narrow once what follows it is written (rare, see put_item).
  FOREMAN_DETAIL_COLD void open(std::size_t at, std::size_t bytes) {
    out_.resize(size_);
    out_.insert(out_.begin() + static_cast<std::ptrdiff_t>(at), bytes, '\0');
    size_ += bytes;
  }
  /// Makes room for `bytes` more bytes of raw values, so that writing them resizes nothing.
  FOREMAN_DETAIL_INLINE void reserve(std::size_t bytes) {
    if (out_.size() < size_ + bytes) grow(size_ + bytes);
  }
  /// Trims the buffer to the bytes written.
  FOREMAN_DETAIL_INLINE void finish() {
    if (out_.size() != size_) out_.resize(size_);
  }

  template <class T>
  FOREMAN_DETAIL_INLINE void put(const T& value) {
    if constexpr (is_bitwise_v<T>) {
      reserve(sizeof(T)); // the buffer is reused from message to message: no reallocation
      std::memcpy(out_.data() + size_, &value, sizeof(T));
      size_ += sizeof(T);
    } else {
      put_archived(value);
    }
  }

  FOREMAN_DETAIL_INLINE void put(const header& h) {
    put(h.pool); // field by field: no padding bytes on the wire
    put(h.run);
  }

private:
  template <class T>
  void put_archived(const T& value) {
    // One archive per value, not per message: an archive tracks objects saved through pointers
    // by address, and a worker's next result may be built where its last one was destroyed,
    // which one archive for the whole message would write as a reference to the earlier result.
    out_.resize(size_); // the archive appends
    {
      byte_oarchive archive(out_);
      archive << value;
    }
    size_ = out_.size();
  }

  // Grows by half at least: a buffer trimmed to a short message (finish()) and then filled value
  // by value with a long one is resized a logarithmic number of times, not once per value (a
  // job's chunks grew from a few tasks to thousands: one resize, zero fill included, per task).
  FOREMAN_DETAIL_COLD void grow(std::size_t bytes) {
    out_.resize(std::max(bytes, out_.size() + out_.size() / 2));
  }

  std::vector<char>& out_;
  std::size_t size_; // bytes written; out_ may be longer by the room reserved
};

/// Reads values back in the order an encoder wrote them.
class decoder {
public:
  decoder(const char* first, std::size_t size) : cursor_(first), last_(first + size) {}

  template <class T>
  FOREMAN_DETAIL_INLINE void get(T& value) {
    if constexpr (is_bitwise_v<T>) {
      if (sizeof(T) > remaining()) truncated();
      std::memcpy(&value, cursor_, sizeof(T));
      cursor_ += sizeof(T);
    } else {
      get_archived(value);
    }
  }

  FOREMAN_DETAIL_INLINE void get(header& h) {
    get(h.pool);
    get(h.run);
  }

  template <class T>
  FOREMAN_DETAIL_INLINE T get() {
    T value{};
    get(value);
    return value;
  }

  std::size_t remaining() const { return static_cast<std::size_t>(last_ - cursor_); }
  bool exhausted() const { return remaining() == 0; }

  /// The next `bytes` bytes as a decoder of their own; this one steps past them.
  decoder take(std::uint64_t bytes) {
    if (bytes > remaining()) truncated();
    decoder part(cursor_, bytes);
    cursor_ += bytes;
    return part;
  }

  /// Reads a value through the archive, letting whatever its load throws through unchanged.
  template <class T>
  void load_archived(T& value) {
    byte_iarchive archive(cursor_, last_);
    archive >> value;
  }

private:
  template <class T>
  void get_archived(T& value) {
    try {
      byte_iarchive archive(cursor_, last_);
      archive >> value;
    } catch (const boost::archive::archive_exception& e) {
      throw error(std::string("malformed message: ") + e.what());
    }
  }

  [[noreturn]] FOREMAN_DETAIL_COLD static void truncated() {
    throw error("truncated message: the peer sent fewer bytes than its message layout needs");
  }

  const char* cursor_; // one cursor for raw values and the archives alike
  const char* last_;
};

/// Appends to `out` the envelope of `message` (a tasks or results message).
inline void put_envelope(std::vector<char>& out, const std::vector<char>& message) {
  out.assign(message.begin(), message.begin() + static_cast<std::ptrdiff_t>(header_bytes));
  encoder envelope(out);
  envelope.put(envelope_marker);
  envelope.put(static_cast<std::uint64_t>(message.size()));
}

/// The size of the message an envelope announces, or 0 if `bytes` is not an envelope.
inline std::size_t envelope_size(const char* data, std::size_t bytes) {
  if (bytes != envelope_bytes) return 0; // every tasks or results message is longer or shorter
  std::uint32_t marker = 0;
  std::memcpy(&marker, data + header_bytes, sizeof marker);
  if (marker != envelope_marker) return 0;
  std::uint64_t size = 0;
  std::memcpy(&size, data + header_bytes + sizeof marker, sizeof size);
  if (size <= posted_capacity || size > static_cast<std::uint64_t>(std::numeric_limits<std::ptrdiff_t>::max()))
    throw error("malformed message: an envelope announcing " + std::to_string(size) + " bytes");
  return static_cast<std::size_t>(size);
}

/// Whether a message on tag::results is a progress note (its header is then the note's).
inline bool is_progress_note(decoder message) {
  if (message.remaining() != progress_note_bytes) return false;
  message.get<header>();
  return message.get<std::uint32_t>() == progress_marker;
}

/// Containers whose elements lie contiguously and travel as raw bytes: they can be bodies.
template <class T>
struct body_traits {
  static constexpr bool capable = false;
};
template <class T, class A>
struct body_traits<std::vector<T, A>> {
  static constexpr bool capable = is_bitwise_v<T> && !std::is_same_v<T, bool>;
  using element = T;
};
template <class C, class Tr, class A>
struct body_traits<std::basic_string<C, Tr, A>> {
  static constexpr bool capable = is_bitwise_v<C>;
  using element = C;
};

/// Where a body's bytes are.
struct body_span {
  void* data = nullptr;
  std::size_t bytes = 0;
  explicit operator bool() const { return data != nullptr; }
};

/// The messages `bodies` travel in (a message's u32 bodies field): one each, or their pieces.
/// With pieces of 8 KiB or more, the count fits a u32 for bodies of up to 32 TiB.
inline std::uint32_t body_messages(const std::vector<body_span>& bodies) {
  std::size_t messages = 0;
  for (const body_span& body : bodies) messages += pieces_of(body.bytes);
  return static_cast<std::uint32_t>(messages);
}

/// Whether `value` travels as a body: a body-capable container of body_threshold bytes or more.
template <class T>
bool travels_as_body(const T& value) {
  if constexpr (body_traits<T>::capable)
    return value.size() * sizeof(typename body_traits<T>::element) >= body_threshold;
  else
    return false;
}

/// The exception being handled, as "type: what()"; one of foreman's own, as its text without the
/// "foreman: " prefix, which the message it goes into has.
inline std::string describe_current_exception() {
  try {
    throw;
  } catch (const error& e) {
    return e.what() + (sizeof("foreman: ") - 1);
  } catch (const std::exception& e) {
    return type_name(typeid(e)) + ": " + e.what();
  } catch (...) {
    return current_exception_type() + ": an exception not derived from std::exception";
  }
}

/// The message of the failure of a task whose value could not be moved: `context` says which
/// value and where ("task 3 could not be decoded on worker 1"), the exception being handled why.
inline std::string serialization_failure(const std::string& context) {
  return serialization_error(context + ": " + describe_current_exception()).what();
}

/// Writes the item of a task that failed (tasks message: the master could not encode it).
inline void put_failed_task(encoder& out, std::uint64_t index, const std::string& type, const std::string& message) {
  out.put(index | failed_task_item);
  out.put(type);
  out.put(message);
}

/// Writes the item of a result that is a failure: the task threw, or its value could not travel.
inline void put_failed_result(encoder& out, std::uint64_t index, double seconds, const std::string& type,
                              const std::string& message) {
  out.put(index);
  out.put(item_status::failed);
  out.put(seconds);
  out.put(type);
  out.put(message);
}

/// Writes the length of the archived value that follows the u32 placeholder at byte offset `at`
/// (put_item): in the placeholder below `long_from` bytes, else as long_length there and the
/// length as u64 after it, which moves the value's bytes (a value of 4 GiB or more; tests pass a
/// lower `long_from`).
inline void put_length(encoder& out, std::size_t at, std::uint64_t long_from = long_length) {
  const std::uint64_t bytes = out.size() - at - sizeof(std::uint32_t);
  if (bytes < long_from) {
    out.patch(at, static_cast<std::uint32_t>(bytes));
    return;
  }
  out.open(at + sizeof(std::uint32_t), sizeof(std::uint64_t));
  out.patch(at, long_length);
  out.patch(at + sizeof(std::uint32_t), bytes);
}

/// Reads what put_length() wrote: an archived value's length.
FOREMAN_DETAIL_INLINE std::uint64_t get_length(decoder& in) {
  const auto bytes = in.get<std::uint32_t>();
  return bytes != long_length ? bytes : in.get<std::uint64_t>();
}

/// Writes a value as put_item() does, but never as a body: its bytes follow in `out`, for a
/// value carried inside another (a grouped pool's batches and their answers, batch.hpp). Read
/// it back with get_item(), which then announces no body. What the value's serialize() throws
/// passes through, with the item partly written: the caller rolls the encoder back.
template <class T>
void put_inline_item(encoder& out, const T& value) {
  if constexpr (body_traits<T>::capable) out.put(std::uint8_t{0});
  if constexpr (is_bitwise_v<T>) {
    out.put(value);
  } else {
    // Length-prefixed, so that a reader whose load throws can step to the next item.
    const std::size_t at = out.size();
    out.put(std::uint32_t{0});
    out.put(value);
    put_length(out, at);
  }
}

/// Writes a value as an item of a message; returns its body when it travels as one (the
/// caller sends it after the message, in pieces past piece_bytes()), else an empty span. What the
/// value's serialize() throws passes through, with the item partly written: the caller rolls the
/// encoder back to the item's start.
template <class T>
body_span put_item(encoder& out, const T& value) {
  if constexpr (body_traits<T>::capable) {
    if (travels_as_body(value)) {
      out.put(std::uint8_t{1});
      out.put(static_cast<std::uint64_t>(value.size()));
      return body_span{const_cast<void*>(static_cast<const void*>(value.data())),
                       value.size() * sizeof(typename body_traits<T>::element)};
    }
  }
  put_inline_item(out, value);
  return {};
}

/// Reads an item written by put_item() into `value`; when it is a body, sizes `value` for it and
/// returns where its bytes go (the caller receives them there), else an empty span.
/// @param body_bytes set to the size of the body the item announced (0: none), which the caller
///        must receive, or drop, even when this throws, to stay in step with the sender
/// @throws serialization_error when the value cannot be read (its load throws, reads other bytes
///         than its save wrote, or its storage cannot be allocated); `in` is then past the item
/// @throws error when the message itself is malformed (its framing, not one value)
template <class T>
body_span get_item(decoder& in, T& value, std::size_t& body_bytes) {
  body_bytes = 0;
  if constexpr (body_traits<T>::capable) {
    const auto kind = in.get<std::uint8_t>();
    if (kind == 1) {
      using element = typename body_traits<T>::element;
      const auto count = in.get<std::uint64_t>();
      // The sender makes bodies of body_threshold bytes or more only; a count whose bytes cannot
      // be counted tells the receiver nothing about how many pieces to take.
      if (count == 0 || count > std::numeric_limits<std::size_t>::max() / sizeof(element))
        throw error("malformed message: a body of " + std::to_string(count) + " elements was announced");
      body_bytes = static_cast<std::size_t>(count) * sizeof(element);
      try {
        value.resize(static_cast<std::size_t>(count));
      } catch (...) {
        throw serialization_error("its " + std::to_string(body_bytes) +
                                  " bytes could not be allocated: " + describe_current_exception());
      }
      return body_span{static_cast<void*>(&value[0]), body_bytes};
    }
    if (kind != 0) throw error("malformed message: unknown item kind " + std::to_string(kind));
  }
  if constexpr (is_bitwise_v<T>) {
    in.get(value);
  } else {
    decoder item = in.take(get_length(in)); // `in` is past the item whatever the load does
    const std::size_t bytes = item.remaining();
    try {
      item.load_archived(value);
    } catch (...) {
      throw serialization_error(describe_current_exception());
    }
    if (!item.exhausted())
      throw serialization_error("its load read " + std::to_string(bytes - item.remaining()) + " of the " +
                                std::to_string(bytes) + " bytes its save wrote");
  }
  return {};
}

} // namespace detail
} // namespace foreman
