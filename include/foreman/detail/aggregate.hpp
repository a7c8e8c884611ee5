#pragma once
/// @file aggregate.hpp
/// Reaching the fields of a plain aggregate (a struct without constructors, private fields or
/// virtual functions) in C++17, which has no reflection: by trying to brace-initialise it from
/// objects that convert to anything, and by structured bindings. Two users: the fingerprint of a
/// task list reads a padded aggregate field by field (value_fingerprint.hpp), and the type checks
/// refuse an aggregate sent as its bytes whose fields hold an address (serialization.hpp).
///
/// Two ways in, for two kinds of aggregate:
///  - field by field (field_count(), exact_field_count(), apply_fields()): the number of fields
///    is counted by how many braced initialisers `T{{f}, {f}, ...}` takes, then the fields are
///    bound by structured bindings. Cheap whatever the fields hold (a C array is one field), but
///    only for a standard-layout aggregate of 2 to max_fields fields (or one field that cannot be
///    a base class) in which every field takes a braced initialiser (no empty class);
///  - leaf by leaf (leaf_count(), every_leaf()): bare initialisers `T{l, l, ...}` that convert
///    only to types that are not aggregates are spread by brace elision over every scalar (or
///    other non-aggregate) object T holds, through nested aggregates, bases and arrays. This
///    reaches what the first cannot (bases, empty members, a single field), at a cost that grows
///    with the number of leaves: up to max_leaves.

#include <cstddef>
#include <type_traits>
#include <utility>

namespace foreman {
namespace detail {
namespace aggregate {

// ---- initialisation probes -----------------------------------------------------------------------

/// Stands for any field in an unevaluated brace initialisation: converts to a reference to
/// anything, so fields of every type (references too) take one each.
struct any_field {
  template <class T>
  operator T&() const;
};
template <std::size_t>
using any_field_at = any_field;

/// Whether T{Probe...} (one Probe per index; braced: T{{Probe}...}) is valid.
template <class T, class Probe, bool Braced, class Indices, class = void>
struct initialisable : std::false_type {};
template <class T, class Probe, std::size_t... I>
struct initialisable<T, Probe, false, std::index_sequence<I...>, std::void_t<decltype(T{(void(I), Probe{})...})>>
    : std::true_type {};
template <class T, class Probe, std::size_t... I>
struct initialisable<T, Probe, true, std::index_sequence<I...>, std::void_t<decltype(T{{(void(I), Probe{})}...})>>
    : std::true_type {};

// T{{f}..., f}: N braced initialisers and one bare one more, which fits any field left (an array
// by brace elision, an empty class) but none after the last.
template <class T, class Indices, class = void>
struct one_more_field : std::false_type {};
template <class T, std::size_t... I>
struct one_more_field<T, std::index_sequence<I...>, std::void_t<decltype(T{{any_field_at<I>{}}..., any_field{}})>>
    : std::true_type {};

// T{{f, f}}: the first element takes two initialisers (a base class or a member with two fields
// or more, an array, a class constructed from two values).
template <class T, class = void>
struct first_takes_two : std::false_type {};
template <class T>
struct first_takes_two<T, std::void_t<decltype(T{{any_field{}, any_field{}}})>> : std::true_type {};

// ---- field by field -------------------------------------------------------------------------------

inline constexpr std::size_t max_fields = 16;

/// The most initialisers T{...} takes, each a bare any_field (Braced false) or one in braces
/// (Braced true), up to max_fields + 1. The two differ when a field is a C array (bare ones are
/// spread over its elements: brace elision) or an empty class or base (which takes no braced one).
template <class T, bool Braced, std::size_t N = 0>
constexpr std::size_t initialisers() {
  if constexpr (N > max_fields) {
    return N;
  } else {
    if constexpr (initialisable<T, any_field, Braced, std::make_index_sequence<N + 1>>::value)
      return initialisers<T, Braced, N + 1>();
    else
      return N;
  }
}

// An aggregate that structured bindings may decompose: no union, no array, and every field in one
// class (standard layout: a base with fields and fields of its own are never both there).
template <class T>
inline constexpr bool decomposable_v =
    std::is_aggregate_v<T> && !std::is_union_v<T> && std::is_standard_layout_v<T> && !std::is_array_v<T>;

/// The number of fields structured bindings would give T, when it can be known for sure; 0
/// otherwise. Counting initialisers counts fields only for an aggregate without bases and C-array
/// members (checked: both counts agree, and standard layout keeps a base with fields out, whose
/// fields would take a single initialiser); one field is not told apart from a base holding them.
/// (The value fingerprint's rule: journals name their task list by it, so it must not change.)
template <class T>
constexpr std::size_t field_count() {
  if constexpr (!decomposable_v<T>) {
    return 0;
  } else {
    constexpr std::size_t plain = initialisers<T, false>();
    constexpr std::size_t braced = initialisers<T, true>();
    return plain == braced && plain >= 2 && plain <= max_fields ? plain : 0;
  }
}

/// As field_count(), and also for aggregates with C-array fields, and for one field that cannot
/// be a base class holding fields (it takes no two initialisers: a scalar, a pointer): the count
/// of braced initialisers, exact when no bare one fits after them.
template <class T>
constexpr std::size_t exact_field_count() {
  if constexpr (!decomposable_v<T>) {
    return 0;
  } else {
    constexpr std::size_t braced = initialisers<T, true>();
    if constexpr (braced == 0 || braced > max_fields) {
      return 0;
    } else if constexpr (one_more_field<T, std::make_index_sequence<braced>>::value) {
      return 0; // a field that takes no braced initialiser (an empty class): the count stopped short
    } else if constexpr (braced == 1 && first_takes_two<T>::value) {
      return 0; // maybe a base class whose fields structured bindings would give
    } else {
      return braced;
    }
  }
}

/// Calls f(fields...) with the N fields of `value` in order (N: field_count() or
/// exact_field_count(), which guarantee that structured bindings give exactly N).
template <std::size_t N, class T, class F>
decltype(auto) apply_fields(T& value, F&& f) {
  static_assert(N >= 1 && N <= max_fields, "foreman: internal: apply_fields() called with a wrong field count");
  if constexpr (N == 1) {
    auto& [f0] = value;
    return f(f0);
  } else if constexpr (N == 2) {
    auto& [f0, f1] = value;
    return f(f0, f1);
  } else if constexpr (N == 3) {
    auto& [f0, f1, f2] = value;
    return f(f0, f1, f2);
  } else if constexpr (N == 4) {
    auto& [f0, f1, f2, f3] = value;
    return f(f0, f1, f2, f3);
  } else if constexpr (N == 5) {
    auto& [f0, f1, f2, f3, f4] = value;
    return f(f0, f1, f2, f3, f4);
  } else if constexpr (N == 6) {
    auto& [f0, f1, f2, f3, f4, f5] = value;
    return f(f0, f1, f2, f3, f4, f5);
  } else if constexpr (N == 7) {
    auto& [f0, f1, f2, f3, f4, f5, f6] = value;
    return f(f0, f1, f2, f3, f4, f5, f6);
  } else if constexpr (N == 8) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7] = value;
    return f(f0, f1, f2, f3, f4, f5, f6, f7);
  } else if constexpr (N == 9) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8] = value;
    return f(f0, f1, f2, f3, f4, f5, f6, f7, f8);
  } else if constexpr (N == 10) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9] = value;
    return f(f0, f1, f2, f3, f4, f5, f6, f7, f8, f9);
  } else if constexpr (N == 11) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10] = value;
    return f(f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10);
  } else if constexpr (N == 12) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11] = value;
    return f(f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11);
  } else if constexpr (N == 13) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12] = value;
    return f(f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12);
  } else if constexpr (N == 14) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13] = value;
    return f(f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13);
  } else if constexpr (N == 15) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14] = value;
    return f(f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14);
  } else {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15] = value;
    return f(f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15);
  }
}

// The type apply_fields() gives with it: whether Pred holds for some field's type (cv and
// reference dropped; an array field as its array type). Used in decltype only, but defined: the
// body of apply_fields() that calls it is instantiated to deduce its type.
template <template <class> class Pred>
struct some_field_type {
  template <class... Fields>
  std::disjunction<Pred<Fields>...> operator()(const Fields&...) const {
    return {};
  }
};

// ---- leaf by leaf ---------------------------------------------------------------------------------

/// The most leaves leaf_count() counts; an aggregate holding more is not inspected leaf by leaf
/// (each leaf costs the compiler about as much as a small function template).
inline constexpr std::size_t max_leaves = 256;

/// What brace elision does not enter: a type that is not an aggregate, or an empty class.
template <class T>
inline constexpr bool is_leaf_v = !std::is_aggregate_v<T> || std::is_empty_v<T>;

template <class T>
struct never : std::false_type {};

/// A bare initialiser that converts to any leaf type (an aggregate is entered instead, by brace
/// elision), and to none for which Bad holds. Refusing by SFINAE alone would let a converting
/// constructor of the leaf take the probe instead (std::variant's, std::reference_wrapper's), so
/// for a bad leaf the probe has two conversions that are as good as each other and as such a
/// constructor: the initialisation is then ambiguous, hence invalid, whichever way it is tried.
template <template <class> class Bad>
struct leaf_probe {
  template <class T, std::enable_if_t<is_leaf_v<T> && !Bad<T>::value, int> = 0>
  operator T&() const&;
  template <class T, std::enable_if_t<is_leaf_v<T> && Bad<T>::value, int> = 0>
  operator T&() &&;
  template <class T, std::enable_if_t<is_leaf_v<T> && Bad<T>::value, long> = 0>
  operator T&() &&;
};
using any_leaf = leaf_probe<never>;

// T takes N bare leaves: N = 1, 2, 4, ... until it does not, then bisected (Lo takes, Hi does not).
template <class T, std::size_t Lo, std::size_t Hi>
constexpr std::size_t bisect_leaves() {
  if constexpr (Hi - Lo <= 1) {
    return Lo;
  } else {
    constexpr std::size_t mid = Lo + (Hi - Lo) / 2;
    if constexpr (initialisable<T, any_leaf, false, std::make_index_sequence<mid>>::value)
      return bisect_leaves<T, mid, Hi>();
    else
      return bisect_leaves<T, Lo, mid>();
  }
}
template <class T, std::size_t N = 1>
constexpr std::size_t double_leaves() {
  if constexpr (N > max_leaves)
    return 0;
  else if constexpr (initialisable<T, any_leaf, false, std::make_index_sequence<N>>::value)
    return double_leaves<T, N * 2>();
  else
    return bisect_leaves<T, N / 2, N>();
}

/// The number of leaves of aggregate T, 1 to max_leaves; 0 when it has more, or none that
/// brace elision reaches (a union takes only its first member; a field with no default
/// initialisation, such as a reference, stops the count at 0).
template <class T>
constexpr std::size_t leaf_count() {
  if constexpr (!std::is_aggregate_v<T> || std::is_array_v<T> || std::is_empty_v<T>) {
    return 0;
  } else {
    constexpr std::size_t n = double_leaves<T>();
    return n <= max_leaves ? n : 0;
  }
}

/// Whether Bad holds for no leaf of aggregate T (leaf_count<T>() leaves, at least one).
template <class T, template <class> class Bad>
inline constexpr bool every_leaf_good_v =
    initialisable<T, leaf_probe<Bad>, false, std::make_index_sequence<leaf_count<T>()>>::value;

// ---- both ---------------------------------------------------------------------------------------

/// Whether Pred holds for a part of aggregate T that can be reached: one of its fields (field by
/// field) or else one of its leaves (leaf by leaf). False for what neither reaches (not an
/// aggregate; private fields; more leaves than max_leaves and no exact field count).
template <class T, template <class> class Pred>
constexpr bool some_part() {
  if constexpr (!std::is_class_v<T> || !std::is_aggregate_v<T>) {
    return false;
  } else if constexpr (constexpr std::size_t n = exact_field_count<T>(); n != 0) {
    return decltype(apply_fields<n>(std::declval<const T&>(), some_field_type<Pred>{}))::value;
  } else if constexpr (leaf_count<T>() != 0) {
    return !every_leaf_good_v<T, Pred>;
  } else {
    return false;
  }
}

} // namespace aggregate
} // namespace detail
} // namespace foreman
