#pragma once
/// @file env_override.hpp
/// An option that an environment variable may override on the ranks that see it (FOREMAN_WAIT,
/// FOREMAN_SEND_THREAD): mpirun passes the environment on to local ranks, `-x NAME` to remote
/// ones, so a run can be changed without recompiling.

#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <utility>

namespace foreman {
namespace detail {

/// The value of environment variable `name` among `values` (its spellings and what each means),
/// or `option` when the variable is unset or holds another text.
template <class T>
T env_override(const char* name, T option, std::initializer_list<std::pair<const char*, T>> values) {
  const char* env = std::getenv(name);
  if (env == nullptr) return option;
  for (const auto& [text, value] : values)
    if (std::strcmp(env, text) == 0) return value;
  return option;
}

} // namespace detail
} // namespace foreman
