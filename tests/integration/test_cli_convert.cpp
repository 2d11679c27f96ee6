// `attnlab convert` on a real trained run: at full rank the converted run's
// validation loss is the source's, its run.h5 records the source checkpoint
// and sha256, eval reads it, a fine-tune trains it further, and a request
// that cannot convert exits 2 and writes nothing.
#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "data/sha256.h"
#include "results/run_log.h"
#include "test_support.h"

using attnlab::results::RunLog;
using attnlab::testing::run_cli;
using attnlab::testing::text_corpus;
using attnlab::test::TempDir;
namespace fs = std::filesystem;

namespace {
std::string text_of(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}
std::string str_attr(const RunLog& log, const char* group, const char* name) {
  const auto* v = log.attr(group, name);
  return v ? std::get<std::string>(*v) : std::string();
}
int64_t int_attr(const RunLog& log, const char* group, const char* name) {
  const auto* v = log.attr(group, name);
  return v ? std::get<int64_t>(*v) : -1;
}
}  // namespace

TEST_CASE("convert: full rank keeps the source's loss, records where it came from, and fine-tunes",
          "[cli][integration][convert]") {
  TempDir tmp;
  const auto data = text_corpus(tmp.path, "In the beginning God created the heaven and the earth. ", 1000, "\n");
  // Partial RoPE from the start (MHA2MLA's first step), so full rank is exact.
  auto trained = run_cli("train" + data + " run.root=" + tmp.path.string() +
                         " run.name=src model.max_seq_len=32 train.seq_len=32 train.steps=20 train.eval_every=20 "
                         "train.device=cpu position.dims=high position.fraction=0.25");
  REQUIRE(trained.exit_code == 0);
  const fs::path src = tmp.path / "src";
  const auto source = RunLog::load(src / "run.h5");

  auto full = run_cli("convert " + src.string());
  INFO(full.output);
  REQUIRE(full.exit_code == 0);
  const fs::path out = tmp.path / "src-mla-r128-ft0";  // d_model 128 bounds the joint matrix's rank
  REQUIRE(fs::exists(out / "run.h5"));
  const auto converted = RunLog::load(out / "run.h5");
  CHECK(str_attr(converted, "/", "status") == "complete");
  CHECK(str_attr(converted, "/model", "attention") == "mla");
  CHECK(str_attr(converted, "/model", "converted_from") == src.string());
  const auto checkpoint = str_attr(converted, "/model", "converted_from_checkpoint");
  CHECK(str_attr(converted, "/model", "converted_from_sha256") == attnlab::data::sha256_file(src / "checkpoints" / checkpoint));
  CHECK(int_attr(converted, "/model", "converted_kv_rank") == 128);
  CHECK(int_attr(converted, "/model", "kv_bytes_per_token") < int_attr(source, "/model", "kv_bytes_per_token"));
  CHECK_THAT(converted.column("eval", "val_loss").back(),
             Catch::WithinRel(source.column("eval", "val_loss").back(), 1e-5));
  CHECK(text_of(out / "config.yaml").find("init_from: " + src.string()) != std::string::npos);

  // A normal run directory: eval reads it; the same convert again is already complete.
  CHECK(run_cli("eval " + out.string() + " --context 32 --tokens 256").exit_code == 0);
  auto again = run_cli("convert " + src.string());
  CHECK(again.exit_code == 0);
  CHECK_THAT(again.output, Catch::Contains("already complete"));

  // Low rank with a short fine-tune: another run, which trains.
  auto tuned = run_cli("convert " + src.string() + " --kv-rank 8 --finetune 10");
  REQUIRE(tuned.exit_code == 0);
  const auto low = RunLog::load(tmp.path / "src-mla-r8-ft10" / "run.h5");
  CHECK(low.column("train", "loss").size() >= 1);
  CHECK(int_attr(low, "/model", "converted_kv_rank") == 8);
  CHECK(low.column("eval", "val_loss").back() != converted.column("eval", "val_loss").back());

  // Requests that cannot convert: exit 2, the option named, nothing written.
  const auto before = std::distance(fs::directory_iterator(tmp.path), fs::directory_iterator{});
  auto too_wide = run_cli("convert " + src.string() + " --kv-rank 4096");
  CHECK(too_wide.exit_code == 2);
  CHECK_THAT(too_wide.output, Catch::Contains("--kv-rank") && Catch::Contains("rank bound"));
  auto other_pairs = run_cli("convert " + src.string() + " --rope-dims low");
  CHECK(other_pairs.exit_code == 2);
  CHECK_THAT(other_pairs.output, Catch::Contains("--rope-dims"));
  auto not_a_run = run_cli("convert " + (tmp.path / "nope").string());
  CHECK(not_a_run.exit_code == 2);
  CHECK_THAT(not_a_run.output, Catch::Contains("not a run directory"));
  // A hand-written conversion run whose widths are not the conversion's.
  auto hand = run_cli("train" + data + " run.root=" + tmp.path.string() + " run.name=hand attention=mla " +
                      "attention.kv_rank=8 train.init_from=" + src.string() +
                      " model.max_seq_len=32 train.seq_len=32 train.steps=5 train.device=cpu");
  CHECK(hand.exit_code == 2);
  CHECK_THAT(hand.output, Catch::Contains("attention.rope_heads") && Catch::Contains("needs 4") &&
                              Catch::Contains("attention.kv_norm"));
  CHECK(std::distance(fs::directory_iterator(tmp.path), fs::directory_iterator{}) == before);

  // collect tells the source and the two conversions apart by their overrides.
  REQUIRE(run_cli("collect " + tmp.path.string()).exit_code == 0);
  const auto configs = text_of(tmp.path / "summary_configs.csv");
  CHECK(std::count(configs.begin(), configs.end(), '\n') == 1 + 3);
  CHECK_THAT(configs, Catch::Contains("attention.kv_rank"));
}
