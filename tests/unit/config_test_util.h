// Helpers for the config tests: temporary config folders, a snapshot of a
// folder (to prove that nothing was written), and running the real binary.
#pragma once

#include <sys/wait.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <unistd.h>

#include "config/compose.h"
#include "core/error.h"

namespace attnlab::test {

namespace fs = std::filesystem;

inline fs::path source_configs() { return fs::path(ATTNLAB_SOURCE_DIR) / "configs"; }

// A fresh folder under the system temp dir, removed on destruction.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = fs::temp_directory_path() / ("attnlab_cfg_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }

  void write(const std::string& relative, const std::string& text) const {
    fs::path p = path_ / relative;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << text;
  }

 private:
  fs::path path_;
};

// Every file and folder below `root` with its size: equal snapshots before and
// after a call mean the call created, removed or resized nothing.
inline std::map<std::string, uintmax_t> snapshot(const fs::path& root) {
  std::map<std::string, uintmax_t> out;
  std::error_code ec;
  if (!fs::exists(root, ec)) return out;
  for (auto it = fs::recursive_directory_iterator(root, ec); it != fs::recursive_directory_iterator(); it.increment(ec)) {
    out[it->path().string()] = it->is_regular_file(ec) ? it->file_size(ec) : 0;
  }
  return out;
}

// A small config folder: config.yaml with model and attention groups.
inline void write_minimal_configs(const TempDir& dir) {
  dir.write("configs/config.yaml", "defaults:\n  - model: tiny\n  - attention: mha\n  - _self_\nseed: 0\n");
  dir.write("configs/model/tiny.yaml", "n_layers: 2\nd_model: 128\nn_heads: 4\n");
  dir.write("configs/attention/mha.yaml", "kind: mha\n");
  dir.write("configs/attention/gqa.yaml", "kind: gqa\nn_kv_heads: 2\n");
}

// Composes and returns the UserError's diagnostics; fails the test if compose succeeds.
inline std::vector<Diagnostic> compose_errors(const config::ComposeRequest& request) {
  try {
    config::compose(request);
  } catch (const UserError& e) {
    return e.diagnostics();
  }
  return {};
}

struct ProcessResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs the attnlab binary with `args` (shell-quoted by the caller) in `cwd`.
inline ProcessResult run_attnlab(const std::string& args, const fs::path& cwd) {
  std::string cmd = "cd '" + cwd.string() + "' && '" + std::string(ATTNLAB_BINARY) + "' " + args + " 2>&1";
  ProcessResult r;
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (!pipe) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) r.output.append(buf, n);
  int status = ::pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

}  // namespace attnlab::test
