// What a run file records about its inputs (seeds, corpus and tokenizer
// hashes, throughput) and that `generate` uses the run's own saved tokenizer,
// refusing one that is missing or differs from the recorded hash.
#include <catch2/catch.hpp>

#include <set>

#include "data/sha256.h"
#include "results/run_log.h"
#include "test_support.h"
#include "train/mfu.h"

using namespace attnlab;
using attnlab::test::read_bytes;
using attnlab::test::TempDir;
using attnlab::test::write_bytes;
using attnlab::testing::run_cli;
namespace fs = std::filesystem;

namespace {

int64_t int_attr(const results::RunLog& log, const char* group, const char* name) {
  const auto* v = log.attr(group, name);
  REQUIRE(v != nullptr);
  return std::get<int64_t>(*v);
}
double real_attr(const results::RunLog& log, const char* group, const char* name) {
  const auto* v = log.attr(group, name);
  REQUIRE(v != nullptr);
  return std::get<double>(*v);
}
std::string text_attr(const results::RunLog& log, const char* group, const char* name) {
  const auto* v = log.attr(group, name);
  REQUIRE(v != nullptr);
  return std::get<std::string>(*v);
}

}  // namespace

TEST_CASE("a run records seeds, corpus and tokenizer hashes and MFU, and generate uses its own tokenizer",
          "[cli][integration]") {
  TempDir tmp;
  // Six code points (a, b, space, newline, é, €): a char vocabulary of 7 with <unk>.
  std::string text;
  for (int i = 0; i < 200; ++i) text += i % 3 == 0 ? "ab \xC3\xA9\n" : "ba \xE2\x82\xAC ab\n";
  fs::create_directories(tmp.path / "corpus");
  write_bytes(tmp.path / "corpus" / "train.txt", text);
  const fs::path data_dir = tmp.path / "data";
  auto trained = run_cli("train data=text data.path=" + (tmp.path / "corpus" / "train.txt").string() +
                         " data.tokenizer=char data.dir=" + data_dir.string() + " run.root=" + tmp.path.string() +
                         " run.name=p seed=3 data_seed=11 train.steps=4 train.eval_every=4 train.eval_batches=1"
                         " train.batch_size=2 train.seq_len=16 model.max_seq_len=32 train.device=cpu"
                         " train.peak_tflops=0.5");
  INFO(trained.output);
  REQUIRE(trained.exit_code == 0);
  const fs::path run_dir = tmp.path / "p";
  auto log = results::RunLog::load(run_dir / "run.h5");

  CHECK(int_attr(log, "/", "seed") == 3);
  CHECK(int_attr(log, "/", "data_seed") == 11);

  CHECK(text_attr(log, "/data", "corpus_sha256") == data::sha256_hex(text));
  CHECK(text_attr(log, "/data", "tokenizer") == "char");
  CHECK(int_attr(log, "/data", "tokenizer_vocab_size") == 7);
  const std::string saved_vocab = read_bytes(run_dir / "tokenizer" / "vocab.txt");
  CHECK(!saved_vocab.empty());
  const std::string recorded = text_attr(log, "/data", "tokenizer_sha256");
  CHECK(recorded == data::sha256_hex(saved_vocab));

  // Throughput and MFU with the override: MFU = tokens/s x FLOPs/token / peak.
  const double tokens_per_s = real_attr(log, "/summary", "tokens_per_s");
  CHECK(tokens_per_s == Approx(2.0 * 16.0 / (real_attr(log, "/summary", "ms_per_step_median") / 1000.0)));
  CHECK(real_attr(log, "/summary", "peak_tflops") == 0.5);
  CHECK(real_attr(log, "/summary", "mfu") ==
        Approx(tokens_per_s * real_attr(log, "/summary", "flops_per_token") / 0.5e12));

  // generate needs neither the prepared data nor a retrained tokenizer.
  fs::remove_all(data_dir);
  const std::string gen = "generate " + run_dir.string() + " --prompt 'ab ' --max-new-tokens 4 --device cpu";
  auto ok = run_cli(gen);
  INFO(ok.output);
  CHECK(ok.exit_code == 0);
  CHECK_FALSE(fs::exists(data_dir));

  // A tokenizer file that is not the one recorded is refused, naming both hashes.
  write_bytes(run_dir / "tokenizer" / "vocab.txt", saved_vocab + "0041\n");
  auto changed = run_cli(gen);
  CHECK(changed.exit_code == 2);
  CHECK_THAT(changed.output, Catch::Contains(recorded));
  CHECK_THAT(changed.output, Catch::Contains(data::sha256_hex(saved_vocab + "0041\n")));

  // So is a missing one.
  fs::remove(run_dir / "tokenizer" / "vocab.txt");
  auto missing = run_cli(gen);
  CHECK(missing.exit_code == 2);
  CHECK_THAT(missing.output, Catch::Contains((run_dir / "tokenizer" / "vocab.txt").string()));
}
