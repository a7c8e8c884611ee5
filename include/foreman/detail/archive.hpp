#pragma once
/// @file archive.hpp
/// The Boost.Serialization archives foreman writes messages with: the native binary encoding
/// (as Boost's binary archives, machine byte order) appended to a byte vector and read back from
/// a byte range, with every read checked against the end of the range.
///
/// Why not boost::archive::binary_oarchive: it works through a std::streambuf and builds a new
/// std::locale each time one is constructed, and foreman constructs one per message in each
/// direction; with one task per message that was a third of both ranks' time. These archives
/// cost one small allocation (Boost's common archive state) and copy nothing but the values.

#include <foreman/serialization.hpp>

#include <boost/archive/archive_exception.hpp>
#include <boost/archive/basic_archive.hpp>
#include <boost/archive/detail/common_iarchive.hpp>
#include <boost/archive/detail/common_oarchive.hpp>
#include <boost/archive/detail/archive_serializer_map.hpp>
#include <boost/archive/detail/basic_serializer_map.hpp>
#include <boost/archive/detail/register_archive.hpp>
#include <boost/mpl/bool.hpp>
#include <boost/mpl/placeholders.hpp>
#include <boost/serialization/array_wrapper.hpp>
#include <boost/serialization/collection_size_type.hpp>
#include <boost/serialization/is_bitwise_serializable.hpp>
#include <boost/serialization/item_version_type.hpp>
#include <boost/serialization/singleton.hpp>

#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

namespace foreman {
namespace detail {

/// Whether contiguous runs of T (a std::vector's, a C array's) are written as one copy of their
/// bytes: exactly when a single T travels as bytes (is_bitwise_v). An MPL metafunction, as
/// Boost's containers ask for one; its mpl::bool_ selects their mpl::true_ overloads.
template <class T>
struct array_as_bytes : boost::mpl::bool_<is_bitwise_v<T>> {};

/// What foreman's archives refuse, each with the fix, where Boost would fail deep in its own
/// headers or send what means nothing on another rank. Returns whether T may be archived, so
/// that a refused type stops at the message instead of going on into Boost.
template <class T>
constexpr bool check_archived_type() {
  constexpr bool view = is_view_v<T> && !std::is_pointer_v<T>;
  static_assert(!view, "foreman: std::string_view, std::span and std::reference_wrapper cannot be serialized: they "
                       "refer to memory of the sending process; serialize the values themselves (std::string, "
                       "std::vector, the referred object)");
  constexpr bool pointer_to_plain =
      std::is_pointer_v<T> && is_plain_bitwise_class_v<std::remove_cv_t<std::remove_pointer_t<T>>>;
  static_assert(!pointer_to_plain,
                "foreman: a class without serialize() travels as its bytes by value only; to serialize it through "
                "a pointer (T*, std::shared_ptr, std::unique_ptr) Boost.Serialization needs a serialize() member "
                "or free overload for it: add one");
  constexpr bool address_as_bytes = sends_address_as_bytes_v<T>;
  static_assert(!address_as_bytes,
                "foreman: a class without serialize() is written as its bytes, which hold an address here: a field "
                "of it, at any depth, is a pointer (to an object, a function or a member), std::string_view, "
                "std::span or std::reference_wrapper, which means nothing in another process; write a serialize() "
                "member or free function for that class (it then sends the pointed-to values)");
  return !view && !pointer_to_plain && !address_as_bytes;
}

/// Writes serializable values at the end of a byte vector.
class byte_oarchive : public boost::archive::detail::common_oarchive<byte_oarchive> {
  using base = boost::archive::detail::common_oarchive<byte_oarchive>;
  friend class boost::archive::detail::interface_oarchive<byte_oarchive>;
  friend class boost::archive::save_access;

public:
  explicit byte_oarchive(std::vector<char>& out) : base(boost::archive::no_header), out_(out) {}

  void save_binary(const void* data, std::size_t size) { append(data, size); }

  /// Contiguous runs of bitwise elements (std::vector<double>, std::vector<point>, ...) are one copy.
  using use_array_optimization = array_as_bytes<boost::mpl::_1>;
  template <class T>
  void save_array(const boost::serialization::array_wrapper<T>& a, unsigned int /*version*/) {
    append(a.address(), a.count() * sizeof(T));
  }

  // Every value passes here, at any depth (the elements of a container, the members a
  // serialize() writes): a bitwise class without serialize() as its bytes, anything else, and
  // Boost's special types below, through Boost.
  template <class T>
  void save_override(const T& value) {
    if constexpr (!check_archived_type<T>())
      return;
    else if constexpr (is_plain_bitwise_class_v<T>)
      append(&value, sizeof(T));
    else
      base::save_override(value);
  }
  void save_override(const boost::archive::class_id_optional_type&) {}
  void save_override(const boost::archive::class_name_type& name) { save(std::string(name)); }

private:
  // Primitive types (reached through boost::archive::save_access).
  template <class T>
  void save(const T& value) {
    static_assert(boost::serialization::is_bitwise_serializable<T>::value, "not a primitive type");
    append(&value, sizeof(T));
  }
  void save(const std::string& s) {
    const std::uint64_t size = s.size();
    append(&size, sizeof size);
    append(s.data(), s.size());
  }
  void save(const std::wstring& s) {
    const std::uint64_t size = s.size();
    append(&size, sizeof size);
    append(s.data(), s.size() * sizeof(wchar_t));
  }

  void append(const void* data, std::size_t size) {
    if (size == 0) return;
    const std::size_t at = out_.size();
    out_.resize(at + size);
    std::memcpy(out_.data() + at, data, size);
  }

  std::vector<char>& out_;
};

/// Reads values back from a byte range, in the order a byte_oarchive wrote them.
/// Reading past the end throws boost::archive::archive_exception (input_stream_error).
class byte_iarchive : public boost::archive::detail::common_iarchive<byte_iarchive> {
  using base = boost::archive::detail::common_iarchive<byte_iarchive>;
  friend class boost::archive::detail::interface_iarchive<byte_iarchive>;
  friend class boost::archive::load_access;

public:
  /// Reads from [*cursor, last) and advances *cursor past what it reads.
  byte_iarchive(const char*& cursor, const char* last)
      : base(boost::archive::no_header), cursor_(cursor), last_(last) {}

  void load_binary(void* data, std::size_t size) { take(data, size); }

  using use_array_optimization = array_as_bytes<boost::mpl::_1>;
  template <class T>
  void load_array(boost::serialization::array_wrapper<T>& a, unsigned int /*version*/) {
    take(a.address(), a.count() * sizeof(T));
  }

  template <class T>
  void load_override(T& value) {
    if constexpr (!check_archived_type<T>())
      return;
    else if constexpr (is_plain_bitwise_class_v<T>)
      take(&value, sizeof(T));
    else
      base::load_override(value);
  }
  void load_override(boost::archive::class_id_optional_type&) {}
  void load_override(boost::archive::class_name_type& name) {
    std::string text;
    load(text);
    if (text.size() >= BOOST_SERIALIZATION_MAX_KEY_SIZE)
      throw boost::archive::archive_exception(boost::archive::archive_exception::invalid_class_name);
    std::memcpy(name.t, text.data(), text.size());
    name.t[text.size()] = '\0';
  }

private:
  template <class T>
  void load(T& value) {
    static_assert(boost::serialization::is_bitwise_serializable<T>::value, "not a primitive type");
    take(&value, sizeof(T));
  }
  void load(std::string& s) {
    const std::uint64_t size = length(1);
    s.assign(cursor_, static_cast<std::size_t>(size));
    cursor_ += size;
  }
  void load(std::wstring& s) {
    const std::uint64_t size = length(sizeof(wchar_t));
    s.resize(static_cast<std::size_t>(size));
    take(&s[0], static_cast<std::size_t>(size) * sizeof(wchar_t));
  }

  // A string's length, checked against the bytes left, so that a damaged length cannot ask for
  // an absurd allocation.
  std::uint64_t length(std::size_t unit) {
    std::uint64_t size = 0;
    take(&size, sizeof size);
    if (size > static_cast<std::uint64_t>(last_ - cursor_) / unit) overrun();
    return size;
  }

  void take(void* data, std::size_t size) {
    if (size > static_cast<std::size_t>(last_ - cursor_)) overrun();
    if (size == 0) return;
    std::memcpy(data, cursor_, size);
    cursor_ += size;
  }

  [[noreturn]] static void overrun() {
    throw boost::archive::archive_exception(boost::archive::archive_exception::input_stream_error);
  }

  const char*& cursor_;
  const char* last_;
};

/// The registry of serializers for exported (polymorphic) classes, one per archive type.
template <class Archive>
class serializer_registry : public boost::archive::detail::basic_serializer_map {};

} // namespace detail
} // namespace foreman

// Boost declares archive_serializer_map<Archive> and defines it in its compiled library for its
// own archives only; for these two the definitions are here, inline, so that foreman stays
// header-only. (Boost's .ipp would define it for every archive type, Boost's own included.)
#define FOREMAN_DETAIL_SERIALIZER_MAP(Archive)                                                                        \
  template <>                                                                                                         \
  inline bool boost::archive::detail::archive_serializer_map<Archive>::insert(const basic_serializer* s) {          \
    return boost::serialization::singleton<foreman::detail::serializer_registry<Archive>>::get_mutable_instance()   \
        .insert(s);                                                                                                   \
  }                                                                                                                   \
  template <>                                                                                                         \
  inline void boost::archive::detail::archive_serializer_map<Archive>::erase(const basic_serializer* s) {           \
    using registry = boost::serialization::singleton<foreman::detail::serializer_registry<Archive>>;                 \
    if (!registry::is_destroyed()) registry::get_mutable_instance().erase(s);                                        \
  }                                                                                                                   \
  template <>                                                                                                         \
  inline const boost::archive::detail::basic_serializer* boost::archive::detail::archive_serializer_map<            \
      Archive>::find(const boost::serialization::extended_type_info& type) {                                         \
    return boost::serialization::singleton<foreman::detail::serializer_registry<Archive>>::get_const_instance()     \
        .find(type);                                                                                                  \
  }
FOREMAN_DETAIL_SERIALIZER_MAP(foreman::detail::byte_oarchive)
FOREMAN_DETAIL_SERIALIZER_MAP(foreman::detail::byte_iarchive)
#undef FOREMAN_DETAIL_SERIALIZER_MAP

// Exported (polymorphic) classes instantiate their serialization for every registered archive.
BOOST_SERIALIZATION_REGISTER_ARCHIVE(foreman::detail::byte_oarchive)
BOOST_SERIALIZATION_REGISTER_ARCHIVE(foreman::detail::byte_iarchive)
BOOST_SERIALIZATION_USE_ARRAY_OPTIMIZATION(foreman::detail::byte_oarchive)
BOOST_SERIALIZATION_USE_ARRAY_OPTIMIZATION(foreman::detail::byte_iarchive)
