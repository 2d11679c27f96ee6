// Atomic replacement of a file: write beside it, fsync, rename, fsync the
// directory. Also the shared fsync/rename steps declared in durable.h.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fmt/format.h>

#include "core/error.h"
#include "core/failpoint.h"
#include "results/durable.h"
#include "results/run_log.h"

namespace attnlab::results {
namespace {
void fsync_path(const std::filesystem::path& path, int flags) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) throw Error(fmt::format("cannot open {} to sync it: {}", path.string(), std::strerror(errno)));
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) throw Error(fmt::format("fsync of {} failed: {}", path.string(), std::strerror(errno)));
}
}  // namespace

int open_fresh(const std::filesystem::path& tmp) {
  ::unlink(tmp.c_str());  // a stale file or a planted link; fails harmlessly on a directory or nothing
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) throw Error(fmt::format("cannot create {}: {}", tmp.string(), std::strerror(errno)));
  return fd;
}

void fsync_file(const std::filesystem::path& path) { fsync_path(path, O_RDONLY); }

void fsync_directory(const std::filesystem::path& dir) {
  fsync_path(dir.empty() ? std::filesystem::path(".") : dir, O_RDONLY | O_DIRECTORY);
}

void replace_durably(const std::filesystem::path& tmp, const std::filesystem::path& target,
                     std::string_view failpoint) {
  try {
    failpoint::hit_at(failpoint, "before_rename", target);
    fsync_file(tmp);
    if (::rename(tmp.c_str(), target.c_str()) != 0) {
      throw Error(fmt::format("cannot rename {} to {}: {}", tmp.string(), target.string(), std::strerror(errno)));
    }
  } catch (...) {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
    throw;
  }
  failpoint::hit_at(failpoint, "after_rename", target.parent_path());
  fsync_directory(target.parent_path());
}

void atomic_write_text(const std::filesystem::path& path, const std::string& bytes, std::string_view failpoint) {
  auto tmp = path;
  tmp += ".tmp";
  int fd = open_fresh(tmp);
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      ::close(fd);
      std::error_code ignored;
      std::filesystem::remove(tmp, ignored);
      throw Error(fmt::format("write to {} failed: {}", tmp.string(), std::strerror(errno)));
    }
    done += static_cast<size_t>(n);
  }
  if (::close(fd) != 0) {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
    throw Error(fmt::format("cannot flush {}: {}", tmp.string(), std::strerror(errno)));
  }
  try {
    failpoint::hit_at(failpoint, "write", path);
  } catch (...) {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
    throw;
  }
  replace_durably(tmp, path, failpoint);
}

}  // namespace attnlab::results
