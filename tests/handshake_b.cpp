// The other half of the handshake-mismatch test (see handshake_a.cpp). Built twice: with a
// different Task type (double, int), and with a different Result type only (int, long).
#include "handshake_check.hpp"

#ifndef HANDSHAKE_TASK
#define HANDSHAKE_TASK double
#endif
#ifndef HANDSHAKE_RESULT
#define HANDSHAKE_RESULT int
#endif
#define HANDSHAKE_STR(x) HANDSHAKE_STR2(x)
#define HANDSHAKE_STR2(x) #x

int main(int argc, char* argv[]) {
  return foreman_test::expect_handshake_error<HANDSHAKE_TASK, HANDSHAKE_RESULT>(
      argc, argv, HANDSHAKE_STR(HANDSHAKE_TASK), HANDSHAKE_STR(HANDSHAKE_RESULT));
}
