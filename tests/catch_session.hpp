#pragma once
// The Catch2 session of every test program, for its main (mpi_main.cpp, plain_main.cpp): Catch2 v2
// compiles its whole implementation where its session is defined, so that happens once, in
// catch_session.cpp, not once per main.

namespace foreman_test {

/// Runs the test cases the command line selects, in the order they are declared: every rank of an
/// MPI test program must enter the same test cases in the same order (Catch2 v3 shuffles by
/// default, with a seed of each process's own). Returns Catch2's status: the number of failed test
/// cases, capped at 255, or, when the command line is wrong, its error status, with
/// `bad_command_line` set (nothing ran).
int run_catch_session(int argc, char* argv[], bool& bad_command_line);

} // namespace foreman_test
