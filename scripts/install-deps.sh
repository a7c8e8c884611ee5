#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages foreman needs to build, test and run its examples, but only
# those that are missing. Uses sudo unless run as root. Does nothing on a machine that has them all.
#   bash scripts/install-deps.sh [extra packages...]
# The timeline tests render an HTML page in headless Chromium (Debian's package `chromium`, about
# 120 MB to download); FOREMAN_BROWSER_TESTS=0 leaves it out.
set -euo pipefail

packages=(
  g++ cmake make                                  # compiler and build tools (CMake >= 3.20)
  openmpi-bin libopenmpi-dev                      # MPI: mpirun and headers/libraries
  libboost-mpi-dev libboost-serialization-dev     # Boost >= 1.74
  catch2                                          # the test framework (tests only)
  libfmt-dev                                      # used by some examples
  doxygen                                         # API docs (the docs target)
  clang libclang-rt-dev                           # the journal fuzzer (libFuzzer; tests only)
  python3                                         # checks of the timeline tests
)
if [[ ${FOREMAN_BROWSER_TESTS:-1} != 0 ]]; then
  packages+=(chromium)                            # renders the HTML timeline in a test
fi
packages+=("$@")                                  # what the caller needs besides (scripts/bench.sh)

missing=()
for package in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
  if [[ "$status" != "install ok installed" ]]; then
    missing+=("$package")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages are installed"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-deps: missing ${missing[*]}, and apt-get is not available; install them yourself" >&2
  exit 1
fi

as_root=()
if [[ $(id -u) -ne 0 ]]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "install-deps: missing ${missing[*]}; run as root or install sudo" >&2
    exit 1
  fi
  as_root=(sudo)
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
