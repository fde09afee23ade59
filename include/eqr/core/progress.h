#pragma once
// Progress of long work: on a terminal a live line with count, rate and ETA (redrawn in place);
// in a pipe one plain line every `pipe_interval_s` seconds, so logs stay short.

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace eqr {

class Progress {
 public:
  /// `total` = 0 when unknown (no ETA then). `unit` names what is counted ("steps", "puzzles").
  Progress(std::string label, int64_t total, std::string unit = "it", std::FILE* out = stderr);
  ~Progress();

  /// Advances by `n` and redraws if due; `extra` is appended to the line (e.g. "loss 0.31").
  void advance(int64_t n = 1, const std::string& extra = "");
  /// Sets the absolute count.
  void set(int64_t done, const std::string& extra = "");
  /// Prints the final line (idempotent).
  void finish(const std::string& extra = "");

  int64_t done() const { return done_; }
  /// Items per second since construction.
  double rate() const;
  /// The line that would be printed now (no I/O); used by tests.
  std::string line(const std::string& extra) const;

  /// Forces terminal or pipe mode (default: detected with isatty on `out`).
  void set_interactive(bool interactive) { interactive_ = interactive; }
  void set_pipe_interval(double seconds) { pipe_interval_s_ = seconds; }

  /// "1h02m03s", "4m05s", "12s".
  static std::string format_duration(double seconds);

 private:
  void maybe_draw(const std::string& extra, bool force);

  std::string label_;
  int64_t total_;
  std::string unit_;
  std::FILE* out_;
  bool interactive_;
  double pipe_interval_s_ = 10.0;
  int64_t done_ = 0;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace eqr
