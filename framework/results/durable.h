// Durable file replacement on POSIX: the fsync and rename steps shared by
// atomic_write_text(), RunLog::commit() and checkpoints. Internal to results/, data/ and train/.
#pragma once

#include <filesystem>
#include <string_view>

namespace attnlab::results {

// Opens a new, empty regular file at `tmp` for writing and returns its
// descriptor. Whatever a crash left there is unlinked first (unlink removes a
// symlink itself, never its target); the file is then created with
// O_EXCL | O_NOFOLLOW, so a link planted at `tmp` is never written through.
// Throws Error naming the path (a directory in the way is left alone).
int open_fresh(const std::filesystem::path& tmp);

// fsync()s a file's contents (opened read-only). Throws Error naming the path.
void fsync_file(const std::filesystem::path& path);

// fsync()s a directory, so that renames and creations inside it are durable.
void fsync_directory(const std::filesystem::path& dir);

// Makes a finished temporary file the target: fsync(tmp), rename(tmp, target),
// fsync(target's directory). On failure before the rename the target is
// untouched, tmp is removed, and Error names both paths. `failpoint` names
// the caller's failpoints ("checkpoint" -> checkpoint.before_rename and
// checkpoint.after_rename, core/failpoint.h); empty for none.
void replace_durably(const std::filesystem::path& tmp, const std::filesystem::path& target,
                     std::string_view failpoint = {});

}  // namespace attnlab::results
