// The real binary: bad overrides exit 2 naming the key and write nothing.
#include <catch2/catch.hpp>

#include "test_support.h"

using attnlab::testing::run_cli;
using attnlab::testing::TempDir;

TEST_CASE("train with an unknown override key exits 2, names the key, writes nothing", "[cli][integration]") {
  TempDir tmp;
  auto r = run_cli("train model.n_layer=3 run.root=" + tmp.path().string());
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.output, Catch::Contains("model.n_layer"));
  CHECK_THAT(r.output, Catch::Contains("model.n_layers"));  // did-you-mean
  CHECK_THAT(r.output, !Catch::Contains("internal error"));
  CHECK(tmp.empty());
}

TEST_CASE("train with a wrongly typed value exits 2, names the key, writes nothing", "[cli][integration]") {
  TempDir tmp;
  auto r = run_cli("train model.n_layers=two run.root=" + tmp.path().string());
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.output, Catch::Contains("model.n_layers"));
  CHECK_THAT(r.output, Catch::Contains("integer"));
  CHECK(tmp.empty());
}

TEST_CASE("data=text with a missing file exits 2 naming data.path", "[cli][integration]") {
  TempDir tmp;
  auto r = run_cli("train data=text data.path=" + (tmp.path() / "nope.txt").string() +
                   " run.root=" + tmp.path().string());
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.output, Catch::Contains("data.path"));
  CHECK(tmp.empty());
}

TEST_CASE("a subcommand of a later step says so and exits 2", "[cli]") {
  auto r = run_cli("bench train");
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.output, Catch::Contains("not available yet"));
}

TEST_CASE("the version banner (--version) names attnlab, LibTorch, HDF5, yaml-cpp and CUDA", "[cli]") {
  auto r = run_cli("--version");
  CHECK(r.exit_code == 0);
  for (auto word : {"attnlab", "LibTorch", "HDF5", "yaml-cpp", "CUDA"}) CHECK_THAT(r.output, Catch::Contains(word));
}
