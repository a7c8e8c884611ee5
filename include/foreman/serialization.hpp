#pragma once
/// @file serialization.hpp
/// Serialization support for std::optional, std::variant and std::tuple (Boost.Serialization
/// has the first two only from later releases and the third not at all; where Boost ships its
/// own, it is used), and the traits foreman uses to check Task and Result at compile time.

#include <boost/archive/binary_iarchive.hpp>
#include <boost/archive/binary_oarchive.hpp>
#include <boost/mpi/datatype_fwd.hpp>
#include <boost/mpi/datatype.hpp>
#include <boost/serialization/is_bitwise_serializable.hpp>
#include <boost/serialization/level.hpp>
#include <boost/serialization/nvp.hpp>
#include <boost/serialization/serialization.hpp>
#include <boost/serialization/string.hpp>
#include <boost/serialization/version.hpp>

// The containers most programs send, so that users need not include them one by one.
#include <boost/serialization/array.hpp>
#include <boost/serialization/deque.hpp>
#include <boost/serialization/list.hpp>
#include <boost/serialization/map.hpp>
#include <boost/serialization/set.hpp>
#include <boost/serialization/unordered_map.hpp>
#include <boost/serialization/unordered_set.hpp>
#include <boost/serialization/utility.hpp>
#include <boost/serialization/vector.hpp>

#include <array>
#include <cstdint>
#include <deque>
#include <list>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

#if __has_include(<boost/serialization/std_optional.hpp>)
#include <boost/serialization/std_optional.hpp>
#define FOREMAN_DETAIL_BOOST_HAS_STD_OPTIONAL 1
#endif
#if __has_include(<boost/serialization/std_variant.hpp>)
#include <boost/serialization/std_variant.hpp>
#define FOREMAN_DETAIL_BOOST_HAS_STD_VARIANT 1
#endif

namespace boost {
namespace serialization {

#ifndef FOREMAN_DETAIL_BOOST_HAS_STD_OPTIONAL
// One serialize() rather than save()/load() overloads: a free load(Archive&, std::optional<T>&,
// ...) is a candidate wherever Boost calls load() unqualified, e.g. for the friend load() of
// <boost/serialization/shared_ptr.hpp>, whose deduction would then instantiate std::optional with
// an incomplete type and fail to compile.
template <class Archive, class T>
void serialize(Archive& ar, std::optional<T>& value, const unsigned int /*version*/) {
  if constexpr (Archive::is_saving::value) {
    const bool engaged = value.has_value();
    ar << boost::serialization::make_nvp("engaged", engaged);
    if (engaged) ar << boost::serialization::make_nvp("value", *value);
  } else {
    bool engaged = false;
    ar >> boost::serialization::make_nvp("engaged", engaged);
    if (!engaged) {
      value.reset();
      return;
    }
    if (!value) value.emplace();
    ar >> boost::serialization::make_nvp("value", *value);
  }
}
#endif

#ifndef FOREMAN_DETAIL_BOOST_HAS_STD_VARIANT
namespace foreman_detail {
template <std::size_t I, class Archive, class... Ts>
void load_alternative(Archive& ar, std::variant<Ts...>& value, std::uint32_t which) {
  if constexpr (I < sizeof...(Ts)) {
    if (which == I) {
      std::variant_alternative_t<I, std::variant<Ts...>> alternative{};
      ar >> boost::serialization::make_nvp("value", alternative);
      value.template emplace<I>(std::move(alternative));
      return;
    }
    load_alternative<I + 1>(ar, value, which);
  } else {
    throw std::invalid_argument("foreman: std::variant index out of range while deserializing");
  }
}
} // namespace foreman_detail

// One serialize(), for the reason given at std::optional's.
template <class Archive, class... Ts>
void serialize(Archive& ar, std::variant<Ts...>& value, const unsigned int /*version*/) {
  if constexpr (Archive::is_saving::value) {
    if (value.valueless_by_exception())
      throw std::invalid_argument("foreman: cannot serialize a valueless std::variant");
    const std::uint32_t which = static_cast<std::uint32_t>(value.index());
    ar << boost::serialization::make_nvp("which", which);
    std::visit([&ar](const auto& alternative) { ar << boost::serialization::make_nvp("value", alternative); },
               value);
  } else {
    std::uint32_t which = 0;
    ar >> boost::serialization::make_nvp("which", which);
    foreman_detail::load_alternative<0>(ar, value, which);
  }
}
#endif

// No Boost release serializes std::tuple.
template <class Archive, class... Ts>
void serialize(Archive& ar, std::tuple<Ts...>& value, const unsigned int /*version*/) {
  std::apply([&ar](auto&... element) { ((ar & boost::serialization::make_nvp("element", element)), ...); },
             value);
}

} // namespace serialization
} // namespace boost

namespace foreman {

template <class T>
struct is_serializable;

namespace detail {

/// Types that travel as their object representation, without an archive.
template <class T>
inline constexpr bool is_bitwise_v =
    !std::is_pointer_v<T> && !std::is_member_pointer_v<T> &&
    (std::is_trivially_copyable_v<T> || boost::mpi::is_mpi_datatype<T>::value ||
     boost::serialization::is_bitwise_serializable<T>::value);

namespace probe {

using archive = boost::archive::binary_oarchive;

// A decoy as general as Boost's primary serialize() template: when only those two match, the
// call is ambiguous, so a call that resolves proves a more specific (user or library)
// serialize() overload for T exists. The version argument is Boost's version_type, which
// brings boost::serialization into argument-dependent lookup exactly as Boost's own call does.
struct decoy {};
template <class Archive, class T>
decoy serialize(Archive&, T&, const unsigned int);

template <class T, class = void>
struct has_free_serialize : std::false_type {};
template <class T>
struct has_free_serialize<T, std::void_t<decltype(serialize(std::declval<archive&>(), std::declval<T&>(),
                                                            std::declval<boost::serialization::version_type>()))>>
    : std::bool_constant<!std::is_same_v<decltype(serialize(std::declval<archive&>(), std::declval<T&>(),
                                                            std::declval<boost::serialization::version_type>())),
                                         decoy>> {};

// A member named serialize, whatever its access (Boost's idiom makes it private and befriends
// boost::serialization::access): lookup through a class that also inherits a public
// serialize() is ambiguous exactly when T has one.
struct serialize_name {
  void serialize();
};
template <class T>
struct both : T, serialize_name {};
template <class T, class = void>
struct has_member_serialize : std::true_type {};
template <class T>
struct has_member_serialize<T, std::void_t<decltype(&both<T>::serialize)>> : std::false_type {};

} // namespace probe

template <class T>
struct has_serialize : std::false_type {};

template <class T, class = void>
struct class_has_serialize : std::false_type {};
template <class T>
struct class_has_serialize<T, std::enable_if_t<std::is_class_v<T>>>
    // A final class cannot be probed for its members; trust it.
    : std::bool_constant<std::is_final_v<T> || probe::has_member_serialize<T>::value> {};

// Element types of the containers whose serialize() Boost or this header provide.
template <class T>
struct elements_serializable : std::true_type {};
template <class... Ts>
struct all_serializable : std::conjunction<is_serializable<Ts>...> {};
template <class T, class A>
struct elements_serializable<std::vector<T, A>> : all_serializable<T> {};
template <class T, class A>
struct elements_serializable<std::list<T, A>> : all_serializable<T> {};
template <class T, class A>
struct elements_serializable<std::deque<T, A>> : all_serializable<T> {};
template <class T, std::size_t N>
struct elements_serializable<std::array<T, N>> : all_serializable<T> {};
template <class K, class C, class A>
struct elements_serializable<std::set<K, C, A>> : all_serializable<K> {};
template <class K, class V, class C, class A>
struct elements_serializable<std::map<K, V, C, A>> : all_serializable<K, V> {};
template <class K, class H, class E, class A>
struct elements_serializable<std::unordered_set<K, H, E, A>> : all_serializable<K> {};
template <class K, class V, class H, class E, class A>
struct elements_serializable<std::unordered_map<K, V, H, E, A>> : all_serializable<K, V> {};
template <class A, class B>
struct elements_serializable<std::pair<A, B>> : all_serializable<A, B> {};
template <class... Ts>
struct elements_serializable<std::tuple<Ts...>> : all_serializable<Ts...> {};
template <class... Ts>
struct elements_serializable<std::variant<Ts...>> : all_serializable<Ts...> {};
template <class T>
struct elements_serializable<std::optional<T>> : all_serializable<T> {};

template <class T>
struct serializable_impl
    : std::bool_constant<is_bitwise_v<T> || std::is_arithmetic_v<T> || std::is_enum_v<T> ||
                         boost::serialization::implementation_level<T>::value ==
                             boost::serialization::primitive_type ||
                         ((class_has_serialize<T>::value || probe::has_free_serialize<T>::value) &&
                          elements_serializable<T>::value)> {};

} // namespace detail

/// True when foreman can send T: T is trivially copyable (or marked BOOST_IS_MPI_DATATYPE /
/// BOOST_IS_BITWISE_SERIALIZABLE), or Boost.Serialization can serialize it (arithmetic types,
/// std::string, the standard containers, std::optional/variant/tuple, classes with a
/// serialize() member or a free serialize() overload).
///
/// The check is made by inspection; if it ever rejects a type that Boost.Serialization does
/// accept, specialize it: `template <> struct foreman::is_serializable<my_type> : std::true_type {};`
/// @tparam T a Task or Result type
template <class T>
struct is_serializable : detail::serializable_impl<std::remove_cv_t<T>> {};

template <class T>
inline constexpr bool is_serializable_v = is_serializable<T>::value;

} // namespace foreman
