#!/usr/bin/env bash
# foreman's benchmark: one command, one run, every ratio measured side by side.
#   bash scripts/bench.sh            # the full benchmark (3 to 4 minutes on 2 cores)
#   FOREMAN_BENCH_QUICK=1 bash scripts/bench.sh   # fewer repetitions, smaller payloads
#   FOREMAN_BENCH_LARGE=1 bash scripts/bench.sh   # also a 2.5 GiB payload, after the 64 MiB one
#       (over MPI's int count: foreman sends it in pieces; 15 GiB of memory, under a minute more)
#   FOREMAN_BENCH_STREAM_TASKS=N   # tasks of the streaming memory row (default 100,000,000: about
#       20 s at -n 3 here; the quick run streams 10,000,000; 0 leaves the row out)
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
large=${FOREMAN_BENCH_LARGE:-0}
jobs=${FOREMAN_JOBS:-$(nproc)}

if [[ ${FOREMAN_SKIP_DEPS:-0} != 1 ]]; then
  bash "$root/scripts/install-deps.sh" python3-mpi4py
fi
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DFOREMAN_BUILD_TESTS=OFF -DFOREMAN_BUILD_EXAMPLES=OFF \
  -DFOREMAN_INSTALL=OFF -DFOREMAN_BUILD_BENCHMARKS=ON >/dev/null
cmake --build "$build" --parallel "$jobs" --target foreman_bench
bench=$build/benchmarks/bench

# shellcheck source=launcher.sh
source "$root/scripts/launcher.sh"
foreman_detect_launcher # FOREMAN_MPIEXEC, else mpiexec; its flags for oversubscription and root
mpirun=("$launcher" "${launcher_flags[@]}")
# Debian's mpi4py lives in the system Python, whatever python3 comes first on PATH.
python=/usr/bin/python3
[[ -x $python ]] || python=$(command -v python3)

raw=$build/bench-raw.jsonl
: >"$raw"
extra=()  # environment (NAME=value) of the next runs' processes
suffix="" # appended to the implementation's name in the results
run_reps=$reps # repetitions per run of bench
run() { # run <ranks> <arguments of bench>...
  local n=$1
  shift
  printf '  -n %s %s %s\n' "$n" "$*" "${suffix:+(as $suffix)}" >&2
  env "${extra[@]}" "${mpirun[@]}" -n "$n" "$bench" "$@" --reps "$run_reps" | grep '^{' |
    sed "s/\"impl\":\"\([a-z_]*\)\"/\"impl\":\"\1$suffix\"/" >>"$raw"
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
# Implementations listed together run in the same processes, one run of each in turn per round
# (bench.cpp), so that all of them see the machine in the same states (its speed changes within
# seconds, see docs/performance.md); report.py takes their ratios round by round. These rounds
# are short: twice as many as the repetitions asked for, plus one.
run_reps=$((2 * reps + 1))
for n in 2 3; do
  # job, job_window, stream, reduce: the job API on the same tasks, in the same rounds as run()
  run "$n" tiny foreman,foreman_plain,raw,raw_poll,boost,job,job_window,stream,reduce
  run "$n" struct foreman,foreman_plain,boost
  futures "$n" tiny 256 200000
  futures "$n" struct 256 200000
  futures "$n" tiny 1 4000
  futures "$n" tiny submit 4000 # submit() + as_completed(), one future per task
done
run 2 latency foreman,raw,raw_poll,boost
run_reps=$reps
# Streaming in bounded memory: tiny tasks from a counter through reduce() at -n 3, one run; the
# master's peak resident memory (VmHWM) is reported with the rate.
stream_tasks=${FOREMAN_BENCH_STREAM_TASKS:-$([[ $quick == 1 ]] && echo 10000000 || echo 100000000)}
if ((stream_tasks > 0)); then
  run 3 stream_memory reduce --tasks "$stream_tasks"
fi
# split: workers run fixed shares without any message, the master sleeps: the machine's ceiling
run 3 compute foreman,raw,boost,split
sizes=(8 1024 65536 1048576 8388608 67108864)
[[ $quick == 1 ]] && sizes=(8 65536 1048576 8388608)
# Payloads measure the transport. foreman receives results into the storage of the previous
# repetition's (run_into) and its function writes into the result object it is given; the Boost.MPI
# loop allocates both afresh, and glibc returns freed memory to the system and faults it in again,
# which costs more than moving the bytes. So the payload runs tell glibc to keep freed memory and
# to back large blocks with transparent huge pages, for every implementation and the ping-pong
# alike; the "_cold_malloc" rows repeat foreman and Boost.MPI with glibc's defaults.
# The ranks run on this host and inherit the launcher's environment, with any launcher.
warm_malloc=(MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=4294967296 MALLOC_TOP_PAD_=268435456
  GLIBC_TUNABLES=glibc.malloc.hugetlb=1)
for bytes in "${sizes[@]}"; do
  extra=("${warm_malloc[@]}")
  # pingpong: raw MPI, one buffer bounced back and forth; pingpong_tasks: the payload run's own
  # task and result buffers; foreman_returning: foreman with a function that returns a fresh
  # result instead of writing into the one it is given. All in the same rounds.
  impls=pingpong,pingpong_tasks,foreman,boost
  if ((bytes >= 1048576)); then impls+=,foreman_returning; fi
  run 2 payload "$impls" --bytes "$bytes"
  extra=()
  suffix=_cold_malloc
  run 2 payload foreman,boost --bytes "$bytes"
  suffix=""
done
if [[ $large == 1 ]]; then
  # One task of 2.5 GiB and its result: more than MPI's int count, so foreman (and the ping-pong,
  # for comparison) send it in pieces. Separate runs: each holds the payload several times over;
  # the Boost.MPI loop cannot send it (Boost.MPI counts in an int).
  extra=("${warm_malloc[@]}")
  for impl in foreman pingpong; do
    run 2 payload "$impl" --bytes 2684354560 --tasks 1
  done
  extra=()
fi

"$python" "$root/benchmarks/report.py" "$raw" "$build/bench-results.json"
