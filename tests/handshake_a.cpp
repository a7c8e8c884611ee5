// One half of the handshake-mismatch test: run under one mpirun with handshake_b, which uses
// other Task/Result types (mpiexec -n 1 handshake_a : -n 2 handshake_b). Every rank must get a
// foreman::handshake_error naming its own types; exit 0 only then. Also run under one mpirun
// with itself given --piece-bytes 9000 (test handshake.piece_size; options in handshake_check.hpp).
#include "handshake_check.hpp"

int main(int argc, char* argv[]) {
  return foreman_test::expect_handshake_error<int, int>(argc, argv, "int", "int");
}
