#pragma once
/// @file mpi_check.hpp
/// Every MPI call foreman makes goes through check_mpi(): a return code other than MPI_SUCCESS
/// becomes a foreman::mpi_error naming the call, the peer and MPI's own description. The pool's
/// communicator has MPI_ERRORS_RETURN set explicitly (master_worker's constructor), so a failing
/// call returns instead of aborting the job, and is never silently ignored.

#include <foreman/errors.hpp>

#include <mpi.h>

#include <string>

#if defined(__GNUC__) || defined(__clang__)
#define FOREMAN_DETAIL_MPI_COLD __attribute__((noinline, cold))
#else
#define FOREMAN_DETAIL_MPI_COLD
#endif

namespace foreman {
namespace detail {

/// MPI's text for an error code, and its class.
inline std::string mpi_error_text(int code) {
  char text[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  if (MPI_Error_string(code, text, &length) != MPI_SUCCESS) return "MPI error code " + std::to_string(code);
  return std::string(text, static_cast<std::size_t>(length));
}

[[noreturn]] FOREMAN_DETAIL_MPI_COLD inline void throw_mpi_error(int code, const char* call, int peer) {
  int error_class = code;
  if (MPI_Error_class(code, &error_class) != MPI_SUCCESS) error_class = MPI_ERR_UNKNOWN;
  std::string what = std::string(call) + " failed";
  if (peer >= 0) what += " (peer rank " + std::to_string(peer) + ")";
  throw mpi_error(what + ": " + mpi_error_text(code) + " (MPI error class " + std::to_string(error_class) + ")", code,
                  error_class, peer);
}

/// @throws mpi_error when `code` is not MPI_SUCCESS; `peer`: the rank the call talked to, or -1
inline void check_mpi(int code, const char* call, int peer = -1) {
  if (code != MPI_SUCCESS) throw_mpi_error(code, call, peer);
}

/// For calls on several requests (MPI_Testsome, MPI_Testall, MPI_Waitall): with
/// MPI_ERR_IN_STATUS, the first status that holds an error names the failure and its peer.
inline void check_mpi_statuses(int code, const char* call, const MPI_Status* statuses, int count) {
  if (code == MPI_SUCCESS) return;
  if (code == MPI_ERR_IN_STATUS && statuses != MPI_STATUSES_IGNORE)
    for (int k = 0; k < count; ++k)
      if (statuses[k].MPI_ERROR != MPI_SUCCESS && statuses[k].MPI_ERROR != MPI_ERR_PENDING)
        throw_mpi_error(statuses[k].MPI_ERROR, call, statuses[k].MPI_SOURCE);
  throw_mpi_error(code, call, -1);
}

} // namespace detail
} // namespace foreman

#undef FOREMAN_DETAIL_MPI_COLD
