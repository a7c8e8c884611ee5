// Catch2's implementation (v2 compiles it where CATCH_CONFIG_RUNNER is defined; v3 is a library
// and ignores the macro) and the session of every test program's main (catch_session.hpp).
#define CATCH_CONFIG_RUNNER
#include "catch_session.hpp"
#include "catch.hpp"

int foreman_test::run_catch_session(int argc, char* argv[], bool& bad_command_line) {
  Catch::Session session;
  const int parse_status = session.applyCommandLine(argc, argv);
  bad_command_line = parse_status != 0;
  if (bad_command_line) return parse_status;
#if FOREMAN_TEST_CATCH2_V3
  session.configData().runOrder = Catch::TestRunOrder::Declared;
#else
  session.configData().runOrder = Catch::RunTests::InDeclarationOrder;
#endif
  return session.run();
}
