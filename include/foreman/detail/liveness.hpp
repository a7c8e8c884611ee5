#pragma once
/// @file liveness.hpp
/// Knowing for sure whether a worker's process still runs, without a timeout, and ending it only
/// when it is proven to be that process.
///
/// At the handshake every rank sends its process identity: pid, the process's start time (field
/// 22 of /proc/<pid>/stat, clock ticks since boot), the kernel's boot id and the inode of its pid
/// namespace. A pid names the same process for the master only when master and worker run under
/// the same kernel (same boot id) in the same pid namespace; host names prove nothing (two
/// containers, two network namespaces, may share one, and a pid of another namespace names some
/// other process). For such a worker the master opens a pidfd (pidfd_open(2), Linux 5.3), then
/// reads the process's start time and checks that the pidfd has not fired: the pidfd then refers to
/// the very process that introduced itself, and it becomes readable when that process ends, whatever
/// ends it; pidfd_send_signal(2) on it can never hit another process. Without pidfd_open (older
/// kernels, a seccomp filter) the watch falls back to the pid and its start time, compared again on
/// every check and right before a signal.
///
/// Every other worker (another host, another pid namespace, no /proc) is not watched: it is
/// noticed only through options::task_timeout (see docs/reliability.md).

#include <mpi.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace foreman {
namespace detail {

/// Who a process is, as the handshake carries it (fixed size, u64 fields only). A field that
/// could not be read is 0, and a process with any unknown field is never watched nor signalled.
struct process_identity {
  std::uint64_t pid = 0;
  std::uint64_t start_time = 0;  ///< /proc/<pid>/stat field 22: clock ticks after boot
  std::uint64_t boot_id[2] = {}; ///< /proc/sys/kernel/random/boot_id, 128 bits
  std::uint64_t pid_ns = 0;      ///< inode of /proc/self/ns/pid
  std::uint64_t pid_ns_dev = 0;  ///< and its device

  bool complete() const { return pid != 0 && start_time != 0 && (boot_id[0] | boot_id[1]) != 0 && pid_ns != 0; }
  /// Whether a pid of `other` names a process for this one: same kernel and boot, same pid
  /// namespace.
  bool shares_pids_with(const process_identity& other) const {
    return complete() && other.complete() && boot_id[0] == other.boot_id[0] && boot_id[1] == other.boot_id[1] &&
           pid_ns == other.pid_ns && pid_ns_dev == other.pid_ns_dev;
  }
};

/// The start time of process `pid` (/proc/<pid>/stat field 22), its state letter in `state`;
/// 0 when there is no such process (or no /proc).
inline std::uint64_t process_start_time(std::uint64_t pid, char* state = nullptr) {
  const std::string path = "/proc/" + std::to_string(pid) + "/stat";
  std::FILE* file = std::fopen(path.c_str(), "re");
  if (file == nullptr) return 0;
  char text[1024];
  const std::size_t length = std::fread(text, 1, sizeof text - 1, file);
  std::fclose(file);
  text[length] = '\0';
  // The command name (field 2) is in parentheses and may hold spaces and parentheses itself.
  const char* p = std::strrchr(text, ')');
  if (p == nullptr) return 0;
  ++p;
  // Fields 3 (state) .. 22 (starttime), separated by single spaces.
  for (int field = 3; field < 22; ++field) {
    while (*p == ' ') ++p;
    if (field == 3 && state != nullptr) *state = *p;
    while (*p != ' ' && *p != '\0') ++p;
    if (*p == '\0') return 0;
  }
  return std::strtoull(p, nullptr, 10);
}

/// This process's identity.
inline process_identity own_identity() {
  process_identity id;
  id.pid = static_cast<std::uint64_t>(::getpid());
  id.start_time = process_start_time(id.pid);
  if (std::FILE* file = std::fopen("/proc/sys/kernel/random/boot_id", "re")) {
    char text[64] = {};
    const std::size_t length = std::fread(text, 1, sizeof text - 1, file);
    std::fclose(file);
    int nibbles = 0;
    for (std::size_t i = 0; i < length && nibbles < 32; ++i) {
      const char c = text[i];
      const int value = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
      if (value < 0) continue; // the dashes, the newline
      id.boot_id[nibbles / 16] = id.boot_id[nibbles / 16] << 4 | static_cast<std::uint64_t>(value);
      ++nibbles;
    }
    if (nibbles != 32) id.boot_id[0] = id.boot_id[1] = 0;
  }
  struct stat ns {};
  if (::stat("/proc/self/ns/pid", &ns) == 0) {
    id.pid_ns = static_cast<std::uint64_t>(ns.st_ino);
    id.pid_ns_dev = static_cast<std::uint64_t>(ns.st_dev);
  }
  return id;
}

/// Watches one process proven, when the watch was opened, to be the one that introduced itself:
/// exited() tells whether it has ended, end() sends it SIGKILL. Move-only; closes its pidfd.
class process_watch {
public:
  process_watch() = default;
  /// Watches `peer` if this process (`self`) can: same kernel and pid namespace, and the process
  /// with that pid has the start time `peer` reported. Otherwise the watch is empty (watching()
  /// false). A process found gone already is watched and exited() at once. `pidfd` false: the
  /// fallback (pid and start time) even where pidfd_open exists.
  static process_watch open(const process_identity& peer, const process_identity& self, bool pidfd = true) {
    process_watch watch;
    if (!peer.shares_pids_with(self)) return watch;
    watch.pid_ = static_cast<pid_t>(peer.pid);
    watch.start_time_ = peer.start_time;
#ifdef SYS_pidfd_open
    const long fd = pidfd ? ::syscall(SYS_pidfd_open, watch.pid_, 0) : -1; // close-on-exec
    if (fd >= 0) {
      watch.fd_ = static_cast<int>(fd);
      // The pidfd names whatever process had the pid; it is ours if that one has the reported
      // start time and has not ended since the pidfd was opened (then the pid was not reused).
      if (process_start_time(peer.pid) != peer.start_time || watch.fired()) {
        watch.gone_ = true;
        watch.close();
      }
      return watch;
    }
#endif
    if (process_start_time(peer.pid) != peer.start_time) watch.gone_ = true;
    return watch;
  }

  process_watch(process_watch&& other) noexcept {
    *this = std::move(other);
  }
  process_watch& operator=(process_watch&& other) noexcept {
    if (this != &other) {
      close();
      fd_ = std::exchange(other.fd_, -1);
      pid_ = std::exchange(other.pid_, 0);
      start_time_ = other.start_time_;
      gone_ = other.gone_;
    }
    return *this;
  }
  ~process_watch() {
    close();
  }

  bool watching() const {
    return pid_ != 0;
  }
  /// "pidfd" or "pid and start time": how the process is watched.
  const char* mechanism() const {
    return fd_ >= 0 ? "pidfd" : "pid and start time";
  }

  /// Whether the process has ended (false when not watching). A poll() with timeout 0 on the
  /// pidfd, or kill(pid, 0) and a read of its start time.
  bool exited() {
    if (!watching()) return false;
    if (gone_) return true;
    if (fd_ >= 0)
      gone_ = fired();
    else
      gone_ = !same_process();
    return gone_;
  }

  /// Sends SIGKILL to the process if it still runs and is still the one watched; returns whether
  /// a signal was sent.
  bool end() {
    if (!watching() || exited()) return false;
#ifdef SYS_pidfd_send_signal
    if (fd_ >= 0) return ::syscall(SYS_pidfd_send_signal, fd_, SIGKILL, nullptr, 0) == 0;
#endif
    // No pidfd: the pid is checked right before the signal (a pid reused in between by a process
    // started in the same clock tick is the remaining window).
    return same_process() && ::kill(pid_, SIGKILL) == 0;
  }

private:
  bool fired() const {
    pollfd entry{fd_, POLLIN, 0};
    return ::poll(&entry, 1, 0) > 0; // readable, or POLLHUP/POLLERR: the process is gone
  }
  bool same_process() const {
    if (::kill(pid_, 0) != 0 && errno == ESRCH) return false;
    char state = '?';
    if (process_start_time(static_cast<std::uint64_t>(pid_), &state) != start_time_) return false;
    return state != 'Z' && state != 'X'; // a zombie has ended; only its parent's wait() is missing
  }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  int fd_ = -1;
  pid_t pid_ = 0; // 0: not watching
  std::uint64_t start_time_ = 0;
  bool gone_ = false;
};

/// Lost workers that may still run when their pool is gone, handled when MPI_Finalize starts on
/// the master, after the user's code is done: MPI deletes MPI_COMM_SELF's attributes first thing
/// in MPI_Finalize, and this list is one. Each gets `grace` to end on its own (it was sent the
/// pool's goodbye), then, unless FOREMAN_LOST_WORKERS=keep, is killed through its watch: only a
/// process proven to be that worker is ever signalled. Never MPI_Abort: a worker that cannot be
/// watched (another host) is only named; the job ends when it does.
class lost_at_finalize {
public:
  static constexpr std::chrono::seconds grace{1};

  /// Hands over the watch of a lost rank, still running when its pool closed; `name`: how
  /// messages name it ("worker 5", "sub-master 4").
  static void add(std::string name, std::uint64_t pid, process_watch watch) {
    lost_at_finalize* list = attached();
    if (list != nullptr) list->workers_.push_back(entry{std::move(name), pid, std::move(watch)});
  }

  /// Whether lost workers are killed at MPI_Finalize (FOREMAN_LOST_WORKERS is not "keep").
  static bool kills() {
    const char* policy = std::getenv("FOREMAN_LOST_WORKERS");
    return policy == nullptr || std::string(policy) != "keep";
  }

private:
  struct entry {
    std::string name;
    std::uint64_t pid;
    process_watch watch;
  };

  static lost_at_finalize*& current() {
    static lost_at_finalize* list = nullptr;
    return list;
  }

  // The list attached to MPI_COMM_SELF, attached on first use; null once MPI_Finalize has begun.
  static lost_at_finalize* attached() {
    lost_at_finalize*& list = current();
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (list != nullptr || finalized) return list;
    int key = MPI_KEYVAL_INVALID;
    if (MPI_Comm_create_keyval(MPI_COMM_NULL_COPY_FN, &at_finalize, &key, nullptr) != MPI_SUCCESS) return nullptr;
    list = new lost_at_finalize;
    if (MPI_Comm_set_attr(MPI_COMM_SELF, key, list) != MPI_SUCCESS) {
      delete list;
      list = nullptr;
    }
    return list;
  }

  static int at_finalize(MPI_Comm, int, void* attribute, void*) {
    auto* list = static_cast<lost_at_finalize*>(attribute);
    current() = nullptr;
    list->end_all();
    delete list;
    return MPI_SUCCESS;
  }

  void end_all() {
    auto running = [this] {
      for (entry& e : workers_)
        if (!e.watch.exited()) return true;
      return false;
    };
    const auto deadline = std::chrono::steady_clock::now() + grace;
    while (running() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    const bool kill = kills();
    // Where the launcher ends the whole job when one rank dies (MPICH's Hydra, Open MPI without
    // --enable-recovery), a kill below also ends this process: what the program printed after
    // its runs must not stay in a buffer. C stdio and, synchronised with it by default, std::cout.
    if (kill && running()) std::fflush(nullptr);
    for (entry& e : workers_) {
      if (e.watch.exited()) continue;
      std::string line = "foreman: lost " + e.name + " (pid " + std::to_string(e.pid) +
                         ") still runs at MPI_Finalize, " + std::to_string(grace.count()) +
                         " s after being asked to leave";
      if (!kill)
        line += "; left running (FOREMAN_LOST_WORKERS=keep): the job ends when it does\n";
      else if (e.watch.end())
        line += std::string("; killed (SIGKILL through its ") + e.watch.mechanism() + ") so that the job can end\n";
      else
        line += "; it could not be signalled\n";
      std::fputs(line.c_str(), stderr);
    }
  }

  std::vector<entry> workers_;
};

} // namespace detail
} // namespace foreman
