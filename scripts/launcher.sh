# Sourced by the scripts that start MPI jobs: finds out which launcher `mpiexec` is and which of
# its flags a job needs. The same rules as cmake/foremanTesting.cmake (keep the two in step).
#
#   source scripts/launcher.sh
#   foreman_detect_launcher [mpiexec]     # default: $FOREMAN_MPIEXEC, else mpiexec
#
# sets
#   launcher          the command (an absolute path when found on PATH)
#   launcher_kind     openmpi | hydra (MPICH, Intel MPI, MVAPICH) | slurm (srun) | unknown
#   launcher_flags    what every job needs here: Open MPI refuses more ranks than cores without
#                     --oversubscribe and refuses root without --allow-run-as-root; Hydra takes
#                     both as they are; srun needs --overcommit for more tasks than CPUs
#   recovery_flags    what keeps the other ranks going when one dies: Open MPI
#                     `--enable-recovery --mca async_mpi_finalize 1`, srun `--kill-on-bad-exit=0`;
#                     empty for Hydra (see recovery_ends) and when unknown
#   recovery_ends     yes when a job goes on after one of its ranks died and then ends by itself
#                     (Open MPI with recovery_flags, on one host: measured); no when the launcher
#                     cannot keep such a job (Hydra: it ends the job at the death; measured with
#                     MPICH 4.0.2, -disable-auto-cleanup left mpiexec exiting at once or hanging, the
#                     survivors stuck in MPI_Finalize), where bin/foreman-supervise runs the job
#                     again from its checkpoint journal; unknown otherwise
# Detected from `<mpiexec> --version`: "Open MPI"/"OpenRTE", "HYDRA"/"Intel(R) MPI", "slurm".

foreman_detect_launcher() {
  launcher=${1:-${FOREMAN_MPIEXEC:-mpiexec}}
  launcher=$(command -v "$launcher" || echo "$launcher")
  local version
  version=$("$launcher" --version 2>&1 </dev/null | head -n 20 || true)
  launcher_flags=()
  recovery_flags=()
  recovery_ends=unknown
  case $version in
  *"Open MPI"* | *OpenRTE*)
    launcher_kind=openmpi
    launcher_flags=(--oversubscribe)
    if [[ $(id -u) -eq 0 ]]; then launcher_flags+=(--allow-run-as-root); fi
    recovery_flags=(--enable-recovery --mca async_mpi_finalize 1)
    recovery_ends=yes
    ;;
  *HYDRA* | *"Intel(R) MPI"*)
    launcher_kind=hydra
    recovery_ends=no
    ;;
  *slurm*)
    launcher_kind=slurm
    launcher_flags=(--overcommit)
    recovery_flags=(--kill-on-bad-exit=0)
    ;;
  *)
    launcher_kind=unknown
    ;;
  esac
}

# foreman_choose_mpi <openmpi|mpich|default>: the MPI that a build uses, for the scripts' builds.
# Sets mpi_cmake_args (arguments for `cmake -S ... -B ...`) and FOREMAN_MPIEXEC. For mpich it
# builds Boost.MPI for MPICH first when the cache lacks it (scripts/boost-mpi-for-mpich.sh, about
# 2 minutes once); default leaves CMake's own choice (Debian: Open MPI) and mpiexec.
foreman_choose_mpi() {
  mpi_cmake_args=()
  case ${1:-default} in
  default) FOREMAN_MPIEXEC=${FOREMAN_MPIEXEC:-mpiexec} ;;
  openmpi)
    mpi_cmake_args=(-DMPI_CXX_COMPILER="$(command -v mpicxx.openmpi)" -DMPIEXEC_EXECUTABLE="$(command -v mpiexec.openmpi)")
    FOREMAN_MPIEXEC=mpiexec.openmpi
    ;;
  mpich)
    local here prefix
    here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
    prefix=$(bash "$here/boost-mpi-for-mpich.sh" | tail -n 1) || return 1
    mpi_cmake_args=(-DCMAKE_PREFIX_PATH="$prefix" -DBoost_NO_SYSTEM_PATHS=ON
      -DMPI_CXX_COMPILER="$(command -v mpicxx.mpich)" -DMPIEXEC_EXECUTABLE="$(command -v mpiexec.mpich)")
    FOREMAN_MPIEXEC=mpiexec.mpich
    ;;
  *)
    echo "FOREMAN_MPI must be openmpi, mpich or default, not '$1'" >&2
    return 1
    ;;
  esac
}
