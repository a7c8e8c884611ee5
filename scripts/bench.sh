#!/usr/bin/env bash
# foreman's benchmark: one command, one run, every ratio measured side by side.
#   bash scripts/bench.sh            # the full benchmark (about 3 minutes on 2 cores)
#   FOREMAN_BENCH_QUICK=1 bash scripts/bench.sh   # fewer repetitions, smaller payloads
#
# Installs what is missing (scripts/install-deps.sh, plus python3-mpi4py for the mpi4py.futures
# baseline), builds benchmarks/bench.cpp in build-bench/ (Release), runs every workload against
# the raw MPI loop, the Boost.MPI loop and mpi4py.futures, then prints the table and the floors of
# the performance issue (benchmarks/report.py) and writes build-bench/bench-results.json.
# Environment: FOREMAN_SKIP_DEPS=1, FOREMAN_BENCH_REPS (default 5), FOREMAN_JOBS.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$root/build-bench
reps=${FOREMAN_BENCH_REPS:-5}
quick=${FOREMAN_BENCH_QUICK:-0}
jobs=${FOREMAN_JOBS:-$(nproc)}

if [[ ${FOREMAN_SKIP_DEPS:-0} != 1 ]]; then
  bash "$root/scripts/install-deps.sh" python3-mpi4py
fi
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DFOREMAN_BUILD_TESTS=OFF -DFOREMAN_BUILD_EXAMPLES=OFF \
  -DFOREMAN_INSTALL=OFF -DFOREMAN_BUILD_BENCHMARKS=ON >/dev/null
cmake --build "$build" --parallel "$jobs" --target foreman_bench
bench=$build/benchmarks/bench

mpirun=(mpirun --oversubscribe)
[[ $(id -u) -eq 0 ]] && mpirun+=(--allow-run-as-root)
# Debian's mpi4py lives in the system Python, whatever python3 comes first on PATH.
python=/usr/bin/python3
[[ -x $python ]] || python=$(command -v python3)

raw=$build/bench-raw.jsonl
: >"$raw"
extra=()  # more mpirun arguments for the next runs
suffix="" # appended to the implementation's name in the results
run_reps=$reps # repetitions per run of bench
run() { # run <ranks> <arguments of bench>...
  local n=$1
  shift
  printf '  -n %s %s %s\n' "$n" "$*" "${suffix:+(as $suffix)}" >&2
  "${mpirun[@]}" "${extra[@]}" -n "$n" "$bench" "$@" --reps "$run_reps" | grep '^{' |
    sed "s/\"impl\":\"\([a-z_]*\)\"/\"impl\":\"\1$suffix\"/" >>"$raw"
}
# interleaved <ranks> <workload> <implementations>...: one repetition of each implementation in
# turn, $reps rounds, so that all of them see the machine in the same state (its speed changes
# from minute to minute, see docs/performance.md); report.py merges the repetitions.
interleaved() {
  local n=$1 workload=$2 round impl
  shift 2
  run_reps=1
  for ((round = 1; round <= reps; ++round)); do
    for impl in "$@"; do run "$n" "$workload" "$impl"; done
  done
  run_reps=$reps
}
futures() { # futures <ranks> <workload> <chunksize> <tasks>
  if ! "$python" -c 'import mpi4py' 2>/dev/null; then
    echo "  (mpi4py is not installed: the mpi4py.futures baseline is left out)" >&2
    return 0
  fi
  printf '  -n %s mpi4py.futures %s chunksize %s\n' "$1" "$2" "$3" >&2
  "${mpirun[@]}" -n "$1" "$python" -m mpi4py.futures "$root/benchmarks/futures_bench.py" "$2" "$3" "$reps" "$4" |
    grep '^{' >>"$raw"
}

echo "running the benchmark (${reps} repetitions each)" >&2
for n in 2 3; do
  interleaved "$n" tiny foreman foreman_plain raw raw_poll boost
  interleaved "$n" struct foreman foreman_plain boost
  futures "$n" tiny 256 200000
  futures "$n" struct 256 200000
  futures "$n" tiny 1 4000
done
for impl in foreman raw boost; do run 3 compute "$impl"; done
sizes=(8 1024 65536 1048576 8388608 67108864)
[[ $quick == 1 ]] && sizes=(8 65536 1048576 8388608)
# Payloads measure the transport. foreman receives results into the storage of the previous
# repetition's (run_into) and its function writes into the result object it is given; the Boost.MPI
# loop allocates both afresh, and glibc returns freed memory to the system and faults it in again,
# which costs more than moving the bytes. So the payload runs tell glibc to keep freed memory and
# to back large blocks with transparent huge pages, for every implementation and the ping-pong
# alike; the "_cold_malloc" rows repeat foreman and Boost.MPI with glibc's defaults.
warm_malloc=(-x MALLOC_MMAP_THRESHOLD_=33554432 -x MALLOC_TRIM_THRESHOLD_=4294967296 -x MALLOC_TOP_PAD_=268435456
  -x GLIBC_TUNABLES=glibc.malloc.hugetlb=1)
for bytes in "${sizes[@]}"; do
  extra=("${warm_malloc[@]}")
  # raw: one buffer bounced back and forth; raw_tasks: the payload run's own task and result buffers
  for impl in raw raw_tasks; do run 2 pingpong "$impl" --bytes "$bytes"; done
  for impl in foreman boost; do run 2 payload "$impl" --bytes "$bytes"; done
  # foreman with a function that returns a fresh result instead of writing into the one it is given
  if ((bytes >= 1048576)); then run 2 payload foreman_returning --bytes "$bytes"; fi
  extra=()
  suffix=_cold_malloc
  for impl in foreman boost; do run 2 payload "$impl" --bytes "$bytes"; done
  suffix=""
done
for impl in foreman raw raw_poll boost; do run 2 latency "$impl"; done

"$python" "$root/benchmarks/report.py" "$raw" "$build/bench-results.json"
