#!/usr/bin/env bash
# The whole mpirun killed with SIGKILL mid-run, then run again with its checkpoint journal.
#   checkpoint_kill.sh [--stream] <program> <mpiexec> <mpiexec args before the program>...
# Passes when the resumed run's results equal an uninterrupted run's, no result was wrong, and
# the tasks computed both before the kill and after it are no more than were in flight at the
# kill (workers x tasks in flight; for a stream, the tasks read ahead of the sink). Prints
# "checkpoint kill: PASSED" or the reason it failed. --stream: the tasks come from run_stream().
set -uo pipefail

mode=()
record=24 # bytes of a record of an 8-byte result: index, length, result, checksum
if [[ $1 == --stream ]]; then
  mode=(stream)
  record=32 # a stream's records also hold their task's fingerprint
  shift
fi
program=$1
shift
launcher=("$@")
dir=$(mktemp -d "${TMPDIR:-/tmp}/foreman_kill.XXXXXX")
trap 'rm -rf "$dir"' EXIT

fail() {
  echo "checkpoint kill: FAILED: $*"
  exit 1
}

# 1. Start the job in a session of its own, wait until the journal holds about 100 results
#    (400 tasks of 15 ms each: a quarter of the run), then SIGKILL every process of the session.
setsid "${launcher[@]}" "$program" "$dir" first "${mode[@]}" >"$dir/first.out" 2>&1 &
leader=$!
for _ in $(seq 600); do
  size=$(stat -c %s "$dir/journal" 2>/dev/null || echo 0)
  ((size > 100 + 100 * record)) && break
  sleep 0.05
done
((size > 100 + 100 * record)) || fail "the journal did not grow (size $size); first run's output: $(cat "$dir/first.out")"
pkill -KILL -s "$leader" || true
wait "$leader" 2>/dev/null
for _ in $(seq 100); do
  pgrep -s "$leader" >/dev/null || break
  sleep 0.05
done
pgrep -s "$leader" >/dev/null && fail "processes of the killed job are still alive"
grep -q "^phase first" "$dir/first.out" && fail "the first run finished before it was killed"
echo "killed the job with a journal of $(stat -c %s "$dir/journal") bytes"

# 2. Resume, then 3. an uninterrupted run for comparison.
"${launcher[@]}" "$program" "$dir" resume "${mode[@]}" >"$dir/resume.out" 2>&1 || fail "resume exited $?: $(cat "$dir/resume.out")"
"${launcher[@]}" "$program" "$dir" plain "${mode[@]}" >"$dir/plain.out" 2>&1 || fail "plain exited $?: $(cat "$dir/plain.out")"
resume=$(grep "^phase resume" "$dir/resume.out") || fail "no summary from the resumed run: $(cat "$dir/resume.out")"
plain=$(grep "^phase plain" "$dir/plain.out") || fail "no summary from the plain run: $(cat "$dir/plain.out")"
echo "$resume"
echo "$plain"

field() { sed -E "s/.* $1 ([0-9]+).*/\1/" <<<"$2"; }
[[ $(field wrong "$resume") == 0 ]] || fail "the resumed run returned wrong results"
[[ $(field digest "$resume") == $(field digest "$plain") ]] || fail "resumed and uninterrupted results differ"
replayed=$(field replayed "$resume")
((replayed >= 100)) || fail "only $replayed results were replayed from a journal of 100 or more"

# Tasks finished before the kill (by a worker, or by the master itself without workers) that
# were computed again after it: at most the tasks that were in flight at the kill.
cat "$dir"/log-first.* 2>/dev/null | sort -u >"$dir/done-first"
cat "$dir"/log-resume.* 2>/dev/null | sort -u >"$dir/done-resume"
again=$(comm -12 "$dir/done-first" "$dir/done-resume" | wc -l)
workers=$(field workers "$resume")
in_flight=$(field in_flight "$resume")
bound=$((workers > 0 ? workers * in_flight : 1))
((${#mode[@]} > 0)) && bound=$in_flight # a stream: the tasks read ahead of the sink, whoever runs them
computed=$(wc -l <"$dir/done-resume")
[[ $computed == $(field computed "$resume") ]] || fail "the resumed run computed $computed tasks but reports $(field computed "$resume")"
echo "finished before the kill: $(wc -l <"$dir/done-first"); computed again after it: $again (bound: $bound in flight)"
((again <= bound)) || fail "$again finished tasks were computed again, more than the $bound in flight"
echo "checkpoint kill: PASSED"
