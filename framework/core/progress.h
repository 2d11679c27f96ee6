// A single-line progress display for long work (training, data preparation).
// On a terminal it redraws one line; otherwise it prints a line every
// `every` updates so logs stay readable.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace attnlab {

class Progress {
 public:
  Progress(std::string label, int64_t total);
  // Report that `done` of `total` units are finished; `status` is free text
  // ("loss 2.31 | 41k tok/s").
  void update(int64_t done, const std::string& status = "");
  // Ends the line (keeps the last status visible).
  void finish(const std::string& status = "");

 private:
  std::string label_;
  int64_t total_;
  bool tty_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_print_;
  bool finished_ = false;
};

}  // namespace attnlab
