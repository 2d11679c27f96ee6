// One writer per run directory: an exclusive flock on <run_dir>/.lock, held
// for the life of the object (the kernel releases it when the process dies,
// even on SIGKILL, so a stale lock never blocks a re-run). The file records
// the holder's PID and command line so a refused second writer can name it.
#pragma once

#include <filesystem>
#include <string>

namespace attnlab {

class RunLock {
 public:
  // Creates run_dir if needed and takes the lock; UserError (exit 2) naming
  // the holder's PID and command when another process holds it.
  explicit RunLock(const std::filesystem::path& run_dir);
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

  static std::filesystem::path file(const std::filesystem::path& run_dir) { return run_dir / ".lock"; }

 private:
  int fd_ = -1;
};

}  // namespace attnlab
