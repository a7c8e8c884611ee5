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
#include <ostream>
#include <string>
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

/// Writes the run as one HTML page that needs no network: a summary line, a legend and an SVG
/// Gantt chart with one row per worker (lost workers marked) and one bar (`<rect class="bar
/// ok|failed|retried">`) per task that ran; hovering a bar shows the task index, worker,
/// duration and outcome (an SVG `<title>`).
/// @param out      where to write; the caller opens and checks it
/// @param info     the run, e.g. master_worker::last_run()
/// @param failures the run's failures, to show their exceptions on hover (optional)
inline void write_timeline_html(std::ostream& out, const run_info& info,
                                const std::vector<task_failure>& failures = {});

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
};

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

inline void write_timeline_html(std::ostream& out, const run_info& info, const std::vector<task_failure>& failures) {
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
  std::size_t retried = 0;
  for (const task_record& t : info.tasks) retried += (!t.failed && t.attempts > 1) ? 1 : 0;

  out << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>foreman timeline</title>\n"
         "<style>\n"
         "body{font:14px sans-serif;margin:16px;color:#222;background:#fff}\n"
         "h1{font-size:18px;margin:0 0 8px}\n"
         ".legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 14px;vertical-align:-1px}\n"
         "svg text{font:12px sans-serif;fill:#333}\n"
         ".row{fill:#f4f4f4}.row.lost{fill:#fde7e7}.grid{stroke:#d8d8d8;stroke-width:1}\n"
         ".ok{fill:#2e9d4a;background:#2e9d4a}.failed{fill:#d62728;background:#d62728}"
         ".retried{fill:#ff9f1c;background:#ff9f1c}\n"
         ".bar{stroke:#fff;stroke-width:1}.bar:hover{stroke:#000;stroke-width:1.5}\n"
         "</style>\n</head>\n<body>\n<h1>foreman run timeline</h1>\n";
  const std::string on = info.workers == 0   ? "the master alone"
                         : info.workers == 1 ? "1 worker"
                                             : std::to_string(info.workers) + " workers";
  out << "<p class=\"summary\">" << report.tasks << " tasks on " << on << " in "
      << detail::formatted("%.3f", info.wall_seconds) << " s (" << detail::formatted("%.1f", report.throughput)
      << " tasks/s), " << report.failures << " failed, " << report.retries
      << " retried, lost workers: " << (lost.empty() ? "none" : lost) << "</p>\n";
  out << "<p class=\"legend\">task outcome:<span class=\"ok\"></span>ok<span class=\"failed\"></span>failed"
         "<span class=\"retried\"></span>ok after a lost worker ("
      << retried << ") &middot; hover over a bar to see its task</p>\n";
  out << "<svg id=\"timeline\" width=\"" << px(width) << "\" height=\"" << px(height) << "\" viewBox=\"0 0 "
      << px(width) << ' ' << px(height) << "\" role=\"img\">\n";

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
  for (std::size_t i = 0; i < info.tasks.size(); ++i) {
    const task_record& t = info.tasks[i];
    if (t.worker < 0) continue;
    const auto row = static_cast<std::size_t>(std::lower_bound(ranks.begin(), ranks.end(), t.worker) - ranks.begin());
    const double y =
        style::axis_height + style::row_height * static_cast<double>(row) + (style::row_height - style::bar_height) / 2;
    const double w = std::max(style::min_bar_width, (t.finished - t.started) * scale);
    std::string what = detail::state_of(t);
    if (failure[i] != nullptr) what += ": " + failure[i]->type + ": " + failure[i]->message;
    if (t.attempts > 1) what += " (attempt " + std::to_string(t.attempts) + ")";
    out << "<rect class=\"bar " << detail::state_of(t) << "\" data-task=\"" << i << "\" x=\""
        << px(style::label_width + t.started * scale) << "\" y=\"" << px(y) << "\" width=\"" << px(w) << "\" height=\""
        << px(style::bar_height) << "\"><title>task " << i << " on " << detail::track_name(t.worker) << ", "
        << detail::formatted("%.3f", t.seconds) << " s, " << detail::html_escape(what) << "</title></rect>\n";
  }
  out << "</svg>\n</body>\n</html>\n";
}

} // namespace foreman
