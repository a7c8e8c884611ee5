// The layout of a grouped pool (detail/group_layout.hpp) and the batch sizes of a grouped run
// (detail/grouped_run.hpp), without MPI: every rank but the master in exactly one group, each group a
// sub-master followed by at least one worker, and the sizes the documentation promises.

#include "catch.hpp"

#include <foreman/detail/group_layout.hpp>

#include <cstdlib>
#include <set>

using foreman::hierarchy;
using foreman::detail::group_layout;

TEST_CASE("every rank but the master is in one group: a sub-master, then at least one worker", "[group_layout]") {
  for (int size = 1; size <= 70; ++size) {
    for (int group_size = 0; group_size <= 9; ++group_size) {
      INFO("size " << size << ", group_size " << group_size);
      const group_layout layout(size, group_size);
      if (group_size == 0 || size < 3) {
        CHECK_FALSE(layout.grouped());
        CHECK(layout.groups() == 0);
        for (int r = 0; r < size; ++r) CHECK(layout.group_of(r) == -1);
        continue;
      }
      REQUIRE(layout.grouped());
      CHECK(layout.group_of(0) == -1);
      CHECK_FALSE(layout.is_sub_master(0));
      CHECK(layout.first(0) == 1);
      CHECK(layout.first(layout.groups()) == size);
      int computing = 0;
      for (int g = 0; g < layout.groups(); ++g) {
        CHECK(layout.first(g) < layout.first(g + 1));
        CHECK(layout.workers(g) >= 1);
        // group_size workers each, but the last, which takes what is left (up to one more)
        if (g + 1 < layout.groups())
          CHECK(layout.workers(g) == group_size);
        else
          CHECK(layout.workers(g) <= group_size + 1);
        CHECK(layout.is_sub_master(layout.first(g)));
        for (int r = layout.first(g); r < layout.first(g + 1); ++r) {
          CHECK(layout.group_of(r) == g);
          CHECK(layout.is_sub_master(r) == (r == layout.first(g)));
        }
        computing += layout.workers(g);
      }
      CHECK(layout.computing() == computing);
      CHECK(computing + layout.groups() + 1 == size);
      // as many groups as full spans fit, one more for a remainder of two or more ranks
      const int span = group_size + 1, full = (size - 1) / span, left = (size - 1) % span;
      CHECK(layout.groups() == (full == 0 ? 1 : full + (left >= 2 ? 1 : 0)));
    }
  }
}

TEST_CASE("a few layouts spelled out", "[group_layout]") {
  const group_layout seven(7, 2); // 0 | 1: 2 3 | 4: 5 6
  REQUIRE(seven.groups() == 2);
  CHECK(seven.first(0) == 1);
  CHECK(seven.first(1) == 4);
  CHECK(seven.computing() == 4);
  const group_layout eight(8, 2); // 0 | 1: 2 3 | 4: 5 6 7 (the lone rank left over joins)
  REQUIRE(eight.groups() == 2);
  CHECK(eight.workers(1) == 3);
  const group_layout nine(9, 2); // 0 | 1: 2 3 | 4: 5 6 | 7: 8
  REQUIRE(nine.groups() == 3);
  CHECK(nine.workers(2) == 1);
  const group_layout three(3, 5); // 0 | 1: 2 (fewer ranks than a span: one group of what there is)
  REQUIRE(three.groups() == 1);
  CHECK(three.workers(0) == 1);
  // the top layer's ranks 0 1 2 3 are the whole pool's master and sub-masters 0 1 4 7
  for (int t = 0; t <= nine.groups(); ++t) {
    INFO("top rank " << t);
    CHECK(nine.rank_of_top(t) == (t == 0 ? 0 : 3 * t - 2));
    if (t > 0) CHECK(nine.is_sub_master(nine.rank_of_top(t)));
  }
}

TEST_CASE("automatic grouping starts at the threshold with groups of about the square root", "[group_layout]") {
  const int threshold = hierarchy::automatic_threshold;
  CHECK(group_layout::group_size_for(hierarchy::automatic(), 2) == 0);
  CHECK(group_layout::group_size_for(hierarchy::automatic(), threshold) == 0); // threshold - 1 workers
  CHECK(group_layout::group_size_for(hierarchy::automatic(), threshold + 1) == 32);
  CHECK(group_layout::group_size_for(hierarchy::automatic(), 10001) == 100);
  CHECK(group_layout::group_size_for(hierarchy::flat(), 10001) == 0);
  CHECK(group_layout::group_size_for(hierarchy::groups(7), 4) == 7);
  CHECK(hierarchy::groups(0).group_size == 0);
  CHECK(hierarchy::groups(-3).group_size == 0);
}

TEST_CASE("FOREMAN_GROUP_SIZE replaces automatic() only", "[group_layout]") {
  using foreman::detail::group_size_from_env;
  ::setenv("FOREMAN_GROUP_SIZE", "3", 1);
  CHECK(group_size_from_env(hierarchy::automatic()).group_size == 3);
  CHECK(group_size_from_env(hierarchy::flat()).group_size == 0);
  CHECK(group_size_from_env(hierarchy::groups(5)).group_size == 5);
  ::setenv("FOREMAN_GROUP_SIZE", "0", 1);
  CHECK(group_size_from_env(hierarchy::automatic()).group_size == 0);
  for (const char* bad : {"", "x", "3x", "-1", "2000000"}) {
    INFO("FOREMAN_GROUP_SIZE=" << bad);
    ::setenv("FOREMAN_GROUP_SIZE", bad, 1);
    CHECK(group_size_from_env(hierarchy::automatic()).group_size == -1);
  }
  ::unsetenv("FOREMAN_GROUP_SIZE");
  CHECK(group_size_from_env(hierarchy::automatic()).group_size == -1);
}

TEST_CASE("a grouped run's batches: about eight per group, at least a task per worker, at most 16,384",
          "[group_layout]") {
  using foreman::detail::batch_size;
  const group_layout two(7, 2);       // two groups of 2 workers
  CHECK(batch_size(1000, two) == 63); // ceil(1000 / 16)
  CHECK(batch_size(16, two) == 2);
  CHECK(batch_size(3, two) == 2); // one task each for a group's 2 workers
  CHECK(batch_size(0, two) == 2);
  CHECK(batch_size(100000000, two) == 16384);
  const group_layout uneven(8, 2); // groups of 2 and 3 workers
  CHECK(batch_size(10, uneven) == 3);
}

