#pragma once
/// @file group_layout.hpp
/// Which rank of a grouped pool is the master, a sub-master or a worker, and of which group
/// (foreman::hierarchy), and how a grouped run cuts its tasks into batches. Plain arithmetic on the rank and the pool's
/// size: no MPI, unit-tested in tests/group_layout_test.cpp.

#include <foreman/hierarchy.hpp>
#include <foreman/options.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdlib>
#include <vector>

namespace foreman {
namespace detail {

/// The groups of a pool of `size` ranks with `group_size` workers per sub-master. Group g's ranks
/// are [first(g), first(g + 1)): its sub-master first(g), then its workers. Rank 0 (the master)
/// is in no group. No groups (flat()) when group_size < 1 or fewer than 3 ranks.
class group_layout {
public:
  group_layout() = default;
  group_layout(int size, int group_size) {
    const int ranks = size - 1; // ranks 1 .. size - 1
    if (group_size < 1 || ranks < 2) return;
    const int span = group_size + 1;
    const int full = ranks / span;
    const int left = ranks % span;
    for (int g = 0; g < full; ++g) firsts_.push_back(1 + g * span);
    // Left-over ranks: a group of their own when they hold a sub-master and a worker; a lone
    // one joins the last group as a worker (or is the whole pool's only group, with ranks < span).
    if (left >= 2 || full == 0) firsts_.push_back(1 + full * span);
    firsts_.push_back(size); // the end of the last group
  }

  /// Whether the pool is grouped.
  bool grouped() const noexcept { return !firsts_.empty(); }
  /// Number of groups (of sub-masters).
  int groups() const noexcept { return grouped() ? static_cast<int>(firsts_.size()) - 1 : 0; }
  /// First rank of group g (its sub-master); first(groups()) is the pool's size.
  int first(int g) const { return firsts_[static_cast<std::size_t>(g)]; }
  /// Workers of group g (its ranks but the sub-master).
  int workers(int g) const { return first(g + 1) - first(g) - 1; }
  /// Ranks that compute: every rank but the master and the sub-masters.
  int computing() const { return grouped() ? first(groups()) - 1 - groups() : 0; }

  /// The group of `rank`, or -1 for the master (and for every rank of a flat pool).
  int group_of(int rank) const {
    if (!grouped() || rank < 1 || rank >= first(groups())) return -1;
    int lo = 0, hi = groups(); // first(lo) <= rank < first(hi)
    while (hi - lo > 1) {
      const int mid = (lo + hi) / 2;
      (first(mid) <= rank ? lo : hi) = mid;
    }
    return lo;
  }
  /// The rank in the whole pool of rank t of the top layer (the master and the sub-masters, in
  /// group order): 0 for the master, group t - 1's sub-master otherwise.
  int rank_of_top(int t) const { return t >= 1 ? first(t - 1) : t; }
  /// Whether `rank` is a sub-master.
  bool is_sub_master(int rank) const {
    const int g = group_of(rank);
    return g >= 0 && first(g) == rank;
  }

  /// The group size hierarchy `h` gives a pool of `size` ranks: h.group_size when set (0: flat);
  /// for automatic(), flat below hierarchy::automatic_threshold workers, else round(√workers).
  static int group_size_for(hierarchy h, int size) {
    if (h.group_size >= 0) return h.group_size;
    const int workers = size - 1;
    if (workers < hierarchy::automatic_threshold) return 0;
    return static_cast<int>(std::lround(std::sqrt(static_cast<double>(workers))));
  }

private:
  std::vector<int> firsts_; // first rank of each group, then the pool's size; empty: flat
};

/// Tasks per batch for a run of `tasks` tasks over `layout`'s groups: about eight batches per
/// group, so that a group finishing early takes the next one and the groups end close together;
/// at least the largest group's worker count (every worker of a group gets a task of each batch);
/// at most 16,384 (a batch is one message, held whole on the master and its sub-master).
inline std::size_t batch_size(std::size_t tasks, const group_layout& layout) {
  const auto groups = static_cast<std::size_t>(layout.groups());
  std::size_t widest = 1;
  for (int g = 0; g < layout.groups(); ++g) widest = std::max(widest, static_cast<std::size_t>(layout.workers(g)));
  const std::size_t even = (tasks + 8 * groups - 1) / (8 * groups);
  return std::min<std::size_t>(std::max(even, widest), 16384);
}

/// `h`, or, when it is hierarchy::automatic() (the default) and FOREMAN_GROUP_SIZE holds a
/// whole number from 0 to 1,000,000, groups of that many workers (0: flat). A choice made in the
/// code is kept: the variable changes only pools that left the choice to foreman.
inline hierarchy group_size_from_env(hierarchy h) {
  if (h.group_size >= 0) return h;
  const char* env = std::getenv("FOREMAN_GROUP_SIZE");
  if (env == nullptr || *env == '\0') return h;
  char* end = nullptr;
  const long value = std::strtol(env, &end, 10);
  if (*end != '\0' || value < 0 || value > 1000000) return h;
  return hierarchy::groups(static_cast<int>(value));
}

} // namespace detail
} // namespace foreman
