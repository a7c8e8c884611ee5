#pragma once
// The option --piece-bytes N of foreman's MPI test programs (tests/mpi_main.cpp, the handshake
// programs): this process's piece size (wire.hpp) set to N before its first pool, so that values
// of tens of KiB travel in pieces. tests/CMakeLists.txt runs some suites twice, as they are and
// with the option (<suite>_pieces.<n>ranks), from one build.

#include <foreman/detail/wire.hpp>

#include <cctype>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>

namespace foreman_test {

/// Takes "--piece-bytes N" off the command line (argc shrinks, argv keeps its closing null) and
/// sets the piece size to N; returns N, or nothing when the option is absent.
/// @throws std::invalid_argument when N is missing or not a decimal number; foreman::error when
///         foreman refuses the size (detail::set_piece_bytes())
inline std::optional<std::size_t> apply_piece_bytes_option(int& argc, char* argv[]) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--piece-bytes") != 0) continue;
    const std::string text = i + 1 < argc ? argv[i + 1] : "";
    char* end = nullptr;
    const unsigned long long bytes = std::strtoull(text.c_str(), &end, 10);
    if (text.empty() || !std::isdigit(static_cast<unsigned char>(text.front())) || *end != '\0')
      throw std::invalid_argument("--piece-bytes takes a number of bytes, not '" + text + "'");
    for (int k = i; k + 2 <= argc; ++k) argv[k] = argv[k + 2];
    argc -= 2;
    foreman::detail::set_piece_bytes(static_cast<std::size_t>(bytes));
    return static_cast<std::size_t>(bytes);
  }
  return std::nullopt;
}

} // namespace foreman_test
