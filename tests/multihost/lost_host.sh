#!/usr/bin/env bash
# A host lost mid-run, with a checkpoint journal: run inside `netns-hosts.sh --hosts 3 exec`.
#   lost_host.sh <netns-hosts.sh> <hosts_check> <checkpoint_kill>
#
# 1. checkpoint_kill (tests/reliability: 400 tasks of 15 ms, options::checkpoint) at 4 ranks on 3
#    hosts: the master and worker 3 on host 1, worker 1 on host 2, worker 2 on host 3. When the
#    journal holds about 100 results, host 3 is lost: its link goes down (nothing it sends or would
#    send arrives any more), then all its processes are killed.
# 2. The job must end by itself within 30 s of the loss. Launch mode: without --enable-recovery,
#    with TCP keepalive on mpirun's connections to its daemons (oob_tcp_keepalive_time 2,
#    _intvl 1, _probes 2): mpirun notices the silent daemon in about 4 s and ends the job. (Under
#    --enable-recovery Open MPI 4.1.4's mpirun may never exit after a daemon on another host
#    died: docs/testing.md.)
# 3. The same job, run again on the 2 hosts left (3 ranks), resumes from the journal: it replays
#    the 100 or more results recorded, computes the rest, and every one of the 400 results is right.
# Prints "lost host: PASSED" or "lost host: FAILED: <why>".
set -uo pipefail

hosts=$1
check=$2
program=$3
keepalive=(--mca oob_tcp_keepalive_time 2 --mca oob_tcp_keepalive_intvl 1 --mca oob_tcp_keepalive_probes 2)
record=24 # bytes of a journal record of an 8-byte result (checkpoint_kill.sh)
dir=$(mktemp -d "${TMPDIR:-/tmp}/foreman_lost_host.XXXXXX")
trap 'rm -rf "$dir"' EXIT

fail() {
  echo "lost host: FAILED: $*"
  exit 1
}

bash "$hosts" mpirun -n 4 "$check" || fail "the hosts check failed"

bash "$hosts" mpirun -n 4 "${keepalive[@]}" "$program" "$dir" first >"$dir/first.out" 2>&1 &
job=$!
size=0
for _ in $(seq 600); do
  size=$(stat -c %s "$dir/journal" 2>/dev/null || echo 0)
  ((size > 100 + 100 * record)) && break
  kill -0 "$job" 2>/dev/null || break
  sleep 0.05
done
((size > 100 + 100 * record)) || fail "the journal did not grow (size $size): $(cat "$dir/first.out")"
bash "$hosts" lose 3 || fail "could not take host 3 down"
lost_at=$SECONDS
echo "host 3 lost with a journal of $size bytes"

# The job must end by itself. 30 s: about 4 s of keepalive, the rest margin for a loaded machine.
for _ in $(seq 300); do
  kill -0 "$job" 2>/dev/null || break
  sleep 0.1
done
if kill -0 "$job" 2>/dev/null; then
  fail "the job did not end within 30 s of the loss: $(cat "$dir/first.out")"
fi
wait "$job"
status=$?
echo "the job ended $((SECONDS - lost_at)) s after the loss, exit status $status; its output:"
grep -v '^ *$' "$dir/first.out" | sed 's/^/  | /'
((status != 0)) || fail "mpirun reported success for a job that lost a host"
grep -q "^phase first" "$dir/first.out" && fail "the first run finished although a host was lost: $(cat "$dir/first.out")"

# Resumed on the hosts left.
bash "$hosts" mpirun -n 3 "${keepalive[@]}" "$program" "$dir" resume >"$dir/resume.out" 2>&1 ||
  fail "the resumed run exited $?: $(cat "$dir/resume.out")"
resume=$(grep "^phase resume" "$dir/resume.out") || fail "no summary from the resumed run: $(cat "$dir/resume.out")"
echo "$resume"
field() { sed -E "s/.* $1 ([0-9]+).*/\1/" <<<"$2"; }
[[ $(field tasks "$resume") == 400 ]] || fail "the resumed run has $(field tasks "$resume") tasks, not 400"
[[ $(field wrong "$resume") == 0 ]] || fail "the resumed run returned wrong results"
replayed=$(field replayed "$resume")
((replayed >= 100)) || fail "only $replayed results were replayed from a journal of 100 or more"
echo "lost host: PASSED"
