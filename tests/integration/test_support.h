// Shared by integration tests: running the real attnlab binary and capturing
// its output (scratch directories come from tests/unit/temp_dir.h).
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <string>

#include "../unit/temp_dir.h"

namespace attnlab::testing {

struct CliResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs `attnlab <args>` from the source tree (so configs/ is found) and
// captures its output. `shell_first` runs in the same shell just before
// (e.g. "ulimit -v 3000000 &&").
inline CliResult run_cli(const std::string& args, const std::string& shell_first = "") {
  const std::string command = "cd '" ATTNLAB_SOURCE_DIR "' && " + shell_first + " '" ATTNLAB_BINARY "' " + args + " 2>&1";
  CliResult result;
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return result;
  std::array<char, 4096> buf{};
  size_t n = 0;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) result.output.append(buf.data(), n);
  int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

// Writes <dir>/corpus.txt, `lines` numbered lines (prefix, the number,
// suffix), and returns the overrides that train on it with its prepared data
// in <dir>/data: " data=text data.path=... data.dir=...".
inline std::string text_corpus(const std::filesystem::path& dir, const std::string& prefix, int lines,
                               const std::string& suffix = ".\n") {
  std::string text;
  for (int i = 0; i < lines; ++i) text += prefix + std::to_string(i) + suffix;
  attnlab::test::write_bytes(dir / "corpus.txt", text);
  return " data=text data.path=" + (dir / "corpus.txt").string() + " data.dir=" + (dir / "data").string();
}

}  // namespace attnlab::testing
