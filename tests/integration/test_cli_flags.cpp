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
#include "results/run_log.h"
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

TEST_CASE("list flags take one value, so overrides after them stay overrides, in any order", "[cli][flags]") {
  TempDir tmp;
  const std::string data = attnlab::testing::text_corpus(tmp.path, "line ", 400);
  attnlab::test::write_bytes(tmp.path / "exp.yaml",
                             "# @package _global_\nrun:\n  name: order\ntrain:\n  steps: 2\nsweep:\n  seed: 0,1\n");
  const std::string exp = (tmp.path / "exp.yaml").string();
  // A bad override must be refused, naming it, wherever the list flag stands
  // (it used to be swallowed as another --devices value, and the sweep ran).
  for (const std::string& args : {"sweep " + exp + " --devices 0 model.n_layers=zzz --dry-run",
                                  "sweep " + exp + " model.n_layers=zzz --devices 0,1 --dry-run",
                                  "sweep --devices 0 " + exp + " --dry-run model.n_layers=zzz"}) {
    INFO(args);
    const auto [code, output] = run_in(tmp.path, "", args + " run.root=" + (tmp.path / "results").string());
    INFO(output);
    CHECK(code == 2);
    CHECK_THAT(output, Catch::Contains("model.n_layers"));
  }
  // eval: a trained run, then --context before, after and between overrides.
  const auto [trained, train_out] =
      run_in(tmp.path, "", "train run.name=r run.root=" + (tmp.path / "runs").string() + data +
                               " train.steps=2 train.seq_len=32 model.max_seq_len=32 train.eval_batches=1");
  INFO(train_out);
  REQUIRE(trained == 0);
  const std::string run = (tmp.path / "runs" / "r").string();
  for (const std::string& args : {"eval " + run + " --context 32,64 position.scaling.kind=bogus",
                                  "eval " + run + " position.scaling.kind=bogus --context 32,64",
                                  "eval --context 32 " + run + " position.scaling.kind=bogus --tokens 64"}) {
    INFO(args);
    const auto [code, output] = run_in(tmp.path, "", args);
    INFO(output);
    CHECK(code == 2);
    CHECK_THAT(output, Catch::Contains("position.scaling.kind"));
  }
  // A repeated list flag adds its values: both lengths are evaluated.
  const auto [ok, ok_out] = run_in(tmp.path, "", "eval --context 32 " + run + " --tokens 64 --context 64 --batch 2");
  INFO(ok_out);
  REQUIRE(ok == 0);
  const auto lengths = attnlab::results::RunLog::load(tmp.path / "runs" / "r" / "run.h5").column("eval/context", "context");
  CHECK(std::set<double>(lengths.begin(), lengths.end()) == std::set<double>{32.0, 64.0});
  // And a bad element is named with its flag.
  const auto [bad, bad_out] = run_in(tmp.path, "", "eval " + run + " --context 32,99999999999999999999");
  CHECK(bad == 2);
  CHECK_THAT(bad_out, Catch::Contains("--context"));
}
