#pragma once
/// @file type_name.hpp
/// Readable type names for error messages and the handshake.

#include <boost/core/demangle.hpp>

#include <cstdint>
#include <string>
#include <typeinfo>

namespace foreman {
namespace detail {

template <class T>
std::string type_name() {
  return boost::core::demangle(typeid(T).name());
}

inline std::string type_name(const std::type_info& info) { return boost::core::demangle(info.name()); }

/// FNV-1a: a stable 64-bit fingerprint of a string (std::hash may differ between programs).
inline std::uint64_t fingerprint(const std::string& text, std::uint64_t hash = 14695981039346656037ull) {
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  return hash;
}

} // namespace detail
} // namespace foreman
