#pragma once
/// @file observer.hpp
/// What the master does besides scheduling while a run goes on: it times each filed task,
/// shows progress (options::progress, FOREMAN_PROGRESS), and after the run places the tasks on
/// the run's time axis and writes the timeline files (options::timeline_json/_html,
/// FOREMAN_TIMELINE).

#include <foreman/detail/progress.hpp>
#include <foreman/errors.hpp>
#include <foreman/options.hpp>
#include <foreman/outcome.hpp>
#include <foreman/timeline.hpp>

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace foreman {
namespace detail {

/// The value of an environment variable, or nullopt when it is not set.
inline std::optional<std::string> environment_value(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

/// Whether to show progress, and as a terminal line (true) or as log lines (false): from
/// options::progress, overridden by FOREMAN_PROGRESS (0 or empty: off; `terminal`, `log`: on in
/// that form; anything else: on, a terminal line when standard error is a terminal).
inline std::optional<bool> progress_form(bool option) {
  const auto env = environment_value("FOREMAN_PROGRESS");
  if (env && (env->empty() || *env == "0")) return std::nullopt;
  if (env && *env == "terminal") return true;
  if (env && *env == "log") return false;
  if (!env && !option) return std::nullopt;
  return ::isatty(::fileno(stderr)) != 0;
}

/// Tasks of one worker run one after another, in the order the master files them, but the
/// results of a chunk (and of a worker's queued chunks) can reach the master together. So a
/// task cannot have ended later than its successor on the same worker started: walking each
/// worker's tasks backwards, finished = min(arrival, successor's start), started = finished -
/// seconds. `order` lists the filed tasks in filing order; `finished` holds their arrival.
inline void lay_out(run_info& info, const std::vector<std::size_t>& order) {
  std::vector<double> next_start;
  for (auto i = order.rbegin(); i != order.rend(); ++i) {
    task_record& t = info.tasks[*i];
    if (t.worker < 0) continue;
    const auto w = static_cast<std::size_t>(t.worker);
    if (w >= next_start.size()) next_start.resize(w + 1, std::numeric_limits<double>::infinity());
    t.finished = std::min(t.finished, next_start[w]);
    t.started = std::max(0.0, t.finished - t.seconds);
    next_start[w] = t.started;
  }
}

/// Watches one run on the master. The facade calls task_done() for each filed task and
/// run_ended() once every task is filed.
class run_observer {
public:
  using clock = std::chrono::steady_clock;

  /// `layer`: the run of a layer of a grouped pool (pool_state::layer), which the whole pool's
  /// master observes: it shows no progress and writes no timeline, whatever FOREMAN_PROGRESS
  /// and FOREMAN_TIMELINE say (grouped_run.hpp and batch.hpp clear the options themselves).
  run_observer(std::size_t total, const options& opt, bool layer = false)
      : start_(clock::now()), json_path_(opt.timeline_json), html_path_(opt.timeline_html) {
    if (layer) {
      json_path_.clear();
      html_path_.clear();
      return;
    }
    if (const auto terminal = progress_form(opt.progress)) meter_.emplace(total, *terminal);
    const auto prefix = environment_value("FOREMAN_TIMELINE");
    if (prefix && !prefix->empty() && json_path_.empty() && html_path_.empty()) {
      json_path_ = *prefix + ".json";
      html_path_ = *prefix + ".html";
    }
    if (total != progress_meter::unknown_total) order_.reserve(total);
  }

  ~run_observer() {
    if (meter_ && !ended_) write(meter_->abandon());
  }

  run_observer(const run_observer&) = delete;
  run_observer& operator=(const run_observer&) = delete;

  /// Seconds since the run started.
  double elapsed() const { return std::chrono::duration<double>(clock::now() - start_).count(); }

  /// Task `index` was just filed in `info` (its result or failure is in); `when`: when it
  /// reached the master.
  void task_done(run_info& info, std::size_t index, clock::time_point when) {
    const double now = std::chrono::duration<double>(when - start_).count();
    info.tasks[index].finished = now;
    order_.push_back(index);
    failed_ += info.tasks[index].failed ? 1 : 0;
    if (meter_) write(meter_->update(counts(info), now));
  }

  /// As task_done(), for a job or stream that keeps no per-task records (keeps_records() false):
  /// only the progress display is fed.
  void task_done(bool failed, std::size_t lost_workers, clock::time_point when) {
    ++done_;
    failed_ += failed ? 1 : 0;
    if (meter_)
      write(meter_->update({done_, failed_, lost_workers}, std::chrono::duration<double>(when - start_).count()));
  }

  /// Whether a progress display is shown (else task_done(bool, ...) has nothing to do).
  bool shows_progress() const { return meter_.has_value(); }

  /// Whether per-task records must be kept for this run: a timeline was asked for.
  bool keeps_records() const { return !json_path_.empty() || !html_path_.empty(); }

  /// Every task is filed and info.wall_seconds is set: lays the tasks out on the time axis,
  /// ends the progress display and writes the timeline files. A file that cannot be written is
  /// reported on standard error: the run's results matter more than its picture.
  void run_ended(run_info& info, const std::vector<task_failure>& failures) {
    ended_ = true;
    lay_out(info, order_);
    if (meter_) write(meter_->finish(counts(info), info.wall_seconds));
    if (!json_path_.empty()) save(json_path_, [&](std::ostream& out) { write_chrome_trace(out, info, failures); });
    if (!html_path_.empty()) save(html_path_, [&](std::ostream& out) { write_timeline_html(out, info, failures); });
  }

private:
  progress_counts counts(const run_info& info) const {
    return {order_.empty() ? done_ : order_.size(), failed_, info.lost_workers.size()};
  }

  static void write(const std::string& text) {
    if (!text.empty()) std::fputs(text.c_str(), stderr); // one call: other ranks' lines do not cut into it
  }

  template <class Write>
  static void save(const std::string& path, Write&& contents) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    if (out) contents(out);
    if (out) out.flush();
    if (!out) write("foreman: cannot write the timeline to " + path + ": " + std::strerror(errno) + "\n");
  }

  clock::time_point start_;
  std::string json_path_, html_path_;
  std::optional<progress_meter> meter_;
  std::vector<std::size_t> order_; // filed tasks, in filing order
  std::size_t failed_ = 0;
  std::size_t done_ = 0; // tasks filed without records (the other task_done())
  bool ended_ = false;
};

} // namespace detail
} // namespace foreman
