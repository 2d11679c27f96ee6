// Durable file replacement on POSIX: the fsync and rename steps shared by
// atomic_write_text(), RunLog::commit() and checkpoints. Internal to results/, data/ and train/.
#pragma once

#include <filesystem>

namespace attnlab::results {

// fsync()s a file's contents (opened read-only). Throws Error naming the path.
void fsync_file(const std::filesystem::path& path);

// fsync()s a directory, so that renames and creations inside it are durable.
void fsync_directory(const std::filesystem::path& dir);

// Makes a finished temporary file the target: fsync(tmp), rename(tmp, target),
// fsync(target's directory). On failure the target is untouched, tmp is
// removed, and Error names both paths.
void replace_durably(const std::filesystem::path& tmp, const std::filesystem::path& target);

}  // namespace attnlab::results
