// Progress line implementation.
#include "core/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>

namespace attnlab {

Progress::Progress(std::string label, int64_t total)
    : label_(std::move(label)),
      total_(total),
      tty_(isatty(fileno(stderr)) != 0),
      start_(std::chrono::steady_clock::now()),
      last_print_(start_ - std::chrono::hours(1)) {}

void Progress::update(int64_t done, const std::string& status) {
  auto now = std::chrono::steady_clock::now();
  // Redraw at most 10x/s on a terminal, every 5 s into a log file, and always at the end.
  auto min_gap = tty_ ? std::chrono::milliseconds(100) : std::chrono::milliseconds(5000);
  if (now - last_print_ < min_gap && done < total_) return;
  last_print_ = now;
  double elapsed = std::chrono::duration<double>(now - start_).count();
  double frac = total_ > 0 ? static_cast<double>(done) / static_cast<double>(total_) : 0.0;
  double eta = frac > 0 ? elapsed * (1.0 - frac) / frac : 0.0;
  std::string line = fmt::format("{} {:>3.0f}% {}/{} [{:.0f}s<{:.0f}s] {}", label_, 100.0 * frac, done,
                                 total_, elapsed, eta, status);
  if (tty_) {
    fmt::print(stderr, "\r\033[2K{}", line);
  } else {
    fmt::print(stderr, "{}\n", line);
  }
  std::fflush(stderr);
}

void Progress::finish(const std::string& status) {
  if (finished_) return;
  finished_ = true;
  last_print_ = std::chrono::steady_clock::now() - std::chrono::hours(1);
  update(total_, status);
  if (tty_) fmt::print(stderr, "\n");
}

}  // namespace attnlab
