#pragma once
/// @file progress.hpp
/// The progress display of a run (options::progress, FOREMAN_PROGRESS): done/total, tasks per
/// second, ETA, failures and lost workers, for the master's standard error.

#include <foreman/report.hpp>

#include <cstddef>
#include <string>

namespace foreman {
namespace detail {

/// What the progress line counts.
struct progress_counts {
  std::size_t done = 0;         ///< tasks filed, failed ones included
  std::size_t failed = 0;       ///< tasks that failed
  std::size_t lost_workers = 0; ///< workers declared lost
};

/// Formats the progress of a run. On a terminal it draws one line, redrawn in place (carriage
/// return) at most 1 / min_redraw_seconds times a second; elsewhere (a batch log) it writes a
/// plain line each time another tenth of the tasks is done. It only returns text: the caller
/// passes the time and writes the text, so it needs neither a clock nor a terminal to be tested.
/// A job or a stream has no known total (unknown_total): the line then shows the tasks done, the
/// rate and the time so far, with no bar and no ETA, and a log gets a line every
/// log_interval_seconds.
class progress_meter {
public:
  static constexpr double min_redraw_seconds = 0.25;
  static constexpr std::size_t unknown_total = static_cast<std::size_t>(-1);
  static constexpr double log_interval_seconds = 10.0;

  progress_meter(std::size_t total, bool terminal) : total_(total), terminal_(terminal) {}

  /// The text to write after a task was filed, `elapsed` seconds into the run; often empty.
  std::string update(const progress_counts& counts, double elapsed) {
    if (total_ == 0 || counts.done >= total_) return {}; // the last line is finish()'s
    if (total_ == unknown_total && !terminal_) {
      if (elapsed < next_log_) return {};
      next_log_ = elapsed + log_interval_seconds;
      return line(counts, elapsed, false) + '\n';
    }
    if (terminal_) {
      if (drawn_ && elapsed - last_draw_ < min_redraw_seconds) return {};
      last_draw_ = elapsed;
      return redraw(line(counts, elapsed, false));
    }
    const std::size_t tenths = counts.done * 10 / total_;
    if (tenths <= tenths_) return {};
    tenths_ = tenths;
    return line(counts, elapsed, false) + '\n';
  }

  /// The text that ends the display when the run is over: the final line, with a newline.
  std::string finish(const progress_counts& counts, double elapsed) {
    if (total_ == 0) return {};
    const std::string last = line(counts, elapsed, true);
    return terminal_ ? redraw(last) + '\n' : last + '\n';
  }

  /// The text that ends the display when the run is abandoned (an exception): a newline after
  /// a line left open on the terminal, so that the next message starts on a line of its own.
  std::string abandon() const { return terminal_ && drawn_ ? "\n" : ""; }

private:
  // "\r" + text, padded with spaces over whatever a longer previous line left on screen.
  std::string redraw(const std::string& text) {
    std::string out = "\r" + text;
    if (text.size() < width_) out.append(width_ - text.size(), ' ');
    width_ = text.size();
    drawn_ = true;
    return out;
  }

  std::string line(const progress_counts& c, double elapsed, bool final) const {
    if (total_ == unknown_total) return open_line(c, elapsed, final);
    const double fraction = static_cast<double>(c.done) / static_cast<double>(total_);
    std::string text = "foreman: ";
    if (terminal_) {
      constexpr std::size_t bar = 20;
      const auto filled = static_cast<std::size_t>(fraction * bar);
      text += "[" + std::string(filled, '#') + std::string(bar - filled, '.') + "] ";
    }
    text += std::to_string(c.done) + "/" + std::to_string(total_) + " tasks (" + std::to_string(c.done * 100 / total_) +
            "%), ";
    if (elapsed > 0 && c.done > 0) {
      const double rate = static_cast<double>(c.done) / elapsed;
      text += formatted(rate >= 100 ? "%.0f" : rate >= 10 ? "%.1f" : "%.2f", rate) + " tasks/s, ";
    } else {
      text += "- tasks/s, ";
    }
    if (final)
      text += "done in " + duration(elapsed);
    else if (c.done > 0)
      text += "ETA " + duration(elapsed * static_cast<double>(total_ - c.done) / static_cast<double>(c.done));
    else
      text += "ETA -";
    text += ", " + std::to_string(c.failed) + " failed, " + std::to_string(c.lost_workers) +
            (c.lost_workers == 1 ? " worker lost" : " workers lost");
    return text;
  }

  // The line of a job or stream: "foreman: 1200 tasks, 340 tasks/s, 3.5s so far, 0 failed, ...".
  static std::string open_line(const progress_counts& c, double elapsed, bool final) {
    std::string text = "foreman: " + std::to_string(c.done) + " tasks, ";
    if (elapsed > 0 && c.done > 0) {
      const double rate = static_cast<double>(c.done) / elapsed;
      text += formatted(rate >= 100 ? "%.0f" : rate >= 10 ? "%.1f" : "%.2f", rate) + " tasks/s, ";
    } else {
      text += "- tasks/s, ";
    }
    text += (final ? "done in " : "") + duration(elapsed) + (final ? "" : " so far");
    text += ", " + std::to_string(c.failed) + " failed, " + std::to_string(c.lost_workers) +
            (c.lost_workers == 1 ? " worker lost" : " workers lost");
    return text;
  }

  static std::string duration(double seconds) {
    if (seconds < 10) return formatted("%.1fs", seconds);
    if (seconds < 60) return formatted("%.0fs", seconds);
    const auto s = static_cast<long>(seconds + 0.5);
    if (s < 3600) return formatted("%ldm%02lds", s / 60, s % 60);
    return formatted("%ldh%02ldm", s / 3600, s % 3600 / 60);
  }

  std::size_t total_;
  bool terminal_;
  bool drawn_ = false;     // terminal: a line is on screen
  double last_draw_ = 0.0; // terminal: when it was drawn
  std::size_t width_ = 0;  // terminal: its length
  std::size_t tenths_ = 0; // plain: tenths of the tasks already reported
  double next_log_ = log_interval_seconds; // plain, unknown total: when the next line is due
};

} // namespace detail
} // namespace foreman
