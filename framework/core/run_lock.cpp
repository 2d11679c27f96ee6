// The run-directory lock.
#include "core/run_lock.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"
#include "core/files.h"

namespace attnlab {
namespace {
std::string own_command() {
  auto raw = read_file("/proc/self/cmdline").value_or("");
  for (auto& c : raw)
    if (c == '\0') c = ' ';
  while (!raw.empty() && raw.back() == ' ') raw.pop_back();
  return raw;
}
}  // namespace

RunLock::RunLock(const std::filesystem::path& run_dir) {
  std::error_code ec;
  std::filesystem::create_directories(run_dir, ec);
  if (ec)  // a read-only file system, a file in the way, no permission
    throw_user_error("run.root", "",
                     fmt::format("cannot create the run directory {}: {}", run_dir.string(), ec.message()));
  const auto path = file(run_dir);
  // O_NOFOLLOW: a symlink planted at .lock is refused rather than followed.
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd_ < 0)
    throw UserError(fmt::format("cannot open the run lock {}: {}", path.string(), std::strerror(errno)));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    ::close(fd_);
    fd_ = -1;
    if (err != EWOULDBLOCK)
      throw UserError(fmt::format("cannot lock the run directory {}: {}", run_dir.string(), std::strerror(err)));
    std::string holder = read_file(path).value_or("");
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
    throw UserError(fmt::format("the run directory {} is in use by another attnlab process ({}); wait for it to "
                                "end, or stop it (Ctrl-C or SIGTERM checkpoints it) before running this again",
                                run_dir.string(), holder.empty() ? "holder unknown" : holder));
  }
  const std::string me = fmt::format("pid {}: {}\n", ::getpid(), own_command());
  if (::ftruncate(fd_, 0) == 0) {
    [[maybe_unused]] auto n = ::pwrite(fd_, me.data(), me.size(), 0);
  }
}

RunLock::~RunLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the descriptor releases the flock
}

}  // namespace attnlab
