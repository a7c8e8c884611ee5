#!/usr/bin/env bash
# The run command of the README:  bash scripts/run-examples.sh
#
# Installs the missing Debian/Ubuntu packages (scripts/install-deps.sh), builds the examples in
# build-run-examples/ (Release) and runs each of them under `mpirun -n 4`.
#
# The examples come from build-run-examples/examples/examples.txt, which examples/CMakeLists.txt
# writes: one example per line, the executable's path followed by its arguments.
# `failure throw` demonstrates a failing task: it ends with exit status 1 by design, which is
# expected here; every other example must succeed.
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

failed=()
count=0
while read -r -a example; do
  ((${#example[@]})) || continue
  program=${example[0]}
  name=$(basename "$program")
  count=$((count + 1))
  printf '\n>>> %s: %s\n' "$name" "${mpirun[*]} ${example[*]#"$root/"}"
  status=0
  timeout 300 "${mpirun[@]}" "${example[@]}" </dev/null || status=$?
  if [[ $name == failure && $status -eq 1 ]]; then
    printf '>>> %s: exit status 1, as intended (a task failed and the master reported it)\n' "$name"
  elif ((status != 0)); then
    printf '>>> %s: FAILED with exit status %d\n' "$name" "$status"
    failed+=("$name")
  fi
done <"$list"

printf '\n>>> ran %d examples under %s\n' "$count" "${mpirun[*]}"
if ((${#failed[@]})); then
  printf 'FAILED: %s\n' "${failed[*]}"
  exit 1
fi
echo "All examples ran as expected."
