#pragma once
/// @file launch_check.hpp
/// A process that MPI sees alone (MPI_COMM_WORLD of size 1) although its launcher started several:
/// the MPI library it runs on did not join the launcher's job, so every process is a master that
/// runs every task itself, and the output is N copies of one run. It happens when the program was
/// built with another MPI than the launcher's (MPICH's mpiexec running a program linked to Open
/// MPI, or the reverse), or when srun was not given the PMI the library needs (`srun --mpi=`).
/// Each launcher tells the processes it starts how many it started, in its environment; that is
/// what is compared here.

#include <foreman/detail/announce.hpp>

#include <cstdlib>
#include <optional>
#include <string>

namespace foreman {
namespace detail {

/// What a launcher's environment says it started: the variable read and its value.
struct launcher_count {
  std::string variable;
  long processes = 0;
};

/// The first of the launchers' process counts that says more than `world_size`, looked up with
/// `get(name)` (std::getenv, or a fake one in a test; null: not set): OMPI_COMM_WORLD_SIZE (Open
/// MPI's mpirun), PMI_SIZE (Hydra: MPICH, Intel MPI, MVAPICH), SLURM_STEP_NUM_TASKS (srun's job
/// step). nullopt when none does, or when a value is not a number.
template <class Get>
std::optional<launcher_count> launcher_started_more(int world_size, Get&& get) {
  for (const char* variable : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_STEP_NUM_TASKS"}) {
    const char* value = get(variable);
    if (value == nullptr || *value == '\0') continue;
    char* end = nullptr;
    const long processes = std::strtol(value, &end, 10);
    if (*end != '\0') continue;
    if (processes > world_size) return launcher_count{variable, processes};
  }
  return std::nullopt;
}

/// The line warn_if_alone() prints for `found`.
inline std::string alone_message(const launcher_count& found) {
  return "this process is MPI rank 0 of 1, but its launcher started " + std::to_string(found.processes) +
         " processes (" + found.variable + "=" + std::to_string(found.processes) +
         "): each runs alone, as a master that runs every task itself. Its MPI library did not join the "
         "launcher's job: the program was built with another MPI than the launcher's (see docs/mpi.md), or "
         "srun was not given the PMI the library needs (srun --mpi=list; see docs/clusters.md)";
}

/// Prints alone_message() on standard error, once per process, when MPI_COMM_WORLD has one rank
/// and the launcher's environment says it started more (launcher_started_more()). Not collective.
inline void warn_if_alone(int world_size) {
  static bool warned = false;
  if (world_size != 1 || warned) return;
  if (const auto found = launcher_started_more(world_size, [](const char* name) { return std::getenv(name); })) {
    warned = true;
    announce(alone_message(*found));
  }
}

} // namespace detail
} // namespace foreman
