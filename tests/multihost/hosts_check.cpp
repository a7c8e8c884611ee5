// hosts_check: run on hosts that scripts/netns-hosts.sh makes, as the multi-host tests' fixture at
// each of their rank counts (multihost.hosts.<n>ranks: its failure skips them) and by lost_host.sh;
// fails unless the ranks really run on different hosts.
//
// Every rank sends rank 0 its host name (MPI_Get_processor_name) and the namespaces it runs in
// (/proc/self/ns/{net,uts,pid}). Rank 0 knows the hosts from the script (FOREMAN_NETNS_HOST_NAMES,
// in hostfile order) and what lies outside them (FOREMAN_NETNS_OUTSIDE: the machine's host name,
// network and pid namespaces) and checks that
//   - rank r runs on host 1 + r % N (the script maps by node), so min(ranks, N) hosts are used;
//   - two ranks share a host name exactly when they share a network namespace and a UTS
//     namespace, and none runs in the machine's network namespace or under its host name;
//   - ranks on host 1 (mpirun's) run in the machine's pid namespace, those on each other host in
//     a pid namespace of that host's own: to foreman they are remote (detail/liveness.hpp).
// Prints one line per host and "hosts check: ... PASSED" on stderr, or what is wrong and exits 1.

#include <boost/mpi/collectives.hpp>
#include <boost/mpi/communicator.hpp>
#include <boost/mpi/environment.hpp>
#include <boost/serialization/string.hpp>
#include <boost/serialization/vector.hpp>

#include <mpi.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace {

std::string namespace_of(const char* kind) {
  char link[128] = {};
  const std::string path = std::string("/proc/self/ns/") + kind;
  const ssize_t length = ::readlink(path.c_str(), link, sizeof link - 1);
  return length > 0 ? std::string(link, static_cast<std::size_t>(length)) : std::string("unknown");
}

std::vector<std::string> words(const char* text) {
  std::vector<std::string> out;
  std::istringstream in(text != nullptr ? text : "");
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

struct place {
  std::string host, net, uts, pid;
};

} // namespace

int main(int argc, char* argv[]) {
  boost::mpi::environment env(argc, argv);
  boost::mpi::communicator world;

  char name[MPI_MAX_PROCESSOR_NAME] = {};
  int length = 0;
  MPI_Get_processor_name(name, &length);
  const std::vector<std::string> mine{std::string(name, static_cast<std::size_t>(length)), namespace_of("net"),
                                      namespace_of("uts"), namespace_of("pid")};
  std::vector<std::vector<std::string>> all;
  boost::mpi::gather(world, mine, all, 0);
  if (world.rank() != 0) return 0;

  const std::vector<std::string> hosts = words(std::getenv("FOREMAN_NETNS_HOST_NAMES"));
  const std::vector<std::string> outside = words(std::getenv("FOREMAN_NETNS_OUTSIDE")); // host name, net, pid
  if (hosts.size() < 2 || outside.size() != 3) {
    std::fprintf(stderr, "hosts check: FAILED: run me with scripts/netns-hosts.sh --check (FOREMAN_NETNS_HOST_NAMES "
                         "and FOREMAN_NETNS_OUTSIDE are not set)\n");
    return 1;
  }

  std::vector<place> at;
  for (const auto& a : all) at.push_back({a.at(0), a.at(1), a.at(2), a.at(3)});
  std::vector<std::string> problems;
  auto problem = [&](const std::string& p) { problems.push_back(p); };
  std::map<std::string, std::vector<int>> ranks_on;
  const int size = world.size();
  for (int r = 0; r < size; ++r) {
    const place& p = at[static_cast<std::size_t>(r)];
    const std::string& expected = hosts[static_cast<std::size_t>(r) % hosts.size()];
    ranks_on[p.host].push_back(r);
    if (p.host != expected) problem("rank " + std::to_string(r) + " runs on " + p.host + ", not on " + expected);
    if (p.host == outside[0]) problem("rank " + std::to_string(r) + " has the machine's host name " + p.host);
    if (p.net == outside[1]) problem("rank " + std::to_string(r) + " runs in the machine's network namespace");
    const bool first_host = p.host == hosts.front();
    if (first_host && p.pid != outside[2])
      problem("rank " + std::to_string(r) + " on host 1 is not in the machine's pid namespace");
    if (!first_host && p.pid == outside[2])
      problem("rank " + std::to_string(r) + " on " + p.host + " runs in the machine's pid namespace");
    for (int s = 0; s < r; ++s) {
      const place& q = at[static_cast<std::size_t>(s)];
      const bool same = p.host == q.host;
      if (same != (p.net == q.net) || same != (p.uts == q.uts) || same != (p.pid == q.pid))
        problem("ranks " + std::to_string(s) + " (" + q.host + ", " + q.net + ", " + q.uts + ", " + q.pid + ") and " +
                std::to_string(r) + " (" + p.host + ", " + p.net + ", " + p.uts + ", " + p.pid +
                "): same host name but other namespaces, or the other way round");
    }
  }
  const std::size_t used = std::min(hosts.size(), static_cast<std::size_t>(size));
  if (ranks_on.size() != used)
    problem(std::to_string(ranks_on.size()) + " hosts used, expected " + std::to_string(used));

  for (const auto& [host, ranks] : ranks_on) {
    const place& p = at[static_cast<std::size_t>(ranks.front())];
    std::string list;
    for (int r : ranks) list += " " + std::to_string(r);
    std::fprintf(stderr, "hosts check: %s: ranks%s (%s %s %s)\n", host.c_str(), list.c_str(), p.net.c_str(),
                 p.uts.c_str(), p.pid.c_str());
  }
  for (const auto& p : problems) std::fprintf(stderr, "hosts check: FAILED: %s\n", p.c_str());
  if (!problems.empty()) return 1;
  std::fprintf(stderr,
               "hosts check: %d ranks on %zu hosts, each host its own host name, network and UTS namespace, "
               "each but mpirun's its own pid namespace: PASSED\n",
               size, used);
  return 0;
}
