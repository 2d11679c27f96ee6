// Failpoints: named places at every durable step of a run (checkpoint write,
// rename, prune; run.h5 write, rename, directory sync; config writes) where a
// test can make the process die or an I/O call fail, to prove that no result
// is lost whatever happens there (docs/reliability.md).
//
// Armed by one environment variable, read once:
//
//   ATTNLAB_FAILPOINT=NAME:N:ACTION[,NAME:N:ACTION...]
//
// fires ACTION at the Nth time (counting from 1) this process reaches NAME:
//   kill    SIGKILL, as a power cut or the OOM killer would
//   eio     the operation fails with EIO (an I/O error)
//   enospc  the operation fails with ENOSPC (disk full)
// Unarmed, hit() is one test of a static flag.
#pragma once

#include <array>
#include <filesystem>
#include <string_view>

namespace attnlab::failpoint {

// Every failpoint compiled into attnlab. hit() with any other name is a bug
// (it throws), so this list is complete by construction.
inline constexpr std::array<std::string_view, 10> kNames = {
    "config.write",      "config.before_rename",      "config.after_rename",       // config.yaml & co.
    "checkpoint.write",  "checkpoint.before_rename",  "checkpoint.after_rename",   // checkpoints/step-*.pt
    "checkpoint.prune",                                                             // removing older checkpoints
    "run_commit.write",  "run_commit.before_rename",  "run_commit.after_rename",   // run.h5
};

// The environment variable that arms failpoints.
inline constexpr const char* kEnvironment = "ATTNLAB_FAILPOINT";

// Parses ATTNLAB_FAILPOINT; UserError (exit 2) naming the variable when it is
// malformed or names an unknown point. The command line calls it at start-up
// so a typo never goes unnoticed.
void check_environment();

// At a named durable step about `file`. Does nothing unless armed for this
// name and hit count; then kills the process, or throws attnlab::Error
// naming `file` with strerror(EIO) or strerror(ENOSPC).
void hit(std::string_view name, const std::filesystem::path& file);

// `<prefix>.<step>` for the write steps shared by several files
// ("run_commit" + "write" -> "run_commit.write"); an empty prefix means the
// caller has no failpoints and hit_at() does nothing.
void hit_at(std::string_view prefix, std::string_view step, const std::filesystem::path& file);

}  // namespace attnlab::failpoint
