#!/usr/bin/env bash
# bin/foreman-supervise against jobs that die or cannot end (supervise_test.cpp says how).
#   supervise.sh <foreman-supervise> <program> <mpiexec> <mpiexec args before the program>...
# The launcher is given without --enable-recovery: a dead rank ends the whole job, as under
# MPICH. Passes when
#   die:        the job died once and the second attempt finished it from the journal, with the
#               results of an uninterrupted run, and the supervisor exited 0;
#   hang_exit:  the master finished, the supervisor ended the job that could not end, exited 0;
#   always_die: the supervisor gave up after its attempts and exited 1.
# Prints "supervise: PASSED" or the reason it failed.
set -uo pipefail

supervisor=$1
program=$2
shift 2
launcher=("$@")
dir=$(mktemp -d "${TMPDIR:-/tmp}/foreman_supervise.XXXXXX")
trap 'rm -rf "$dir"' EXIT

fail() {
  echo "supervise: FAILED: $*"
  exit 1
}
field() { sed -E "s/.* $1 ([0-9]+).*/\1/" <<<"$2"; }

"${launcher[@]}" "$program" "$dir" plain >"$dir/plain.out" 2>&1 || fail "plain run exited $?: $(cat "$dir/plain.out")"
plain=$(grep '^supervised:' "$dir/plain.out") || fail "no summary from the plain run"

# 1. The job dies on its first attempt and is run again from its journal.
mkdir "$dir/die"
bash "$supervisor" --attempts 3 --grace 5 -- "${launcher[@]}" "$program" "$dir/die" die >"$dir/die.out" 2>"$dir/die.err"
status=$?
cat "$dir/die.err"
((status == 0)) || fail "die: the supervisor exited $status"
grep -q 'attempt 1 ended with status [1-9]' "$dir/die.err" || fail "die: the first attempt did not end with a failure"
line=$(grep '^supervised: attempt 2 ' "$dir/die.out") || fail "die: no summary from attempt 2: $(cat "$dir/die.out")"
echo "$line"
grep -q '^supervised: attempt 1 ' "$dir/die.out" && fail "die: attempt 1 finished although a rank died"
[[ $(field wrong "$line") == 0 ]] || fail "die: wrong results"
[[ $(field digest "$line") == $(field digest "$plain") ]] || fail "die: results differ from an uninterrupted run's"
(($(field replayed "$line") >= 20)) || fail "die: attempt 2 replayed only $(field replayed "$line") results"

# 2. The master finishes, the job cannot end: the supervisor ends it.
mkdir "$dir/hang"
t0=$SECONDS
bash "$supervisor" --attempts 2 --grace 2 -- "${launcher[@]}" "$program" "$dir/hang" hang_exit >"$dir/hang.out" 2>"$dir/hang.err"
status=$?
cat "$dir/hang.err"
((status == 0)) || fail "hang_exit: the supervisor exited $status"
grep -q 'the job was ended after it' "$dir/hang.err" || fail "hang_exit: the supervisor did not end the job"
line=$(grep '^supervised: attempt 1 ' "$dir/hang.out") || fail "hang_exit: no summary: $(cat "$dir/hang.out")"
[[ $(field digest "$line") == $(field digest "$plain") ]] || fail "hang_exit: results differ"
echo "hang_exit: ended in $((SECONDS - t0)) s"

# 3. A job that dies every time: bounded attempts, then a clear failure.
mkdir "$dir/always"
bash "$supervisor" --attempts 2 --grace 2 -- "${launcher[@]}" "$program" "$dir/always" always_die >"$dir/always.out" 2>"$dir/always.err"
status=$?
cat "$dir/always.err"
((status == 1)) || fail "always_die: the supervisor exited $status, not 1"
grep -q 'giving up after 2 attempt' "$dir/always.err" || fail "always_die: no 'giving up' line"
echo "supervise: PASSED"
