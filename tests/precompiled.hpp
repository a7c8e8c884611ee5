#pragma once
// What the test programs include from outside foreman, parsed once per build tree and reused by
// every program compiled with the same options (GCC or Clang precompiled header; tests/CMakeLists.txt,
// FOREMAN_PRECOMPILE_HEADERS). foreman's own headers are left out: a program may change what
// they compile to (FOREMAN_DETAIL_DEFAULT_DISPATCH, FOREMAN_DETAIL_TEST_HOOKS), and they are
// what the suites test. A program whose options differ from the donor's (foreman_test_main) in a way
// that matters to these headers makes the compiler refuse the header (-Winvalid-pch, an error
// under -Werror), never use a wrong one.
#include "catch.hpp"

#include <boost/archive/binary_iarchive.hpp>
#include <boost/archive/binary_oarchive.hpp>
#include <boost/crc.hpp>
#include <boost/mpi/collectives.hpp>
#include <boost/mpi/communicator.hpp>
#include <boost/mpi/datatype.hpp>
#include <boost/mpi/environment.hpp>
#include <boost/serialization/array.hpp>
#include <boost/serialization/deque.hpp>
#include <boost/serialization/list.hpp>
#include <boost/serialization/map.hpp>
#include <boost/serialization/set.hpp>
#include <boost/serialization/string.hpp>
#include <boost/serialization/unordered_map.hpp>
#include <boost/serialization/unordered_set.hpp>
#include <boost/serialization/utility.hpp>
#include <boost/serialization/vector.hpp>

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <queue>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <variant>
#include <vector>
