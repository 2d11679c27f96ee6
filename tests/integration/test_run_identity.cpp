// A run is identified by its config's values, not their spelling: 1e-3 and
// 0.001 are the same run, a moved results folder resumes, and a changed value
// is refused, naming the key.
#include <catch2/catch.hpp>

#include <fstream>

#include "test_support.h"

using attnlab::testing::run_cli;
using attnlab::test::TempDir;
namespace fs = std::filesystem;

TEST_CASE("the same values spelt differently are the same run; run.root is not part of its identity",
          "[cli][integration][identity]") {
  TempDir tmp;
  std::ofstream(tmp.path / "corpus.txt") << [] {
    std::string text;
    for (int i = 0; i < 500; ++i) text += "Let there be light: and there was light " + std::to_string(i) + ".\n";
    return text;
  }();
  const std::string data = " data=text data.path=" + (tmp.path / "corpus.txt").string() +
                           " data.dir=" + (tmp.path / "data").string();
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
