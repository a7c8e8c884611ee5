#pragma once
/// @file value_fingerprint.hpp
/// A checksum of values, not of object representations: two task lists that hold the same values
/// give the same fingerprint, whatever the padding bytes of their objects hold. The checkpoint
/// journal names its task list by it (master_worker::replay(), docs/reliability.md).
///
/// How a value of type T is read (fingerprint_value()):
///  - an empty class: nothing;
///  - T whose object representation is its value (std::has_unique_object_representations:
///    integers, enums, bool, structs and arrays of them without padding): its bytes;
///  - a floating-point type: the bytes that hold its value, as std::numeric_limits tells them:
///    all of them for IEEE formats without padding (float, double, binary128), the low 10 of
///    x87's 80-bit long double (its other 6 bytes are padding); any other format is taken apart
///    (sign, exponent, significand: float_parts());
///  - C arrays: element by element;
///  - a class with a serialize() (member or free), and everything that travels through an archive
///    (standard containers, strings, optional, variant, tuple...): the values its serialization
///    saves, through fingerprint_oarchive, which reads each primitive by these same rules (a
///    std::vector<long double> travels as a raw array, padding included, and is read here element
///    by element);
///  - any other trivially copyable aggregate (a plain struct): field by field, through structured
///    bindings, recursively (2 to 16 fields, no base class, no C-array member: aggregate.hpp);
///  - a trivially copyable class whose fields cannot be reached that way (private fields or a
///    constructor, a base class, a C-array member, one field or more than 16) and that has no
///    serialize(): its bytes, padding included. Equal values built differently may then give
///    different fingerprints: value_fingerprint::inexact() tells, so that a journal refused for
///    that reason can say so (refused, never mixed up: different values never look equal).
///    The fix for such a type is a serialize() member, or making it a plain aggregate.

#include <foreman/detail/aggregate.hpp>
#include <foreman/detail/archive.hpp>
#include <foreman/serialization.hpp>

#include <boost/crc.hpp>

#include <climits>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>

namespace foreman {
namespace detail {

/// Accumulates a fingerprint (CRC-64/XZ) of values, by the rules in the file comment.
class value_fingerprint {
public:
  /// Adds `value`.
  template <class T>
  void add(const T& value);

  /// Adds raw bytes that are all value (no padding).
  void bytes(const void* data, std::size_t size) { crc_.process_bytes(data, size); }

  /// Adds, in place of a value that could not be read (its serialize() threw), a marker and its
  /// position in the list: the same list gives the same fingerprint, another value there another.
  void unreadable(std::uint64_t position) {
    static constexpr char marker[] = "foreman: a value that could not be read, at";
    bytes(marker, sizeof marker);
    bytes(&position, sizeof position);
  }

  /// Adds the bytes of an object whose padding cannot be told apart from its value.
  void bytes_with_padding(const void* data, std::size_t size) {
    bytes(data, size);
    inexact_ = true;
  }

  /// The fingerprint of everything added so far.
  std::uint64_t checksum() const { return crc_.checksum(); }

  /// True once a value was read as bytes that may include padding (see the file comment).
  bool inexact() const noexcept { return inexact_; }

private:
  boost::crc_optimal<64, 0x42F0E1EBA9EA3693ull, 0xFFFFFFFFFFFFFFFFull, 0xFFFFFFFFFFFFFFFFull, true, true> crc_;
  bool inexact_ = false;
};

template <class T>
void fingerprint_value(value_fingerprint& sink, const T& value);

namespace fingerprint_impl {

// ---- floating point --------------------------------------------------------------------------

// The number of bits of F's exponent field, from its largest exponent (IEEE: 2^(bits-1)).
template <class F>
constexpr int exponent_bits() {
  int bits = 1;
  for (long long e = std::numeric_limits<F>::max_exponent; e > 1; e /= 2) ++bits;
  return bits;
}

/// How many of F's bytes hold its value, counted from its lowest address; 0 when its layout is
/// not one of those known here (its value is then taken apart, float_parts()).
template <class F>
constexpr std::size_t float_value_bytes() {
  using limits = std::numeric_limits<F>;
  if constexpr (limits::radix != 2) {
    return 0;
  } else {
    constexpr int bits = static_cast<int>(sizeof(F) * CHAR_BIT);
    // IEEE interchange formats: sign, exponent, significand without its leading bit.
    if constexpr (1 + exponent_bits<F>() + limits::digits - 1 == bits) return sizeof(F);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    // x87 extended precision: sign, 15-bit exponent, 64-bit significand with its leading bit,
    // 80 bits at the lowest addresses, then padding to 12 or 16 bytes.
    else if constexpr (limits::digits == 64 && exponent_bits<F>() == 15 && sizeof(F) > 10)
      return 10;
#endif
    else
      return 0;
  }
}

} // namespace fingerprint_impl

/// Adds a floating-point value by its parts, for a format whose layout is unknown: its class
/// (zero, normal, infinite, NaN), sign, binary exponent and significand, 32 bits at a time.
/// Every NaN is the same value here.
template <class F>
void float_parts(value_fingerprint& sink, F value) {
  const std::int32_t kind = std::isnan(value) ? 0 : std::isinf(value) ? 1 : value == 0 ? 2 : 3;
  const std::int32_t sign = std::signbit(value) ? 1 : 0;
  sink.bytes(&kind, sizeof kind);
  if (kind == 0) return;
  sink.bytes(&sign, sizeof sign);
  if (kind != 3) return;
  int exponent = 0;
  F significand = std::fabs(std::frexp(value, &exponent)); // in [0.5, 1)
  const std::int32_t e = exponent;
  sink.bytes(&e, sizeof e);
  for (int taken = 0; taken < std::numeric_limits<F>::digits; taken += 32) {
    significand = std::ldexp(significand, 32);
    const F whole = std::floor(significand);
    const auto part = static_cast<std::uint32_t>(whole);
    sink.bytes(&part, sizeof part);
    significand -= whole;
  }
}

namespace fingerprint_impl {

// A user's serialize() decides what a trivially copyable type's value is, when it has one.
template <class T>
constexpr bool has_user_serialize() {
  if constexpr (std::is_class_v<T>) {
    if constexpr (!std::is_final_v<T>)
      if constexpr (probe::has_member_serialize<T>::value) return true;
    return probe::has_free_serialize<T>::value;
  } else {
    return false;
  }
}

} // namespace fingerprint_impl

/// True when T's object representation is exactly its value: a run of T can be added as bytes.
template <class T>
inline constexpr bool bytes_are_value_v = std::has_unique_object_representations_v<T> ||
                                          (std::is_floating_point_v<T> &&
                                           fingerprint_impl::float_value_bytes<T>() == sizeof(T));

/// A Boost.Serialization archive that adds what a value's serialization saves to a
/// value_fingerprint, each primitive by fingerprint_value()'s rules (no padding bytes), and
/// arrays of bitwise elements element by element unless their bytes are all value.
class fingerprint_oarchive : public boost::archive::detail::common_oarchive<fingerprint_oarchive> {
  using base = boost::archive::detail::common_oarchive<fingerprint_oarchive>;
  friend class boost::archive::detail::interface_oarchive<fingerprint_oarchive>;
  friend class boost::archive::save_access;

public:
  explicit fingerprint_oarchive(value_fingerprint& sink) : base(boost::archive::no_header), sink_(sink) {}

  // A serialize() that saves raw bytes (make_binary_object) gives them as they are.
  void save_binary(const void* data, std::size_t size) { sink_.bytes_with_padding(data, size); }

  // The arrays the encoder writes as one copy (archive.hpp), here taken value by value.
  using use_array_optimization = array_as_bytes<boost::mpl::_1>;
  template <class T>
  void save_array(const boost::serialization::array_wrapper<T>& a, unsigned int /*version*/) {
    if constexpr (bytes_are_value_v<T>) {
      sink_.bytes(a.address(), a.count() * sizeof(T));
    } else {
      for (std::size_t k = 0; k < a.count(); ++k) fingerprint_value(sink_, a.address()[k]);
    }
  }

  // As the encoder's archive (archive.hpp): a bitwise class without serialize() is one value at
  // any depth (a container's element, a member a serialize() writes), here taken field by field.
  template <class T>
  void save_override(const T& value) {
    if constexpr (is_plain_bitwise_class_v<T>)
      fingerprint_value(sink_, value);
    else
      base::save_override(value);
  }
  void save_override(const boost::archive::class_id_optional_type&) {}
  void save_override(const boost::archive::class_name_type& name) { save(std::string(name)); }

private:
  // Primitive types (reached through boost::archive::save_access).
  template <class T>
  void save(const T& value) {
    fingerprint_value(sink_, value);
  }
  void save(const std::string& s) {
    const std::uint64_t size = s.size();
    sink_.bytes(&size, sizeof size);
    sink_.bytes(s.data(), s.size());
  }
  void save(const std::wstring& s) {
    const std::uint64_t size = s.size();
    sink_.bytes(&size, sizeof size);
    sink_.bytes(s.data(), s.size() * sizeof(wchar_t));
  }

  // Boost's bookkeeping types (sizes, versions, ids) each wrap one integer, so they have no
  // padding, but they are not trivially copyable (user-written copies): their value is that
  // integer, the same bytes the encoder writes.
  template <class Integer, class Wrapper>
  void integer_of(const Wrapper& wrapper) {
    static_assert(sizeof(Wrapper) == sizeof(Integer), "foreman: a Boost archive type no longer wraps one integer");
    const Integer value = wrapper;
    sink_.bytes(&value, sizeof value);
  }
  void save(const boost::archive::version_type& v) { integer_of<std::uint_least32_t>(v); }
  void save(const boost::archive::class_id_type& v) { integer_of<std::int_least16_t>(v); }
  void save(const boost::archive::class_id_reference_type& v) { integer_of<std::int_least16_t>(v); }
  void save(const boost::archive::object_id_type& v) { integer_of<std::uint_least32_t>(v); }
  void save(const boost::archive::object_reference_type& v) { integer_of<std::uint_least32_t>(v); }
  void save(const boost::archive::tracking_type& v) { integer_of<bool>(v); }
  void save(const boost::serialization::library_version_type& v) { integer_of<std::uint_least16_t>(v); }
  void save(const boost::serialization::collection_size_type& v) { integer_of<std::size_t>(v); }
  void save(const boost::serialization::item_version_type& v) { integer_of<unsigned int>(v); }

  value_fingerprint& sink_;
};

/// Adds `value` to `sink` by the rules in the file comment.
template <class T>
void fingerprint_value(value_fingerprint& sink, const T& value) {
  if constexpr (std::is_empty_v<T>) {
    // no value bytes
  } else if constexpr (std::is_floating_point_v<T>) {
    constexpr std::size_t size = fingerprint_impl::float_value_bytes<T>();
    if constexpr (size != 0)
      sink.bytes(&value, size);
    else
      float_parts(sink, value);
  } else if constexpr (std::has_unique_object_representations_v<T>) {
    sink.bytes(&value, sizeof(T));
  } else if constexpr (std::is_array_v<T>) {
    for (const auto& element : value) fingerprint_value(sink, element);
  } else if constexpr (is_bitwise_v<T> && !fingerprint_impl::has_user_serialize<T>()) {
    if constexpr (constexpr std::size_t fields = aggregate::field_count<T>(); fields != 0)
      aggregate::apply_fields<fields>(value, [&sink](const auto&... field) { (fingerprint_value(sink, field), ...); });
    else
      sink.bytes_with_padding(&value, sizeof(T));
  } else {
    // One archive per value, as the encoder: tracking by address stays within one value.
    fingerprint_oarchive archive(sink);
    archive << value;
  }
}

template <class T>
void value_fingerprint::add(const T& value) {
  fingerprint_value(*this, value);
}

/// The fingerprint of one task's value, as a stream's or a job's journal records it; false when
/// the value cannot be read (its serialize() threw): such a task is neither looked up nor recorded.
template <class T>
bool task_fingerprint(const T& task, std::uint64_t& fingerprint) noexcept {
  try {
    value_fingerprint f;
    f.add(task);
    fingerprint = f.checksum();
    return true;
  } catch (...) {
    return false;
  }
}

} // namespace detail
} // namespace foreman

// As for foreman's other archives (archive.hpp): the registry of exported classes' serializers,
// defined here so that foreman stays header-only.
template <>
inline bool boost::archive::detail::archive_serializer_map<foreman::detail::fingerprint_oarchive>::insert(
    const basic_serializer* s) {
  return boost::serialization::singleton<
             foreman::detail::serializer_registry<foreman::detail::fingerprint_oarchive>>::get_mutable_instance()
      .insert(s);
}
template <>
inline void boost::archive::detail::archive_serializer_map<foreman::detail::fingerprint_oarchive>::erase(
    const basic_serializer* s) {
  using registry =
      boost::serialization::singleton<foreman::detail::serializer_registry<foreman::detail::fingerprint_oarchive>>;
  if (!registry::is_destroyed()) registry::get_mutable_instance().erase(s);
}
template <>
inline const boost::archive::detail::basic_serializer*
boost::archive::detail::archive_serializer_map<foreman::detail::fingerprint_oarchive>::find(
    const boost::serialization::extended_type_info& type) {
  return boost::serialization::singleton<
             foreman::detail::serializer_registry<foreman::detail::fingerprint_oarchive>>::get_const_instance()
      .find(type);
}

BOOST_SERIALIZATION_REGISTER_ARCHIVE(foreman::detail::fingerprint_oarchive)
BOOST_SERIALIZATION_USE_ARRAY_OPTIMIZATION(foreman::detail::fingerprint_oarchive)
