// Seeing a run: the progress display (detail/progress.hpp, options::progress,
// FOREMAN_PROGRESS), the run report (report.hpp) and the timeline (timeline.hpp, the times in
// task_record, options::timeline_json/_html). The browser test of the HTML page and the
// end-to-end progress test under mpirun live in tests/observe/.

#include "catch.hpp"
#include "test_support.hpp"

#include <foreman/detail/observer.hpp>
#include <foreman/detail/progress.hpp>
#include <foreman/foreman.hpp>

#include <boost/mpi/collectives.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using foreman_test::world_size;

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++n;
  return n;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// A file name no other test process uses at the same time (ctest runs suites in parallel).
std::string scratch_file(const std::string& name) {
  return "observe_test." + std::to_string(::getpid()) + "." + name;
}

// Sends this process's file descriptor `fd` to a file until destroyed.
class redirect {
public:
  redirect(int fd, const std::string& path) : fd_(fd), saved_(::dup(fd)) {
    std::fflush(nullptr);
    const int file = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(file, fd_);
    ::close(file);
  }
  ~redirect() {
    std::fflush(nullptr);
    ::dup2(saved_, fd_);
    ::close(saved_);
  }
  redirect(const redirect&) = delete;
  redirect& operator=(const redirect&) = delete;

private:
  int fd_;
  int saved_;
};

// End positions of the whitespace-separated columns of a line.
std::vector<std::size_t> column_ends(const std::string& line) {
  std::vector<std::size_t> ends;
  for (std::size_t i = 0; i < line.size(); ++i)
    if (line[i] != ' ' && (i + 1 == line.size() || line[i + 1] == ' ')) ends.push_back(i);
  return ends;
}

foreman::task_record record(int worker, double seconds, bool failed, unsigned attempts, double started,
                            double finished) {
  foreman::task_record t;
  t.worker = worker;
  t.seconds = seconds;
  t.failed = failed;
  t.attempts = attempts;
  t.started = started;
  t.finished = finished;
  return t;
}

// A run drawn by hand: workers 1 and 2, worker 3 lost; every kind of task.
foreman::run_info sample_run() {
  foreman::run_info info;
  info.workers = 3;
  info.wall_seconds = 2.0;
  info.tasks = {record(1, 0.5, false, 1, 0.0, 0.5), record(2, 0.4, true, 1, 0.1, 0.5),
                record(1, 0.7, false, 2, 0.5, 1.2), record(3, 0.0, true, 3, 1.5, 1.5),
                record(2, 1.0, false, 1, 0.6, 1.6), record(-1, 0.0, false, 0, 0.0, 0.0)};
  info.failures = 2;
  info.retries = 2;
  info.lost_workers = {3};
  return info;
}

std::vector<foreman::task_failure> sample_failures() {
  return {{1, 2, "std::runtime_error", "bad <input> & \"quotes\"\nsecond line"},
          {3, 3, "foreman::worker_lost", "worker 3 was lost"}};
}

// The sample run's tasks by state, each marked in a timeline as `mark` + state + '"'.
void check_states(const std::string& text, const std::string& mark) {
  CHECK(count(text, mark + "ok\"") == 2);
  CHECK(count(text, mark + "failed\"") == 2);
  CHECK(count(text, mark + "retried\"") == 1);
}

} // namespace

TEST_CASE("progress without a terminal: a plain line at each tenth of the tasks", "[progress]") {
  foreman::detail::progress_meter meter(25, false);
  std::string out;
  for (std::size_t done = 1; done < 25; ++done) {
    const std::string text = meter.update({done, done / 10, done / 20}, 0.1 * static_cast<double>(done));
    if (done == 10) CHECK(text == "foreman: 10/25 tasks (40%), 10.0 tasks/s, ETA 1.5s, 1 failed, 0 workers lost\n");
    out += text;
  }
  out += meter.finish({25, 2, 1}, 2.5);
  CHECK(out.find('\r') == std::string::npos);
  const auto lines = lines_of(out);
  // Tenths are crossed at 3, 5, 8, 10, 13, 15, 18, 20 and 23 tasks; the last line is finish()'s.
  REQUIRE(lines.size() == 10);
  const char* done[] = {"3/25", "5/25", "8/25", "10/25", "13/25", "15/25", "18/25", "20/25", "23/25", "25/25"};
  for (std::size_t k = 0; k < lines.size(); ++k) {
    INFO(lines[k]);
    CHECK(lines[k].rfind(std::string("foreman: ") + done[k] + " tasks (", 0) == 0);
  }
  CHECK(lines.back() == "foreman: 25/25 tasks (100%), 10.0 tasks/s, done in 2.5s, 2 failed, 1 worker lost");

  // Fewer tasks than tenths: a line per task.
  foreman::detail::progress_meter few(3, false);
  CHECK(!few.update({1, 0, 0}, 1.0).empty());
  CHECK(!few.update({2, 0, 0}, 2.0).empty());
  CHECK(count(few.finish({3, 0, 0}, 3.0), "3/3 tasks (100%)") == 1);
  // No tasks: nothing to show.
  foreman::detail::progress_meter none(0, false);
  CHECK(none.finish({0, 0, 0}, 0.0).empty());
}

TEST_CASE("progress of a job or stream, whose total is not known: count, rate, time so far", "[progress]") {
  using foreman::detail::progress_meter;
  progress_meter log(progress_meter::unknown_total, false);
  std::string out;
  for (std::size_t done = 1; done <= 250; ++done) out += log.update({done, done / 100, 0}, 0.1 * double(done));
  // 25 s of updates: a line at 10 s and at 20 s, none in between.
  const auto lines = lines_of(out);
  REQUIRE(lines.size() == 2);
  CHECK(lines[0] == "foreman: 100 tasks, 10.0 tasks/s, 10s so far, 1 failed, 0 workers lost");
  CHECK(lines[1] == "foreman: 200 tasks, 10.0 tasks/s, 20s so far, 2 failed, 0 workers lost");
  CHECK(log.finish({250, 2, 1}, 25.0) == "foreman: 250 tasks, 10.0 tasks/s, done in 25s, 2 failed, 1 worker lost\n");
  progress_meter terminal(progress_meter::unknown_total, true);
  const std::string line = terminal.update({5, 0, 0}, 1.0);
  CHECK(line == "\rforeman: 5 tasks, 5.00 tasks/s, 1.0s so far, 0 failed, 0 workers lost");
  CHECK(line.find('[') == std::string::npos); // no bar, no ETA
}

TEST_CASE("progress on a terminal: one line redrawn in place a few times a second", "[progress]") {
  foreman::detail::progress_meter meter(1000, true);
  std::size_t draws = 0;
  std::size_t on_screen = 0; // visible characters the last draw left
  for (std::size_t done = 1; done < 1000; ++done) {
    const std::string text = meter.update({done, 0, 0}, 0.01 * static_cast<double>(done));
    if (text.empty()) continue;
    ++draws;
    INFO(text);
    CHECK(text.front() == '\r');
    CHECK(text.find('\n') == std::string::npos);
    CHECK(text.find("foreman: [") == 1);
    CHECK(text.size() - 1 >= on_screen); // covers whatever the previous line left
    on_screen = text.find_last_not_of(' ');
  }
  // 10 s of updates every 10 ms, at most one draw per 0.25 s.
  CHECK(draws >= 38);
  CHECK(draws <= 41);
  const std::string last = meter.finish({1000, 0, 0}, 10.0);
  CHECK(last.front() == '\r');
  CHECK(last.back() == '\n');
  CHECK(count(last, "[####################] 1000/1000 tasks (100%), 100 tasks/s, done in 10s") == 1);

  // A shorter line is padded over a longer one.
  foreman::detail::progress_meter pad(10, true);
  const std::string longer = pad.update({1, 1, 12345}, 1.0);
  const std::string shorter = pad.update({2, 0, 0}, 2.0);
  CHECK(shorter.size() == longer.size());
  CHECK(shorter.back() == ' ');
  CHECK(pad.abandon() == "\n");
}

TEST_CASE("the progress option and FOREMAN_PROGRESS write to stderr only", "[progress]") {
  foreman::master_worker<int, int> pool;
  std::vector<int> tasks(40);
  for (int i = 0; i < 40; ++i) tasks[static_cast<std::size_t>(i)] = i;
  auto fn = [](int x) {
    if (x % 9 == 4) throw std::runtime_error("nine");
    return x + 1;
  };
  const std::string err_path = scratch_file("stderr"), out_path = scratch_file("stdout");
  auto captured_run = [&](bool option, const char* env) {
    if (env != nullptr)
      ::setenv("FOREMAN_PROGRESS", env, 1);
    else
      ::unsetenv("FOREMAN_PROGRESS");
    foreman::options opt;
    opt.progress = option;
    {
      redirect err(2, err_path), out(1, out_path);
      pool.run_outcomes(tasks, fn, opt);
    }
    ::unsetenv("FOREMAN_PROGRESS");
    CHECK(read_file(out_path).empty());
    return read_file(err_path);
  };

  const std::string shown = captured_run(true, nullptr);
  const std::string by_env = captured_run(false, "1");
  const std::string off = captured_run(false, nullptr);
  const std::string env_off = captured_run(true, "0");
  const std::string forced_terminal = captured_run(false, "terminal");
  const std::string forced_log = captured_run(true, "log");
  std::remove(err_path.c_str());
  std::remove(out_path.c_str());
  if (!pool.is_master()) {
    // Workers never show progress; nor, in a grouped pool, does a sub-master, whose group's
    // job the environment must not turn on either.
    CHECK(shown.empty());
    CHECK(by_env.empty());
    CHECK(forced_terminal.empty());
    CHECK(forced_log.empty());
    return;
  }
  for (const std::string& err : {shown, by_env, forced_log}) {
    INFO(err);
    CHECK(err.find('\r') == std::string::npos); // a file is not a terminal
    const auto lines = lines_of(err);
    REQUIRE(lines.size() == 10);
    for (std::size_t k = 0; k < 10; ++k) {
      const std::string done = std::to_string(4 * (k + 1)) + "/40 tasks (" + std::to_string(10 * (k + 1)) + "%)";
      CHECK(lines[k].rfind("foreman: " + done, 0) == 0);
    }
    CHECK(count(lines.back(), ", 4 failed, 0 workers lost") == 1); // 4, 13, 22, 31 % 9 == 4
    CHECK(count(lines.back(), "done in ") == 1);
  }
  CHECK(off.empty());
  CHECK(env_off.empty());
  // FOREMAN_PROGRESS=terminal: the line redrawn in place although stderr is a file (as under
  // mpirun, where a rank's stderr is a pipe even when mpirun's is a terminal).
  INFO(forced_terminal);
  CHECK(forced_terminal.rfind("\rforeman: [", 0) == 0);
  CHECK(count(forced_terminal, "\n") == 1);
  CHECK(count(forced_terminal, "\rforeman: [####################] 40/40 tasks (100%)") == 1);
  CHECK(forced_terminal.back() == '\n');
}

// [flat]: where each task runs is round_robin's rule over the pool's workers, which a grouped pool
// applies inside each group (docs/api.md, "Grouped pools").
TEST_CASE("the report of a round-robin run with failures", "[report][flat]") {
  foreman::master_worker<int, int> pool;
  const int workers = pool.worker_count();
  const int n = workers == 0 ? 7 : 3 * workers + 2;
  std::vector<int> tasks(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) tasks[static_cast<std::size_t>(i)] = i;
  constexpr int sleep_us = 2000;
  auto fn = [](int x) {
    foreman_test::sleep_us(sleep_us);
    if (x % 4 == 1) throw std::runtime_error("quarter");
    return x;
  };
  foreman::options opt;
  opt.schedule = foreman::schedule::round_robin;
  if (!pool.is_master()) {
    CHECK(pool.run(tasks, fn, opt).empty());
    return;
  }
  CHECK_THROWS_AS(pool.run(tasks, fn, opt), foreman::task_error);

  // Where each task ran is known in advance: task i on worker 1 + i mod W.
  std::vector<int> expected_ranks;
  for (int r = workers == 0 ? 0 : 1; r <= workers; ++r) expected_ranks.push_back(r);
  auto rank_of = [&](int i) { return workers == 0 ? 0 : 1 + i % workers; };

  const foreman::run_report report = pool.report();
  CHECK(report.tasks == static_cast<std::size_t>(n));
  CHECK(report.failures == static_cast<std::size_t>((n + 2) / 4));
  CHECK(report.retries == 0);
  CHECK(report.lost_workers.empty());
  CHECK(report.wall_seconds == pool.last_run().wall_seconds);
  CHECK(report.wall_seconds >= n * sleep_us * 1e-6 / std::max(1, workers));
  CHECK(report.throughput == Approx(n / report.wall_seconds));
  REQUIRE(report.workers.size() == expected_ranks.size());
  double busy = 0;
  for (std::size_t k = 0; k < report.workers.size(); ++k) {
    const foreman::worker_report& w = report.workers[k];
    INFO("worker " << w.rank);
    CHECK(w.rank == expected_ranks[k]);
    std::size_t mine = 0, failed = 0;
    for (int i = 0; i < n; ++i)
      if (rank_of(i) == w.rank) {
        ++mine;
        failed += i % 4 == 1 ? 1 : 0;
      }
    CHECK(w.tasks == mine);
    CHECK(w.failed == failed);
    CHECK(w.busy_seconds >= static_cast<double>(mine) * sleep_us * 1e-6); // a sleep lasts at least that long
    CHECK(w.utilization == Approx(w.busy_seconds / report.wall_seconds));
    CHECK(w.utilization <= 1.0);
    CHECK_FALSE(w.lost);
    busy += w.busy_seconds;
  }
  CHECK(report.utilization == Approx(busy / (report.wall_seconds * static_cast<double>(report.workers.size()))));

  // The table: a summary line, a header, a row per worker and a total, columns right-aligned.
  std::ostringstream printed;
  printed << report;
  const auto lines = lines_of(printed.str());
  INFO(printed.str());
  REQUIRE(lines.size() == 3 + report.workers.size());
  CHECK(lines[0].rfind("foreman run: " + std::to_string(n) + " tasks in ", 0) == 0);
  CHECK(count(lines[0], ", " + std::to_string(report.failures) + " failed, 0 retried, lost workers: none") == 1);
  CHECK(lines[1] == "  worker  tasks  failed  busy(s)  utilization");
  const auto ends = column_ends(lines[1]);
  for (std::size_t k = 0; k < report.workers.size(); ++k) {
    const foreman::worker_report& w = report.workers[k];
    const std::string& line = lines[2 + k];
    CHECK(column_ends(line) == ends);
    std::istringstream cells(line);
    int rank = -1;
    std::size_t tasks_cell = 0, failed_cell = 0;
    cells >> rank >> tasks_cell >> failed_cell;
    CHECK(rank == w.rank);
    CHECK(tasks_cell == w.tasks);
    CHECK(failed_cell == w.failed);
  }
  CHECK(column_ends(lines.back()) == ends);
  CHECK(lines.back().rfind("     all  " + std::string(5 - std::to_string(n).size(), ' ') + std::to_string(n), 0) == 0);
}

TEST_CASE("the report marks lost workers and counts retries", "[report]") {
  const foreman::run_report report(sample_run());
  CHECK(report.tasks == 6);
  CHECK(report.retries == 2);
  CHECK(report.lost_workers == std::vector<int>{3});
  REQUIRE(report.workers.size() == 3);
  CHECK(report.workers[0].tasks == 2);
  CHECK(report.workers[0].busy_seconds == Approx(1.2));
  CHECK(report.workers[0].utilization == Approx(0.6));
  CHECK(report.workers[1].failed == 1);
  CHECK(report.workers[2].lost);
  CHECK(report.throughput == Approx(3.0));
  std::ostringstream printed;
  report.print(printed);
  const auto lines = lines_of(printed.str());
  REQUIRE(lines.size() == 6);
  CHECK(count(lines[0], "2 failed, 2 retried, lost workers: 3") == 1);
  CHECK(lines[4].substr(lines[4].size() - 6) == "  lost");
  CHECK(lines[5].rfind("     all      5       2", 0) == 0); // the task that never ran is in no row
}

TEST_CASE("tasks of one worker are laid end to end on the time axis", "[timeline]") {
  foreman::run_info info;
  // Worker 1 answered a chunk of three tasks at once (t = 1.0); worker 2 answered one at a time.
  info.tasks = {record(1, 0.2, false, 1, 0, 1.0), record(1, 0.2, false, 1, 0, 1.0), record(1, 0.3, false, 1, 0, 1.0),
                record(2, 0.5, false, 1, 0, 0.6), record(2, 0.9, false, 1, 0, 1.7)};
  foreman::detail::lay_out(info, {3, 0, 1, 2, 4});
  CHECK(info.tasks[2].finished == Approx(1.0));
  CHECK(info.tasks[2].started == Approx(0.7));
  CHECK(info.tasks[1].finished == Approx(0.7));
  CHECK(info.tasks[1].started == Approx(0.5));
  CHECK(info.tasks[0].finished == Approx(0.5));
  CHECK(info.tasks[0].started == Approx(0.3));
  CHECK(info.tasks[4].started == Approx(0.8));
  CHECK(info.tasks[3].finished == Approx(0.6)); // its successor started after it arrived
  CHECK(info.tasks[3].started == Approx(0.1));
}

TEST_CASE("the Chrome trace has one event per task that ran", "[timeline]") {
  std::ostringstream out;
  foreman::write_chrome_trace(out, sample_run(), sample_failures());
  const std::string json = out.str();
  INFO(json);
  CHECK(count(json, "\"ph\":\"X\"") == 5);
  check_states(json, "\"cat\":\"");
  CHECK(count(json, "\"name\":\"thread_name\"") == 3);
  CHECK(count(json, "{\"name\":\"task 4\",\"cat\":\"ok\",\"ph\":\"X\",\"ts\":600000.000,\"dur\":1000000.000,\"pid\":0,"
                    "\"tid\":2,") == 1);
  CHECK(count(json, R"("error":"std::runtime_error: bad <input> & \"quotes\"\u000asecond line")") == 1);
}

TEST_CASE("the HTML timeline is one self-contained page with a bar per task", "[timeline]") {
  std::ostringstream out;
  foreman::write_timeline_html(out, sample_run(), sample_failures());
  const std::string html = out.str();
  INFO(html);
  CHECK(html.rfind("<!DOCTYPE html>", 0) == 0);
  CHECK(count(html, "<rect class=\"bar ") == 5);
  check_states(html, "<rect class=\"bar ");
  CHECK(count(html, "<title>task 1 on worker 2, 0.400 s, failed: std::runtime_error: bad &lt;input&gt; &amp; "
                    "&quot;quotes&quot;") == 1);
  CHECK(count(html, "<title>task 2 on worker 1, 0.700 s, retried (attempt 2)</title>") == 1);
  CHECK(count(html, ">worker 3 (lost)</text>") == 1);
  CHECK(count(html, "<rect class=\"row\"") == 2);
  CHECK(count(html, "<rect class=\"row lost\"") == 1);
  CHECK(count(html, " s</text>") >= 5); // the time axis
  // Nothing to fetch: no links, scripts, images or fonts from anywhere.
  for (const char* outside : {"http:", "https:", "src=", "href=", "url(", "@import", "<script", "<link"})
    CHECK(count(html, outside) == 0);
}

namespace {

// The bars of an aggregated HTML timeline, as the page gives them.
struct bin_bar {
  std::string state;
  int worker = 0;
  std::size_t first = 0, last = 0, tasks = 0, failed = 0, retried = 0;
  std::string title;
};

std::vector<bin_bar> bin_bars(const std::string& html) {
  static const std::regex bar(
      R"re(<rect class="bin (ok|failed|retried)" data-worker="(\d+)" data-bins="(\d+)-(\d+)" )re"
      R"re(data-tasks="(\d+)" data-failed="(\d+)" data-retried="(\d+)"[^>]*><title>([^<]*)</title>)re");
  std::vector<bin_bar> bars;
  for (auto it = std::sregex_iterator(html.begin(), html.end(), bar); it != std::sregex_iterator(); ++it) {
    const std::smatch& m = *it;
    auto n = [&m](int k) { return static_cast<std::size_t>(std::stoul(m[k].str())); };
    bars.push_back({m[1].str(), std::stoi(m[2].str()), n(3), n(4), n(5), n(6), n(7), m[8].str()});
  }
  return bars;
}

std::size_t bins_of(const std::string& html) {
  const auto at = html.find("data-bin-count=\"");
  return at == std::string::npos ? 0 : std::stoul(html.substr(at + 16));
}

} // namespace

TEST_CASE("a run of more tasks than the bar limit is drawn in bins, counts and failures kept", "[timeline]") {
  auto failures = sample_failures();
  // The title shows 200 bytes of "task 1 failed: std::runtime_error: " (35) and the message: not the é.
  failures[0].message = std::string(164, 'x') + "\xc3\xa9" + std::string(100, 'y');
  std::ostringstream out;
  foreman::write_timeline_html(out, sample_run(), failures, 4); // 5 tasks ran
  const std::string html = out.str();
  INFO(html);
  CHECK(count(html, "<rect class=\"bar ") == 0);
  CHECK(count(html, "<p class=\"aggregated\">Aggregated view: 5 tasks ran, more than the 4 drawn one bar each") == 1);
  CHECK(count(html, ">worker 3 (lost)</text>") == 1);
  CHECK(count(html, "<rect class=\"row lost\"") == 1);
  const std::vector<bin_bar> bars = bin_bars(html);
  CHECK(count(html, "<rect class=\"bin ") == bars.size());
  // Every count of bin kept, whatever the number of bins chosen: 26 at most per row.
  CHECK(bins_of(html) == 26);
  CHECK(bars.size() <= 3 * 26);
  std::size_t tasks = 0, failed = 0, retried = 0;
  for (const bin_bar& bar : bars) {
    tasks += bar.tasks;
    failed += bar.failed;
    retried += bar.retried;
    CHECK(bar.state == (bar.failed > 0 ? "failed" : bar.retried > 0 ? "retried" : "ok"));
  }
  CHECK(tasks == 5);
  CHECK(failed == 2);
  CHECK(retried == 1);
  // Task 1 failed on worker 2 at 0.1 s, task 3 (no time at all) on worker 3 at 1.5 s: red bars there.
  const auto red_on = [&bars](int worker) {
    return std::count_if(bars.begin(), bars.end(),
                         [worker](const bin_bar& b) { return b.worker == worker && b.state == "failed"; });
  };
  CHECK(red_on(2) == 1);
  CHECK(red_on(3) == 1);
  CHECK(count(html, "; task 1 failed: std::runtime_error: " + std::string(164, 'x') + "...</title>") == 1);
  CHECK(count(html, "; task 3 failed: foreman::worker_lost: worker 3 was lost</title>") == 1);
  CHECK(count(html, " s</text>") >= 5); // the time axis
  for (const char* outside : {"http:", "https:", "src=", "href=", "url(", "@import", "<script", "<link"})
    CHECK(count(html, outside) == 0);
}

TEST_CASE("an aggregated timeline takes the most bins whose bars stay within the limit", "[timeline]") {
  // One worker, 3000 tasks of 1 to 9 ms back to back: its busy share is the same everywhere
  // (one bar) unless the tasks leave gaps, here a gap after every third task.
  foreman::run_info info;
  info.workers = 1;
  double now = 0;
  for (int i = 0; i < 3000; ++i) {
    const double seconds = 1e-3 * (1 + i * 7 % 9);
    info.tasks.push_back(record(1, seconds, i == 1234, 1, now, now + seconds));
    now += seconds + (i % 3 == 0 ? 4e-3 * (i % 5) : 0);
  }
  info.wall_seconds = now;
  info.failures = 1;
  const std::vector<std::size_t> choices = {430, 215, 107, 53, 26};
  for (const std::size_t limit : {std::size_t{1000}, std::size_t{60}, std::size_t{2}}) {
    std::ostringstream out;
    foreman::write_timeline_html(out, info, {}, limit);
    const std::string html = out.str();
    std::vector<bin_bar> bars = bin_bars(html);
    const std::size_t bins = bins_of(html);
    INFO("limit " << limit << ": " << bars.size() << " bars in " << bins << " bins");
    const auto choice = std::find(choices.begin(), choices.end(), bins);
    REQUIRE(choice != choices.end());
    CHECK(bars.size() <= std::max<std::size_t>(limit, 26));
    // One step finer would have made too many bars.
    if (choice != choices.begin())
      CHECK(foreman::detail::bin_tasks(info, {1}, info.wall_seconds, *std::prev(choice)).bars.size() > limit);
    std::sort(bars.begin(), bars.end(), [](const bin_bar& a, const bin_bar& b) { return a.first < b.first; });
    std::size_t tasks = 0, failed = 0, next = 0;
    for (const bin_bar& bar : bars) {
      CHECK(bar.first >= next); // in time order, no bin twice
      next = bar.last + 1;
      tasks += bar.tasks;
      failed += bar.failed;
    }
    CHECK(next <= bins);
    CHECK(tasks == 3000);
    CHECK(failed == 1);
  }
}

TEST_CASE("a run writes its timeline files, tasks placed without overlap", "[timeline]") {
  foreman::master_worker<int, int> pool;
  const std::size_t n = 24;
  std::vector<int> tasks(n);
  for (std::size_t i = 0; i < n; ++i) tasks[i] = static_cast<int>(i);
  auto fn = [](int x) {
    foreman_test::sleep_us(500 + 300 * (x % 5));
    if (x % 7 == 3) throw std::out_of_range("seven");
    return x;
  };
  foreman::options opt;
  opt.chunk_size = 2; // results of a chunk arrive together and must still not overlap
  opt.timeline_json = scratch_file("trace.json");
  opt.timeline_html = scratch_file("timeline.html");
  pool.run_outcomes(tasks, fn, opt);
  if (!pool.is_master()) return;
  const foreman::run_info& info = pool.last_run();
  for (int rank : foreman::detail::ranks_of(info)) {
    std::vector<foreman::task_record> mine;
    for (const auto& t : info.tasks)
      if (t.worker == rank) mine.push_back(t);
    std::sort(mine.begin(), mine.end(), [](const auto& a, const auto& b) { return a.started < b.started; });
    for (std::size_t k = 0; k < mine.size(); ++k) {
      INFO("worker " << rank << ", its task " << k);
      CHECK(mine[k].started >= 0.0);
      CHECK(mine[k].started <= mine[k].finished);
      CHECK(mine[k].finished <= info.wall_seconds);
      CHECK(mine[k].finished - mine[k].started <= mine[k].seconds + 1e-12);
      if (k > 0) CHECK(mine[k].started >= mine[k - 1].finished);
    }
  }
  const std::string json = read_file(opt.timeline_json), html = read_file(opt.timeline_html);
  std::remove(opt.timeline_json.c_str());
  std::remove(opt.timeline_html.c_str());
  CHECK(count(json, "\"ph\":\"X\"") == n);
  CHECK(count(json, "\"cat\":\"failed\"") == 3); // 3, 10, 17 % 7 == 3
  CHECK(count(html, "<rect class=\"bar ") == n);
  CHECK(count(html, "<rect class=\"bar failed\"") == 3);
  CHECK(count(html, "std::out_of_range: seven</title>") == 3);
}

TEST_CASE("FOREMAN_TIMELINE: every run's timeline, written by the master alone", "[timeline]") {
  foreman::master_worker<int, int> pool;
  const std::size_t n = 30;
  std::vector<int> tasks(n);
  for (std::size_t i = 0; i < n; ++i) tasks[i] = static_cast<int>(i);
  // Each rank names its own files: only the master's may be written (in a grouped pool, neither
  // the top layer's job nor a sub-master's job of its group writes one).
  const std::string prefix = scratch_file("env_timeline");
  ::setenv("FOREMAN_TIMELINE", prefix.c_str(), 1);
  const auto results = pool.run(tasks, [](int x) { return x + 1; });
  ::unsetenv("FOREMAN_TIMELINE");
  const std::string json = read_file(prefix + ".json"), html = read_file(prefix + ".html");
  std::remove((prefix + ".json").c_str());
  std::remove((prefix + ".html").c_str());
  if (!pool.is_master()) {
    CHECK(json.empty());
    CHECK(html.empty());
    return;
  }
  CHECK(results.size() == n);
  CHECK(count(json, "\"ph\":\"X\"") == n);
  CHECK(count(html, "<rect class=\"bar ") == n);
}

TEST_CASE("a timeline that cannot be written is reported, the results are returned", "[timeline]") {
  foreman::master_worker<int, int> pool;
  foreman::options opt;
  opt.timeline_html = "/nonexistent-directory/timeline.html";
  const std::string err_path = scratch_file("unwritable");
  std::vector<int> results;
  {
    redirect err(2, err_path);
    results = pool.run(
        std::vector<int>{1, 2, 3}, [](int x) { return 2 * x; }, opt);
  }
  const std::string err = read_file(err_path);
  std::remove(err_path.c_str());
  if (!pool.is_master()) return;
  CHECK(results == std::vector<int>{2, 4, 6});
  CHECK(err == "foreman: cannot write the timeline to /nonexistent-directory/timeline.html: No such file or "
               "directory\n");
}
