#pragma once
/// @file wire.hpp
/// foreman's wire protocol: the message tags, the layout of each message, and the byte-level
/// encoder/decoder that writes trivially copyable values as raw bytes and everything else
/// through a Boost binary archive over the same buffer.
///
/// Messages on the pool's private communicator (see docs/design.md):
///
///   every message starts with the header  u64 pool, u32 run
///   master -> worker  tag::tasks     header, u32 count, count x { u64 index, Task }
///   worker -> master  tag::results   header, u32 count, count x { u64 index, u8 status,
///                                    f64 seconds, Result | (string type, string message) }
///   master -> worker  tag::end_run   header
///   master -> worker  tag::shutdown  header
///
/// A worker receives with MPI_ANY_TAG from the master, so MPI's non-overtaking rule keeps
/// end_run behind the run's last tasks. `pool` is the id the master chose at the handshake:
/// a message that outlived its pool (Open MPI reuses a freed communicator's context for the
/// next duplicate) carries another id and is dropped; `run` counts the pool's runs, so a late
/// reply to an earlier run is dropped too.

#include <foreman/errors.hpp>
#include <foreman/serialization.hpp>

#include <boost/archive/archive_exception.hpp>
#include <boost/archive/binary_iarchive.hpp>
#include <boost/archive/binary_oarchive.hpp>

#include <cstdint>
#include <cstring>
#include <optional>
#include <streambuf>
#include <string>
#include <vector>

namespace foreman {
namespace detail {

/// Bumped whenever a message layout changes; checked by the handshake.
inline constexpr std::uint32_t protocol_version = 2;

/// Message tags on the pool's private communicator.
enum class tag : int { tasks = 1, results = 2, end_run = 3, shutdown = 4 };

/// The first bytes of every message: which pool and which of its runs it belongs to.
struct header {
  std::uint64_t pool = 0;
  std::uint32_t run = 0;
};

/// Status byte of one result item.
enum class item_status : std::uint8_t { ok = 0, failed = 1 };

/// An unbuffered streambuf that appends to a byte vector, so archive output and raw appends
/// can be interleaved on one buffer.
class byte_sink final : public std::streambuf {
public:
  explicit byte_sink(std::vector<char>& out) : out_(&out) {}

protected:
  std::streamsize xsputn(const char* data, std::streamsize count) override {
    out_->insert(out_->end(), data, data + count);
    return count;
  }
  int_type overflow(int_type c) override {
    if (!traits_type::eq_int_type(c, traits_type::eof())) out_->push_back(traits_type::to_char_type(c));
    return traits_type::not_eof(c);
  }

private:
  std::vector<char>* out_;
};

/// A streambuf reading a byte range; its get pointer is the decoder's single cursor.
class byte_source final : public std::streambuf {
public:
  byte_source(const char* first, const char* last) {
    char* begin = const_cast<char*>(first); // never written through: this streambuf only reads
    setg(begin, begin, const_cast<char*>(last));
  }
  std::size_t remaining() const { return static_cast<std::size_t>(egptr() - gptr()); }
  /// Copies the next `n` bytes to `out` and moves past them; false if fewer remain.
  bool take(void* out, std::size_t n) {
    if (n > remaining()) return false;
    std::memcpy(out, gptr(), n);
    gbump(static_cast<int>(n));
    return true;
  }
};

inline constexpr unsigned archive_flags = boost::archive::no_header | boost::archive::no_codecvt;

/// Appends values to a message buffer.
class encoder {
public:
  explicit encoder(std::vector<char>& out) : out_(out), sink_(out) {}

  template <class T>
  void put(const T& value) {
    if constexpr (is_bitwise_v<T>) {
      const std::size_t at = out_.size();
      out_.resize(at + sizeof(T)); // the buffer is reused from message to message: no reallocation
      std::memcpy(out_.data() + at, &value, sizeof(T));
    } else {
      if (!archive_) archive_.emplace(sink_, archive_flags);
      *archive_ << value;
    }
  }

  void put(const header& h) {
    put(h.pool); // field by field: no padding bytes on the wire
    put(h.run);
  }

private:
  std::vector<char>& out_;
  byte_sink sink_;
  std::optional<boost::archive::binary_oarchive> archive_;
};

/// Reads values back in the order an encoder wrote them.
class decoder {
public:
  decoder(const char* first, std::size_t size) : source_(first, first + size) {}

  template <class T>
  void get(T& value) {
    if constexpr (is_bitwise_v<T>) {
      if (!source_.take(&value, sizeof(T)))
        throw error("truncated message: the peer sent fewer bytes than its message layout needs");
    } else {
      try {
        if (!archive_) archive_.emplace(source_, archive_flags);
        *archive_ >> value;
      } catch (const boost::archive::archive_exception& e) {
        throw error(std::string("malformed message: ") + e.what());
      }
    }
  }

  void get(header& h) {
    get(h.pool);
    get(h.run);
  }

  template <class T>
  T get() {
    T value{};
    get(value);
    return value;
  }

  bool exhausted() const { return source_.remaining() == 0; }

private:
  byte_source source_;
  std::optional<boost::archive::binary_iarchive> archive_;
};

} // namespace detail
} // namespace foreman
