#pragma once
/// @file announce.hpp
/// The master's one-line messages on standard error (lost workers, tasks sent again), and the
/// compact form in which they name tasks.

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <string>
#include <vector>

namespace foreman {
namespace detail {

/// Writes "foreman: <line>" on standard error, in one call: lines from several ranks do not
/// interleave.
inline void announce(const std::string& line) {
  const std::string text = "foreman: " + line + "\n";
  std::fputs(text.c_str(), stderr); // one call: lines from several ranks do not interleave
}

/// Task indices as ranges, "4, 7-9, 12", at most `limit` ranges ("..., and 5 more ranges").
inline std::string index_ranges(std::vector<std::size_t> indices, std::size_t limit = 16) {
  std::sort(indices.begin(), indices.end());
  std::string text;
  std::size_t ranges = 0;
  for (std::size_t k = 0; k < indices.size();) {
    std::size_t last = k;
    while (last + 1 < indices.size() && indices[last + 1] == indices[last] + 1) ++last;
    if (ranges++ < limit) {
      text += (text.empty() ? "" : ", ") + std::to_string(indices[k]);
      if (last > k) text += "-" + std::to_string(indices[last]);
    }
    k = last + 1;
  }
  if (ranges > limit) text += ", and " + std::to_string(ranges - limit) + " more ranges";
  return text;
}

} // namespace detail
} // namespace foreman
