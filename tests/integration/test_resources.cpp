// Resources: running out of memory (under `ulimit -v`) ends the run
// `failed`, exit 1, with a message naming the keys that size memory and
// nothing left behind; a malformed ATTNLAB_FAILPOINT is refused up front.
#include <catch2/catch.hpp>

#include <cstdlib>

#include "results/run_log.h"
#include "run_compare.h"
#include "test_support.h"

using attnlab::results::RunLog;
using attnlab::testing::run_cli;
using attnlab::testing::temporaries;
using attnlab::testing::text_corpus;
using attnlab::test::TempDir;
namespace fs = std::filesystem;

TEST_CASE("out of memory ends the run failed, exit 1, naming the keys that size memory", "[reliability][integration]") {
  TempDir tmp;
  const fs::path dir = tmp.path / "r";
  // 512 x 512 tokens per step: far more activation memory than 3 GB of address space allows.
  const std::string args = "train run.name=r run.root=" + tmp.path.string() +
                           text_corpus(tmp.path, "Let there be light ", 800) +
                           " model=tiny model.max_seq_len=512 train.seq_len=512 train.batch_size=512 train.device=cpu"
                           " train.steps=2";
  const auto r = run_cli(args, "ulimit -v 3000000 &&");
  INFO(r.output);
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Catch::Contains("out of memory") && Catch::Contains("train.batch_size=512") &&
                           Catch::Contains("train.seq_len=512") && Catch::Contains("model.d_model=") &&
                           !Catch::Contains("internal error") && !Catch::Contains("Logging.cpp"));
  REQUIRE(fs::exists(dir / "run.h5"));
  const auto log = RunLog::load(dir / "run.h5");
  CHECK(std::get<std::string>(*log.attr("/", "status")) == "failed");
  CHECK(log.events().back().kind == "failed");
  CHECK_THAT(log.events().back().message, Catch::Contains("out of memory"));
  CHECK(temporaries(dir).empty());
}

TEST_CASE("a malformed ATTNLAB_FAILPOINT is refused before anything runs, exit 2, naming the variable",
          "[reliability][integration]") {
  for (const std::string spec : {"nonsense", "no.such.point:1:kill", "run_commit.write:0:kill",
                                 "run_commit.write:1:explode", "run_commit.write:x:eio"}) {
    INFO(spec);
    ::setenv("ATTNLAB_FAILPOINT", spec.c_str(), 1);
    const auto r = run_cli("--version");
    ::unsetenv("ATTNLAB_FAILPOINT");
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.output, Catch::Contains("ATTNLAB_FAILPOINT") && Catch::Contains("run_commit.before_rename"));
  }
}
