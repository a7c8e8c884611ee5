// A job run by bin/foreman-supervise, driven by supervise.sh. One program, the fault chosen by
// its second argument:
//
//   supervise_test <dir> die        on attempt 1 (FOREMAN_SUPERVISOR_ATTEMPT), rank 2 SIGKILLs itself
//                                   at its 20th task; the launcher runs without --enable-recovery,
//                                   so the whole job dies, as every job does under MPICH's launcher
//   supervise_test <dir> always_die rank 2 SIGKILLs itself before the run, on every attempt: the
//                                   supervisor must give up
//   supervise_test <dir> hang_exit  the run completes, then rank 2 never reaches MPI_Finalize: the
//                                   job cannot end by itself
//   supervise_test <dir> plain      no fault, no journal: the reference digest
//
// The master prints "supervised: attempt A tasks 300 replayed R wrong W digest D".

#include <foreman/foreman.hpp>

#include <boost/crc.hpp>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

namespace {

unsigned long long value_of(int task) {
  unsigned long long x = static_cast<unsigned long long>(task) * 0x9e3779b97f4a7c15ull;
  x ^= x >> 31;
  return x * 0x94d049bb133111ebull;
}

} // namespace

int main(int argc, char** argv) {
  boost::mpi::environment env(argc, argv);
  if (argc < 3) {
    std::fprintf(stderr, "usage: supervise_test <dir> die|always_die|hang_exit|plain\n");
    return 2;
  }
  const std::string dir = argv[1];
  const std::string mode = argv[2];
  const char* attempt_text = std::getenv("FOREMAN_SUPERVISOR_ATTEMPT");
  const int attempt = attempt_text ? std::atoi(attempt_text) : 0;
  bool hang = false;
  {
    foreman::master_worker<int, unsigned long long> pool;
    if (pool.worker_count() < 2) {
      if (pool.is_master()) std::printf("supervise_test needs at least 2 workers\n");
      return 1;
    }
    if (mode == "always_die" && pool.rank() == 2) std::raise(SIGKILL);
    int served = 0;
    const bool dies = mode == "die" && attempt == 1;
    // 20 ms tasks: after rank 2 dies the others need about 1.5 s more, far longer than the
    // launcher takes to end the job (a master that noticed the death through its process watch
    // would otherwise finish first, now and then, and the job would not need a second attempt).
    auto fn = [&](int task) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      if (dies && pool.rank() == 2 && ++served == 20) std::raise(SIGKILL);
      return value_of(task);
    };
    std::vector<int> tasks(300);
    for (int i = 0; i < 300; ++i) tasks[static_cast<std::size_t>(i)] = i;
    foreman::options opt;
    opt.chunk_size = 1;
    if (mode != "plain") opt.checkpoint = dir + "/journal";
    const auto results = pool.run(tasks, fn, opt);
    if (pool.is_master()) {
      int wrong = 0;
      for (std::size_t i = 0; i < tasks.size(); ++i) wrong += results[i] != value_of(tasks[i]) ? 1 : 0;
      boost::crc_32_type digest;
      digest.process_bytes(results.data(), results.size() * sizeof results[0]);
      std::printf("supervised: attempt %d tasks %zu replayed %zu wrong %d digest %u\n", attempt, tasks.size(),
                  pool.last_run().replayed, wrong, static_cast<unsigned>(digest.checksum()));
      std::fflush(stdout);
    }
    hang = mode == "hang_exit" && pool.rank() == 2;
  }
  while (hang) std::this_thread::sleep_for(std::chrono::seconds(1)); // never reaches MPI_Finalize
  return 0;
}
