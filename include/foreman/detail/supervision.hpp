#pragma once
/// @file supervision.hpp
/// What the master tells `foreman-supervise` (bin/foreman-supervise), the launcher wrapper that
/// runs a job again from its checkpoint journal when it dies: that the user's code on the master
/// is done. The wrapper sets the environment variable `FOREMAN_SUPERVISOR_STATUS` to a file; the
/// master appends one line to it when MPI_Finalize begins, from the delete callback of an
/// attribute on MPI_COMM_SELF (MPI-3.1 §8.7.1: MPI_Finalize deletes MPI_COMM_SELF's attributes
/// first, before any other work, so the line is written even if the rest of MPI_Finalize then
/// waits for a dead or hung rank). After that line, a job that does not end is a job whose
/// results are all in: the wrapper ends it instead of running it again.
///
/// Without the variable (no supervisor) nothing is registered and nothing is written.

#include <mpi.h>

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

namespace foreman {
namespace detail {

/// The line the master appends to $FOREMAN_SUPERVISOR_STATUS when MPI_Finalize begins.
inline constexpr const char* supervisor_finalize_line = "master-finalize\n";

inline int note_finalize(MPI_Comm, int, void*, void*) {
  const char* path = std::getenv("FOREMAN_SUPERVISOR_STATUS");
  if (path == nullptr || *path == '\0') return MPI_SUCCESS;
  const int fd = ::open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return MPI_SUCCESS; // the wrapper then treats the job as unfinished: never wrong, only slower
  const std::size_t length = std::strlen(supervisor_finalize_line);
  const ssize_t written = ::write(fd, supervisor_finalize_line, length);
  (void)written; // nothing more to do if it fails: see above
  ::close(fd);
  return MPI_SUCCESS;
}

/// On the master, when a supervisor is watching: arranges for the finalize line to be written
/// once per process, however many pools it builds. Called by the pool's constructor; not
/// collective. Silently does nothing when MPI is finalized or the attribute cannot be set (the
/// supervisor then runs the job again after its end: slower, never wrong).
inline void watch_for_supervisor(bool is_master) {
  if (!is_master) return;
  const char* path = std::getenv("FOREMAN_SUPERVISOR_STATUS");
  if (path == nullptr || *path == '\0') return;
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) return;
  // The one process-wide fact of foreman: MPI_COMM_SELF is per process too.
  static bool registered = false;
  if (registered) return;
  int keyval = MPI_KEYVAL_INVALID;
  if (MPI_Comm_create_keyval(MPI_COMM_NULL_COPY_FN, note_finalize, &keyval, nullptr) != MPI_SUCCESS) return;
  if (MPI_Comm_set_attr(MPI_COMM_SELF, keyval, nullptr) != MPI_SUCCESS) return;
  registered = true;
}

} // namespace detail
} // namespace foreman
