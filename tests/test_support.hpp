#pragma once
// Small helpers shared by foreman's tests.

#include <boost/mpi/collectives.hpp>
#include <boost/mpi/communicator.hpp>

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

namespace foreman_test {

/// The world communicator's size and this process's rank in it.
inline int world_size() {
  return boost::mpi::communicator().size();
}
inline int world_rank() {
  return boost::mpi::communicator().rank();
}

/// splitmix64: deterministic pseudo-random numbers, the same on every rank.
inline std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

/// A path in the temporary directory, the same on every rank (the master's pid in it): only the
/// master touches a checkpoint journal. Collective.
inline std::string temp_path(const std::string& prefix, const std::string& name) {
  boost::mpi::communicator world;
  long pid = static_cast<long>(::getpid());
  boost::mpi::broadcast(world, pid, 0);
  const char* dir = std::getenv("TMPDIR");
  return std::string(dir && *dir ? dir : "/tmp") + "/" + prefix + std::to_string(pid) + "_" + name;
}

/// Removes a file on the master at the end of its scope.
struct cleanup {
  std::string path;
  ~cleanup() {
    if (world_rank() == 0) std::remove(path.c_str());
  }
};

inline std::vector<char> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<char>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline void write_file(const std::string& path, const std::vector<char>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline void sleep_us(std::int64_t microseconds) {
  std::this_thread::sleep_for(std::chrono::microseconds(microseconds));
}

/// Captures what this process writes to standard error (file descriptor 2, e.g. foreman's
/// announcements) from construction until text() or destruction, in an anonymous temporary file.
class stderr_capture {
public:
  stderr_capture() : file_(std::tmpfile()), saved_(::dup(2)) {
    std::fflush(stderr);
    if (file_ != nullptr) ::dup2(::fileno(file_), 2);
  }
  ~stderr_capture() {
    restore();
    if (file_ != nullptr) std::fclose(file_);
  }
  stderr_capture(const stderr_capture&) = delete;
  stderr_capture& operator=(const stderr_capture&) = delete;

  /// Stops capturing; returns everything captured.
  std::string text() {
    restore();
    std::string out;
    if (file_ == nullptr) return out;
    std::rewind(file_);
    char buffer[4096];
    for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, file_)) > 0;) out.append(buffer, n);
    return out;
  }

private:
  void restore() {
    if (saved_ < 0) return;
    std::fflush(stderr);
    ::dup2(saved_, 2);
    ::close(saved_);
    saved_ = -1;
  }

  std::FILE* file_;
  int saved_;
};

} // namespace foreman_test
