#!/usr/bin/env bash
# The run command of the README:  bash scripts/run-examples.sh
#
# Installs the missing Debian/Ubuntu packages (scripts/install-deps.sh), builds the examples in
# build-run-examples/ (Release) and runs each of them under `mpiexec -n 4`, with the flags that
# launcher needs (scripts/launcher.sh: Open MPI wants --oversubscribe, and --allow-run-as-root
# as root; MPICH's Hydra wants none).
#
# The runs come from build-run-examples/examples/examples.txt, which examples/CMakeLists.txt
# writes: one run per line, the executable's path followed by its arguments.
# The failure example runs three times:
#   failure throw  a task throws: the master prints the other rows and the error, exit status 1
#                  by design, which is expected here;
#   failure crash  worker 2's process dies; hang: worker 2 never answers. Both run with the
#   failure hang   launcher's flags that keep the job alive when a rank ends (Open MPI:
#                  --enable-recovery); the master re-runs the task elsewhere and prints its last
#                  line, which the script checks (under --enable-recovery mpirun's own status is
#                  0 even if a rank fails; under Hydra it is the killed rank's). Hydra ends the
#                  whole job when a rank dies: there `failure crash` is skipped, with the reason.
# Every other run must succeed.
#
# Environment: FOREMAN_RANKS (default 4), FOREMAN_JOBS (build jobs, default: nproc),
# FOREMAN_BUILD_DIR (default build-run-examples/, or build-run-examples-mpich/),
# FOREMAN_SKIP_DEPS=1 (do not check the packages), FOREMAN_MPI=mpich (build against MPICH, with
# Boost.MPI built for it by scripts/boost-mpi-for-mpich.sh, and run under mpiexec.mpich),
# FOREMAN_MPIEXEC (the launcher, default mpiexec).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mpi=${FOREMAN_MPI:-default}
suffix=""
[[ $mpi == default ]] || suffix=-$mpi
build=${FOREMAN_BUILD_DIR:-$root/build-run-examples$suffix}
ranks=${FOREMAN_RANKS:-4}
jobs=${FOREMAN_JOBS:-$(nproc)}

if [[ ${FOREMAN_SKIP_DEPS:-0} != 1 ]]; then
  bash "$root/scripts/install-deps.sh"
fi

# shellcheck source=launcher.sh
source "$root/scripts/launcher.sh"
foreman_choose_mpi "$mpi"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release "${mpi_cmake_args[@]}" \
  -DFOREMAN_BUILD_EXAMPLES=ON -DFOREMAN_BUILD_TESTS=OFF -DFOREMAN_INSTALL=OFF
cmake --build "$build" --parallel "$jobs"

list=$build/examples/examples.txt
if [[ ! -s $list ]]; then
  echo "run-examples: no examples were built ($list is missing or empty)" >&2
  exit 1
fi

foreman_detect_launcher
mpirun=("$launcher" -n "$ranks" "${launcher_flags[@]}")

failed=()
count=0
while read -r -a example; do
  ((${#example[@]})) || continue
  program=${example[0]}
  name=$(basename "$program")
  run="$name${example[1]:+ ${example[1]}}"
  flags=()
  case $run in
    "failure crash" | "failure hang") flags=("${recovery_flags[@]}") ;;
  esac
  if [[ $run == "failure crash" && $recovery_ends == no ]]; then
    printf '\n>>> %s: skipped: under this launcher (%s) a job ends when one of its ranks dies;\n' "$run" "$launcher_kind"
    printf '>>> there, bin/foreman-supervise runs a killed job again from its journal (docs/reliability.md)\n'
    continue
  fi
  count=$((count + 1))
  printf '\n>>> %s: %s\n' "$run" "${mpirun[*]} ${flags[*]}${flags:+ }${example[*]#"$root/"}"
  status=0
  out=$(mktemp)
  timeout 300 "${mpirun[@]}" "${flags[@]}" "${example[@]}" </dev/null | tee "$out" || status=$?
  # The program's last line, before any banner of the launcher (Hydra's "BAD TERMINATION").
  last=$(sed '/^=\+$/,$d' "$out" | grep -v '^[[:space:]]*$' | tail -n 1 || true)
  rm -f "$out"
  if [[ $run == "failure throw" && $status -eq 1 ]]; then
    printf '>>> %s: exit status 1, as intended (a task failed and the master reported it)\n' "$run"
  elif [[ $run == "failure hang" && $status -ne 0 && $launcher_kind == hydra ]]; then
    # Hydra reports the status of the hung worker that foreman ended once the master had finished.
    if [[ $last != "Master: Operation Complete." ]]; then
      printf '>>> %s: FAILED: the master did not finish (last line: %s)\n' "$run" "$last"
      failed+=("$run")
    fi
  elif ((status != 0)); then
    printf '>>> %s: FAILED with exit status %d\n' "$run" "$status"
    failed+=("$run")
  elif [[ $run == failure* && $last != "Master: Operation Complete." ]]; then
    printf '>>> %s: FAILED: the master did not finish (last line: %s)\n' "$run" "$last"
    failed+=("$run")
  fi
done <"$list"

printf '\n>>> ran %d examples under %s\n' "$count" "${mpirun[*]}"
if ((${#failed[@]})); then
  printf 'FAILED: %s\n' "$(IFS=,; echo "${failed[*]}")"
  exit 1
fi
echo "All examples ran as expected."
