// `attnlab eval` on a real trained run: rows land in run.h5 keyed by their
// settings, the same command twice leaves the file byte-identical, position
// overrides apply at evaluation only, training curves are untouched, bad
// overrides exit 2 and change nothing, and memory stays bounded.
#include <catch2/catch.hpp>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "results/run_log.h"
#include "test_support.h"

using attnlab::results::RunLog;
using attnlab::testing::run_cli;
using attnlab::testing::text_corpus;
using attnlab::test::TempDir;
namespace fs = std::filesystem;

namespace {
std::string bytes_of(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Trains a tiny run on a small text file; returns its directory.
fs::path train_tiny(const TempDir& tmp, const std::string& name, const std::string& extra) {
  const auto data = text_corpus(tmp.path, "In the beginning God created the heaven and the earth. ", 1000, "\n");
  auto r = run_cli("train" + data + " run.root=" + tmp.path.string() + " run.name=" + name +
                   " model.max_seq_len=32 train.seq_len=32 train.steps=20 train.eval_every=20 train.device=cpu " +
                   extra);
  REQUIRE(r.exit_code == 0);
  return tmp.path / name;
}
}  // namespace

TEST_CASE("eval writes /eval/context rows keyed by settings, and the same command twice leaves run.h5 identical",
          "[cli][integration][eval]") {
  TempDir tmp;
  auto run = train_tiny(tmp, "rope", "");
  const auto file = run / "run.h5";
  const auto train_loss = RunLog::load(file).column("train", "loss");
  const auto eval_before = RunLog::load(file).column("eval", "val_loss");

  auto first = run_cli("eval " + run.string() + " --context 32,64,128,256 --tokens 512");
  REQUIRE(first.exit_code == 0);
  const auto after_first = bytes_of(file);
  auto log = RunLog::load(file);
  CHECK(log.column("eval/context", "context") == std::vector<double>{32, 64, 128, 256});
  for (double ppl : log.column("eval/context", "ppl")) CHECK(std::isfinite(ppl));
  CHECK(log.column("eval/context", "windows") == std::vector<double>{16, 8, 4, 2});
  CHECK(log.column("eval/context", "scaling_kind") == std::vector<double>{0, 0, 0, 0});
  CHECK(log.column("train", "loss") == train_loss);  // training curves untouched
  CHECK(log.column("eval", "val_loss") == eval_before);

  auto again = run_cli("eval " + run.string() + " --context 32,64,128,256 --tokens 512");
  REQUIRE(again.exit_code == 0);
  CHECK(bytes_of(file) == after_first);

  // Passkey recall through the run's tokenizer: one row per (context, depth) cell.
  auto recall = run_cli("eval " + run.string() + " --context 256 --recall --depths 0,0.5,1 --trials 4 --tokens 256");
  INFO(recall.output);
  REQUIRE(recall.exit_code == 0);
  log = RunLog::load(file);
  CHECK(log.column("eval/recall", "depth") == std::vector<double>{0, 0.5, 1});
  CHECK(log.column("eval/recall", "task") == std::vector<double>{0, 0, 0});  // passkey-text
  for (double a : log.column("eval/recall", "accuracy")) CHECK((a >= 0.0 && a <= 1.0));
  CHECK(log.column("eval/context", "context").size() == 5);  // 256 again, at another token budget

  // YaRN at evaluation only: new rows beside the plain ones, recording the setting.
  auto yarn = run_cli("eval " + run.string() +
                      " position.scaling.kind=yarn position.scaling.factor=4 --context 32,256 --tokens 512");
  REQUIRE(yarn.exit_code == 0);
  log = RunLog::load(file);
  REQUIRE(log.column("eval/context", "context").size() == 7);
  CHECK(log.column("eval/context", "scaling_kind") == std::vector<double>{0, 0, 0, 0, 0, 3, 3});
  CHECK(log.column("eval/context", "scaling_factor") == std::vector<double>{1, 1, 1, 1, 1, 4, 4});
  const auto ppl = log.column("eval/context", "ppl");
  CHECK(ppl[6] != ppl[3]);  // 256 with and without YaRN
  // The config on disk is the trained one: overrides never write it.
  CHECK_THAT(bytes_of(run / "config.yaml"), Catch::Contains("kind: none"));

  // Refused overrides: exit 2, named, nothing written.
  const auto before_bad = bytes_of(file);
  for (std::string bad : {"model.d_model=64", "position.kind=alibi", "position.scaling.factor=1 position.scaling.kind=yarn",
                          "position.scaling.fator=4"}) {
    INFO(bad);
    auto r = run_cli("eval " + run.string() + " " + bad + " --context 32 --tokens 64");
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.output, Catch::Contains(bad.substr(0, bad.find('='))) || Catch::Contains("position.scaling.factor"));
    CHECK_THAT(r.output, !Catch::Contains("internal error"));
  }
  CHECK(bytes_of(file) == before_bad);
}

TEST_CASE("eval --decode absorbed scores MLA through the cached decode path at the full-forward perplexity",
          "[cli][integration][eval][mla]") {
  TempDir tmp;
  auto run = train_tiny(tmp, "mla", "attention=mla");
  auto full = run_cli("eval " + run.string() + " --context 64 --tokens 128 --chunk 64");
  auto decoded = run_cli("eval " + run.string() + " --context 64 --tokens 128 --decode absorbed");
  auto naive = run_cli("eval " + run.string() + " --context 64 --tokens 128 --decode naive");
  REQUIRE(full.exit_code == 0);
  REQUIRE(decoded.exit_code == 0);
  REQUIRE(naive.exit_code == 0);
  auto log = RunLog::load(run / "run.h5");
  CHECK(log.column("eval/context", "decode") == std::vector<double>{0, 2, 1});  // full, absorbed, naive
  CHECK(log.column("eval/context", "chunk") == std::vector<double>{64, 1, 1});
  const auto ppl = log.column("eval/context", "ppl");
  CHECK_THAT(ppl[1], Catch::WithinRel(ppl[0], 1e-4));  // fp32: summation order differs
  CHECK_THAT(ppl[2], Catch::WithinRel(ppl[0], 1e-4));
  // Absorbed caches the latent, naive the expanded keys and values.
  const auto cache = log.column("eval/context", "cache_bytes");
  CHECK(cache[1] < cache[2]);
}

TEST_CASE("eval attention.cache_dtype=int8 scores through a quantized cache and records the format",
          "[cli][integration][eval][quant]") {
  TempDir tmp;
  auto run = train_tiny(tmp, "q", "");
  const auto file = run / "run.h5";
  auto plain = run_cli("eval " + run.string() + " --context 32 --tokens 256");
  REQUIRE(plain.exit_code == 0);
  // A window of train.seq_len fits one default chunk: fp32 runs it without a
  // cache (cache bytes 0), int8 still goes through its cache.
  auto int8 = run_cli("eval " + run.string() + " attention.cache_dtype=int8 --context 32 --tokens 256");
  INFO(int8.output);
  REQUIRE(int8.exit_code == 0);
  CHECK_THAT(int8.output, Catch::Contains("int8 KV cache (read by every chunk)"));
  auto fp8 = run_cli("eval " + run.string() + " attention.cache_dtype=fp8_e4m3 --context 32 --tokens 256 --chunk 1");
  REQUIRE(fp8.exit_code == 0);
  auto log = RunLog::load(file);
  CHECK(log.column("eval/context", "cache_dtype") == std::vector<double>{0, 3, 4});  // fp32, int8, fp8_e4m3
  CHECK_THAT(std::get<std::string>(*log.attr("/eval/context", "cache_dtype_codes")),
             Catch::Contains("3=int8") && Catch::Contains("4=fp8_e4m3"));
  const auto cache = log.column("eval/context", "cache_bytes");
  const auto ppl = log.column("eval/context", "ppl");
  CHECK(cache[0] == 0);
  // tiny: 2 layers of k[4,32] + v[4,32] for 8 windows of 32 tokens: 256 int8 values and 8 fp16 scales per token per layer.
  CHECK(cache[1] == 8 * 32 * 2 * (256 + 8 * 2));
  CHECK(cache[2] == cache[1]);
  CHECK(ppl[1] != ppl[0]);  // the cache really quantized
  CHECK_THAT(ppl[1], Catch::WithinRel(ppl[0], 0.02));
  CHECK_THAT(ppl[2], Catch::WithinRel(ppl[0], 0.05));
  // The run's config is untouched, and generate takes the same override.
  CHECK_THAT(bytes_of(run / "config.yaml"), Catch::Contains("cache_dtype: fp32"));
  auto gen = run_cli("generate " + run.string() + " attention.cache_dtype=int8 --prompt 'In the' --max-new-tokens 4");
  REQUIRE(gen.exit_code == 0);
  CHECK_THAT(gen.output, Catch::Contains("int8 KV cache allocated"));

  // A format that does not exist: exit 2 naming the key and the valid ones; nothing written.
  const auto before_bad = bytes_of(file);
  auto bad = run_cli("eval " + run.string() + " attention.cache_dtype=int4 --context 32 --tokens 64");
  CHECK(bad.exit_code == 2);
  CHECK_THAT(bad.output, Catch::Contains("attention.cache_dtype") && Catch::Contains("fp8_e4m3"));
  CHECK(bytes_of(file) == before_bad);
}

TEST_CASE("eval at 8x the quickstart's training length stays under 2 GiB", "[cli][integration][eval]") {
  TempDir tmp;
  // The quickstart's model (tiny: 2 layers, d_model 128) at its training
  // length 128, evaluated at 1024 tokens.
  auto run = train_tiny(tmp, "qs", "model.max_seq_len=128 train.seq_len=128 train.steps=2 train.batch_size=2");
  const std::string command = "cd '" ATTNLAB_SOURCE_DIR "' && exec '" ATTNLAB_BINARY "' eval " + run.string() +
                              " --context 1024 --tokens 8192 > /dev/null 2>&1";
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  struct rusage usage {};
  REQUIRE(wait4(pid, &status, 0, &usage) == pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  const double peak_gib = static_cast<double>(usage.ru_maxrss) / (1024.0 * 1024.0);  // ru_maxrss is in KiB
  INFO("peak resident memory " << peak_gib << " GiB");
  CHECK(peak_gib < 2.0);
  CHECK(peak_gib > 0.01);  // the measurement is real
}
