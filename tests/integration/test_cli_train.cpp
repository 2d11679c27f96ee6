// The real binary: bad overrides exit 2 naming the key and write nothing.
#include <catch2/catch.hpp>

#include "test_support.h"

using attnlab::testing::run_cli;
using attnlab::test::TempDir;

TEST_CASE("train with an unknown override key exits 2, names the key, writes nothing", "[cli][integration]") {
  TempDir tmp;
  auto r = run_cli("train model.n_layer=3 run.root=" + tmp.path.string());
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.output, Catch::Contains("model.n_layer"));
  CHECK_THAT(r.output, Catch::Contains("model.n_layers"));  // did-you-mean
  CHECK_THAT(r.output, !Catch::Contains("internal error"));
  CHECK(std::filesystem::is_empty(tmp.path));
}

TEST_CASE("train with a wrongly typed value exits 2, names the key, writes nothing", "[cli][integration]") {
  TempDir tmp;
  auto r = run_cli("train model.n_layers=two run.root=" + tmp.path.string());
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.output, Catch::Contains("model.n_layers"));
  CHECK_THAT(r.output, Catch::Contains("integer"));
  CHECK(std::filesystem::is_empty(tmp.path));
}

TEST_CASE("data=text with a missing file exits 2 naming data.path", "[cli][integration]") {
  TempDir tmp;
  auto r = run_cli("train data=text data.path=" + (tmp.path / "nope.txt").string() +
                   " run.root=" + tmp.path.string());
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.output, Catch::Contains("data.path"));
  CHECK(std::filesystem::is_empty(tmp.path));
}

TEST_CASE("the version banner (--version) names attnlab, LibTorch, HDF5, yaml-cpp and CUDA", "[cli]") {
  auto r = run_cli("--version");
  CHECK(r.exit_code == 0);
  for (auto word : {"attnlab", "LibTorch", "HDF5", "yaml-cpp", "CUDA"}) CHECK_THAT(r.output, Catch::Contains(word));
}

TEST_CASE("kv --preset deepseek-v2 prints the paper's cache figures", "[cli][kv]") {
  auto r = run_cli("kv --preset deepseek-v2");
  REQUIRE(r.exit_code == 0);
  for (auto figure : {"576", "34.6K", "15.6K", "860.2K", "110.6K"}) CHECK_THAT(r.output, Catch::Contains(figure));
}

TEST_CASE("a trained MLA run generates the same greedy text with naive and absorbed decoding",
          "[cli][integration][mla]") {
  TempDir tmp;
  const std::string common = " run.root=" + tmp.path.string() + " data.dir=" + (tmp.path / "data").string();
  auto trained = run_cli("train attention=mla run.name=mla train.steps=30 train.eval_every=30 train.device=cpu" +
                         common);
  REQUIRE(trained.exit_code == 0);
  const auto run_dir = (tmp.path / "mla").string();
  auto naive = run_cli("generate " + run_dir + " --prompt 'In the beginning' --max-new-tokens 40 --decode naive");
  auto absorbed =
      run_cli("generate " + run_dir + " --prompt 'In the beginning' --max-new-tokens 40 --decode absorbed");
  REQUIRE(naive.exit_code == 0);
  REQUIRE(absorbed.exit_code == 0);
  auto text = [](const std::string& out) { return out.substr(0, out.find("\n[")); };  // drop the stats line
  CHECK_THAT(naive.output, Catch::StartsWith("In the beginning"));
  CHECK(text(naive.output) == text(absorbed.output));
  // The stats line reports the cache each path really allocated: absorbed caches the latent, naive full K/V.
  CHECK_THAT(naive.output, Catch::Contains("KV cache allocated"));
  CHECK(naive.output.substr(naive.output.find("KV cache allocated")) !=
        absorbed.output.substr(absorbed.output.find("KV cache allocated")));
}
