#!/usr/bin/env bash
# Where one master saturates: tasks/s and the master's CPU per task as the worker count grows, one
# task per message (foreman_plain) against automatic chunks (foreman), with tasks that sleep.
# Runs `bench ceiling` (benchmarks/bench.cpp) once per rank count and sleep, oversubscribed, and
# prints the table of docs/performance.md, "The master's ceiling".
#
#   bash scripts/ceiling.sh [bench binary | build dir]    # default: build-bench/ of this checkout
#
# The binary is not built here: build foreman_bench first (Release, see docs/performance.md), in
# any checkout, and pass its path, so that a change can be measured against main's build.
# Environment:
#   CEILING_RANKS    rank counts, master included (default "16 64 128 256")
#   CEILING_SLEEPS   each task's sleep in microseconds (default "1000 0 10000")
#   CEILING_IMPLS    default foreman_plain,foreman (the two alternate in the same processes)
#   CEILING_REPS     timed runs of each implementation per point (default 2)
#   CEILING_SECONDS  length of a timed run (default 3)
#   CEILING_MPI_ARGS extra launcher arguments, e.g. "--mca btl vader,self"
#   CEILING_PERF     a directory: rank 0 runs under `perf record -g` (timed runs only), one
#                    perf-<ranks>-<sleep>.data per point; read with `perf report -i ...`
#   CEILING_OUT      the JSON lines written (default <binary's dir>/ceiling-<date>.jsonl)
# Each line is bench's, plus the load average just before the launch ("load": 1, 5 and 15
# minutes; the last launch's ranks weigh in it for a minute or more), the processes runnable at
# that moment, the others' load ("runnable": /proc/stat's procs_running, this script included), and
# the seconds the whole launch took ("launch_seconds").
# benchmarks/ceiling_report.py <jsonl> prints the table again.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bench=${1:-$root/build-bench}
[[ -d $bench ]] && bench=$bench/benchmarks/bench
if [[ ! -x $bench ]]; then
  echo "no bench binary at $bench: build the target foreman_bench first" >&2
  exit 2
fi
bench=$(cd "$(dirname "$bench")" && pwd)/$(basename "$bench")
ranks=${CEILING_RANKS:-16 64 128 256}
sleeps=${CEILING_SLEEPS:-1000 0 10000}
impls=${CEILING_IMPLS:-foreman_plain,foreman}
reps=${CEILING_REPS:-2}
seconds=${CEILING_SECONDS:-3}
read -r -a mpi_args <<<"${CEILING_MPI_ARGS:-}"
out=${CEILING_OUT:-$(dirname "$bench")/ceiling-$(date +%Y%m%d-%H%M%S).jsonl}

# shellcheck source=launcher.sh
source "$root/scripts/launcher.sh"
foreman_detect_launcher # FOREMAN_MPIEXEC, else mpiexec; its flags for oversubscription and root
if [[ $(id -u) -eq 0 && $launcher_kind == openmpi ]]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi

# Under CEILING_PERF, rank 0 (Open MPI's OMPI_COMM_WORLD_RANK, Hydra's PMI_RANK) runs under perf,
# its events enabled only during the timed runs (bench writes to FOREMAN_BENCH_PERF_CTL).
program=("$bench")
if [[ -n ${CEILING_PERF:-} ]]; then
  mkdir -p "$CEILING_PERF"
  perf_dir=$(cd "$CEILING_PERF" && pwd)
  program=(bash -c '
    if [[ ${OMPI_COMM_WORLD_RANK:-${PMI_RANK:-}} == 0 ]]; then
      fifo=$(mktemp -u "$CEILING_PERF_DATA.ctl.XXXX"); mkfifo "$fifo"
      export FOREMAN_BENCH_PERF_CTL=$fifo
      perf record -q -g -D -1 --control "fifo:$fifo" -o "$CEILING_PERF_DATA" -- "$@"; code=$?
      rm -f "$fifo"; exit $code
    fi
    exec "$@"' ceiling-rank "$bench")
fi

: >"$out"
echo "bench: $bench" >&2
echo "launcher: $launcher ${launcher_flags[*]} ${mpi_args[*]}" >&2
for n in $ranks; do
  for us in $sleeps; do
    load=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ',')
    runnable=$(awk '/^procs_running/ { print $2 }' /proc/stat)
    printf '  -n %s ceiling %s --sleep-us %s   (load %s, runnable %s)\n' "$n" "$impls" "$us" "$load" "$runnable" >&2
    start=$(date +%s%N)
    lines=$(env FOREMAN_BENCH_LAUNCH_NS="$start" CEILING_PERF_DATA="${perf_dir:-}/perf-$n-$us.data" \
      "$launcher" "${launcher_flags[@]}" "${mpi_args[@]}" -n "$n" "${program[@]}" ceiling "$impls" \
      --sleep-us "$us" --reps "$reps" --seconds "$seconds" | grep '^{')
    launch=$(awk -v a="$start" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
    sed "s/}\$/,\"load\":[$load],\"runnable\":$runnable,\"launch_seconds\":$launch}/" <<<"$lines" >>"$out"
  done
done
echo "results: $out" >&2
python3 "$root/benchmarks/ceiling_report.py" "$out"
