#include "eqr/core/progress.h"

#include <unistd.h>

#include <cmath>
#include <sstream>

namespace eqr {

namespace {
double seconds_between(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}
}  // namespace

Progress::Progress(std::string label, int64_t total, std::string unit, std::FILE* out)
    : label_(std::move(label)),
      total_(total),
      unit_(std::move(unit)),
      out_(out),
      interactive_(out != nullptr && isatty(fileno(out))),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

Progress::~Progress() {
  if (!finished_ && interactive_ && out_ != nullptr && done_ > 0) {
    std::fputc('\n', out_);
  }
}

std::string Progress::format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  auto s = static_cast<int64_t>(std::llround(seconds));
  const int64_t h = s / 3600, m = (s % 3600) / 60, sec = s % 60;
  std::ostringstream os;
  if (h > 0) {
    os << h << 'h' << (m < 10 ? "0" : "") << m << 'm' << (sec < 10 ? "0" : "") << sec << 's';
  } else if (m > 0) {
    os << m << 'm' << (sec < 10 ? "0" : "") << sec << 's';
  } else {
    os << sec << 's';
  }
  return os.str();
}

double Progress::rate() const {
  const double elapsed = seconds_between(start_, std::chrono::steady_clock::now());
  return elapsed > 0 ? static_cast<double>(done_) / elapsed : 0.0;
}

std::string Progress::line(const std::string& extra) const {
  std::ostringstream os;
  os << label_ << ": " << done_;
  if (total_ > 0) {
    os << '/' << total_ << ' ' << unit_ << " ("
       << static_cast<int>(100.0 * static_cast<double>(done_) / static_cast<double>(total_)) << "%)";
  } else {
    os << ' ' << unit_;
  }
  const double r = rate();
  os.precision(r < 10 ? 2 : 0);
  os << std::fixed << ", " << r << ' ' << unit_ << "/s";
  const double elapsed = seconds_between(start_, std::chrono::steady_clock::now());
  os << ", elapsed " << format_duration(elapsed);
  if (total_ > 0 && r > 0 && done_ < total_) {
    os << ", ETA " << format_duration(static_cast<double>(total_ - done_) / r);
  }
  if (!extra.empty()) os << " | " << extra;
  return os.str();
}

void Progress::maybe_draw(const std::string& extra, bool force) {
  if (out_ == nullptr) return;
  const auto now = std::chrono::steady_clock::now();
  const double since = seconds_between(last_draw_, now);
  if (interactive_) {
    if (!force && since < 0.2) return;
    std::fprintf(out_, "\r\033[K%s", line(extra).c_str());
    if (force) std::fputc('\n', out_);
  } else {
    if (!force && since < pipe_interval_s_) return;
    std::fprintf(out_, "%s\n", line(extra).c_str());
  }
  std::fflush(out_);
  last_draw_ = now;
}

void Progress::advance(int64_t n, const std::string& extra) { set(done_ + n, extra); }

void Progress::set(int64_t done, const std::string& extra) {
  done_ = done;
  maybe_draw(extra, false);
}

void Progress::finish(const std::string& extra) {
  if (finished_) return;
  finished_ = true;
  maybe_draw(extra, true);
}

}  // namespace eqr
