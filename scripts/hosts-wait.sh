#!/usr/bin/env bash
# Whether the master waits on one worker: benchmarks/hosts_wait.cpp built against two revisions'
# headers and run over TCP between the test hosts of scripts/netns-hosts.sh (3 hosts), the two
# revisions alternately so that the machine's load falls on both alike. Needs root (the hosts) and
# Open MPI.
#
#   bash scripts/hosts-wait.sh [--before REV] [--after REV] [--runs N] [--ranks "7 4"]
#                              [--configs "CONFIG;..."] [--out FILE]
#
# --before (default f3779b6^: the master's blocking reads of a reply's bodies) and --after
# (default HEAD) are checked out in worktrees under a directory of /tmp, removed at the end; the
# benchmark's source is this tree's. --runs N (default 3) rounds; in each, every rank count and
# config runs once per revision, the revision that goes first alternating from round to round.
# A config is hosts_wait's arguments (default: "--chunk 0;--chunk 1;--ms 200 --tasks 60;--ms 0":
# 50 ms tasks in automatic chunks and in chunks of 1, 200 ms tasks (a rate the transport can
# carry), and results without compute: the rate the transport reaches). Each job prints one
# JSON line; the script adds the revision, the round and the load average (/proc/loadavg) before
# the job, appends it to FILE (default hosts-wait.jsonl here) and prints a summary at the end.
set -euo pipefail

self=$(readlink -f "${BASH_SOURCE[0]}")
root=$(cd "$(dirname "$self")/.." && pwd)
netns_hosts=$root/scripts/netns-hosts.sh

if [[ ${1-} == --inner ]]; then
  # Inside `netns-hosts.sh exec`: the jobs. <out> <runs> <ranks> <configs> <label=binary>...
  shift
  out=$1 runs=$2 ranks=$3 configs=$4
  shift 4
  sides=("$@")
  IFS=';' read -r -a config_list <<<"$configs"
  for ((round = 1; round <= runs; ++round)); do
    order=("${sides[@]}")
    if ((round % 2 == 0)); then
      order=()
      for ((k = ${#sides[@]} - 1; k >= 0; --k)); do order+=("${sides[k]}"); done
    fi
    for n in $ranks; do
      for config in "${config_list[@]}"; do
        for side in "${order[@]}"; do
          label=${side%%=*}
          binary=${side#*=}
          load=$(cut -d' ' -f1 /proc/loadavg)
          # shellcheck disable=SC2086 # a config is words
          line=$(timeout 300 bash "$netns_hosts" mpirun -n "$n" "$binary" $config 2>/dev/null | grep '^{' || true)
          if [[ -z $line ]]; then line="{\"ranks\":$n,\"failed\":true}"; fi
          line="{\"side\":\"$label\",\"round\":$round,\"config\":\"$config\",\"load\":$load,${line#\{}"
          echo "$line" | tee -a "$out"
        done
      done
    done
  done
  exit 0
fi

before=f3779b6^
after=HEAD
runs=3
ranks="7 4"
configs="--chunk 0;--chunk 1;--ms 200 --tasks 60;--ms 0"
out=$PWD/hosts-wait.jsonl
while (($#)); do
  case $1 in
  --before) before=${2:?}; shift 2 ;;
  --after) after=${2:?}; shift 2 ;;
  --runs) runs=${2:?}; shift 2 ;;
  --ranks) ranks=${2:?}; shift 2 ;;
  --configs) configs=${2:?}; shift 2 ;;
  --out) out=$(readlink -f "${2:?}"); shift 2 ;;
  *) sed -n '2,17p' "$self" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
  esac
done

work=$(mktemp -d /tmp/hosts-wait.XXXXXX)
cleanup() {
  for side in before after; do
    if [[ -d $work/$side ]]; then git -C "$root" worktree remove --force "$work/$side" || true; fi
  done
  rm -rf "$work"
}
trap cleanup EXIT

sides=()
for side in before after; do
  rev=$before
  if [[ $side == after ]]; then rev=$after; fi
  git -C "$root" worktree add --quiet --detach "$work/$side" "$rev"
  echo "hosts-wait: $side = $(git -C "$root" log -1 --format='%h %s' "$rev" | cut -c1-80)" >&2
  # The C++ bindings of Open MPI left out: foreman uses the C API (and they warn under -Wextra).
  mpicxx -std=c++17 -O2 -DNDEBUG -DOMPI_SKIP_MPICXX=1 -Wall -Wextra -Wpedantic -I"$work/$side/include" \
    "$root/benchmarks/hosts_wait.cpp" -o "$work/hosts_wait.$side" -lboost_mpi -lboost_serialization &
  sides+=("$side=$work/hosts_wait.$side")
done
wait
: >"$out"
bash "$netns_hosts" --hosts 3 exec bash "$self" --inner "$out" "$runs" "$ranks" "$configs" "${sides[@]}"

python3 - "$out" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
groups = {}
for r in rows:
    groups.setdefault((r["ranks"], r["config"], r["side"]), []).append(r)
print(f"{'ranks':>5} {'config':<20} {'side':<6} {'runs':>4} {'tasks/s (min-max)':>20} {'ideal':>6} "
      f"{'busy':>11} {'idle':>11} {'gap ms':>11} {'latency ms':>12} {'load':>9}")
def span(v, f="{:.2f}"):
    return (f.format(min(v)) + "-" + f.format(max(v))) if len(v) > 1 else f.format(v[0])
for (n, config, side), g in sorted(groups.items(), key=lambda x: (-x[0][0], x[0][1], x[0][2] != "before")):
    ok = [r for r in g if not r.get("failed") and r.get("verified")]
    if not ok:
        print(f"{n:>5} {config:<20} {side:<6} {len(g):>4}  failed or unverified")
        continue
    tps = [r["tasks_per_s"] for r in ok]
    print(f"{n:>5} {config:<20} {side:<6} {len(ok):>4} {statistics.median(tps):>7.1f} ({span(tps, '{:.1f}')})"
          f" {ok[0]['ideal']:>6.0f} {span([r['busy_share'] for r in ok]):>11} {span([r['idle_share'] for r in ok]):>11}"
          f" {span([r['gap_mean_ms'] for r in ok], '{:.0f}'):>11} {span([r['latency_mean_ms'] for r in ok], '{:.0f}'):>12}"
          f" {span([r['load'] for r in ok], '{:.1f}'):>9}")
EOF
