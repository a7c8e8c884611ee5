#!/usr/bin/env bash
# Builds Boost.MPI (and Boost.Serialization) for MPICH from Debian's own source package, into a
# cache folder that later runs reuse. Debian ships Boost.MPI built for Open MPI only: a foreman
# program compiled with mpicxx.mpich against it fails to link with
#   undefined reference to `boost::mpi::communicator::operator int() const'
# (and similar), because Boost.MPI's library was compiled against Open MPI's mpi.h.
#
#   bash scripts/boost-mpi-for-mpich.sh [prefix]
#
# prefix: where Boost is installed (headers, libboost_mpi, libboost_serialization, CMake package
# files); default ${FOREMAN_CACHE:-$HOME/.cache/foreman}/boost-<version>-mpich. Prints the prefix
# on its last line. A prefix that already holds a finished build (its stamp file) is reused as is.
#
# Needs: the packages mpich, libmpich-dev, bison, dpkg-dev (installed here when missing, through
# scripts/install-deps.sh), and Debian's package archive. The source comes from the deb-src twin
# of the machine's own apt sources, read through a private apt configuration inside the cache
# folder: the machine's apt sources are not changed. Takes about 4 minutes on 2 cores.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source_package=boost1.74
cache=${FOREMAN_CACHE:-$HOME/.cache/foreman}
prefix=${1:-$cache/boost-1.74-mpich}
stamp=$prefix/.foreman-built
log() { printf 'boost-mpi-for-mpich: %s\n' "$*" >&2; }

if [[ -f $stamp ]]; then
  log "reusing $prefix ($(cat "$stamp"))"
  echo "$prefix"
  exit 0
fi

if [[ ${FOREMAN_SKIP_DEPS:-0} != 1 ]]; then
  bash "$root/scripts/install-deps.sh" mpich libmpich-dev bison dpkg-dev >&2
fi
mpicxx=$(command -v mpicxx.mpich) || { log "mpicxx.mpich not found (package libmpich-dev)"; exit 1; }

work=$cache/boost-source
mkdir -p "$work"

# ---- a private apt configuration that knows the deb-src twin of every apt source -----------------
apt_dir=$work/apt
mkdir -p "$apt_dir/lists/partial" "$apt_dir/sources.list.d"
: >"$apt_dir/sources.list"
rm -f "$apt_dir"/sources.list.d/*
shopt -s nullglob
for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
  [[ -f $file ]] || continue
  sed -nE 's/^[[:space:]]*deb[[:space:]]+/deb-src /p' "$file" >>"$apt_dir/sources.list"
done
for file in /etc/apt/sources.list.d/*.sources; do
  # deb822: the same stanzas, with "Types: deb-src".
  sed -E 's/^Types:.*/Types: deb-src/' "$file" >"$apt_dir/sources.list.d/$(basename "$file")"
done
shopt -u nullglob
apt_options=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o "Dir::Etc::SourceParts=$apt_dir/sources.list.d"
  -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache="
  -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
[[ $(id -u) -eq 0 ]] || apt_options+=(-o "APT::Sandbox::User=$(id -un)")
log "reading the source index (private apt lists in $apt_dir)"
apt-get "${apt_options[@]}" update -q >&2

# ---- the source package, with Debian's patches applied ---------------------------------------------
cd "$work"
if ! compgen -G "$work/${source_package}_*.dsc" >/dev/null; then
  log "downloading the source package $source_package"
  apt-get "${apt_options[@]}" source --download-only -q "$source_package" >&2
fi
dsc=$(compgen -G "$work/${source_package}_*.dsc" | head -1)
tree=$work/tree
rm -rf "$tree"
log "unpacking $(basename "$dsc")"
dpkg-source --no-check -x "$dsc" "$tree" >/dev/null

# ---- b2 with MPICH's compiler wrapper ------------------------------------------------------------
cd "$tree"
# Debian's source drops the generated parser of b2's engine; debian/rules makes it with bison.
(cd tools/build && bison -y -d -o src/engine/jamgram.cpp src/engine/jamgram.y)
log "bootstrap.sh"
./bootstrap.sh --with-libraries=mpi,serialization --prefix="$prefix" >"$work/bootstrap.log" 2>&1 ||
  { cat "$work/bootstrap.log" >&2; exit 1; }
printf 'using mpi : %s ;\n' "$mpicxx" >"$work/user-config.jam"
log "b2 --with-mpi --with-serialization (log: $work/b2.log)"
./b2 -j"$(nproc)" --user-config="$work/user-config.jam" --with-mpi --with-serialization \
  variant=release link=shared threading=multi runtime-link=shared --prefix="$prefix" install \
  >"$work/b2.log" 2>&1 || { tail -40 "$work/b2.log" >&2; exit 1; }
[[ -f $prefix/lib/libboost_mpi.so ]] || { log "b2 finished but $prefix/lib/libboost_mpi.so is missing"; exit 1; }

printf '%s built with %s on %s\n' "$(basename "$dsc" .dsc)" "$mpicxx" "$(date -u +%F)" >"$stamp"
rm -rf "$tree"
log "done: $prefix"
echo "$prefix"
