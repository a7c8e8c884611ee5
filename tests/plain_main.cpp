// The main of the test programs that use no MPI (run without mpirun): Catch2's own session.
#define CATCH_CONFIG_RUNNER // Catch2 v2: we provide main()
#include "catch.hpp"

int main(int argc, char* argv[]) {
  return Catch::Session().run(argc, argv);
}
