// Handshake-mismatch tests of layout: Task and Result keep their names in every build of this
// file, but the macros change what they are, as two builds of one program from different
// sources would (mpiexec -n 1 handshake_layout : -n 2 handshake_layout_wider_task). Every rank
// must get a foreman::handshake_error naming the layout; exit 0 only then.
#include "handshake_check.hpp"

#include <cstdint>

namespace handshake_test {

struct job {
  std::int32_t id;
#ifdef HANDSHAKE_WIDER_TASK
  std::int32_t extra; // one member more: same name, 8 bytes instead of 4
#endif
#ifdef HANDSHAKE_SERIALIZED_TASK
  // Same size and alignment, but sent through serialize() instead of as its bytes.
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar& id;
  }
#endif
};

struct
#ifdef HANDSHAKE_ALIGNED_RESULT
    alignas(16) // same members, other alignment (and so size)
#endif
    reply {
  double value;
};

} // namespace handshake_test

int main(int argc, char* argv[]) {
  return foreman_test::expect_handshake_error<handshake_test::job, handshake_test::reply>(
      argc, argv, "handshake_test::job", "handshake_test::reply",
      "disagree with the master (rank 0) on the Task/Result layout");
}
