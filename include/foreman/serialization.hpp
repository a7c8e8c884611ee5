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

#include <foreman/detail/aggregate.hpp>

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>
#if __has_include(<version>)
#include <version>
#endif
#ifdef __cpp_lib_span
#include <span>
#endif

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

// ---- the element types of the containers and vocabulary types -------------------------------------

template <class... Ts>
struct type_list {};

/// The element types of a standard container or vocabulary type whose serialize() Boost or this
/// header provide (`known`), as a type_list; for any other type, none.
template <class T>
struct elements_of {
  static constexpr bool known = false;
  using type = type_list<>;
};
template <class... Ts>
struct elements_are {
  static constexpr bool known = true;
  using type = type_list<std::remove_cv_t<Ts>...>;
};
template <class T, class A>
struct elements_of<std::vector<T, A>> : elements_are<T> {};
template <class T, class A>
struct elements_of<std::list<T, A>> : elements_are<T> {};
template <class T, class A>
struct elements_of<std::deque<T, A>> : elements_are<T> {};
template <class T, std::size_t N>
struct elements_of<std::array<T, N>> : elements_are<T> {};
template <class K, class C, class A>
struct elements_of<std::set<K, C, A>> : elements_are<K> {};
template <class K, class C, class A>
struct elements_of<std::multiset<K, C, A>> : elements_are<K> {};
template <class K, class V, class C, class A>
struct elements_of<std::map<K, V, C, A>> : elements_are<K, V> {};
template <class K, class V, class C, class A>
struct elements_of<std::multimap<K, V, C, A>> : elements_are<K, V> {};
template <class K, class H, class E, class A>
struct elements_of<std::unordered_set<K, H, E, A>> : elements_are<K> {};
template <class K, class H, class E, class A>
struct elements_of<std::unordered_multiset<K, H, E, A>> : elements_are<K> {};
template <class K, class V, class H, class E, class A>
struct elements_of<std::unordered_map<K, V, H, E, A>> : elements_are<K, V> {};
template <class K, class V, class H, class E, class A>
struct elements_of<std::unordered_multimap<K, V, H, E, A>> : elements_are<K, V> {};
template <class A, class B>
struct elements_of<std::pair<A, B>> : elements_are<A, B> {};
template <class... Ts>
struct elements_of<std::tuple<Ts...>> : elements_are<Ts...> {};
template <class... Ts>
struct elements_of<std::variant<Ts...>> : elements_are<Ts...> {};
template <class T>
struct elements_of<std::optional<T>> : elements_are<T> {};

template <template <class> class Trait, class List>
struct all_elements;
template <template <class> class Trait, class... Ts>
struct all_elements<Trait, type_list<Ts...>> : std::conjunction<Trait<Ts>...> {};
template <template <class> class Trait, class List>
struct any_element;
template <template <class> class Trait, class... Ts>
struct any_element<Trait, type_list<Ts...>> : std::disjunction<Trait<Ts>...> {};

// ---- non-owning types ------------------------------------------------------------------------------

/// Types that refer to memory of the process that holds them: their bytes mean nothing on
/// another rank, and Boost.Serialization cannot rebuild what they refer to (it follows raw
/// pointers only inside a class's serialize(), where they own their pointee).
template <class T>
struct is_view : std::bool_constant<std::is_pointer_v<T>> {};
template <class C, class Tr>
struct is_view<std::basic_string_view<C, Tr>> : std::true_type {};
template <class T>
struct is_view<std::reference_wrapper<T>> : std::true_type {};
#ifdef __cpp_lib_span
template <class T, std::size_t Extent>
struct is_view<std::span<T, Extent>> : std::true_type {};
#endif
template <class T>
inline constexpr bool is_view_v = is_view<std::remove_cv_t<T>>::value;

/// A view (is_view) as T itself or anywhere among the elements of its containers and
/// vocabulary types (std::vector<std::string_view>, std::pair<int, const char*>, ...).
template <class T>
struct holds_view : std::disjunction<is_view<T>, any_element<holds_view, typename elements_of<T>::type>> {};
template <class T>
inline constexpr bool holds_view_v = holds_view<std::remove_cv_t<T>>::value;

// ---- does a class have a serialize()? ---------------------------------------------------------------

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

// A final class cannot be derived from: only a public serialize() member can be seen.
template <class T, class = void>
struct has_public_serialize : std::false_type {};
template <class T>
struct has_public_serialize<T, std::void_t<decltype(std::declval<T&>().serialize(std::declval<archive&>(), 0u))>>
    : std::true_type {};

} // namespace probe

template <class T, class = void>
struct class_has_serialize : std::false_type {};
template <class T>
struct class_has_serialize<T, std::enable_if_t<std::is_class_v<T>>>
    // A final class cannot be probed for private members; trust it.
    : std::bool_constant<std::is_final_v<T> || probe::has_member_serialize<T>::value> {};

/// T is a class with a serialize() of its own: a member (any access; for a final class, a
/// public one) or a free overload, the user's or a library's.
template <class T, class = void>
struct has_own_serialize : std::false_type {};
template <class T>
struct has_own_serialize<T, std::enable_if_t<std::is_class_v<T>>>
    : std::disjunction<
          std::conditional_t<std::is_final_v<T>, probe::has_public_serialize<T>, probe::has_member_serialize<T>>,
          probe::has_free_serialize<T>> {};

// ---- what travels as bytes --------------------------------------------------------------------------

/// Marked by the user (or Boost) as a type whose bytes are its value.
template <class T>
struct marked_bitwise : std::bool_constant<boost::mpi::is_mpi_datatype<T>::value ||
                                           boost::serialization::is_bitwise_serializable<T>::value> {};

template <class T>
struct is_bitwise;

// A trivially copyable T that nobody marked. Its bytes are its value unless it has a
// serialize() of its own, which is then the authority (a struct holding a raw pointer whose
// serialize() sends the pointee); a container or vocabulary type (std::array, std::optional,
// std::variant, ...) is its elements' bytes, so it is bitwise when all of them are.
template <class T>
struct unmarked_bitwise
    : std::conditional_t<elements_of<T>::known, all_elements<is_bitwise, typename elements_of<T>::type>,
                         std::negation<has_own_serialize<T>>> {};

/// Types that travel as their object representation, without an archive: arithmetic types and
/// enums, types marked BOOST_IS_MPI_DATATYPE or BOOST_IS_BITWISE_SERIALIZABLE, and trivially
/// copyable classes without a serialize() of their own; never a pointer or another view.
template <class T>
struct is_bitwise
    : std::conjunction<
          std::negation<is_view<T>>, std::negation<std::is_member_pointer<T>>,
          std::disjunction<marked_bitwise<T>, std::conjunction<std::is_trivially_copyable<T>, unmarked_bitwise<T>>>> {};

template <class T>
inline constexpr bool is_bitwise_v = is_bitwise<std::remove_cv_t<T>>::value;

/// A class that Boost.Serialization cannot serialize by itself (no serialize()) but that is
/// bitwise: foreman's archives write it as its bytes wherever it occurs (inside a container, a
/// std::pair, a user's serialize(), ...), so that a plain `struct point { double x, y; }`
/// travels everywhere a double does. Boost's own special types (primitive level) are excluded.
template <class T>
inline constexpr bool is_plain_bitwise_class_v =
    std::is_class<T>::value && is_bitwise_v<T> && !has_own_serialize<T>::value &&
    boost::serialization::implementation_level<T>::value != boost::serialization::primitive_type;

// ---- addresses in the bytes that travel -------------------------------------------------------------

/// Part of the object representation of T, which travels as bytes (T is bitwise), is an address
/// or a view: a pointer of any kind (to an object, to a function, to a member), a std::string_view,
/// std::span or std::reference_wrapper, as T itself, as an element of an array, std::array,
/// std::optional or std::variant (or std::pair, std::tuple), or as a field, at any depth, of a
/// plain aggregate (aggregate.hpp; a field's own serialize() does not matter: the aggregate's
/// bytes carry it along). A type marked BOOST_IS_BITWISE_SERIALIZABLE is taken at its author's
/// word, and a class whose fields cannot be reached (private fields, too many leaves) is not
/// inspected.
///
/// Why member pointers too: a pointer to a member function holds a code address (or a vtable
/// offset) and a function pointer is a code address, both different in another process (address
/// space layout randomisation, another binary of an MPMD job); a pointer to a data member is an
/// offset that would survive, but, as at the top level, no pointer travels as bytes: one rule.
template <class T>
struct bytes_hold_address;

template <class T>
struct fields_hold_address : std::bool_constant<aggregate::some_part<T, bytes_hold_address>()> {};

template <class T>
struct bytes_hold_address
    : std::disjunction<
          is_view<T>, std::is_member_pointer<T>,
          std::conditional_t<std::is_array_v<T>, bytes_hold_address<std::remove_cv_t<std::remove_all_extents_t<T>>>,
                             std::false_type>,
          std::conjunction<
              std::negation<marked_bitwise<T>>,
              std::conditional_t<elements_of<T>::known, any_element<bytes_hold_address, typename elements_of<T>::type>,
                                 fields_hold_address<T>>>> {};

/// Some value T sends travels as bytes holding an address (bytes_hold_address): T itself, when it
/// is bitwise, or, when it is not, an element of its containers and vocabulary types at any
/// depth (std::vector<S> of a plain struct S holding a pointer). A class with a serialize() of its
/// own decides what it writes; foreman's archive refuses such bytes written from it.
template <class T>
struct sends_address_as_bytes : std::conditional_t<is_bitwise<T>::value, bytes_hold_address<T>,
                                                   any_element<sends_address_as_bytes, typename elements_of<T>::type>> {
};
template <class T>
inline constexpr bool sends_address_as_bytes_v = sends_address_as_bytes<std::remove_cv_t<T>>::value;

// ---- what is serializable ---------------------------------------------------------------------------

template <class T>
struct elements_serializable : all_elements<is_serializable, typename elements_of<T>::type> {};

template <class T>
struct serializable_impl
    : std::bool_constant<!is_view_v<T> && !sends_address_as_bytes_v<T> &&
                         (is_bitwise_v<T> || std::is_arithmetic_v<T> || std::is_enum_v<T> ||
                          boost::serialization::implementation_level<T>::value ==
                              boost::serialization::primitive_type ||
                          ((class_has_serialize<T>::value || probe::has_free_serialize<T>::value) &&
                           elements_serializable<T>::value))> {};

} // namespace detail

/// True when foreman can send T:
/// - as its bytes: arithmetic types, enums, types marked BOOST_IS_MPI_DATATYPE or
///   BOOST_IS_BITWISE_SERIALIZABLE, and trivially copyable classes without a serialize() (a
///   plain `struct point { double x, y; }`), also inside every container and vocabulary type
///   below (a std::vector of them is one copy);
/// - through Boost.Serialization: std::string, the standard containers (vector, deque, list,
///   array, set, map, their multi- and unordered variants), std::pair, std::optional,
///   std::variant, std::tuple, and classes with a serialize() member or a free serialize()
///   overload. A serialize() always wins over the bytes, even for a trivially copyable class:
///   a struct holding a raw pointer sends its pointee that way. Mark such a class
///   BOOST_IS_BITWISE_SERIALIZABLE to have it sent as bytes after all.
///
/// Never: raw pointers, std::string_view, std::span, std::reference_wrapper, as T or inside
/// a container or vocabulary type; they refer to the sender's memory (master_worker says so
/// with a static_assert of its own). Nor a class without serialize() that is sent as its bytes
/// and holds one of them, or any other pointer (to a function, to a member), in a field, at any
/// depth (a field that is itself such a struct, an array or std::array of pointers, ...): the
/// receiver would get the sender's address. master_worker refuses it with the fix: give the
/// class a serialize(), which then sends the pointed-to values. A class whose fields cannot be
/// reached (private fields and no serialize()) is sent as its bytes without that check.
///
/// The check is made by inspection; if it ever rejects a type that Boost.Serialization does
/// accept, specialize it: `template <> struct foreman::is_serializable<my_type> : std::true_type {};`
/// @tparam T a Task or Result type
template <class T>
struct is_serializable : detail::serializable_impl<std::remove_cv_t<T>> {};

template <class T>
inline constexpr bool is_serializable_v = is_serializable<T>::value;

} // namespace foreman
