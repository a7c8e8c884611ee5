#!/usr/bin/env bash
# The run command of the README:  bash scripts/run-examples.sh
#
# Installs the missing Debian/Ubuntu packages (scripts/install-deps.sh), builds the examples in
# build-run-examples/ (Release) and runs each of them under `mpirun -n 4`.
#
# The runs come from build-run-examples/examples/examples.txt, which examples/CMakeLists.txt
# writes: one run per line, the executable's path followed by its arguments.
# The failure example runs three times:
#   failure throw  a task throws: the master prints the other rows and the error, exit status 1
#                  by design, which is expected here;
#   failure crash  worker 2's process dies; hang: worker 2 never answers. Both run under
#   failure hang   `mpirun --enable-recovery` (Open MPI), which keeps the job alive when a rank
#                  dies; the master re-runs the task elsewhere and exits 0. Note that under
#                  --enable-recovery mpirun's own status is 0 even if a rank fails, so the
#                  script also checks that the master printed its last line.
# Every other run must succeed.
#
# Environment: FOREMAN_RANKS (default 4), FOREMAN_JOBS (build jobs, default: nproc),
# FOREMAN_BUILD_DIR (default build-run-examples/), FOREMAN_SKIP_DEPS=1 (do not check the packages).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${FOREMAN_BUILD_DIR:-$root/build-run-examples}
ranks=${FOREMAN_RANKS:-4}
jobs=${FOREMAN_JOBS:-$(nproc)}

if [[ ${FOREMAN_SKIP_DEPS:-0} != 1 ]]; then
  bash "$root/scripts/install-deps.sh"
fi

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release \
  -DFOREMAN_BUILD_EXAMPLES=ON -DFOREMAN_BUILD_TESTS=OFF -DFOREMAN_INSTALL=OFF
cmake --build "$build" --parallel "$jobs"

list=$build/examples/examples.txt
if [[ ! -s $list ]]; then
  echo "run-examples: no examples were built ($list is missing or empty)" >&2
  exit 1
fi

# More ranks than cores is fine for these examples; Open MPI refuses root without the flag.
mpirun=(mpirun -n "$ranks" --oversubscribe)
if [[ $(id -u) -eq 0 ]]; then
  mpirun+=(--allow-run-as-root)
fi

# Keeps the job going when a rank dies (Open MPI); async_mpi_finalize: see docs/reliability.md
# (the survivors' MPI_Finalize can otherwise wait forever for the dead rank).
recovery=(--enable-recovery --mca async_mpi_finalize 1)

failed=()
count=0
while read -r -a example; do
  ((${#example[@]})) || continue
  program=${example[0]}
  name=$(basename "$program")
  run="$name${example[1]:+ ${example[1]}}"
  count=$((count + 1))
  flags=()
  case $run in
    "failure crash" | "failure hang") flags=("${recovery[@]}") ;;
  esac
  printf '\n>>> %s: %s\n' "$run" "${mpirun[*]} ${flags[*]}${flags:+ }${example[*]#"$root/"}"
  status=0
  out=$(mktemp)
  timeout 300 "${mpirun[@]}" "${flags[@]}" "${example[@]}" </dev/null | tee "$out" || status=$?
  last=$(grep -v '^[[:space:]]*$' "$out" | tail -n 1 || true)
  rm -f "$out"
  if [[ $run == "failure throw" && $status -eq 1 ]]; then
    printf '>>> %s: exit status 1, as intended (a task failed and the master reported it)\n' "$run"
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
