// Command-line flags and environment variables get the checks config keys
// get: type, finite, range, overflow. Each refusal exits 2, names the flag
// (or variable) and the accepted range, and leaves the working directory as
// it found it. Table-driven; the run directories named need not exist,
// since a bad flag is refused before anything is read.
#include <catch2/catch.hpp>

#include <array>
#include <cstdio>
#include <filesystem>
#include <set>
#include <string>
#include <sys/wait.h>

#include "model/generate.h"
#include "test_support.h"

namespace fs = std::filesystem;
using attnlab::test::TempDir;

namespace {

struct Refusal {
  std::string args;   // after the binary
  std::string names;  // must appear in the message
  std::string env = "";
};

// Runs the binary in `cwd` (so that anything it writes lands there).
std::pair<int, std::string> run_in(const fs::path& cwd, const std::string& env, const std::string& args) {
  const std::string command =
      "cd '" + cwd.string() + "' && " + env + " '" ATTNLAB_BINARY "' " + args + " 2>&1 < /dev/null";
  std::string out;
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::array<char, 4096> buf{};
  size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) out.append(buf.data(), n);
  const int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), out};
}

std::set<std::string> tree(const fs::path& dir) {
  std::set<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) out.insert(e.path().string());
  return out;
}

}  // namespace

TEST_CASE("numeric flags and environment variables are checked like keys: exit 2, named, nothing written",
          "[cli][flags]") {
  const std::vector<Refusal> cases = {
      {"generate RUN --prompt a --temperature nan", "--temperature"},
      {"generate RUN --prompt a --temperature inf", "--temperature"},
      {"generate RUN --prompt a --temperature -1", "--temperature"},
      {"generate RUN --prompt a --temperature 1e400", "--temperature"},
      {"generate RUN --prompt a --top-p 0", "--top-p"},
      {"generate RUN --prompt a --top-p 1.5", "--top-p"},
      {"generate RUN --prompt a --top-p nan", "--top-p"},
      {"generate RUN --prompt a --top-k -1", "--top-k"},
      {"generate RUN --prompt a --top-k 99999999999999", "--top-k"},
      {"generate RUN --prompt a --max-new-tokens 0", "--max-new-tokens"},
      {"generate RUN --prompt a --max-new-tokens 9223372036854775807", "--max-new-tokens"},
      {"generate RUN --prompt a --max-new-tokens 99999999999999999999", "--max-new-tokens"},
      {"generate RUN --prompt a --seed -1", "--seed"},
      {"generate RUN --prompt a --seed 18446744073709551616", "--seed"},
      {"generate RUN --prompt a --seed 1.5", "--seed"},
      {"eval RUN --depths 0.5,nan", "--depths"},
      {"eval RUN --depths 0.5,2", "--depths"},
      {"convert RUN --to mla --rope-fraction nan", "--rope-fraction"},
      {"convert RUN --to mla --rope-fraction -0.25", "--rope-fraction"},
      {"convert RUN --to mla --rope-fraction 1e999", "--rope-fraction"},
      {"--cfg 'model.d_model=${div:-9223372036854775808,-1}'", "overflows"},
      {"train run.root=runs", "ATTNLAB_THREADS", "ATTNLAB_THREADS=99999"},
      {"train run.root=runs", "ATTNLAB_THREADS", "ATTNLAB_THREADS=0"},
      {"train run.root=runs", "ATTNLAB_THREADS", "ATTNLAB_THREADS=four"},
  };
  for (const auto& c : cases) {
    INFO(c.env << " attnlab " << c.args);
    TempDir tmp;
    const auto before = tree(tmp.path);
    const auto [code, output] = run_in(tmp.path, c.env, c.args);
    INFO(output);
    CHECK(code == 2);
    CHECK_THAT(output, Catch::Contains(c.names));
    CHECK_THAT(output, !Catch::Contains("internal error") && !Catch::Contains("frame #"));
    CHECK(tree(tmp.path) == before);
  }
}

TEST_CASE("the range a flag refuses is printed as written, not as a 309-digit bound", "[cli][flags]") {
  TempDir tmp;
  const auto [code, output] = run_in(tmp.path, "", "generate RUN --prompt a --top-p 0");
  CHECK(code == 2);
  CHECK_THAT(output, Catch::Contains("(0, 1]"));
  CHECK(output.size() < 200);
}

TEST_CASE("sampling at a vanishing temperature or top_p picks the most likely token, never NaN", "[generate]") {
  torch::manual_seed(3);
  const auto logits = torch::randn({4, 50}) * 20;
  const auto best = logits.argmax(-1);
  torch::Generator generator = at::detail::createCPUGenerator(1);
  for (double temperature : {1e-300, 1e-30, 1e-6}) {
    attnlab::model::GenerateOptions options;
    options.temperature = temperature;
    INFO("temperature " << temperature);
    CHECK(torch::equal(attnlab::model::sample_next(logits, options, generator), best));
  }
  attnlab::model::GenerateOptions nucleus;
  nucleus.temperature = 1.0;
  nucleus.top_p = 1e-12;
  CHECK(torch::equal(attnlab::model::sample_next(logits, nucleus, generator), best));
}
