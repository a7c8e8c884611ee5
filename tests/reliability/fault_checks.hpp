#pragma once
// The fault programs' checks: each failed one printed as "CHECK FAILED: ..." on standard error
// and counted; the program prints the count in its summary line, which CTest judges (under
// --enable-recovery Open MPI's exit status says nothing).

#include <cstdio>
#include <string>

namespace fault_checks {

inline int failures = 0;

inline void check(bool condition, const std::string& what) {
  if (condition) return;
  std::fprintf(stderr, "CHECK FAILED: %s\n", what.c_str());
  ++failures;
}

} // namespace fault_checks
