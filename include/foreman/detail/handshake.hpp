#pragma once
/// @file handshake.hpp
/// The collective check made when a pool is built: every rank must run the same protocol
/// version and piece size (wire.hpp) with the same Task and Result types, laid out and encoded
/// alike, on the same kind of machine. Two different programs under one `mpirun` fail here, on
/// every rank, instead of exchanging garbage.

#include <foreman/detail/liveness.hpp>
#include <foreman/detail/mpi_check.hpp>
#include <foreman/detail/type_name.hpp>
#include <foreman/detail/wire.hpp>
#include <foreman/errors.hpp>

#include <boost/archive/basic_archive.hpp>

#include <mpi.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace foreman {
namespace detail {

struct hello {
  std::uint64_t magic;
  std::uint64_t protocol; // protocol_word(): the version, and the piece size (wire.hpp)
  std::uint64_t task_type;
  std::uint64_t result_type;
  std::uint64_t abi;  // pointer and long size, endianness: raw bytes must mean the same on every rank
  std::uint64_t host; // fingerprint of the host name: the master may end a lost worker on its own host
  std::uint64_t pid;
  std::uint64_t pool; // the master's is the pool's id, carried in every message header
  // Two builds of one type name can differ (a member added under a macro, another serialize()):
  // their bytes or archives would be misread, so their layouts and encodings must agree too.
  std::uint64_t task_layout; // layout_word<Task>()
  std::uint64_t result_layout;
  std::uint64_t encoding; // encoding_word()
  /// Who the process is (pid, start time, boot id, pid namespace): the master watches a worker it
  /// can prove to be a process of its own kernel and pid namespace (liveness.hpp).
  process_identity identity;
};

/// sizeof (bits 24-63), alignof (8-23) and whether T travels as its bytes (bit 0).
template <class T>
constexpr std::uint64_t layout_word() {
  return static_cast<std::uint64_t>(sizeof(T)) << 24 | static_cast<std::uint64_t>(alignof(T)) << 8 |
         static_cast<std::uint64_t>(is_bitwise_v<T>);
}

/// foreman's value format (bits 0-15), Boost's archive version (16-31), and whether Boost's or
/// foreman's serialize() writes std::optional (bit 32) and std::variant (bit 33).
inline std::uint64_t encoding_word() {
  std::uint64_t word = value_format | static_cast<std::uint64_t>(boost::archive::BOOST_ARCHIVE_VERSION()) << 16;
#ifdef FOREMAN_DETAIL_BOOST_HAS_STD_OPTIONAL
  word |= std::uint64_t{1} << 32;
#endif
#ifdef FOREMAN_DETAIL_BOOST_HAS_STD_VARIANT
  word |= std::uint64_t{1} << 33;
#endif
  return word;
}

/// The layouts and encoding a record announces, for a handshake_error's message.
inline std::string describe_layouts(const hello& h) {
  auto layout = [](std::uint64_t word) {
    return "sizeof " + std::to_string(word >> 24) + ", alignof " + std::to_string(word >> 8 & 0xFFFF) +
           ((word & 1) != 0 ? ", sent as its bytes" : ", sent through serialize()");
  };
  return "Task: " + layout(h.task_layout) + "; Result: " + layout(h.result_layout) + "; value format " +
         std::to_string(h.encoding & 0xFFFF) + ", Boost archive version " + std::to_string(h.encoding >> 16 & 0xFFFF);
}

/// A fresh id for each pool this process builds, unlikely to repeat across processes and time.
inline std::uint64_t new_pool_id() {
  static std::uint64_t counter = 0;
  std::uint64_t x = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
                    (static_cast<std::uint64_t>(::getpid()) << 32) ^ ++counter * 0x9e3779b97f4a7c15ull;
  // splitmix64 finaliser: spread the bits
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

inline std::uint64_t host_fingerprint() {
  char name[MPI_MAX_PROCESSOR_NAME] = {};
  int length = 0;
  check_mpi(MPI_Get_processor_name(name, &length), "MPI_Get_processor_name");
  return fingerprint(std::string(name, static_cast<std::size_t>(length)));
}

/// Which ranks share a machine's processors, for idle waiting (idle.hpp: host_oversubscribed()):
/// the kernel's boot id when the rank could read it, else its host name's fingerprint. Ranks of
/// one machine in other UTS or network namespaces (containers, the test hosts of
/// scripts/netns-hosts.sh) have host names of their own but share its cores; two machines never
/// share a boot id.
inline std::uint64_t machine_of(const hello& peer) {
  const std::uint64_t* boot = peer.identity.boot_id;
  if ((boot[0] | boot[1]) == 0) return peer.host;
  return boot[0] ^ (boot[1] * 0x9e3779b97f4a7c15ull + 0x7f4a7c159e3779b9ull);
}

inline std::uint64_t abi_word() {
  const std::uint16_t probe = 1;
  const auto little = static_cast<std::uint64_t>(*reinterpret_cast<const unsigned char*>(&probe));
  return little | sizeof(void*) << 8 | sizeof(long) << 16 | sizeof(long double) << 24;
}

/// @returns every rank's record, indexed by rank
template <class Task, class Result>
std::vector<hello> handshake(MPI_Comm comm) {
  constexpr std::uint64_t magic = 0x6e616d65726f66ull; // "foreman"
  const hello mine{magic,
                   protocol_word(fix_piece_bytes()),
                   fingerprint(typeid(Task).name()),
                   fingerprint(typeid(Result).name()),
                   abi_word(),
                   host_fingerprint(),
                   static_cast<std::uint64_t>(::getpid()),
                   new_pool_id(),
                   layout_word<Task>(),
                   layout_word<Result>(),
                   encoding_word(),
                   own_identity()};
  int size = 0, rank = 0;
  check_mpi(MPI_Comm_size(comm, &size), "MPI_Comm_size");
  check_mpi(MPI_Comm_rank(comm, &rank), "MPI_Comm_rank");
  std::vector<hello> all(static_cast<std::size_t>(size));
  check_mpi(MPI_Allgather(&mine, sizeof(hello), MPI_BYTE, all.data(), sizeof(hello), MPI_BYTE, comm),
            "MPI_Allgather (the handshake)");

  const hello& master = all.front();
  std::string disagree;
  std::string what;
  bool layouts = false; // a layout or encoding differs: the message shows them
  bool pieces = false;  // the piece size differs: the message shows both
  for (int r = 1; r < size; ++r) {
    const hello& other = all[static_cast<std::size_t>(r)];
    std::string reason;
    if (other.magic != master.magic ||
        static_cast<std::uint32_t>(other.protocol) != static_cast<std::uint32_t>(master.protocol))
      reason = "foreman protocol version";
    else if (other.protocol != master.protocol) {
      reason = "piece size (FOREMAN_DETAIL_PIECE_BYTES, detail::set_piece_bytes())";
      pieces = true;
    } else if (other.task_type != master.task_type || other.result_type != master.result_type)
      reason = "Task/Result types";
    else if (other.abi != master.abi)
      reason = "machine word layout";
    else if (other.task_layout != master.task_layout || other.result_layout != master.result_layout) {
      reason = "Task/Result layout (sizeof, alignof, sent as bytes or through serialize())";
      layouts = true;
    } else if (other.encoding != master.encoding) {
      reason = "encoding of values (foreman's value format, Boost's archive version)";
      layouts = true;
    }
    if (reason.empty()) continue;
    disagree += (disagree.empty() ? "" : ", ") + std::to_string(r);
    if (what.find(reason) == std::string::npos) what += (what.empty() ? "" : " and ") + reason;
  }
  if (disagree.empty()) return all;
  std::string shown;
  if (layouts) {
    shown = " (" + describe_layouts(all[static_cast<std::size_t>(rank)]) + ")";
    if (rank != 0) shown += "; the master's: " + describe_layouts(master);
  }
  if (pieces) {
    shown += ", pieces of " + std::to_string(all[static_cast<std::size_t>(rank)].protocol >> 32) + " bytes";
    if (rank != 0) shown += " (the master's: " + std::to_string(master.protocol >> 32) + ")";
  }
  throw handshake_error("handshake failed: rank(s) " + disagree + " disagree with the master (rank 0) on the " + what +
                        "; this rank (" + std::to_string(rank) + ") uses Task = " + type_name<Task>() +
                        ", Result = " + type_name<Result>() + ", protocol " + std::to_string(protocol_version) + shown +
                        ". Every rank must construct master_worker with the same types, built from the same "
                        "definitions: are two different programs running under one mpirun?");
}

} // namespace detail
} // namespace foreman
