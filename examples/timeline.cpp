// timeline: watch a run. Progress on standard error while it runs, a report of who did what
// when it is over, and a picture of the whole run.
//
//   FOREMAN_PROGRESS=1 mpirun -n 4 ./timeline run
//
// writes run.json (open it in https://ui.perfetto.dev or chrome://tracing) and run.html (any
// browser, no network needed): one row per worker, one bar per task, failures in red.
#include <foreman/foreman.hpp>

#include <chrono>
#include <cstddef>
#include <iostream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

int main(int argc, char* argv[]) {
  boost::mpi::environment env(argc, argv);
  foreman::master_worker<int, int> pool;

  // Sixty tasks of uneven length (5 to 40 ms); every thirteenth one fails.
  std::vector<int> tasks;
  for (int i = 0; i < 60; ++i) tasks.push_back(i);
  auto simulate = [](int i) {
    const int ms = 5 + i * 37 % 36;
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    if (i % 13 == 12) throw std::runtime_error("task " + std::to_string(i) + " hit a bad input");
    return ms;
  };

  foreman::options opt;
  // opt.progress = true; // the same as FOREMAN_PROGRESS=1, but compiled in
  if (argc > 1) {
    opt.timeline_json = std::string(argv[1]) + ".json";
    opt.timeline_html = std::string(argv[1]) + ".html";
  }

  // run_outcomes() keeps going past the failures; run() would throw foreman::task_error.
  const auto outcomes = pool.run_outcomes(tasks, simulate, opt);

  if (pool.is_master()) {
    std::size_t ok = 0;
    for (const auto& outcome : outcomes) ok += outcome.ok() ? 1 : 0;
    std::cout << ok << " of " << tasks.size() << " tasks succeeded\n\n";
    pool.report().print(std::cout);
  }
}
