#pragma once
/// @file timeline.hpp
/// The timeline of a run, drawn two ways: as Chrome Trace Event JSON (for Perfetto and
/// chrome://tracing) and as a self-contained HTML page with an SVG Gantt chart. options::
/// timeline_json and options::timeline_html write them after each run; these functions write
/// them from any run_info.

#include <foreman/errors.hpp>
#include <foreman/outcome.hpp>
#include <foreman/report.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <iterator>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace foreman {

/// Writes the run as a Chrome Trace Event file (JSON object format): one complete event
/// (`"ph": "X"`) per task that ran, on the track (`tid`) of its worker's rank, at
/// task_record::started for task_record::seconds; its `cat` is `ok`, `failed` or `retried`
/// (succeeded after a lost worker), and its `args` hold the task index, attempts and, for a
/// failure, the exception. Metadata events name each track "worker N" ("master" for rank 0).
/// @param out      where to write; the caller opens and checks it
/// @param info     the run, e.g. master_worker::last_run()
/// @param failures the run's failures, to show their exceptions (optional)
inline void write_chrome_trace(std::ostream& out, const run_info& info, const std::vector<task_failure>& failures = {});

/// The most tasks write_timeline_html() draws one bar each; a run with more is drawn aggregated,
/// in at most about this many bars. Chosen from the time headless Chromium takes to load and draw
/// such pages on a loaded 2-core machine (docs/performance.md, "The HTML timeline"): a page of
/// this many bars renders in a second or two more than an empty one, and page size and render
/// time grow with the bars from there.
inline constexpr std::size_t timeline_bar_limit = 20000;

/// Writes the run as one HTML page that needs no network: a summary line, a legend and an SVG
/// Gantt chart under a time axis in seconds since the run started, with one row per worker
/// (`<rect class="row">`; a lost worker's is `"row lost"`, its name followed by "(lost)").
///
/// **At most `bar_limit` tasks ran** (tasks with task_record::worker >= 0): one bar per task,
/// `<rect class="bar ok|failed|retried" data-task="i">` (retried: ok after a lost worker), placed
/// at task_record::started, as wide as it ran (3 px at least); hovering over it shows the task
/// index, worker, duration and outcome (an SVG `<title>`).
///
/// **More tasks ran**: the chart is aggregated, so that the page's size depends on the workers
/// and not on the tasks. Each row is cut into `bins` equal time bins over the run (`span / bins`
/// seconds and `860 / bins` px each; `span`: the run's wall time, or its last task's end if
/// later). A task counts in the bin where it started; its time on the worker counts in every bin
/// it overlaps. Neighbouring non-empty bins of a row that look alike are drawn as one bar,
/// `<rect class="bin ok|failed|retried" data-worker="rank" data-bins="first-last" data-tasks
/// data-failed data-retried>` (the tasks that started in it, of which failed and retried):
/// - red (`failed`) when it holds a failed task, at full height, 3 px wide at least and drawn
///   after the others, so that a failure is seen however short;
/// - else amber (`retried`) when it holds a task that succeeded after a lost worker, else green;
///   as high as the worker's busy share of its bins, rounded to eighths (one at least); bins of
///   the same colour and eighths make one bar.
///
/// Its `<title>` gives the worker, the time span, the counts, the busy share and the first three
/// failed tasks with their exceptions (200 bytes each at most). `bins` is the largest of 430,
/// 215, 107, 53 and 26 (bins 2 px wide, then 4, 8, 16 and 33) whose bars number at most
/// `bar_limit`, else 26; so the chart holds at most max(`bar_limit`, 26 × workers) bars,
/// whatever the tasks. The `<svg>` carries `data-bin-count` and `data-bin-seconds`, and a
/// paragraph above it (`<p class="aggregated">`) says that the view is aggregated, with the bin
/// width in seconds and the most tasks that started in one bin.
/// @param out       where to write; the caller opens and checks it
/// @param info      the run, e.g. master_worker::last_run()
/// @param failures  the run's failures, to show their exceptions on hover (optional)
/// @param bar_limit the most tasks drawn one bar each, and the most bars of an aggregated chart
///                  (within the bound above): timeline_bar_limit unless a test wants fewer
inline void write_timeline_html(std::ostream& out, const run_info& info, const std::vector<task_failure>& failures = {},
                                std::size_t bar_limit = timeline_bar_limit);

namespace detail {

/// How a timeline colours a task.
inline const char* state_of(const task_record& t) {
  if (t.failed) return "failed";
  return t.attempts > 1 ? "retried" : "ok";
}

inline std::string track_name(int rank) {
  return rank == 0 ? "master" : "worker " + std::to_string(rank);
}

/// The failure of each task by index (null for a task that did not fail).
inline std::vector<const task_failure*> failures_by_index(const run_info& info,
                                                          const std::vector<task_failure>& failures) {
  std::vector<const task_failure*> by_index(info.tasks.size(), nullptr);
  for (const task_failure& f : failures)
    if (f.index < by_index.size()) by_index[f.index] = &f;
  return by_index;
}

inline std::string json_string(const std::string& text) {
  std::string out = "\"";
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\')
      out += {'\\', ch};
    else if (c < 0x20)
      out += formatted("\\u%04x", static_cast<unsigned>(c));
    else
      out += ch;
  }
  return out + '"';
}

inline std::string html_escape(const std::string& text) {
  std::string out;
  for (const char ch : text) {
    switch (ch) {
    case '&':
      out += "&amp;";
      break;
    case '<':
      out += "&lt;";
      break;
    case '>':
      out += "&gt;";
      break;
    case '"':
      out += "&quot;";
      break;
    default:
      out += ch;
    }
  }
  return out;
}

/// A round step for about `target` ticks over [0, span]: 1, 2 or 5 times a power of ten.
inline double tick_step(double span, int target) {
  const double raw = span / target;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  for (const double m : {1.0, 2.0, 5.0})
    if (m * magnitude >= raw) return m * magnitude;
  return 10.0 * magnitude;
}

// The Gantt chart's geometry and colours, in CSS pixels.
struct chart_style {
  static constexpr double label_width = 120, plot_width = 860, right_margin = 20;
  static constexpr double axis_height = 28, row_height = 24, bar_height = 16, min_bar_width = 3;
  // An aggregated chart's bins per row: at most one per 2 px (a bar of one bin stays visible next
  // to another of a different height), at least 26, which still shows the shape of the run.
  static constexpr std::size_t most_bins = 430, fewest_bins = 26;
  static constexpr int levels = 8; // an aggregated chart's bar heights: eighths of bar_height
  static constexpr std::size_t failures_shown = 3, message_shown = 200; // in an aggregated bar's title
};

/// What one worker did in one time bin of an aggregated timeline, or in a bar of such bins.
struct timeline_cell {
  std::size_t tasks = 0;   ///< tasks that started in it
  std::size_t failed = 0;  ///< of those, how many failed
  std::size_t retried = 0; ///< of those, how many succeeded after a lost worker
  double busy = 0.0;       ///< seconds of task time inside it, whenever the task started

  bool empty() const { return tasks == 0 && !(busy > 0); }
  const char* state() const { return failed > 0 ? "failed" : retried > 0 ? "retried" : "ok"; }
  timeline_cell& operator+=(const timeline_cell& other) {
    tasks += other.tasks;
    failed += other.failed;
    retried += other.retried;
    busy += other.busy;
    return *this;
  }
};

/// Neighbouring bins of one row that look the same, drawn as one bar.
struct timeline_bar {
  std::size_t row = 0, first = 0, last = 0; ///< its row and its bins, first..last
  int level = 0;                            ///< height in chart_style::levels; 0: failed, full height
  timeline_cell sum;                        ///< its bins added up
  std::vector<std::size_t> failed_tasks;    ///< the first chart_style::failures_shown of its failed tasks
};

/// An aggregated timeline: its bars, by row then time, and how it was cut.
struct binned_timeline {
  std::size_t bins = 0;       ///< bins per row
  double bin_seconds = 0.0;   ///< the width of a bin
  std::size_t most_tasks = 0; ///< the most tasks that started in one bin
  std::vector<timeline_bar> bars;

  /// The bin of time `t` (seconds since the run started); the first or last one outside the run.
  std::size_t bin_of(double t) const {
    const double b = std::floor(t / bin_seconds);
    return b > 0 ? std::min(bins - 1, static_cast<std::size_t>(b)) : 0;
  }
};

/// The run cut into `bins` bins per row over [0, span], and the bins merged into bars.
inline binned_timeline bin_tasks(const run_info& info, const std::vector<int>& ranks, double span, std::size_t bins) {
  binned_timeline out;
  out.bins = bins;
  out.bin_seconds = span / static_cast<double>(bins);
  std::vector<timeline_cell> cells(ranks.size() * bins);
  for (const task_record& t : info.tasks) {
    if (t.worker < 0) continue;
    timeline_cell* row = &cells[row_of(ranks, t.worker) * bins];
    const std::size_t first = out.bin_of(t.started), last = out.bin_of(t.finished);
    ++row[first].tasks;
    row[first].failed += t.failed ? 1 : 0;
    row[first].retried += (!t.failed && t.attempts > 1) ? 1 : 0;
    for (std::size_t b = first; b <= last; ++b) {
      const double from = std::max(t.started, static_cast<double>(b) * out.bin_seconds);
      const double to = std::min(t.finished, static_cast<double>(b + 1) * out.bin_seconds);
      if (to > from) row[b].busy += to - from;
    }
  }
  for (std::size_t r = 0; r < ranks.size(); ++r)
    for (std::size_t b = 0; b < bins; ++b) {
      const timeline_cell& cell = cells[r * bins + b];
      out.most_tasks = std::max(out.most_tasks, cell.tasks);
      if (cell.empty()) continue;
      const double eighths = std::round(cell.busy / out.bin_seconds * chart_style::levels);
      const int level = cell.failed > 0 ? 0 : std::clamp(static_cast<int>(eighths), 1, chart_style::levels);
      if (!out.bars.empty()) {
        timeline_bar& bar = out.bars.back();
        if (bar.row == r && bar.last + 1 == b && bar.level == level &&
            std::strcmp(bar.sum.state(), cell.state()) == 0) {
          bar.last = b;
          bar.sum += cell;
          continue;
        }
      }
      out.bars.push_back({r, b, b, level, cell, {}});
    }
  return out;
}

/// The run aggregated for write_timeline_html(): the most bins per row (chart_style::most_bins,
/// then halved down to fewest_bins) whose bars number at most `bar_limit`, and each bar's first
/// failed tasks.
inline binned_timeline aggregated_timeline(const run_info& info, const std::vector<int>& ranks, double span,
                                           std::size_t bar_limit) {
  std::size_t bins = chart_style::most_bins;
  binned_timeline chart = bin_tasks(info, ranks, span, bins);
  while (chart.bars.size() > bar_limit && bins / 2 >= chart_style::fewest_bins)
    chart = bin_tasks(info, ranks, span, bins /= 2);
  for (std::size_t i = 0; i < info.tasks.size(); ++i) {
    const task_record& t = info.tasks[i];
    if (!t.failed || t.worker < 0) continue;
    const std::size_t row = row_of(ranks, t.worker), bin = chart.bin_of(t.started);
    // The first bar of a later row or of a later bin of this row; the one before it holds the task.
    const auto after = std::upper_bound(chart.bars.begin(), chart.bars.end(), std::make_pair(row, bin),
                                        [](const std::pair<std::size_t, std::size_t>& at, const timeline_bar& bar) {
                                          return at < std::make_pair(bar.row, bar.first);
                                        });
    std::vector<std::size_t>& shown = std::prev(after)->failed_tasks;
    if (shown.size() < chart_style::failures_shown) shown.push_back(i);
  }
  return chart;
}

/// At most `n` bytes of `text`, cut before a UTF-8 character that would not fit, and "..." when cut.
inline std::string shortened(const std::string& text, std::size_t n) {
  if (text.size() <= n) return text;
  while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;
  return text.substr(0, n) + "...";
}

} // namespace detail

// ---- implementation ----------------------------------------------------------------------------

inline void write_chrome_trace(std::ostream& out, const run_info& info, const std::vector<task_failure>& failures) {
  const auto failure = detail::failures_by_index(info, failures);
  out << "{\"displayTimeUnit\":\"ms\",\"otherData\":{\"generator\":\"foreman\",\"tasks\":" << info.tasks.size()
      << ",\"workers\":" << info.workers << ",\"wall_seconds\":" << detail::formatted("%.6f", info.wall_seconds)
      << "},\n\"traceEvents\":[\n";
  out << "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":0,\"tid\":0,\"args\":{\"name\":\"foreman run\"}}";
  for (const int rank : detail::ranks_of(info)) {
    const std::string tid = ",\"pid\":0,\"tid\":" + std::to_string(rank);
    out << ",\n{\"name\":\"thread_name\",\"ph\":\"M\"" << tid << ",\"args\":{\"name\":\"" << detail::track_name(rank)
        << "\"}}";
    out << ",\n{\"name\":\"thread_sort_index\",\"ph\":\"M\"" << tid << ",\"args\":{\"sort_index\":" << rank << "}}";
  }
  for (std::size_t i = 0; i < info.tasks.size(); ++i) {
    const task_record& t = info.tasks[i];
    if (t.worker < 0) continue;
    out << ",\n{\"name\":\"task " << i << "\",\"cat\":\"" << detail::state_of(t)
        << "\",\"ph\":\"X\",\"ts\":" << detail::formatted("%.3f", t.started * 1e6)
        << ",\"dur\":" << detail::formatted("%.3f", (t.finished - t.started) * 1e6) << ",\"pid\":0,\"tid\":" << t.worker
        << ",\"args\":{\"index\":" << i << ",\"attempts\":" << t.attempts
        << ",\"seconds\":" << detail::formatted("%.6f", t.seconds);
    if (failure[i] != nullptr)
      out << ",\"error\":" << detail::json_string(failure[i]->type + ": " + failure[i]->message);
    out << "}}";
  }
  out << "\n]}\n";
}

inline void write_timeline_html(std::ostream& out, const run_info& info, const std::vector<task_failure>& failures,
                                std::size_t bar_limit) {
  using style = detail::chart_style;
  const auto failure = detail::failures_by_index(info, failures);
  const run_report report(info);
  const std::vector<int> ranks = detail::ranks_of(info);

  double span = info.wall_seconds;
  for (const task_record& t : info.tasks) span = std::max(span, t.finished);
  if (!(span > 0)) span = 1e-3;
  const double scale = style::plot_width / span;
  const double width = style::label_width + style::plot_width + style::right_margin;
  const double height = style::axis_height + style::row_height * static_cast<double>(ranks.size()) + 4;
  auto px = [](double v) { return detail::formatted("%.2f", v); };

  std::string lost;
  for (int r : info.lost_workers) lost += (lost.empty() ? "" : ", ") + std::to_string(r);
  std::size_t retried = 0, drawn = 0;
  for (const task_record& t : info.tasks) {
    retried += (!t.failed && t.attempts > 1) ? 1 : 0;
    drawn += t.worker >= 0 ? 1 : 0;
  }
  const bool aggregated = drawn > bar_limit;
  const detail::binned_timeline chart =
      aggregated ? detail::aggregated_timeline(info, ranks, span, bar_limit) : detail::binned_timeline{};

  out << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>foreman timeline</title>\n"
         "<style>\n"
         "body{font:14px sans-serif;margin:16px;color:#222;background:#fff}\n"
         "h1{font-size:18px;margin:0 0 8px}\n"
         ".legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 14px;vertical-align:-1px}\n"
         "svg text{font:12px sans-serif;fill:#333}\n"
         ".row{fill:#f4f4f4}.row.lost{fill:#fde7e7}.grid{stroke:#d8d8d8;stroke-width:1}\n"
         ".ok{fill:#2e9d4a;background:#2e9d4a}.failed{fill:#d62728;background:#d62728}"
         ".retried{fill:#ff9f1c;background:#ff9f1c}\n"
         ".bar{stroke:#fff;stroke-width:1}.bar:hover{stroke:#000;stroke-width:1.5}\n";
  if (aggregated) out << ".bin:hover{stroke:#000;stroke-width:1.5}\n";
  out << "</style>\n</head>\n<body>\n<h1>foreman run timeline</h1>\n";
  const std::string on = info.workers == 0   ? "the master alone"
                         : info.workers == 1 ? "1 worker"
                                             : std::to_string(info.workers) + " workers";
  out << "<p class=\"summary\">" << report.tasks << " tasks on " << on << " in "
      << detail::formatted("%.3f", info.wall_seconds) << " s (" << detail::formatted("%.1f", report.throughput)
      << " tasks/s), " << report.failures << " failed, " << report.retries
      << " retried, lost workers: " << (lost.empty() ? "none" : lost) << "</p>\n";
  out << "<p class=\"legend\">task outcome:<span class=\"ok\"></span>ok<span class=\"failed\"></span>failed"
         "<span class=\"retried\"></span>ok after a lost worker ("
      << retried << ") &middot; "
      << (aggregated ? "hover over a bar to see its tasks and failures" : "hover over a bar to see its task")
      << "</p>\n";
  if (aggregated)
    out << "<p class=\"aggregated\">Aggregated view: " << drawn << " tasks ran, more than the " << bar_limit
        << " drawn one bar each, so each row is cut into " << chart.bins << " bins of "
        << detail::formatted("%.6g", chart.bin_seconds) << " s ("
        << detail::formatted("%.1f", scale * chart.bin_seconds)
        << " px) and neighbouring bins that look alike are one bar. A bar&rsquo;s height is the worker&rsquo;s busy "
           "share of its bins (in eighths); it is red, at full height, when it holds a failed task, amber when it "
           "holds a task that succeeded after a lost worker. At most "
        << chart.most_tasks << " tasks started in one bin.</p>\n";
  out << "<svg id=\"timeline\" width=\"" << px(width) << "\" height=\"" << px(height) << "\" viewBox=\"0 0 "
      << px(width) << ' ' << px(height) << "\" role=\"img\"";
  if (aggregated)
    out << " data-bin-count=\"" << chart.bins << "\" data-bin-seconds=\""
        << detail::formatted("%.17g", chart.bin_seconds) << '"';
  out << ">\n";

  // Rows, then the time axis and its grid, then the bars on top.
  for (std::size_t row = 0; row < ranks.size(); ++row) {
    const bool is_lost =
        std::find(info.lost_workers.begin(), info.lost_workers.end(), ranks[row]) != info.lost_workers.end();
    const double y = style::axis_height + style::row_height * static_cast<double>(row);
    out << "<rect class=\"row" << (is_lost ? " lost" : "") << "\" x=\"0\" y=\"" << px(y + 1) << "\" width=\""
        << px(width) << "\" height=\"" << px(style::row_height - 2) << "\"/>\n"
        << "<text x=\"8\" y=\"" << px(y + style::row_height / 2 + 4) << "\">" << detail::track_name(ranks[row])
        << (is_lost ? " (lost)" : "") << "</text>\n";
  }
  const double step = detail::tick_step(span, 8);
  const int decimals = step >= 1 ? 0 : static_cast<int>(std::ceil(-std::log10(step) - 1e-9));
  for (int k = 0; k * step <= span * (1 + 1e-9); ++k) {
    const double x = style::label_width + k * step * scale;
    out << "<line class=\"grid\" x1=\"" << px(x) << "\" y1=\"" << px(style::axis_height - 6) << "\" x2=\"" << px(x)
        << "\" y2=\"" << px(height) << "\"/><text x=\"" << px(x) << "\" y=\"" << px(style::axis_height - 10)
        << "\" text-anchor=\"middle\">" << detail::formatted("%.*f", decimals, k * step) << " s</text>\n";
  }
  auto bar_top = [](std::size_t row) {
    return style::axis_height + style::row_height * static_cast<double>(row) +
           (style::row_height - style::bar_height) / 2;
  };
  if (aggregated) {
    // The red bars last, on top of their neighbours, which they may overlap to be seen at all.
    const double bin_width = style::plot_width / static_cast<double>(chart.bins);
    for (const bool red : {false, true})
      for (const detail::timeline_bar& bar : chart.bars) {
        if ((bar.level == 0) != red) continue;
        const double from = static_cast<double>(bar.first) * chart.bin_seconds;
        const double to = static_cast<double>(bar.last + 1) * chart.bin_seconds;
        const double w = static_cast<double>(bar.last + 1 - bar.first) * bin_width;
        const double h = red ? style::bar_height : style::bar_height * bar.level / style::levels;
        const double busy = std::min(1.0, bar.sum.busy / (to - from));
        out << "<rect class=\"bin " << bar.sum.state() << "\" data-worker=\"" << ranks[bar.row] << "\" data-bins=\""
            << bar.first << '-' << bar.last << "\" data-tasks=\"" << bar.sum.tasks << "\" data-failed=\""
            << bar.sum.failed << "\" data-retried=\"" << bar.sum.retried << "\" x=\""
            << px(style::label_width + static_cast<double>(bar.first) * bin_width) << "\" y=\""
            << px(bar_top(bar.row) + style::bar_height - h) << "\" width=\""
            << px(red ? std::max(style::min_bar_width, w) : w) << "\" height=\"" << px(h) << "\"><title>"
            << detail::track_name(ranks[bar.row]) << ", " << detail::formatted("%.3f", from) << " to "
            << detail::formatted("%.3f", to) << " s: " << bar.sum.tasks << " tasks started";
        if (bar.sum.failed > 0) out << ", " << bar.sum.failed << " failed";
        if (bar.sum.retried > 0) out << ", " << bar.sum.retried << " ok after a lost worker";
        out << ", busy " << detail::formatted("%.0f", busy * 100) << '%';
        for (const std::size_t i : bar.failed_tasks) {
          std::string what = "task " + std::to_string(i) + " failed";
          if (failure[i] != nullptr) what += ": " + failure[i]->type + ": " + failure[i]->message;
          out << "; " << detail::html_escape(detail::shortened(what, style::message_shown));
        }
        if (bar.sum.failed > bar.failed_tasks.size())
          out << "; " << bar.sum.failed - bar.failed_tasks.size() << " more failed";
        out << "</title></rect>\n";
      }
  } else {
    for (std::size_t i = 0; i < info.tasks.size(); ++i) {
      const task_record& t = info.tasks[i];
      if (t.worker < 0) continue;
      const double w = std::max(style::min_bar_width, (t.finished - t.started) * scale);
      std::string what = detail::state_of(t);
      if (failure[i] != nullptr) what += ": " + failure[i]->type + ": " + failure[i]->message;
      if (t.attempts > 1) what += " (attempt " + std::to_string(t.attempts) + ")";
      out << "<rect class=\"bar " << detail::state_of(t) << "\" data-task=\"" << i << "\" x=\""
          << px(style::label_width + t.started * scale) << "\" y=\"" << px(bar_top(detail::row_of(ranks, t.worker)))
          << "\" width=\"" << px(w) << "\" height=\"" << px(style::bar_height) << "\"><title>task " << i << " on "
          << detail::track_name(t.worker) << ", " << detail::formatted("%.3f", t.seconds) << " s, "
          << detail::html_escape(what) << "</title></rect>\n";
    }
  }
  out << "</svg>\n</body>\n</html>\n";
}

} // namespace foreman
