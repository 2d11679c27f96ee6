// A run is identified by its config's values, not their spelling: 1e-3 and
// 0.001 are the same run, a moved results folder resumes, and a changed value
// is refused, naming the key.
#include <catch2/catch.hpp>

#include "data/sha256.h"
#include "results/run_log.h"
#include "test_support.h"

using attnlab::testing::run_cli;
using attnlab::testing::text_corpus;
using attnlab::test::TempDir;
namespace fs = std::filesystem;

TEST_CASE("the same values spelt differently are the same run, and run.root is not part of its identity",
          "[cli][integration][identity]") {
  TempDir tmp;
  const std::string data = text_corpus(tmp.path, "Let there be light: and there was light ", 500);
  const std::string common = "train run.name=r model.max_seq_len=32 train.seq_len=32 train.steps=5 train.device=cpu";
  auto first = run_cli(common + data + " optim.lr=1e-3 train.batch_size=1_6 run.root=" + (tmp.path / "a").string());
  REQUIRE(first.exit_code == 0);

  // Same values: skipped as complete, not refused.
  auto respelt = run_cli(common + data + " optim.lr=0.001 train.batch_size=16 run.root=" + (tmp.path / "a").string() +
                         "/.//");
  INFO(respelt.output);
  CHECK(respelt.exit_code == 0);
  CHECK_THAT(respelt.output, Catch::Contains("already complete"));

  // The results folder moved: the run is found complete where it now lives.
  fs::rename(tmp.path / "a", tmp.path / "b");
  auto moved = run_cli(common + data + " optim.lr=1e-3 train.batch_size=16 run.root=" + (tmp.path / "b").string());
  INFO(moved.output);
  CHECK(moved.exit_code == 0);
  CHECK_THAT(moved.output, Catch::Contains("already complete"));

  // A different value is a different run: refused, naming what changed.
  auto changed = run_cli(common + data + " optim.lr=2e-3 train.batch_size=16 run.root=" + (tmp.path / "b").string());
  CHECK(changed.exit_code == 2);
  CHECK_THAT(changed.output, Catch::Contains("different config (optim.lr)"));
}

TEST_CASE("checkpoints carry their config: without run.h5 they are refused, and a foreign one never resumes",
          "[cli][integration][identity]") {
  // The same small run, rooted in `dir`.
  auto common_in = [](const fs::path& dir) {
    return "train run.name=r model.max_seq_len=32 train.seq_len=32 train.device=cpu" +
           text_corpus(dir, "And God saw the light, that it was good ", 500) + " run.root=" + dir.string();
  };
  TempDir tmp;
  const std::string common = common_in(tmp.path);
  REQUIRE(run_cli(common + " train.steps=8").exit_code == 0);
  REQUIRE(fs::exists(tmp.path / "r" / "checkpoints" / "step-0000008.pt"));

  // run.h5 deleted: a new config must not train beside the old run's checkpoints.
  fs::remove(tmp.path / "r" / "run.h5");
  auto beside = run_cli(common + " train.steps=4");
  CHECK(beside.exit_code == 2);
  CHECK_THAT(beside.output, Catch::Contains("holds checkpoints (step-0000008.pt) but no run.h5"));
  CHECK(fs::exists(tmp.path / "r" / "checkpoints" / "step-0000008.pt"));  // nothing deleted

  // A checkpoint written by another config, placed where a resume would take
  // it, is not listed in run.h5: it is removed (with an event) and never used.
  TempDir other;
  const std::string other_common = common_in(other.path);
  const fs::path foreign_file = other.path / "r" / "checkpoints" / "step-0000008.pt";
  REQUIRE(run_cli(other_common + " train.steps=12 train.checkpoint_every=4 --stop-after 4").exit_code == 130);
  fs::copy_file(tmp.path / "r" / "checkpoints" / "step-0000008.pt", foreign_file);
  REQUIRE(run_cli(other_common + " train.steps=12 train.checkpoint_every=4 --stop-after 4").exit_code == 130);
  auto log = attnlab::results::RunLog::load(other.path / "r" / "run.h5");
  bool unlisted = false, resumed_at_4 = false;
  for (const auto& e : log.events()) {
    unlisted |= e.kind == "checkpoint_unlisted" && e.message.find("step-0000008.pt") != std::string::npos;
    resumed_at_4 |= e.kind == "resume" && e.step == 4;
  }
  CHECK(unlisted);
  CHECK(resumed_at_4);
  CHECK(std::get<int64_t>(*log.attr("/", "status_step")) == 8);  // trained steps 5-8 itself

  // Listed in run.h5 with its true sha256 (a record edited by hand), it is
  // still refused: the checkpoint names the config that wrote it.
  fs::copy_file(tmp.path / "r" / "checkpoints" / "step-0000008.pt", foreign_file,
                fs::copy_options::overwrite_existing);
  log.set_attr("/checkpoints", "step-0000008.pt", attnlab::data::sha256_file(foreign_file));
  log.commit();
  auto foreign = run_cli(other_common + " train.steps=12 train.checkpoint_every=4");
  CHECK(foreign.exit_code == 2);
  CHECK_THAT(foreign.output, Catch::Contains("step-0000008.pt was written by another config"));
}
