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
# failure.py (mpi_fail.py) is kept for reference only: its worker 2 exits without MPI_Finalize,
# so it has no well-defined output to compare against.
for name in sum sum_range product arithmetic; do
  for n in $ranks; do
    out="$here/golden/$name.$n.txt"
    # shellcheck disable=SC2086
    timeout 120 "$mpirun" $flags -n "$n" "$python" "$here/seeds/$name.py" > "$out.tmp"
    mv "$out.tmp" "$out"
    echo "wrote $out" >&2
  done
done
