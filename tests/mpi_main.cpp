// The main of every Catch2 test program, for running under mpirun: every rank runs the same
// test cases in the same order (each pool is built and run collectively inside a test case),
// and a failure on any rank makes every rank exit non-zero, so mpirun and CTest see it.
//
// --piece-bytes N (taken off the command line before Catch2 reads it): the piece size is N
// (piece_bytes_option.hpp), and the program fails unless what it sent shows it: at 2 ranks or
// more, at least one piece of exactly N bytes and no body or long message over N (counted below).
//
// --mpi-threads single|funneled|serialized|multiple (taken off the command line before MPI starts):
// the thread support asked of MPI (boost::mpi::environment's mt_level); without it, MPI_Init's.
// The send thread's tests (send_progress_test.cpp) run under several levels.
#include "catch_session.hpp"
#include "piece_bytes_option.hpp"

#include <foreman/detail/wire.hpp>

#include <boost/mpi/collectives.hpp>
#include <boost/mpi/communicator.hpp>
#include <boost/mpi/environment.hpp>

#include <mpi.h>

#include <array>
#include <cstddef>
#include <cstring>
#include <exception>
#include <functional>
#include <iostream>
#include <optional>
#include <string>

namespace {

// The sends of pieces' tags (a body, an envelope's message: wire.hpp) as MPI_BYTE, counted while
// `piece` is not 0: those of exactly `piece` bytes, and those longer.
struct piece_sends {
  std::size_t piece = 0;
  unsigned long long whole_pieces = 0;
  unsigned long long longer = 0;
};
piece_sends sent;

// Takes "--mpi-threads LEVEL" off the command line (argc shrinks, argv keeps its closing null):
// the level, nothing when the option is absent; `bad` names a level that is not one.
std::optional<boost::mpi::threading::level> take_thread_level(int& argc, char* argv[], std::string& bad) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--mpi-threads") != 0) continue;
    const std::string text = i + 1 < argc ? argv[i + 1] : "";
    for (int k = i; k + 2 <= argc; ++k) argv[k] = argv[k + 2];
    argc -= 2;
    if (text == "single") return boost::mpi::threading::single;
    if (text == "funneled") return boost::mpi::threading::funneled;
    if (text == "serialized") return boost::mpi::threading::serialized;
    if (text == "multiple") return boost::mpi::threading::multiple;
    bad = text;
    return std::nullopt;
  }
  return std::nullopt;
}

bool piece_tag(int t) {
  using foreman::detail::tag;
  return t == static_cast<int>(tag::task_body) || t == static_cast<int>(tag::result_body) ||
         t == static_cast<int>(tag::tasks_large) || t == static_cast<int>(tag::results_large);
}

} // namespace

// MPI's profiling interface: this program's MPI_Isend replaces the library's, which it calls as
// PMPI_Isend. foreman sends every piece with MPI_Isend (transport.hpp: post_pieces()).
extern "C" int MPI_Isend(const void* buf, int count, MPI_Datatype datatype, int dest, int tag, MPI_Comm comm,
                         MPI_Request* request) {
  if (sent.piece != 0 && datatype == MPI_BYTE && piece_tag(tag) && count >= 0) {
    const auto bytes = static_cast<std::size_t>(count);
    if (bytes == sent.piece) ++sent.whole_pieces;
    if (bytes > sent.piece) ++sent.longer;
  }
  return PMPI_Isend(buf, count, datatype, dest, tag, comm, request);
}

int main(int argc, char* argv[]) {
  std::string bad_level;
  const auto level = take_thread_level(argc, argv, bad_level);
  std::optional<boost::mpi::environment> env;
  if (level)
    env.emplace(argc, argv, *level);
  else
    env.emplace(argc, argv);
  boost::mpi::communicator world;
  if (!bad_level.empty()) {
    if (world.rank() == 0)
      std::cerr << "foreman tests: --mpi-threads takes single, funneled, serialized or multiple, not '" << bad_level
                << "'\n";
    return 2;
  }

  // Every rank parses the same arguments, so every rank agrees on what follows.
  std::optional<std::size_t> piece;
  try {
    piece = foreman_test::apply_piece_bytes_option(argc, argv);
  } catch (const std::exception& e) {
    if (world.rank() == 0) std::cerr << "foreman tests: " << e.what() << '\n';
    return 2;
  }
  if (piece) sent.piece = *piece;

  bool bad_command_line = false;
  const int local_failures = foreman_test::run_catch_session(argc, argv, bad_command_line);
  if (bad_command_line) return local_failures;
  int failures = 0;
  boost::mpi::all_reduce(world, local_failures, failures, std::plus<int>());
  if (failures != 0 && local_failures == 0 && world.rank() == 0)
    std::cerr << "foreman tests: assertions failed on other ranks (" << failures << " failed test cases in total)\n";

  // At 1 rank nothing travels: the size in effect is all there is to check.
  bool pieces_shown = true;
  if (piece && world.size() == 1) {
    pieces_shown = foreman::detail::piece_bytes() == *piece;
  } else if (piece) {
    const std::array<unsigned long long, 2> mine{sent.whole_pieces, sent.longer};
    std::array<unsigned long long, 2> all{};
    boost::mpi::all_reduce(world, mine.data(), 2, all.data(), std::plus<unsigned long long>());
    pieces_shown = all[0] > 0 && all[1] == 0;
    if (!pieces_shown && world.rank() == 0)
      std::cerr << "foreman tests: run with --piece-bytes " << *piece << ", the ranks sent " << all[0]
                << " piece(s) of " << *piece << " bytes and " << all[1]
                << " body or long message(s) longer (expected: some, and none)\n";
  }
  // Catch2 reports the number of failed test cases as the exit code, capped at 255.
  return failures == 0 && pieces_shown ? 0 : 1;
}
