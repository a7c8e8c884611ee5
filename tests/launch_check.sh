#!/bin/bash
# launch_check.sh PROGRAM LAUNCHER_SH: foreman's warning for a process alone in MPI although its
# launcher started several (include/foreman/detail/launch_check.hpp), on examples/sum, whose
# master prints "Expecting N worker messages" (N: its workers), the ground truth of each case:
#   1. without a launcher: one process, no warning;
#   2. without a launcher, the environment of a launcher that started 3 (PMI_SIZE=3, as Hydra
#      sets it; OMPI_COMM_WORLD_SIZE=3): the warning, naming the variable and 3;
#   3. under every launcher found here (Open MPI's, MPICH's Hydra), 2 processes: when they form
#      one job (one master, 1 worker) no warning; when each is alone (a program linked to the other
#      MPI: two masters with 0 workers), one warning from each.
# Case 3 needs both MPIs' launchers to show the mismatch; with one only, it checks that one.
set -uo pipefail
program=$1
source "$2"
failures=0
fail() {
  echo "FAILED: $*"
  failures=$((failures + 1))
}
warning="its launcher started"

out=$(timeout 30 "$program" 2>&1)
grep -q "Expecting 0 worker" <<<"$out" || fail "case 1: the program did not run alone: $out"
grep -q "$warning" <<<"$out" && fail "case 1: a warning without a launcher: $out"

for variable in PMI_SIZE OMPI_COMM_WORLD_SIZE; do
  out=$(env "$variable=3" timeout 30 "$program" 2>&1)
  grep -q "Expecting 0 worker" <<<"$out" || fail "case 2 ($variable): the program did not run alone: $out"
  grep -q "$warning 3 processes ($variable=3)" <<<"$out" || fail "case 2 ($variable): no warning: $out"
done

launchers=0 mismatched=0
for candidate in mpirun.openmpi mpiexec.mpich; do
  command -v "$candidate" >/dev/null || continue
  foreman_detect_launcher "$candidate"
  launchers=$((launchers + 1))
  out=$(timeout 60 "$launcher" -n 2 "${launcher_flags[@]}" "$program" 2>&1)
  alone=$(grep -c "Expecting 0 worker" <<<"$out")
  joined=$(grep -c "Expecting 1 worker" <<<"$out")
  warned=$(grep -c "$warning 2 processes" <<<"$out")
  if [[ $joined == 1 && $alone == 0 ]]; then
    [[ $warned == 0 ]] || fail "case 3 ($candidate): one job of 2 ranks, but $warned warning(s): $out"
    echo "$candidate: one job of 2 ranks, no warning"
  elif [[ $alone == 2 ]]; then
    mismatched=$((mismatched + 1))
    [[ $warned == 2 ]] || fail "case 3 ($candidate): two processes alone, but $warned warning(s) (2 expected): $out"
    echo "$candidate: two processes alone (the program is linked to the other MPI), warned by each"
  else
    fail "case 3 ($candidate): neither one job nor two alone: $out"
  fi
done
if ((launchers == 2 && mismatched != 1)); then
  fail "case 3: with both launchers, exactly one should run the program as processes alone ($mismatched did)"
fi
((failures == 0)) && echo "ok"
exit $((failures > 0))
