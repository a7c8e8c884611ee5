#!/usr/bin/env bash
# Test hosts on one machine: network namespaces that an MPI launcher (Open MPI's mpirun, Hydra's
# mpiexec) launches on as on a cluster's nodes, over TCP. For the multi-host tests (tests/multihost,
# docs/testing.md); needs root (or CAP_NET_ADMIN and CAP_SYS_ADMIN), iproute2 and util-linux.
#
#   netns-hosts.sh [options] --ranks R run [launcher args...] <program> [args...]
#       makes the hosts, runs `<launcher> <the hosts' flags> -n R [launcher args] <program>` on
#       them (first the --check program, if given, at R ranks too), removes the hosts; exits with
#       the launcher's status. Standard output is the job's alone; this script writes to stderr.
#   netns-hosts.sh [options] exec <command> [args...]
#       makes the hosts, runs the command here with FOREMAN_NETNS_HOSTS set, removes the hosts;
#       the command uses the two below. Exits with the command's status.
#   netns-hosts.sh mpiexec [launcher args...] <program> [args...]   (inside exec; or mpirun)
#       runs the launcher on the hosts, as `run` does.
#   netns-hosts.sh lose <k>                                      (inside exec)
#       host k is lost: its link goes down (its bridge port and its interface), then every one
#       of its processes is killed; later launches leave it out.
#   netns-hosts.sh probe
#       exits 0 when hosts can be made here, else prints why (CMake's configure asks it).
#   netns-hosts.sh cleanup
#       removes what runs that no longer live left behind (every run does it when it starts).
# Options: --hosts N (default 3), --slots S (slots per host in the hostfile, default 4, raised to
# fit R ranks), --ranks R (for run), --mpiexec PATH (or --mpirun: the launcher, default mpirun;
# its kind found as scripts/launcher.sh finds it: Open MPI's or Hydra's, others are refused),
# --check PROGRAM (see `run`; the program gets the hosts' names in FOREMAN_NETNS_HOST_NAMES and
# what lies outside them in FOREMAN_NETNS_OUTSIDE: tests/multihost/hosts_check.cpp), --rate RATE
# (what flows into each of hosts 2..N is limited to RATE, a tc rate such as 24mbit: a token
# bucket filter (tc-tbf) on the host's bridge port; a slow link for the tests whose transfers
# must take longer than a task timeout).
#
# What a run makes, all of it named fmhost-<pid of this script>-*:
#   fmhost-<pid>-bridge   a network namespace that holds only the bridge br0, so that the
#                         machine's own namespace gains no interface;
#   fmhost-<pid>-<k>      host k (1..N): a network namespace with eth0, one end of a veth pair
#                         whose other end (h<k>) is a port of br0, address 10.247.123.<k>/24.
#                         Hosts 2..N also get a UTS namespace (host name fmhost-<pid>-<k>), a pid
#                         namespace and a mount namespace with their own /proc, held by one init
#                         process each: to foreman a rank there is on another machine (other host
#                         name, pids it cannot watch), and a boot id of its own. Host 1 is where
#                         the launcher runs, in a UTS namespace of its own made for each launch
#                         (`unshare --uts`), in the
#                         machine's pid namespace (from there the launch agent reaches the others);
#   /tmp/fmhost-<pid>/    the hostfile, the launch agent, the hosts' init pids and boot ids.
# The launcher runs in host 1 with the agent in place of ssh (Open MPI: --mca plm_rsh_agent,
# Hydra: -launcher ssh -launcher-exec): given a host name and a command, as ssh would be, the
# agent runs the command with `sh -c` in that host's namespaces (nsenter), in a clean
# environment, from $HOME. The ranks are mapped by node: rank r on host 1 + r % N.
#
# Removal: on exit, on a signal, and when the script is killed outright (SIGKILL, as CTest ends a
# test past its TIMEOUT), by a watcher process that outlives it and removes the run when the
# script's pid is gone; and, at every start, whatever a run whose script no longer lives left.
# Removing a run kills the processes in its namespaces (by pid, from `ip netns pids`), deletes
# its links, then its namespaces.
set -euo pipefail

self=$(readlink -f "${BASH_SOURCE[0]}")
prefix=fmhost
subnet=10.247.123 # .0/24: every address of it lives only in the namespaces of one run
base_dir=/tmp

say() { printf 'netns-hosts: %s\n' "$*" >&2; }
die() {
  say "$*"
  exit 1
}
usage() {
  sed -n '2,27p' "$self" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# ---- naming, and whether a run still lives --------------------------------------------------------
host_ns() { echo "$prefix-$1-$2"; } # <owner pid> <k>
bridge_ns() { echo "$prefix-$1-bridge"; }
run_dir() { echo "$base_dir/$prefix-$1"; }

# running <pid>: whether the process runs. A zombie does not: an orphan is reaped by pid 1, which
# may take seconds (here it does).
running() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat%% *} != Z ]]
}

# owner_alive <pid>: whether the script that made run <pid> still runs.
owner_alive() {
  local pid=$1 cmdline
  [[ $pid != "$$" ]] || return 1 # a leftover of an earlier process with this pid
  running "$pid" || return 1
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmdline == *netns-hosts* ]]
}

# ---- removal ----------------------------------------------------------------------------------
# kill_namespace_processes <netns>: SIGKILL to every process in it (by pid), until none is left.
kill_namespace_processes() {
  local ns=$1 pids
  for _ in $(seq 50); do
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    [[ -n $pids ]] || return 0
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null || true
    sleep 0.1
  done
  say "processes still in $ns after 5 s: $(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')"
}

# remove_run <owner pid>: everything run <owner pid> made.
remove_run() {
  local owner=$1 ns dir
  dir=$(run_dir "$owner")
  # The hosts' init processes first: killing one ends every process of its pid namespace.
  for init in "$dir"/init.*; do
    if [[ -f $init ]]; then kill -KILL "$(cat "$init")" 2>/dev/null || true; fi
  done
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$prefix-$owner-[0-9]+\$" || true); do
    kill_namespace_processes "$ns"
    ip -n "$ns" link del eth0 2>/dev/null || true # and with it its peer on the bridge
    ip netns del "$ns" 2>/dev/null || say "could not delete namespace $ns"
  done
  ns=$(bridge_ns "$owner")
  if ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$ns"; then
    kill_namespace_processes "$ns"
    ip -n "$ns" link del br0 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || say "could not delete namespace $ns"
  fi
  rm -rf "$dir"
  # Open MPI's session directories of the hosts (named after their host names).
  rm -rf "$base_dir/ompi.$prefix-$owner-"* 2>/dev/null || true
}

# remove_stale: every run whose script no longer lives.
remove_stale() {
  local owners owner
  owners=$({
    ip netns list 2>/dev/null | awk '{print $1}' | sed -nE "s/^$prefix-([0-9]+)-.*/\1/p"
    for leftover in "$base_dir/$prefix-"*; do
      if [[ -d $leftover ]]; then echo "${leftover##*-}"; fi
    done
  } | sort -u)
  for owner in $owners; do
    [[ $owner =~ ^[0-9]+$ ]] || continue
    if ! owner_alive "$owner"; then
      say "removing what run $owner left behind"
      remove_run "$owner"
    fi
  done
}

# ---- making the hosts -------------------------------------------------------------------------
# make_hosts <n>: the bridge and n hosts of run $$, in $dir.
make_hosts() {
  local n=$1 k ns bridge
  bridge=$(bridge_ns $$)
  ip netns add "$bridge"
  ip -n "$bridge" link add br0 type bridge
  ip -n "$bridge" link set br0 up
  for ((k = 1; k <= n; k++)); do
    ns=$(host_ns $$ "$k")
    ip netns add "$ns"
    # Both ends made inside the namespaces: the machine's own never holds either.
    ip link add eth0 netns "$ns" type veth peer name "h$k" netns "$bridge"
    ip -n "$bridge" link set "h$k" master br0 up
    ip -n "$ns" addr add "$subnet.$k/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
    echo "$ns" >>"$dir/hosts"
    ((k == 1)) || start_init "$k" "$ns"
    # What host k receives leaves the bridge through h<k>: shaped there.
    if [[ -n $rate ]] && ((k > 1)); then
      ip netns exec "$bridge" tc qdisc add dev "h$k" root tbf rate "$rate" burst 64kb latency 5s
    fi
  done
}

# start_init <k> <netns>: host k's UTS, pid and mount namespaces, held by an init process (pid 1
# there) that reaps what is orphaned in it; its pid (seen from here) in $dir/init.<k>. The host
# gets a boot id of its own (/proc/sys/kernel/random/boot_id, bound over in its mount namespace):
# UCX (MPICH's transport) takes two processes with the same boot id for one machine and tries to
# reach them over loopback or shared memory, which fails between hosts ("Connection refused").
start_init() {
  local k=$1 ns=$2 unshare_pid init=
  cat /proc/sys/kernel/random/uuid >"$dir/boot_id.$k"
  ip netns exec "$ns" unshare --uts --pid --mount-proc --fork --kill-child \
    bash -c 'hostname "$1" && mount --bind "$2" /proc/sys/kernel/random/boot_id && trap "" TERM INT HUP && while :; do sleep 1; done' init "$ns" "$dir/boot_id.$k" \
    </dev/null >/dev/null 2>&1 &
  unshare_pid=$!
  disown "$unshare_pid" # when the host is lost, bash is not to announce its end ("Killed")
  for _ in $(seq 100); do
    init=$(cat "/proc/$unshare_pid/task/$unshare_pid/children" 2>/dev/null || true)
    init=${init%% *}
    if [[ -n $init && $(nsenter --target "$init" --uts hostname 2>/dev/null) == "$ns" ]]; then
      echo "$init" >"$dir/init.$k"
      return 0
    fi
    sleep 0.02
  done
  die "host $k's init process did not start"
}

# write_hostfile <slots>: every host that is not lost, as the launcher reads it (Open MPI:
# `<host> slots=<s>`, Hydra: `<host>:<s>`).
write_hostfile() {
  local slots=$1 host format='%s slots=%s\n'
  [[ $(cat "$dir/kind") == openmpi ]] || format='%s:%s\n'
  : >"$dir/hostfile"
  while read -r host; do
    # shellcheck disable=SC2059 # the format is one of the two above
    [[ -e $dir/lost.${host##*-} ]] || printf "$format" "$host" "$slots" >>"$dir/hostfile"
  done <"$dir/hosts"
}

# ---- running on the hosts ---------------------------------------------------------------------
# on_hosts_mpirun [launcher args...]: the launcher in host 1, on the hosts of run $dir, ranks
# mapped by node (rank r on host 1 + r % N), the launch agent in place of ssh.
on_hosts_mpirun() {
  local mpirun host1 names=
  mpirun=$(cat "$dir/mpirun")
  host1=$(head -n 1 "$dir/hosts")
  while IFS=' :' read -r host _; do names+="${names:+ }$host"; done <"$dir/hostfile"
  local flags=()
  case $(cat "$dir/kind") in
  openmpi)
    # shellcheck disable=SC2054 # tcp,self is one argument
    flags=(--hostfile "$dir/hostfile" --map-by node
      --mca plm_rsh_agent "$dir/agent" --mca plm_rsh_no_tree_spawn 1
      --mca btl tcp,self --mca btl_tcp_if_include "$subnet.0/24" --mca oob_tcp_if_include "$subnet.0/24")
    if [[ $(id -u) -eq 0 ]]; then flags+=(--allow-run-as-root); fi
    ;;
  hydra)
    # -ppn 1: one rank per host in turn, as --map-by node. -iface eth0: the address the proxies
    # reach mpiexec at (no host name resolves inside the namespaces) and the ranks' interface.
    flags=(-f "$dir/hostfile" -ppn 1 -launcher ssh -launcher-exec "$dir/agent" -iface eth0)
    ;;
  esac
  FOREMAN_NETNS_HOST_NAMES=$names \
    FOREMAN_NETNS_OUTSIDE="$(hostname) $(readlink /proc/self/ns/net) $(readlink /proc/self/ns/pid)" \
    ip netns exec "$host1" unshare --uts sh -c 'hostname "$0" && exec "$@"' "$host1" \
    "$mpirun" "${flags[@]}" "$@"
}

# agent <host> <command words...>: what the launcher runs instead of ssh (Open MPI's
# plm_rsh_agent, Hydra's -launcher-exec); Hydra's own host, host 1, it starts without an agent.
agent() {
  while [[ ${1-} == -* ]]; do shift; done # options meant for ssh
  local host=${1:?"the launch agent needs a host"} k init
  shift
  k=${host##*-}
  [[ $host == "$(host_ns "$owner" "$k")" && -f $dir/init.$k ]] || die "agent: $host is not a host of run $owner"
  [[ ! -e $dir/lost.$k ]] || die "agent: $host was lost"
  init=$(cat "$dir/init.$k")
  # As ssh: the words joined into one command line for the remote shell, a fresh environment.
  local environment=(HOME="${HOME:-/}" PATH="$PATH")
  [[ -z ${LD_LIBRARY_PATH-} ]] || environment+=(LD_LIBRARY_PATH="$LD_LIBRARY_PATH")
  exec nsenter --target "$init" --net --uts --pid --mount -- \
    env -i "${environment[@]}" sh -c 'cd && exec sh -c "$1"' sh "$*"
}

# lose <k>: host k's link down, every process of it killed, left out of later mpiruns.
lose() {
  local k=$1 ns bridge
  ns=$(host_ns "$owner" "$k")
  bridge=$(bridge_ns "$owner")
  [[ -f $dir/init.$k ]] || die "lose: no host $k (host 1, mpirun's, cannot be lost)"
  ip -n "$bridge" link set "h$k" down
  ip -n "$ns" link set eth0 down
  kill -KILL "$(cat "$dir/init.$k")" 2>/dev/null || true
  kill_namespace_processes "$ns"
  touch "$dir/lost.$k"
  write_hostfile "$(cat "$dir/slots")"
  say "host $k ($ns) lost: link down, its processes killed"
}

# ---- probe: can hosts be made here? -------------------------------------------------------------
probe() {
  local missing=() tool
  for tool in ip unshare nsenter setsid; do command -v "$tool" >/dev/null || missing+=("$tool"); done
  ((${#missing[@]} == 0)) || die "missing: ${missing[*]} (Debian: iproute2, util-linux)"
  ip netns list >/dev/null 2>&1 || die "\`ip netns\` does not work here"
  # The real thing, at its smallest: a bridge namespace and one host with its init, then removed.
  trap 'remove_run $$' EXIT
  dir=$(run_dir $$)
  mkdir -p "$dir"
  (make_hosts 2) >/dev/null 2>"$dir/probe.err" ||
    die "cannot make network namespaces here (needs root or CAP_NET_ADMIN and CAP_SYS_ADMIN): $(head -n 3 "$dir/probe.err" | tr '\n' ' ')"
  [[ $(ip -n "$(host_ns $$ 2)" -brief addr show eth0 2>/dev/null) == *"$subnet.2/24"* ]] ||
    die "the namespaces were made but host 2 has no address"
  echo "netns-hosts: test hosts can be made here"
}

# ---- main -----------------------------------------------------------------------------------------
hosts=3
slots=4
mpirun=mpirun
check=
ranks=
rate=
while (($#)); do
  case $1 in
  --hosts) hosts=${2:?}; shift 2 ;;
  --slots) slots=${2:?}; shift 2 ;;
  --mpiexec | --mpirun) mpirun=${2:?}; shift 2 ;;
  --check) check=${2:?}; shift 2 ;;
  --ranks) ranks=${2:?}; shift 2 ;;
  --rate) rate=${2:?}; shift 2 ;;
  -h | --help) usage ;;
  -*) say "unknown option $1"; usage ;;
  *) break ;;
  esac
done
(($#)) || usage
command=$1
shift

case $command in
agent | mpiexec | mpirun | lose)
  # Inside a run: the agent is told its run directory, the others take it from exec's variable.
  if [[ $command == agent ]]; then
    dir=${1:?}
    shift
  else
    dir=${FOREMAN_NETNS_HOSTS:?"netns-hosts.sh $command runs inside netns-hosts.sh exec"}
  fi
  owner=${dir##*-}
  case $command in
  agent) agent "$@" ;;
  mpiexec | mpirun) on_hosts_mpirun "$@" ;;
  lose) lose "${1:?"lose needs a host number"}" ;;
  esac
  exit $?
  ;;
watch)
  # Started by a run: waits for that run's script to end, however it ends, then removes the run.
  owner=${1:?}
  while running "$owner"; do sleep 0.2; done
  remove_run "$owner"
  exit 0
  ;;
probe) probe; exit 0 ;;
cleanup) remove_stale; exit 0 ;;
run | exec) ;;
*) say "unknown command $command"; usage ;;
esac

(($#)) || usage
if ! [[ $hosts =~ ^[0-9]+$ ]] || ((hosts < 2 || hosts > 250)); then die "--hosts must be 2 to 250"; fi
if ! [[ $slots =~ ^[0-9]+$ ]] || ((slots < 1)); then die "--slots must be a positive number"; fi
if [[ $command == run ]]; then
  if ! [[ $ranks =~ ^[0-9]+$ ]] || ((ranks < 1)); then die "run needs --ranks R"; fi
  ((slots * hosts >= ranks)) || slots=$(((ranks + hosts - 1) / hosts))
fi
mpirun=$(command -v "$mpirun") || die "no launcher '$mpirun'"
# shellcheck source=launcher.sh
source "$(dirname "$self")/launcher.sh"
foreman_detect_launcher "$mpirun"
[[ $launcher_kind == openmpi || $launcher_kind == hydra ]] ||
  die "$mpirun is $launcher_kind: the hosts are reached through Open MPI's plm_rsh_agent or Hydra's -launcher-exec (MPICH, Intel MPI)"

remove_stale
dir=$(run_dir $$)
owner=$$
# The watcher: a process of its own session whose parent ends at once, so that it is nobody's
# child and survives whatever kills this script (CTest kills the test's process tree).
watcher=$(setsid bash "$self" watch $$ </dev/null >/dev/null 2>&1 & echo $!)
finish() {
  local status=$?
  trap - EXIT INT TERM HUP
  remove_run $$
  kill "$watcher" 2>/dev/null || true
  exit "$status"
}
trap finish EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$dir"
echo "$mpirun" >"$dir/mpirun"
echo "$launcher_kind" >"$dir/kind"
echo "$slots" >"$dir/slots"
printf '#!/bin/sh\nexec bash %q agent %q "$@"\n' "$self" "$dir" >"$dir/agent"
chmod +x "$dir/agent"
make_hosts "$hosts"
write_hostfile "$slots"

status=0
if [[ $command == run ]]; then
  if [[ -n $check ]]; then
    on_hosts_mpirun -n "$ranks" "$check" >&2 || die "the hosts check failed (exit status $?)"
  fi
  on_hosts_mpirun -n "$ranks" "$@" || status=$?
else
  FOREMAN_NETNS_HOSTS=$dir "$@" || status=$?
fi
exit "$status"
