// The main of the test programs that use no MPI (run without mpirun): Catch2's own session.
#include "catch_session.hpp"

int main(int argc, char* argv[]) {
  bool bad_command_line = false;
  return foreman_test::run_catch_session(argc, argv, bad_command_line);
}
