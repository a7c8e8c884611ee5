#!/bin/sh
# Regenerates the golden files in tests/examples/golden/ by running the seed programs in
# tests/examples/seeds/ (transcribed from ../shared/seeds/) under mpirun with mpi4py.
#
#   tests/examples/regenerate.sh            # all examples, N = 1 2 3 4 7 11
#
# PYTHON defaults to Debian's /usr/bin/python3 (python3-mpi4py), which is built against the
# system's Open MPI; a python3 from pyenv or a venv usually lacks mpi4py. Only standard output
# is kept: it is what the C++ examples must reproduce byte for byte.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
python=${PYTHON:-/usr/bin/python3}
mpirun=${MPIEXEC:-mpirun}
ranks=${RANKS:-"1 2 3 4 7 11"}

flags=
if "$mpirun" --version 2>&1 | grep -q 'Open MPI\|OpenRTE'; then
  flags=--oversubscribe
  [ "$(id -u)" = 0 ] && flags="$flags --allow-run-as-root"
fi

"$python" -c 'import mpi4py; print("mpi4py", mpi4py.__version__)' >&2

mkdir -p "$here/golden"
for name in sum sum_range product arithmetic; do
  for n in $ranks; do
    out="$here/golden/$name.$n.txt"
    # shellcheck disable=SC2086
    timeout 120 "$mpirun" $flags -n "$n" "$python" "$here/seeds/$name.py" > "$out.tmp"
    mv "$out.tmp" "$out"
    echo "wrote $out" >&2
  done
done

# failure.py (mpi_fail.py) never finishes: worker 2 leaves and the master waits for it forever.
# Keep what its master (rank 0) printed in 10 s at N = 4; the failure example's test checks that
# its table begins with the same lines. Worker 2 prints too, so the master's output is taken
# from Open MPI's per-rank output files rather than from the interleaved stdout.
out="$here/golden/failure.4.master-until-hang.txt"
ranks_dir=$(mktemp -d)
status=0
# shellcheck disable=SC2086
timeout 10 "$mpirun" $flags -n 4 --output-filename "$ranks_dir" "$python" "$here/seeds/failure.py" \
  > /dev/null 2>&1 || status=$?
if [ "$status" != 124 ]; then
  echo "failure.py was expected to hang until killed (status 124), got status $status" >&2
  exit 1
fi
cp "$ranks_dir/1/rank.0/stdout" "$out"
rm -rf "$ranks_dir"
echo "wrote $out" >&2
